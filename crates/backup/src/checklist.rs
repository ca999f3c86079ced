//! The checklists of the procedure (`docs/procedure.md`, section 11) as
//! computed reports: the generation (`GEN-01`..`GEN-08`), drill
//! (`DRL-01`..`DRL-08`) and deletion (`DEL-01`..`DEL-08`) checklists of a
//! key version, each item evaluated from stored state, passing or failing
//! with its evidence (audit record sequence numbers, receipts, drill
//! sessions, approvals, KEK pins), a failing item saying what is missing.
//!
//! Everything is read in one read-only transaction, so the report is one
//! consistent snapshot; the call is then counted against the caller's
//! inspect rate limit and audited (`inspect`) in a short write transaction
//! of its own.
//!
//! Which stored fact each item needs (the evidence a reviewer can check,
//! and the one whose loss fails the item):
//!
//! | item | needs |
//! |---|---|
//! | `GEN-01` | the split reference: its binding signed by a trusted signer, its commitments hashing to the split id, `C_0` the node's public share |
//! | `GEN-02` | the policy the split names, stored, with the version's `t`-of-`n`, and still the policy in force (a newer policy in force also makes a drill due: `DRL-08`) |
//! | `GEN-03` | the split's server-share count (a signed column of the reference: altering it fails `GEN-01` too) below `t`, the external count at least `t`, and as many server slots stored and external slots mapped as it says |
//! | `GEN-04` | the custody entries at distinct, registered, active entities the person still acts for |
//! | `GEN-05` | the group key's registration (its tss-lib threshold) and the exposure rule over its active versions |
//! | `GEN-06` | a pinned KEK record per stored server slot, its id the slot's, no KEK shared by two slots |
//! | `GEN-07` | a successful `generate` audit record per share index naming the stored envelope |
//! | `GEN-08` | a confirmed (signed) delivery receipt per external slot for the mapped envelope |
//! | `DRL-01` | the drill session's approval request: a drill of this version, consumed, approved in the security role |
//! | `DRL-02` | the drill report's shares used: at least `t`, none a server share |
//! | `DRL-03` | the report's combine-and-regenerate step |
//! | `DRL-04` | the report's write, load and self-test step |
//! | `DRL-05` | the report's stored outcome passed and its `result passed` line (the self-test with live peers; a failed outcome also leaves `DRL-08` without a passed drill) |
//! | `DRL-06` | the report's statement that the sandbox was deleted |
//! | `DRL-07` | the successful `drill` audit record of the session |
//! | `DRL-08` | the latest passed drill: within the drill interval, after the version's last change |
//! | `DEL-01` | at least `t` confirmed receipts at distinct entities still registered and active |
//! | `DEL-02` | a passed drill of this version that used external shares only |
//! | `DEL-03` | a consumed delete request of this version with business-owner and security approvals |
//! | `DEL-04` | every server slot soft-deleted (or hard-deleted after it), with a successful `soft-delete` audit record |
//! | `DEL-05` | every server slot hard-deleted no earlier than the cooldown after its soft delete, none left pending |
//! | `DEL-06` | every server slot's KEK recorded destroyed, and hard-delete evidence stored |
//! | `DEL-07` | a stored audit checkpoint at or after the last deletion record of the version |
//! | `DEL-08` | a successful `zero-retention` audit record of the version |
//!
//! Server shares are the version's stored slots and external shares its
//! custody entries (what is stored, not what the split says: `GEN-03`
//! compares the two). The drill checklist is of the version's latest
//! drill; its session is the one its report names. The delete request is
//! found through the version's `approval-request` audit records.
//!
//! The evaluation reads the audit log through from the start to find a
//! version's records: a compliance report, not a hot path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use shardkeep_audit::{AuditRecord, EventType, Outcome};
use shardkeep_storage::{
    ApprovalOperation, ApprovalRequestHash, ApprovalStore, AuditStore, CustodyEntry, CustodyStore,
    DeliveryOutcome, DeliveryRecord, DrillOutcome, DrillReport, DrillStore, EntityState,
    GroupStore, KeyVersionRecord, KeyVersionState, KeyVersionStore, MAX_PAGE_ROWS, ReceiptStore,
    RecoverySessionId, RecoverySessionStore, RegistryStore, Role as StoredRole, SealedShareStore,
    SlotDeletionStore, SlotFilter, SlotKekStore, SlotState, SlotSummary, SplitReference, Storage,
    Transaction,
};
use shardkeep_types::{ActorId, NodeVersion, ShareIndex, ShareSlot, Timestamp};

use crate::access::{RateCheck, RateKind};
use crate::approval::ApprovalRequest;
use crate::error::Error;
use crate::policy::Policy;
use crate::reference::VerifiedSplit;
use crate::registry::Role;
use crate::service::BackupService;
use crate::status::exposure_of_key;

/// The format name of the JSON report; a change of its shape gets a new one.
pub const CHECKLIST_JSON_FORMAT: &str = "shardkeep-checklist-v1";

/// The roles that may compute a checklist: the reviewers of evidence.
const CHECKLIST_ROLES: [Role; 3] = [Role::Compliance, Role::Security, Role::Auditor];

/// Which checklist of the procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecklistKind {
    /// `GEN-01`..`GEN-08`.
    Generation,
    /// `DRL-01`..`DRL-08`, for the version's latest drill.
    Drill,
    /// `DEL-01`..`DEL-08`.
    Deletion,
}

impl ChecklistKind {
    /// The kind's name in reports (`generation`, `drill`, `deletion`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Drill => "drill",
            Self::Deletion => "deletion",
        }
    }

    /// The items of this checklist: stable id and title, as in
    /// `docs/procedure.md`.
    #[must_use]
    pub const fn items(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Generation => &GENERATION_ITEMS,
            Self::Drill => &DRILL_ITEMS,
            Self::Deletion => &DELETION_ITEMS,
        }
    }
}

const GENERATION_ITEMS: [(&str, &str); 8] = [
    (
        "GEN-01",
        "The node's share was loaded from its save data and Xi·G equals its public share.",
    ),
    ("GEN-02", "The split is t-of-n as the policy in force says."),
    ("GEN-03", "Server shares < t and external shares >= t."),
    (
        "GEN-04",
        "External shares went to distinct, registered, active custodian entities.",
    ),
    ("GEN-05", "The exposure rule holds for the group key."),
    (
        "GEN-06",
        "Every server share is sealed under its own pinned slot KEK.",
    ),
    ("GEN-07", "Every share has its generate audit record."),
    (
        "GEN-08",
        "Every external share was delivered and its receipt confirmed.",
    ),
];

const DRILL_ITEMS: [(&str, &str); 8] = [
    (
        "DRL-01",
        "The drill was approved (security approval or pre-approved schedule).",
    ),
    (
        "DRL-02",
        "At least t external shares were used, and no server share.",
    ),
    (
        "DRL-03",
        "The recovery succeeded: the shares combined to the signed public share.",
    ),
    ("DRL-04", ".keydata.enc was regenerated and loads."),
    (
        "DRL-05",
        "The node self-test and the sign/aggregate test with live peers passed.",
    ),
    ("DRL-06", "The sandbox and its one-time key were deleted."),
    (
        "DRL-07",
        "The drill report and its audit record are stored.",
    ),
    (
        "DRL-08",
        "The last passed drill is less than the drill interval old and no change happened since.",
    ),
];

const DELETION_ITEMS: [(&str, &str); 8] = [
    (
        "DEL-01",
        "At least t external shares are confirmed at distinct entities whose custodians are still registered.",
    ),
    (
        "DEL-02",
        "A passed external-only drill of this version exists.",
    ),
    (
        "DEL-03",
        "Business-owner and security approvals were given and consumed.",
    ),
    (
        "DEL-04",
        "The soft delete was registered with its cooldown.",
    ),
    (
        "DEL-05",
        "The cooldown ended before the hard delete, and no rollback is pending.",
    ),
    (
        "DEL-06",
        "The slot KEK was destroyed and the destruction evidence is stored.",
    ),
    (
        "DEL-07",
        "An audit checkpoint covering the deletion records was witnessed.",
    ),
    (
        "DEL-08",
        "Compliance signed off and the zero-retention certificate was issued.",
    ),
];

/// Which checklist of which key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistQuery {
    /// The key, node and version.
    pub version: NodeVersion,
    /// Which checklist.
    pub kind: ChecklistKind,
}

/// What kind of stored fact a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceKind {
    /// An audit record; the id is its sequence number.
    AuditRecord,
    /// The split reference; the id is the split id.
    SplitReference,
    /// A split policy; the id is its hash.
    Policy,
    /// A custody entry; the id is the custodian entity.
    Custodian,
    /// The group key registration; the id is the key id.
    Group,
    /// A slot KEK pin; the id is the KEK id.
    SlotKek,
    /// A delivery receipt; the id is the share slot.
    Receipt,
    /// A drill report; the id is its session.
    Drill,
    /// An approval request; the id is its hash.
    ApprovalRequest,
    /// An approval; the id is the approver.
    Approval,
    /// A slot's deletion state; the id is the share slot.
    SlotDeletion,
    /// A stored audit checkpoint; the id is its sequence number.
    Checkpoint,
}

impl EvidenceKind {
    /// The kind's name in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AuditRecord => "audit-record",
            Self::SplitReference => "split-reference",
            Self::Policy => "policy",
            Self::Custodian => "custodian",
            Self::Group => "group",
            Self::SlotKek => "slot-kek",
            Self::Receipt => "receipt",
            Self::Drill => "drill",
            Self::ApprovalRequest => "approval-request",
            Self::Approval => "approval",
            Self::SlotDeletion => "slot-deletion",
            Self::Checkpoint => "checkpoint",
        }
    }
}

/// One stored fact an item rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What it is.
    pub kind: EvidenceKind,
    /// Its id (see [`EvidenceKind`]).
    pub id: String,
    /// What it says, for people.
    pub detail: String,
}

impl Evidence {
    fn new(kind: EvidenceKind, id: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            detail: detail.into(),
        }
    }

    fn audit(sequence: u64, record: &AuditRecord) -> Self {
        let mut detail = record.event.name().to_owned();
        if let Some(index) = record.share_index {
            let _ = write!(detail, " share {index}");
        }
        let _ = write!(detail, " by {} at {}", record.operator, record.timestamp);
        Self::new(EvidenceKind::AuditRecord, sequence.to_string(), detail)
    }
}

/// How an item came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// It holds.
    Pass,
    /// It does not hold.
    Fail {
        /// What is missing or wrong.
        missing: String,
    },
}

/// One evaluated checklist item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    /// Its stable id (`GEN-01`...).
    pub id: &'static str,
    /// What it checks.
    pub title: &'static str,
    /// Pass or fail.
    pub outcome: ItemOutcome,
    /// The stored facts it rests on (on a failure, those found).
    pub evidence: Vec<Evidence>,
}

impl ChecklistItem {
    /// Whether it passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.outcome == ItemOutcome::Pass
    }
}

/// A checklist evaluated for one key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistReport {
    /// Which checklist.
    pub kind: ChecklistKind,
    /// Which key version.
    pub version: NodeVersion,
    /// When it was computed.
    pub as_of: Timestamp,
    /// The items, in id order.
    pub items: Vec<ChecklistItem>,
}

impl ChecklistReport {
    /// Whether every item passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.items.iter().all(ChecklistItem::passed)
    }

    /// The ids of the items that failed, in order.
    #[must_use]
    pub fn failed(&self) -> Vec<&'static str> {
        self.items
            .iter()
            .filter(|item| !item.passed())
            .map(|item| item.id)
            .collect()
    }

    /// The item with this id.
    #[must_use]
    pub fn item(&self, id: &str) -> Option<&ChecklistItem> {
        self.items.iter().find(|item| item.id == id)
    }

    /// The report as JSON (format [`CHECKLIST_JSON_FORMAT`]):
    ///
    /// ```text
    /// { "format": "shardkeep-checklist-v1", "checklist": "generation",
    ///   "key_id": "...", "node_id": "...", "version": 1,
    ///   "as_of": "2026-01-01T00:00:00.000Z", "passed": false,
    ///   "items": [ { "id": "GEN-01", "title": "...",
    ///                "outcome": "pass" | "fail", "missing": null | "...",
    ///                "evidence": [ { "kind": "audit-record", "id": "42",
    ///                                "detail": "..." } ] } ] }
    /// ```
    #[must_use]
    pub fn to_json(&self) -> String {
        let items: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|item| {
                let (outcome, missing) = match &item.outcome {
                    ItemOutcome::Pass => ("pass", serde_json::Value::Null),
                    ItemOutcome::Fail { missing } => {
                        ("fail", serde_json::Value::String(missing.clone()))
                    }
                };
                serde_json::json!({
                    "id": item.id,
                    "title": item.title,
                    "outcome": outcome,
                    "missing": missing,
                    "evidence": item.evidence.iter().map(|evidence| serde_json::json!({
                        "kind": evidence.kind.name(),
                        "id": evidence.id,
                        "detail": evidence.detail,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "format": CHECKLIST_JSON_FORMAT,
            "checklist": self.kind.name(),
            "key_id": self.version.key_id.as_str(),
            "node_id": self.version.node_id.as_str(),
            "version": self.version.version.get(),
            "as_of": self.as_of.to_string(),
            "passed": self.passed(),
            "items": items,
        })
        .to_string()
    }

    /// The report as one self-contained HTML page for the compliance
    /// archive: inline CSS, no script, no external resource, every stored
    /// value escaped. Each item is a table row
    /// `<tr data-item="GEN-01" data-outcome="pass">` whose cells are the
    /// id, the title, `PASS` or `FAIL: <what is missing>`, and the
    /// evidence.
    #[must_use]
    pub fn to_html(&self) -> String {
        let mut page = String::with_capacity(8 * 1024);
        let title = format!(
            "shardkeep {} checklist: {}/{}/v{}",
            self.kind.name(),
            self.version.key_id,
            self.version.node_id,
            self.version.version.get()
        );
        page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        page.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
        );
        let _ = writeln!(page, "<title>{}</title>", escape(&title));
        page.push_str(
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}\
             td,th{border:1px solid #999;padding:4px 8px;vertical-align:top;text-align:left}td.id{white-space:nowrap}\
             tr[data-outcome=pass] td.outcome{color:#060;font-weight:bold}\
             tr[data-outcome=fail] td.outcome{color:#a00;font-weight:bold}\
             ul{margin:0;padding-left:1.2em}code{font-size:90%}</style>\n</head>\n<body>\n",
        );
        let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
        let _ = writeln!(
            page,
            "<p id=\"summary\" data-passed=\"{}\">Computed at {} from stored state: {} of {} items pass.</p>",
            self.passed(),
            escape(&self.as_of.to_string()),
            self.items.iter().filter(|item| item.passed()).count(),
            self.items.len()
        );
        page.push_str(
            "<table>\n<thead><tr><th>id</th><th>item</th><th>result</th><th>evidence</th></tr></thead>\n<tbody>\n",
        );
        for item in &self.items {
            let (outcome, text) = match &item.outcome {
                ItemOutcome::Pass => ("pass", "PASS".to_owned()),
                ItemOutcome::Fail { missing } => ("fail", format!("FAIL: {missing}")),
            };
            let _ = write!(
                page,
                "<tr data-item=\"{id}\" data-outcome=\"{outcome}\"><td class=\"id\">{id}</td><td class=\"title\">{title}</td><td class=\"outcome\">{text}</td><td class=\"evidence\"><ul>",
                id = escape(item.id),
                title = escape(item.title),
                text = escape(&text),
            );
            for evidence in &item.evidence {
                let _ = write!(
                    page,
                    "<li>{} <code>{}</code>: {}</li>",
                    escape(evidence.kind.name()),
                    escape(&evidence.id),
                    escape(&evidence.detail)
                );
            }
            page.push_str("</ul></td></tr>\n");
        }
        page.push_str("</tbody>\n</table>\n</body>\n</html>\n");
        page
    }
}

/// HTML-escapes text for element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Builds one item: `Ok(evidence)` passes, `Err((missing, evidence))`
/// fails with what was found.
type Evaluated = Result<Vec<Evidence>, (String, Vec<Evidence>)>;

fn fail(missing: impl Into<String>, evidence: Vec<Evidence>) -> Evaluated {
    Err((missing.into(), evidence))
}

/// What the checklists read, in one read-only transaction.
struct Facts {
    version: NodeVersion,
    record: KeyVersionRecord,
    reference: Option<SplitReference>,
    /// `GEN-01`'s verdict on the reference.
    verified: Result<VerifiedSplit, String>,
    slots: Vec<SlotSummary>,
    slot_states: BTreeMap<ShareIndex, SlotState>,
    keks: BTreeMap<ShareIndex, shardkeep_storage::SlotKekRecord>,
    custody: Result<Vec<CustodyEntry>, String>,
    entities: BTreeMap<shardkeep_types::CustodianId, shardkeep_storage::EntityRecord>,
    deliveries: Vec<DeliveryRecord>,
    drills: Vec<DrillReport>,
    /// The version's audit records, with their sequence numbers.
    audit: Vec<(u64, AuditRecord)>,
    policy_in_force: Option<shardkeep_storage::PolicyRecord>,
    split_policy: Option<shardkeep_storage::PolicyRecord>,
    /// `None` when the group key is not registered.
    exposure: Option<BTreeSet<shardkeep_types::CustodianId>>,
    group_degree: Option<u16>,
    drill_approval: Option<DrillApproval>,
    delete_approvals: Vec<(
        ApprovalRequestHash,
        shardkeep_storage::ApprovalRequestRecord,
        Vec<shardkeep_storage::ApprovalRecord>,
    )>,
    checkpoint: Option<u64>,
}

/// The approval a drill session started under.
struct DrillApproval {
    session: RecoverySessionId,
    request: Option<(
        shardkeep_storage::ApprovalRequestRecord,
        Vec<shardkeep_storage::ApprovalRecord>,
    )>,
}

/// What a checklist evaluation needs besides the stored facts.
struct Settings {
    now: Timestamp,
    drill_interval: Duration,
    cooldown: Duration,
}

impl<S: Storage> BackupService<S> {
    /// Evaluates a checklist of a key version from stored state, read in
    /// one read-only transaction. Compliance, security and auditor
    /// persons may; the call counts against the inspect rate limit and is
    /// audited (`inspect`).
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] (audited as `access-denied`),
    /// [`Error::RateLimited`], [`Error::Storage`] (a version not stored:
    /// `KeyVersionNotFound`).
    pub async fn checklist(
        &self,
        actor: &ActorId,
        query: &ChecklistQuery,
    ) -> Result<ChecklistReport, Error> {
        let result = self.checklist_of(actor, query).await;
        self.observed(actor, result).await
    }

    async fn checklist_of(
        &self,
        actor: &ActorId,
        query: &ChecklistQuery,
    ) -> Result<ChecklistReport, Error> {
        let mut tx = self.begin_read_only().await?;
        if let Err(refusal) = Self::authorize_any(&mut tx, actor, &CHECKLIST_ROLES).await {
            drop(tx);
            return self.refuse(actor, Some(&query.version), refusal).await;
        }
        let facts = self.facts(&mut tx, &query.version).await;
        drop(tx);
        let facts = facts?;
        let settings = Settings {
            now: self.now(),
            drill_interval: self.config().drill_interval,
            cooldown: self.config().cooldown,
        };
        let evaluated: Vec<Evaluated> = match query.kind {
            ChecklistKind::Generation => generation(&facts),
            ChecklistKind::Drill => drill(&facts, &settings),
            ChecklistKind::Deletion => deletion(&facts, &settings),
        };
        let items: Vec<ChecklistItem> = query
            .kind
            .items()
            .iter()
            .zip(evaluated)
            .map(|(&(id, title), result)| match result {
                Ok(evidence) => ChecklistItem {
                    id,
                    title,
                    outcome: ItemOutcome::Pass,
                    evidence,
                },
                Err((missing, evidence)) => ChecklistItem {
                    id,
                    title,
                    outcome: ItemOutcome::Fail { missing },
                    evidence,
                },
            })
            .collect();
        let report = ChecklistReport {
            kind: query.kind,
            version: query.version.clone(),
            as_of: settings.now,
            items,
        };

        let mut tx = self.begin().await?;
        if let RateCheck::Refused(error) = self.count_in(&mut tx, actor, RateKind::Inspect).await? {
            tx.commit().await?;
            return Err(error);
        }
        let mut record = self.record(EventType::Inspect, actor, Some(&query.version));
        record.detail = Some(shardkeep_types::FreeText::sanitized(&format!(
            "{} checklist: {} of {} items pass{}",
            query.kind.name(),
            report.items.iter().filter(|item| item.passed()).count(),
            report.items.len(),
            if report.passed() {
                String::new()
            } else {
                format!("; failed {}", report.failed().join(", "))
            }
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Reads everything the checklists use about `version`.
    async fn facts(&self, tx: &mut S::Transaction, version: &NodeVersion) -> Result<Facts, Error> {
        let record = tx.key_version(version).await?;
        let reference = match tx.split_reference(version).await {
            Ok(reference) => Some(reference),
            Err(shardkeep_storage::Error::SplitReferenceNotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        let verified = match &reference {
            None => Err("no split reference is stored".to_owned()),
            Some(reference) => VerifiedSplit::verify(version, reference, self.trusted_signers())
                .map_err(|error| error.to_string()),
        };
        let slots = tx
            .list_slots(&SlotFilter {
                key_id: Some(version.key_id.clone()),
                node_id: Some(version.node_id.clone()),
                version: Some(version.version),
            })
            .await?;
        let mut slot_states = BTreeMap::new();
        let mut keks = BTreeMap::new();
        for index in slots.iter().map(|slot| slot.slot.index) {
            let slot = version.slot(index);
            match tx.slot_state(&slot).await {
                Ok(state) => {
                    slot_states.insert(index, state);
                }
                Err(shardkeep_storage::Error::SealedShareNotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
            if let Some(kek) = tx.slot_kek(&slot).await? {
                keks.insert(index, kek);
            }
        }
        let custody = match tx.custody_map(version).await {
            Ok(entries) => Ok(entries),
            Err(shardkeep_storage::Error::LegacyCustodyEntry(_)) => {
                Err("the custody map predates the registry".to_owned())
            }
            Err(other) => return Err(other.into()),
        };
        let entities = tx
            .entities()
            .await?
            .into_iter()
            .map(|entity| (entity.id.clone(), entity))
            .collect();
        let deliveries = tx.deliveries(version).await?;
        let drills = tx.drill_reports(version).await?;
        let audit = version_audit(tx, version).await?;
        let policy_in_force = tx.current_policy().await?;
        let split_policy = match &reference {
            None => None,
            Some(reference) => match tx.policy(&reference.policy_hash).await {
                Ok(policy) => Some(policy),
                Err(shardkeep_storage::Error::PolicyNotFound(_)) => None,
                Err(other) => return Err(other.into()),
            },
        };
        let (exposure, group_degree) = match tx.group(&version.key_id).await {
            Ok(group) => {
                let exposed = exposure_of_key(tx, &version.key_id)
                    .await?
                    .and_then(|mut nodes| nodes.remove(&version.node_id))
                    .unwrap_or_default();
                (Some(exposed), Some(group.tss_degree))
            }
            Err(shardkeep_storage::Error::GroupNotFound(_)) => (None, None),
            Err(other) => return Err(other.into()),
        };
        let drill_approval = match drills.last().and_then(|drill| drill_session(&drill.report)) {
            None => None,
            Some(session) => {
                let request = match tx.recovery_session(&session).await {
                    Ok(stored) => match tx.approval_request(&stored.request_hash).await {
                        Ok(request) => {
                            let approvals = tx.approvals(&stored.request_hash).await?;
                            Some((request, approvals))
                        }
                        Err(shardkeep_storage::Error::ApprovalRequestNotFound(_)) => None,
                        Err(other) => return Err(other.into()),
                    },
                    Err(shardkeep_storage::Error::RecoverySessionNotFound(_)) => None,
                    Err(other) => return Err(other.into()),
                };
                Some(DrillApproval { session, request })
            }
        };
        let mut delete_approvals = Vec::new();
        for hash in audit
            .iter()
            .filter(|(_, record)| record.event == EventType::ApprovalRequest)
            .filter_map(|(_, record)| {
                record
                    .detail
                    .as_ref()
                    .and_then(|d| requested_hash(d.as_str()))
            })
            .collect::<BTreeSet<_>>()
        {
            match tx.approval_request(&hash).await {
                Ok(request) if request.operation == ApprovalOperation::Delete => {
                    let approvals = tx.approvals(&hash).await?;
                    delete_approvals.push((hash, request, approvals));
                }
                Ok(_) | Err(shardkeep_storage::Error::ApprovalRequestNotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        let checkpoint = tx.latest_checkpoint().await?.map(|c| c.sequence);
        Ok(Facts {
            version: version.clone(),
            record,
            reference,
            verified,
            slots,
            slot_states,
            keks,
            custody,
            entities,
            deliveries,
            drills,
            audit,
            policy_in_force,
            split_policy,
            exposure,
            group_degree,
            drill_approval,
            delete_approvals,
            checkpoint,
        })
    }
}

/// The audit records about `version`, read through from the start.
async fn version_audit<T: AuditStore + Send>(
    tx: &mut T,
    version: &NodeVersion,
) -> Result<Vec<(u64, AuditRecord)>, Error> {
    let mut out = Vec::new();
    let mut from = 1u64;
    loop {
        let rows = tx.read_audit(from, MAX_PAGE_ROWS).await?;
        let Some(last) = rows.last() else {
            break;
        };
        let next = last.sequence.saturating_add(1);
        for row in rows {
            let record = AuditRecord::decode(&row.record)
                .map_err(|error| Error::Audit(shardkeep_audit::Error::from(error)))?;
            if record.key_id.as_ref() == Some(&version.key_id)
                && record.node_id.as_ref() == Some(&version.node_id)
                && record.version == Some(version.version)
            {
                out.push((row.sequence, record));
            }
        }
        if next <= from {
            break;
        }
        from = next;
    }
    Ok(out)
}

/// The session a drill report names (`session <hex>` line).
fn drill_session(report: &[u8]) -> Option<RecoverySessionId> {
    let text = std::str::from_utf8(report).ok()?;
    let hex_id = text
        .lines()
        .find_map(|line| line.strip_prefix("session "))?;
    let bytes: [u8; 16] = hex::decode(hex_id).ok()?.try_into().ok()?;
    Some(RecoverySessionId(bytes))
}

/// The request hash an `approval-request` audit record names
/// (`... request <hex>, ...`).
fn requested_hash(detail: &str) -> Option<ApprovalRequestHash> {
    let at = detail.find("request ")? + "request ".len();
    let hex_hash = detail.get(at..at + 64)?;
    let bytes: [u8; 32] = hex::decode(hex_hash).ok()?.try_into().ok()?;
    Some(ApprovalRequestHash(bytes))
}

fn succeeded(record: &AuditRecord) -> bool {
    record.outcome == Outcome::Success
}

impl Facts {
    fn threshold_t(&self) -> u8 {
        self.record.threshold.t()
    }

    fn threshold_n(&self) -> u8 {
        self.record.threshold.n()
    }

    /// Whether a custodian holds the share: external shares are the
    /// custody map's, server shares the stored slots' (what is stored,
    /// not what the split says: `GEN-03` compares the two).
    fn is_external(&self, index: ShareIndex) -> bool {
        self.custody
            .as_ref()
            .is_ok_and(|entries| entries.iter().any(|entry| entry.slot.index == index))
    }

    fn confirmed_receipt(&self, entry: &CustodyEntry) -> Option<&DeliveryRecord> {
        self.deliveries.iter().find(|delivery| {
            delivery.slot == entry.slot
                && delivery.custodian == entry.custodian
                && delivery.envelope_id == *entry.envelope_id.as_bytes()
                && matches!(delivery.outcome, DeliveryOutcome::Delivered { .. })
        })
    }

    fn entity_active(&self, entry: &CustodyEntry) -> Result<String, String> {
        match self.entities.get(&entry.custodian) {
            None => Err(format!("custodian {} is not registered", entry.custodian)),
            Some(entity) if entity.state != EntityState::Active => {
                Err(format!("custodian {} is revoked", entry.custodian))
            }
            Some(entity) if !entity.members.contains(&entry.person) => Err(format!(
                "{} no longer acts for custodian {}",
                entry.person, entry.custodian
            )),
            Some(entity) => Ok(entity.display_name.as_str().to_owned()),
        }
    }

    fn latest_passed_drill(&self) -> Option<&DrillReport> {
        self.drills
            .iter()
            .filter(|drill| drill.outcome == DrillOutcome::Passed)
            .max_by_key(|drill| drill.finished_at)
    }

    fn drill_evidence(drill: &DrillReport) -> Evidence {
        let session = drill_session(&drill.report)
            .map_or_else(|| "unknown session".to_owned(), |s| s.to_string());
        Evidence::new(
            EvidenceKind::Drill,
            session,
            format!(
                "{} drill by {}, {} to {}, shares {}",
                match &drill.outcome {
                    DrillOutcome::Passed => "passed".to_owned(),
                    DrillOutcome::Failed { reason } => format!("failed ({})", reason.as_str()),
                },
                drill.operator,
                drill.started_at,
                drill.finished_at,
                indices(&drill.shares_used)
            ),
        )
    }

    fn records(&self, event: EventType) -> impl Iterator<Item = &(u64, AuditRecord)> {
        self.audit
            .iter()
            .filter(move |(_, record)| record.event == event && succeeded(record))
    }
}

fn indices(indices: &[ShareIndex]) -> String {
    indices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn generation(facts: &Facts) -> Vec<Evaluated> {
    vec![
        gen_split(facts),
        gen_policy(facts),
        gen_shape(facts),
        gen_custodians(facts),
        gen_exposure(facts),
        gen_keks(facts),
        gen_records(facts),
        gen_receipts(facts),
    ]
}

fn split_evidence(reference: &SplitReference, detail: impl Into<String>) -> Evidence {
    Evidence::new(
        EvidenceKind::SplitReference,
        hex::encode(reference.split_id),
        detail,
    )
}

/// GEN-01.
fn gen_split(facts: &Facts) -> Evaluated {
    match (&facts.reference, &facts.verified) {
        (Some(reference), Ok(_)) => Ok(vec![split_evidence(
            reference,
            "binding signed by a trusted signer; commitments hash to the split id; C_0 is the node's public share",
        )]),
        (Some(reference), Err(why)) => fail(
            format!("the split reference does not verify: {why}"),
            vec![split_evidence(reference, "stored")],
        ),
        (None, _) => fail("no split reference is stored for the version", Vec::new()),
    }
}

/// GEN-02.
fn gen_policy(facts: &Facts) -> Evaluated {
    let Some(reference) = &facts.reference else {
        return fail("no split reference names the version's policy", Vec::new());
    };
    let Some(stored) = &facts.split_policy else {
        return fail(
            format!(
                "the policy {} the split names is not stored",
                hex::encode(reference.policy_hash)
            ),
            Vec::new(),
        );
    };
    let policy = match Policy::decode(&stored.encoding) {
        Ok(policy) => policy,
        Err(error) => {
            return fail(
                format!("the stored policy does not decode: {error}"),
                Vec::new(),
            );
        }
    };
    let evidence = vec![Evidence::new(
        EvidenceKind::Policy,
        hex::encode(stored.hash),
        format!(
            "{}-of-{}, {} on the server, set by {} at {}",
            policy.threshold().t(),
            policy.threshold().n(),
            policy.server_shares(),
            stored.set_by,
            stored.set_at
        ),
    )];
    if policy.threshold() != facts.record.threshold {
        return fail(
            format!(
                "the version is {}-of-{} but its policy says {}-of-{}",
                facts.threshold_t(),
                facts.threshold_n(),
                policy.threshold().t(),
                policy.threshold().n()
            ),
            evidence,
        );
    }
    match &facts.policy_in_force {
        Some(current) if current.hash == stored.hash => Ok(evidence),
        Some(current) => fail(
            format!(
                "the version was made under policy {}, the policy in force is {} (set at {})",
                hex::encode(stored.hash),
                hex::encode(current.hash),
                current.set_at
            ),
            evidence,
        ),
        None => fail("no policy is in force", evidence),
    }
}

/// GEN-03.
fn gen_shape(facts: &Facts) -> Evaluated {
    let Some(reference) = &facts.reference else {
        return fail(
            "no split reference gives the server-share count",
            Vec::new(),
        );
    };
    let (t, n, server) = (
        facts.threshold_t(),
        facts.threshold_n(),
        reference.server_shares,
    );
    let external = n.saturating_sub(server);
    let stored = facts.slots.len();
    let mapped = facts.custody.as_ref().map_or(0, Vec::len);
    let evidence = vec![split_evidence(
        reference,
        format!(
            "{t}-of-{n}: {server} server shares ({stored} stored), {external} external ({mapped} mapped to custodians)"
        ),
    )];
    if server >= t {
        return fail(
            format!("{server} server shares reach the threshold {t}"),
            evidence,
        );
    }
    if external < t {
        return fail(
            format!("{external} external shares are fewer than the threshold {t}"),
            evidence,
        );
    }
    if stored != usize::from(server) {
        return fail(
            format!("{stored} server shares are stored, the split has {server}"),
            evidence,
        );
    }
    if mapped != usize::from(external) {
        return fail(
            format!("{mapped} external shares are mapped to custodians, the split has {external}"),
            evidence,
        );
    }
    Ok(evidence)
}

/// GEN-04.
fn gen_custodians(facts: &Facts) -> Evaluated {
    let entries = match &facts.custody {
        Ok(entries) => entries,
        Err(why) => return fail(why.clone(), Vec::new()),
    };
    if entries.is_empty() {
        return fail("no external share is mapped to a custodian", Vec::new());
    }
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries {
        let index = entry.slot.index;
        if !seen.insert(entry.custodian.clone()) {
            problems.push(format!("custodian {} holds two shares", entry.custodian));
        }
        match facts.entity_active(entry) {
            Ok(name) => evidence.push(Evidence::new(
                EvidenceKind::Custodian,
                entry.custodian.as_str(),
                format!("share {index}: {name}, sealed to {}", entry.person),
            )),
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        Ok(evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// GEN-05.
fn gen_exposure(facts: &Facts) -> Evaluated {
    let (Some(exposed), Some(degree)) = (&facts.exposure, facts.group_degree) else {
        return fail(
            format!(
                "the group key {} is not registered: its tss-lib threshold is unknown",
                facts.version.key_id
            ),
            Vec::new(),
        );
    };
    let evidence = vec![Evidence::new(
        EvidenceKind::Group,
        facts.version.key_id.as_str(),
        format!(
            "tss-lib degree {degree}; {} versions are checked",
            if facts.record.state == KeyVersionState::Active {
                "active"
            } else {
                "only active"
            }
        ),
    )];
    if exposed.is_empty() {
        Ok(evidence)
    } else {
        fail(
            format!(
                "with the server's shares, custodians {} could rebuild more nodes than the tss-lib threshold allows",
                exposed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            evidence,
        )
    }
}

/// GEN-06.
fn gen_keks(facts: &Facts) -> Evaluated {
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    let mut kek_ids = BTreeSet::new();
    for slot in &facts.slots {
        let index = slot.slot.index;
        let Some(kek) = facts.keks.get(&index) else {
            problems.push(format!("share {index} has no pinned slot KEK"));
            continue;
        };
        if !kek_ids.insert(kek.kek_id.clone()) {
            problems.push(format!("KEK {} seals two shares", kek.kek_id));
        }
        if slot.kek_id != kek.kek_id {
            problems.push(format!(
                "share {index} is sealed under {}, its pinned KEK is {}",
                slot.kek_id, kek.kek_id
            ));
        }
        evidence.push(Evidence::new(
            EvidenceKind::SlotKek,
            kek.kek_id.as_str(),
            format!(
                "share {index}, fingerprint {}, pinned at {}",
                hex::encode(kek.fingerprint),
                kek.created_at
            ),
        ));
    }
    if problems.is_empty() {
        Ok(evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// GEN-07.
fn gen_records(facts: &Facts) -> Evaluated {
    let mut evidence = Vec::new();
    let mut missing = Vec::new();
    for index in 1..=facts.threshold_n() {
        let Some(index) = ShareIndex::new(index) else {
            continue;
        };
        let stored_envelope = facts
            .slots
            .iter()
            .find(|slot| slot.slot.index == index)
            .map(|slot| slot.envelope_id)
            .or_else(|| {
                facts.custody.as_ref().ok().and_then(|entries| {
                    entries
                        .iter()
                        .find(|entry| entry.slot.index == index)
                        .map(|entry| *entry.envelope_id.as_bytes())
                })
            });
        let found = facts.records(EventType::Generate).find(|(_, record)| {
            record.share_index == Some(index)
                && stored_envelope.is_none_or(|envelope| record.envelope_id == Some(envelope))
        });
        match found {
            Some((sequence, record)) => evidence.push(Evidence::audit(*sequence, record)),
            None => missing.push(index.to_string()),
        }
    }
    if missing.is_empty() {
        Ok(evidence)
    } else {
        fail(
            format!("no generate audit record for share {}", missing.join(", ")),
            evidence,
        )
    }
}

/// GEN-08.
fn gen_receipts(facts: &Facts) -> Evaluated {
    let entries = match &facts.custody {
        Ok(entries) => entries,
        Err(why) => return fail(why.clone(), Vec::new()),
    };
    let mut evidence = Vec::new();
    let mut missing = Vec::new();
    for entry in entries {
        match facts.confirmed_receipt(entry) {
            Some(receipt) => evidence.push(receipt_evidence(receipt)),
            None => missing.push(entry.slot.index.to_string()),
        }
    }
    if entries.is_empty() {
        return fail("no external share is mapped to a custodian", evidence);
    }
    if missing.is_empty() {
        Ok(evidence)
    } else {
        fail(
            format!("no confirmed receipt for share {}", missing.join(", ")),
            evidence,
        )
    }
}

fn receipt_evidence(receipt: &DeliveryRecord) -> Evidence {
    Evidence::new(
        EvidenceKind::Receipt,
        receipt.slot.to_string(),
        format!(
            "signed receipt of envelope {} from {}, recorded at {}",
            hex::encode(receipt.envelope_id),
            receipt.custodian,
            receipt.recorded_at
        ),
    )
}

fn drill(facts: &Facts, settings: &Settings) -> Vec<Evaluated> {
    let Some(drill) = facts.drills.last() else {
        return DRILL_ITEMS
            .iter()
            .map(|_| fail("no drill of this version is recorded", Vec::new()))
            .collect();
    };
    let evidence = Facts::drill_evidence(drill);
    let text = String::from_utf8_lossy(&drill.report);
    let has_line = |prefix: &str| text.lines().any(|line| line.starts_with(prefix));
    let line_item = |prefix: &str, missing: &str| -> Evaluated {
        if has_line(prefix) {
            Ok(vec![evidence.clone()])
        } else {
            fail(missing, vec![evidence.clone()])
        }
    };
    vec![
        drl_approval(facts, &evidence),
        drl_shares(facts, drill, &evidence),
        line_item(
            "step combine and regenerate:",
            "the drill report records no combine-and-regenerate step",
        ),
        line_item(
            "step write, load and self-test:",
            "the drill report records no keystore write, load and self-test step",
        ),
        match &drill.outcome {
            DrillOutcome::Passed if !has_line("result passed") => fail(
                "the drill report does not record the passed self-test",
                vec![evidence.clone()],
            ),
            DrillOutcome::Passed => Ok(vec![evidence.clone()]),
            DrillOutcome::Failed { reason } => fail(
                format!("the drill failed: {}", reason.as_str()),
                vec![evidence.clone()],
            ),
        },
        line_item(
            "sandbox deleted",
            "the drill report does not state that the sandbox was deleted",
        ),
        drl_record(facts, drill, &evidence),
        drl_fresh(facts, settings),
    ]
}

/// DRL-01.
fn drl_approval(facts: &Facts, evidence: &Evidence) -> Evaluated {
    let Some(approval) = &facts.drill_approval else {
        return fail("the drill report names no session", vec![evidence.clone()]);
    };
    let Some((request, approvals)) = &approval.request else {
        return fail(
            format!(
                "no approval request is stored for drill session {}",
                approval.session
            ),
            vec![evidence.clone()],
        );
    };
    // A drill request naming a change hash pre-approves the schedule of
    // that hash: it is never consumed, each scheduled drill starts on it.
    let schedule = ApprovalRequest::decode(&request.encoding)
        .ok()
        .and_then(|decoded| decoded.params.change_hash);
    let mut found = vec![Evidence::new(
        EvidenceKind::ApprovalRequest,
        request.hash.to_string(),
        format!(
            "{}{} of {} requested by {} at {}, consumed {}",
            request.operation,
            schedule.map_or_else(String::new, |hash| format!(
                " (pre-approved schedule {})",
                hex::encode(hash)
            )),
            request
                .subject
                .as_ref()
                .map_or_else(|| "nothing".to_owned(), ToString::to_string),
            request.requester,
            request.created_at,
            request
                .consumed_at
                .map_or_else(|| "never".to_owned(), |at| at.to_string())
        ),
    )];
    found.extend(approval_evidence(approvals));
    if request.operation != ApprovalOperation::Drill
        || request.subject.as_ref() != Some(&facts.version)
    {
        return fail(
            "the session's approval request is not a drill of this version",
            found,
        );
    }
    if request.consumed_at.is_none() && schedule.is_none() {
        return fail("the drill's approval request was never consumed", found);
    }
    if !approvals
        .iter()
        .any(|approval| approval.role == StoredRole::Security)
    {
        return fail("no security approval of the drill request", found);
    }
    Ok(found)
}

fn approval_evidence(approvals: &[shardkeep_storage::ApprovalRecord]) -> Vec<Evidence> {
    approvals
        .iter()
        .map(|approval| {
            Evidence::new(
                EvidenceKind::Approval,
                approval.approver.as_str(),
                format!(
                    "signed as {} at {}",
                    approval.role.name(),
                    approval.approved_at
                ),
            )
        })
        .collect()
}

/// DRL-02.
fn drl_shares(facts: &Facts, drill: &DrillReport, evidence: &Evidence) -> Evaluated {
    let t = usize::from(facts.threshold_t());
    let server: Vec<String> = drill
        .shares_used
        .iter()
        .filter(|index| !facts.is_external(**index))
        .map(ToString::to_string)
        .collect();
    if !server.is_empty() {
        return fail(
            format!("server share {} was used", server.join(", ")),
            vec![evidence.clone()],
        );
    }
    if drill.shares_used.len() < t {
        return fail(
            format!(
                "{} external shares were used, the threshold is {t}",
                drill.shares_used.len()
            ),
            vec![evidence.clone()],
        );
    }
    Ok(vec![evidence.clone()])
}

/// DRL-07.
fn drl_record(facts: &Facts, drill: &DrillReport, evidence: &Evidence) -> Evaluated {
    let Some(session) = drill_session(&drill.report) else {
        return fail("the drill report names no session", vec![evidence.clone()]);
    };
    let needle = format!("drill session {session}:");
    match facts.records(EventType::Drill).find(|(_, record)| {
        record
            .detail
            .as_ref()
            .is_some_and(|detail| detail.as_str().starts_with(&needle))
    }) {
        Some((sequence, record)) => Ok(vec![evidence.clone(), Evidence::audit(*sequence, record)]),
        None => fail(
            format!("no successful drill audit record of session {session}"),
            vec![evidence.clone()],
        ),
    }
}

/// DRL-08.
fn drl_fresh(facts: &Facts, settings: &Settings) -> Evaluated {
    let Some(drill) = facts.latest_passed_drill() else {
        return fail("the version never passed a drill", Vec::new());
    };
    let evidence = vec![Facts::drill_evidence(drill)];
    let due = drill.finished_at.checked_add(settings.drill_interval);
    if due.is_none_or(|due| due <= settings.now) {
        return fail(
            format!(
                "the last passed drill ended at {}, more than {} days before {}",
                drill.finished_at,
                settings.drill_interval.as_secs() / 86_400,
                settings.now
            ),
            evidence,
        );
    }
    if facts.record.last_change_at > drill.finished_at {
        return fail(
            format!(
                "the version changed at {} ({}) after the last passed drill",
                facts.record.last_change_at,
                facts.record.last_change.as_str()
            ),
            evidence,
        );
    }
    if let (Some(current), Some(reference)) = (&facts.policy_in_force, &facts.reference)
        && current.hash != reference.policy_hash
        && current.set_at > drill.finished_at
    {
        return fail(
            format!(
                "the policy in force changed at {} after the last passed drill",
                current.set_at
            ),
            evidence,
        );
    }
    Ok(evidence)
}

fn deletion(facts: &Facts, settings: &Settings) -> Vec<Evaluated> {
    vec![
        del_custody(facts),
        del_drill(facts),
        del_approvals(facts),
        del_soft(facts, settings),
        del_hard(facts, settings),
        del_keks(facts),
        del_checkpoint(facts),
        del_certificate(facts),
    ]
}

/// DEL-01.
fn del_custody(facts: &Facts) -> Evaluated {
    let entries = match &facts.custody {
        Ok(entries) => entries,
        Err(why) => return fail(why.clone(), Vec::new()),
    };
    let mut entities = BTreeSet::new();
    let mut evidence = Vec::new();
    for entry in entries
        .iter()
        .filter(|entry| facts.is_external(entry.slot.index))
    {
        if let (Some(receipt), Ok(_)) = (facts.confirmed_receipt(entry), facts.entity_active(entry))
            && entities.insert(entry.custodian.clone())
        {
            evidence.push(receipt_evidence(receipt));
        }
    }
    let t = usize::from(facts.threshold_t());
    if entities.len() >= t {
        Ok(evidence)
    } else {
        fail(
            format!(
                "{} external shares are confirmed at distinct registered entities, the threshold is {t}",
                entities.len()
            ),
            evidence,
        )
    }
}

/// DEL-02.
fn del_drill(facts: &Facts) -> Evaluated {
    match facts.drills.iter().rev().find(|drill| {
        drill.outcome == DrillOutcome::Passed
            && drill
                .shares_used
                .iter()
                .all(|index| facts.is_external(*index))
    }) {
        Some(drill) => Ok(vec![Facts::drill_evidence(drill)]),
        None => fail("no passed external-only drill of this version", Vec::new()),
    }
}

/// DEL-03.
fn del_approvals(facts: &Facts) -> Evaluated {
    let mut evidence = Vec::new();
    for (hash, request, approvals) in &facts.delete_approvals {
        let roles: BTreeSet<StoredRole> = approvals.iter().map(|approval| approval.role).collect();
        let mut found = vec![Evidence::new(
            EvidenceKind::ApprovalRequest,
            hash.to_string(),
            format!(
                "delete requested by {} at {}, consumed {}",
                request.requester,
                request.created_at,
                request
                    .consumed_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_string())
            ),
        )];
        found.extend(approval_evidence(approvals));
        if request.consumed_at.is_some()
            && roles.contains(&StoredRole::BusinessOwner)
            && roles.contains(&StoredRole::Security)
            && request.subject.as_ref() == Some(&facts.version)
        {
            return Ok(found);
        }
        evidence.extend(found);
    }
    fail(
        "no consumed delete request of this version with business-owner and security approvals",
        evidence,
    )
}

fn server_indices(facts: &Facts) -> Vec<ShareIndex> {
    facts.slots.iter().map(|slot| slot.slot.index).collect()
}

fn slot_name(facts: &Facts, index: ShareIndex) -> String {
    let slot: ShareSlot = facts.version.slot(index);
    slot.to_string()
}

/// DEL-04.
fn del_soft(facts: &Facts, settings: &Settings) -> Evaluated {
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for index in server_indices(facts) {
        let soft = match facts.slot_states.get(&index) {
            Some(SlotState::SoftDeleted {
                at, cooldown_until, ..
            }) => Some((*at, Some(*cooldown_until))),
            Some(SlotState::HardDeleted {
                soft_deleted_at, ..
            }) => Some((*soft_deleted_at, None)),
            _ => None,
        };
        let Some((at, cooldown_until)) = soft else {
            problems.push(format!("share {index} was never soft-deleted"));
            continue;
        };
        if let Some(until) = cooldown_until
            && at
                .checked_add(settings.cooldown)
                .is_none_or(|end| until < end)
        {
            problems.push(format!(
                "share {index}'s cooldown ends at {until}, short of the configured cooldown"
            ));
        }
        evidence.push(Evidence::new(
            EvidenceKind::SlotDeletion,
            slot_name(facts, index),
            format!("soft-deleted at {at}"),
        ));
        match facts
            .records(EventType::SoftDelete)
            .find(|(_, record)| record.share_index == Some(index))
        {
            Some((sequence, record)) => evidence.push(Evidence::audit(*sequence, record)),
            None => problems.push(format!("no soft-delete audit record for share {index}")),
        }
    }
    if server_indices(facts).is_empty() {
        return fail("the version has no server share to delete", evidence);
    }
    if problems.is_empty() {
        Ok(evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// DEL-05.
fn del_hard(facts: &Facts, settings: &Settings) -> Evaluated {
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for index in server_indices(facts) {
        match facts.slot_states.get(&index) {
            Some(SlotState::HardDeleted {
                soft_deleted_at,
                at,
                ..
            }) => {
                if soft_deleted_at
                    .checked_add(settings.cooldown)
                    .is_none_or(|end| *at < end)
                {
                    problems.push(format!(
                        "share {index} was hard-deleted at {at}, before the cooldown from {soft_deleted_at} ended"
                    ));
                }
                evidence.push(Evidence::new(
                    EvidenceKind::SlotDeletion,
                    slot_name(facts, index),
                    format!("hard-deleted at {at}, soft-deleted at {soft_deleted_at}"),
                ));
            }
            Some(SlotState::SoftDeleted { cooldown_until, .. }) => problems.push(format!(
                "share {index} is soft-deleted and not yet hard-deleted (cooldown until {cooldown_until}): a rollback is still possible"
            )),
            _ => problems.push(format!("share {index} is not hard-deleted")),
        }
    }
    if server_indices(facts).is_empty() {
        return fail("the version has no server share to delete", evidence);
    }
    if problems.is_empty() {
        Ok(evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// DEL-06.
fn del_keks(facts: &Facts) -> Evaluated {
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for index in server_indices(facts) {
        match facts.keks.get(&index) {
            Some(kek) => match kek.destroyed_at {
                Some(at) => evidence.push(Evidence::new(
                    EvidenceKind::SlotKek,
                    kek.kek_id.as_str(),
                    format!("share {index}'s KEK destroyed at {at}"),
                )),
                None => problems.push(format!(
                    "share {index}'s KEK {} is not destroyed",
                    kek.kek_id
                )),
            },
            None => problems.push(format!("share {index} has no KEK record")),
        }
        match facts.slot_states.get(&index) {
            Some(SlotState::HardDeleted {
                evidence: stored, ..
            }) if !stored.is_empty() => {}
            _ => problems.push(format!(
                "no hard-delete evidence is stored for share {index}"
            )),
        }
    }
    if server_indices(facts).is_empty() {
        return fail("the version has no server share to delete", evidence);
    }
    if problems.is_empty() {
        Ok(evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// DEL-07.
fn del_checkpoint(facts: &Facts) -> Evaluated {
    let last = facts
        .audit
        .iter()
        // The records that changed the slots. The certificate's own
        // `zero-retention` record comes after the checkpoint it names, and
        // a refused attempt changed nothing.
        .filter(|(_, record)| {
            matches!(
                record.event,
                EventType::SoftDelete | EventType::HardDelete | EventType::Rollback
            ) && succeeded(record)
        })
        .map(|(sequence, _)| *sequence)
        .max();
    let Some(last) = last else {
        return fail("no deletion audit record of this version", Vec::new());
    };
    match facts.checkpoint {
        Some(checkpoint) if checkpoint >= last => Ok(vec![Evidence::new(
            EvidenceKind::Checkpoint,
            checkpoint.to_string(),
            format!("covers the deletion records up to {last}"),
        )]),
        Some(checkpoint) => fail(
            format!(
                "the latest checkpoint ({checkpoint}) is before the last deletion record ({last})"
            ),
            Vec::new(),
        ),
        None => fail("no audit checkpoint is stored", Vec::new()),
    }
}

/// DEL-08. The zero-retention certificate and the compliance sign-off are
/// recorded by the deletion operation as a `zero-retention` audit record
/// of the version; this item reads that record only.
fn del_certificate(facts: &Facts) -> Evaluated {
    // The certificate itself goes to the compliance archive, not to this
    // database; its issue is audited only after the compliance person's
    // sign-off verified against their registered key, and the record names
    // the certificate's hash and signer: that record is the evidence.
    match facts.records(EventType::ZeroRetention).last() {
        Some((sequence, record)) => Ok(vec![Evidence::audit(*sequence, record)]),
        None => fail("no zero-retention certificate recorded", Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn the_item_tables_match_their_ids() {
        for (kind, prefix) in [
            (ChecklistKind::Generation, "GEN-0"),
            (ChecklistKind::Drill, "DRL-0"),
            (ChecklistKind::Deletion, "DEL-0"),
        ] {
            for (i, (id, _)) in kind.items().iter().enumerate() {
                assert_eq!(*id, format!("{prefix}{}", i + 1));
            }
        }
    }

    #[test]
    fn drill_sessions_and_request_hashes_parse() {
        let report = b"shardkeep-drill-report-v1\nsession 000102030405060708090a0b0c0d0e0f\n";
        assert_eq!(
            drill_session(report),
            Some(RecoverySessionId([
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
            ]))
        );
        assert_eq!(drill_session(b"session zz"), None);
        let detail = format!(
            "delete approval requested: request {}, ticket X",
            "ab".repeat(32)
        );
        assert_eq!(
            requested_hash(&detail),
            Some(ApprovalRequestHash([0xab; 32]))
        );
        assert_eq!(requested_hash("request abc"), None);
    }
}

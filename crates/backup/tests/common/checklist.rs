//! Checklist cases, generic over the storage backend: a complete key
//! version (generated, delivered, every receipt confirmed, drilled from
//! external shares) passes every generation and drill item; removing one
//! piece of stored evidence, directly in the database, fails the item that
//! needs it and no other (or the documented few that share it), and the
//! failing item says what is missing.

use std::time::Duration;

use shardkeep_audit::{AuditRecord, EventType};
use shardkeep_backup::{
    ApprovalRequestHash, ChecklistKind, ChecklistQuery, ChecklistReport, ItemOutcome,
    PolicySettings, RecoveryOutcome, Role,
};
use shardkeep_storage::{AuditStore, DrillStore, KeyVersionStore, Storage, Transaction};
use shardkeep_types::{
    ActorId, CustodianId, KeyId, KeyVersion, Label, NodeId, NodeVersion, Threshold,
};

use super::approvals::Fixture;
use super::recovery::{Recovery, codec};
use super::{Harness, Protocol, TestCustodian, actor, text};

/// The display name of custodian `cust-0`: markup a report must show as
/// text, never run.
pub const HOSTILE_NAME: &str = "<script>alert('x')</script> & \"Co\" <img src=x onerror=alert(1)>";

/// The compliance reviewer who computes the checklists.
pub fn reviewer() -> ActorId {
    actor("comp-1")
}

/// A complete 3-of-5 hybrid version of node 0 of `wallet`: generated,
/// every container delivered and its receipt confirmed, drilled from the
/// three external shares on a security approval; and a compliance
/// reviewer.
pub struct Complete<S: Storage> {
    pub r: Recovery<S>,
    /// The drill's approval request.
    pub drill_request: ApprovalRequestHash,
}

impl<S: Storage> Complete<S> {
    pub fn version(&self) -> &NodeVersion {
        &self.r.generated.version
    }
}

/// A custodian whose entity's display name is [`HOSTILE_NAME`].
async fn hostile_custodian<S: Storage>(h: &Harness<S>, name: &str) -> TestCustodian {
    h.custodian_shown_as(name, HOSTILE_NAME, "<b>desk</b>")
        .await
}

pub async fn complete<S: Storage>(f: Fixture<S>, protocol: Protocol) -> Complete<S> {
    let h = &f.h;
    h.service
        .set_policy(
            &h.security,
            PolicySettings {
                threshold: Threshold::new(3, 5).unwrap(),
                server_shares: 2,
                kek_provider: Label::new("local-key-file").unwrap(),
            },
        )
        .await
        .unwrap();
    let custodians = vec![
        hostile_custodian(h, "cust-0").await,
        h.custodian("cust-1").await,
        h.custodian("cust-2").await,
    ];
    let refs: Vec<&TestCustodian> = custodians.iter().collect();
    let generated = h.generate(protocol, "wallet", 0, &refs).await.unwrap();
    std::fs::create_dir_all(h.dir.path().join("keystore")).unwrap();
    h.deliver_and_confirm(&generated, &custodians, custodians.len())
        .await;
    h.service
        .register_person(&h.security, h.person(&reviewer(), &[Role::Compliance]))
        .await
        .unwrap();
    let r = Recovery {
        f,
        custodians,
        generated,
        protocol,
    };
    let drill_request = r.drill_approved(false).await;
    let h = &r.f.h;
    let descriptor = h
        .service
        .start_drill(&h.operator, &drill_request, r.drill_params())
        .await
        .unwrap();
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let report = r.submit(&descriptor, &submissions, &codec()).await.unwrap();
    assert!(
        matches!(report.outcome, RecoveryOutcome::Drilled { .. }),
        "{report:?}"
    );
    h.clock.advance(Duration::from_secs(60));
    Complete { r, drill_request }
}

/// Version 1 of node 0 of `wallet`.
pub fn wallet_version() -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    }
}

/// Computes the `kind` checklist of `version` as the reviewer.
pub async fn checklist<S: Storage>(
    h: &Harness<S>,
    version: &NodeVersion,
    kind: ChecklistKind,
) -> ChecklistReport {
    h.service
        .checklist(
            &reviewer(),
            &ChecklistQuery {
                version: version.clone(),
                kind,
            },
        )
        .await
        .unwrap()
}

/// The items that failed in the generation and drill checklists.
pub async fn failed<S: Storage>(h: &Harness<S>, version: &NodeVersion) -> Vec<&'static str> {
    let mut failed = checklist(h, version, ChecklistKind::Generation)
        .await
        .failed();
    failed.extend(checklist(h, version, ChecklistKind::Drill).await.failed());
    failed
}

/// What `id` says is missing.
pub fn missing<'a>(report: &'a ChecklistReport, id: &str) -> &'a str {
    match &report.item(id).unwrap().outcome {
        ItemOutcome::Fail { missing } => missing,
        ItemOutcome::Pass => panic!("{id} passed: {report:?}"),
    }
}

/// The complete version passes every generation and drill item, each with
/// its evidence; the JSON and HTML forms say so; the deletion checklist of
/// a version never deleted passes what precedes a deletion and names what
/// is missing for the rest.
pub async fn a_complete_version_passes<S: Storage>(c: &Complete<S>) {
    let h = &c.r.f.h;
    for kind in [ChecklistKind::Generation, ChecklistKind::Drill] {
        let report = checklist(h, c.version(), kind).await;
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.items.len(), 8);
        for item in &report.items {
            assert!(!item.evidence.is_empty(), "{} has no evidence", item.id);
        }
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["format"], "shardkeep-checklist-v1");
        assert_eq!(json["checklist"], kind.name());
        assert_eq!(json["key_id"], "wallet");
        assert_eq!(json["version"], 1);
        assert_eq!(json["passed"], true);
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), 8);
        for (item, (id, _)) in items.iter().zip(kind.items()) {
            assert_eq!(item["id"], *id);
            assert_eq!(item["outcome"], "pass");
            assert!(item["missing"].is_null());
        }
    }
    // GEN-07 names one generate audit record per share, GEN-08 one receipt
    // per external share, DRL-07 the drill's audit record.
    let generation = checklist(h, c.version(), ChecklistKind::Generation).await;
    let records = h.audit_records().await;
    let gen07 = &generation.item("GEN-07").unwrap().evidence;
    assert_eq!(gen07.len(), 5);
    for evidence in gen07 {
        let sequence: usize = evidence.id.parse().unwrap();
        assert_eq!(records[sequence - 1].event, EventType::Generate);
    }
    assert_eq!(generation.item("GEN-08").unwrap().evidence.len(), 3);
    let gen04 = &generation.item("GEN-04").unwrap().evidence;
    assert!(gen04.iter().any(|e| e.detail.contains(HOSTILE_NAME)));
    let drill = checklist(h, c.version(), ChecklistKind::Drill).await;
    let drl07 = &drill.item("DRL-07").unwrap().evidence;
    let sequence: usize = drl07[1].id.parse().unwrap();
    assert_eq!(records[sequence - 1].event, EventType::Drill);
    assert_eq!(
        drill.item("DRL-01").unwrap().evidence[0].id,
        c.drill_request.to_string()
    );

    let deletion = checklist(h, c.version(), ChecklistKind::Deletion).await;
    assert_eq!(
        deletion.failed(),
        ["DEL-03", "DEL-04", "DEL-05", "DEL-06", "DEL-07", "DEL-08"]
    );
    assert!(missing(&deletion, "DEL-03").contains("no consumed delete request"));
    assert!(missing(&deletion, "DEL-04").contains("share 1 was never soft-deleted"));
    assert!(missing(&deletion, "DEL-05").contains("share 2 is not hard-deleted"));
    assert!(missing(&deletion, "DEL-06").contains("is not destroyed"));
    assert!(missing(&deletion, "DEL-07").contains("no deletion audit record"));
    assert_eq!(
        missing(&deletion, "DEL-08"),
        "no zero-retention certificate recorded"
    );
}

/// Direct access to the database a test removes evidence from, past the
/// append-only guards (which exist to stop exactly this).
#[allow(async_fn_in_trait)]
pub trait Tamper {
    /// Runs `sql` with the guards of `table` off.
    async fn run(&self, table: &str, sql: &str);
    /// `bytes` as a literal of the backend's SQL.
    fn blob(&self, bytes: &[u8]) -> String;
}

/// The version's rows.
pub const WHERE_VERSION: &str = "key_id = 'wallet' AND node_id = 'node-0' AND version = 1";

/// One removal of evidence: what it does, and the items it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// One byte of the stored commitments.
    Commitments,
    /// The policy the split names.
    Policy,
    /// The split's server-share count (a signed column: GEN-01 fails too).
    ServerShareCount,
    /// Custodian `cust-1` revoked.
    CustodianRevoked,
    /// The group key's registration.
    Group,
    /// Share 1's KEK pin.
    KekPin,
    /// Share 3's generate audit record.
    GenerateRecord,
    /// Share 4's confirmed receipt.
    Receipt,
    /// The drill request's approvals.
    DrillApprovals,
    /// The drill's shares used, now naming server share 1.
    DrillShares,
    /// The report's combine-and-regenerate line.
    CombineStep,
    /// The report's write, load and self-test line.
    KeystoreStep,
    /// The report's passed result line.
    ResultLine,
    /// The report's sandbox deletion line.
    SandboxLine,
    /// The drill's audit record.
    DrillRecord,
    /// 91 days pass.
    DrillAge,
}

impl Removal {
    pub const ALL: [Self; 16] = [
        Self::Commitments,
        Self::Policy,
        Self::ServerShareCount,
        Self::CustodianRevoked,
        Self::Group,
        Self::KekPin,
        Self::GenerateRecord,
        Self::Receipt,
        Self::DrillApprovals,
        Self::DrillShares,
        Self::CombineStep,
        Self::KeystoreStep,
        Self::ResultLine,
        Self::SandboxLine,
        Self::DrillRecord,
        Self::DrillAge,
    ];

    /// The items that fail, and what the first says is missing.
    pub fn expected(self) -> (&'static [&'static str], &'static str) {
        match self {
            Self::Commitments => (&["GEN-01"], "the split reference does not verify"),
            Self::Policy => (&["GEN-02"], "the split names is not stored"),
            // The server-share count is a signed column of the split
            // reference: GEN-01 checks the signature, GEN-03 the rule.
            Self::ServerShareCount => (&["GEN-01", "GEN-03"], "server shares"),
            Self::CustodianRevoked => (&["GEN-04"], "custodian cust-1 is revoked"),
            Self::Group => (&["GEN-05"], "is not registered"),
            Self::KekPin => (&["GEN-06"], "share 1 has no pinned slot KEK"),
            Self::GenerateRecord => (&["GEN-07"], "no generate audit record for share 3"),
            Self::Receipt => (&["GEN-08"], "no confirmed receipt for share 4"),
            Self::DrillApprovals => (&["DRL-01"], "no security approval"),
            Self::DrillShares => (&["DRL-02"], "server share 1 was used"),
            Self::CombineStep => (&["DRL-03"], "no combine-and-regenerate step"),
            Self::KeystoreStep => (&["DRL-04"], "write, load and self-test"),
            Self::ResultLine => (&["DRL-05"], "passed self-test"),
            Self::SandboxLine => (&["DRL-06"], "sandbox was deleted"),
            Self::DrillRecord => (&["DRL-07"], "no successful drill audit record"),
            Self::DrillAge => (&["DRL-08"], "more than 90 days"),
        }
    }

    /// Removes the evidence from the version's database.
    pub async fn apply<S: Storage>(self, h: &Harness<S>, db: &impl Tamper) {
        let version = wallet_version();
        match self {
            Self::Commitments => {
                let mut tx = h.service.storage().begin_read_only().await.unwrap();
                let mut commitments = tx.split_reference(&version).await.unwrap().commitments;
                tx.rollback().await.unwrap();
                let at = commitments.len() / 2;
                commitments[at] ^= 0x01;
                db.run(
                    "split_references",
                    &format!(
                        "UPDATE split_references SET commitments = {} WHERE {WHERE_VERSION}",
                        db.blob(&commitments)
                    ),
                )
                .await;
            }
            Self::Policy => db.run("policies", "DELETE FROM policies").await,
            Self::ServerShareCount => {
                db.run(
                    "split_references",
                    &format!("UPDATE split_references SET server_shares = 3 WHERE {WHERE_VERSION}"),
                )
                .await;
            }
            Self::CustodianRevoked => h
                .service
                .revoke_entity(&h.security, &CustodianId::new("cust-1").unwrap())
                .await
                .unwrap(),
            Self::Group => {
                db.run("groups", "DELETE FROM groups WHERE key_id = 'wallet'")
                    .await;
            }
            Self::KekPin => {
                db.run(
                    "slot_keks",
                    &format!("DELETE FROM slot_keks WHERE {WHERE_VERSION} AND share_index = 1"),
                )
                .await;
            }
            Self::GenerateRecord => {
                let sequence = audit_sequence(h, |record| {
                    record.event == EventType::Generate
                        && record.share_index.map(shardkeep_types::ShareIndex::get) == Some(3)
                })
                .await;
                db.run(
                    "audit_log",
                    &format!("DELETE FROM audit_log WHERE sequence = {sequence}"),
                )
                .await;
            }
            Self::Receipt => {
                db.run(
                    "deliveries",
                    &format!(
                        "DELETE FROM deliveries WHERE {WHERE_VERSION} AND share_index = 4 \
                         AND outcome = 'delivered'"
                    ),
                )
                .await;
            }
            Self::DrillApprovals => {
                let mut tx = h.service.storage().begin_read_only().await.unwrap();
                let reports = tx.drill_reports(&version).await.unwrap();
                tx.rollback().await.unwrap();
                let session = String::from_utf8(reports[0].report.clone()).unwrap();
                let session = session
                    .lines()
                    .find_map(|line| line.strip_prefix("session "))
                    .unwrap()
                    .to_owned();
                let mut tx = h.service.storage().begin_read_only().await.unwrap();
                let id = shardkeep_storage::RecoverySessionId(
                    hex::decode(session).unwrap().try_into().unwrap(),
                );
                let stored =
                    shardkeep_storage::RecoverySessionStore::recovery_session(&mut tx, &id)
                        .await
                        .unwrap();
                tx.rollback().await.unwrap();
                db.run(
                    "approvals",
                    &format!(
                        "DELETE FROM approvals WHERE request_hash = {}",
                        db.blob(&stored.request_hash.0)
                    ),
                )
                .await;
            }
            Self::DrillShares => {
                db.run(
                    "drill_reports",
                    &format!(
                        "UPDATE drill_reports SET shares_used = {} WHERE {WHERE_VERSION}",
                        db.blob(&[1, 4, 5])
                    ),
                )
                .await;
            }
            Self::CombineStep => edit_report(h, db, &version, "step combine and regenerate").await,
            Self::KeystoreStep => {
                edit_report(h, db, &version, "step write, load and self-test").await;
            }
            Self::ResultLine => edit_report(h, db, &version, "result passed").await,
            Self::SandboxLine => edit_report(h, db, &version, "sandbox deleted").await,
            Self::DrillRecord => {
                // The drill's report record (its start has one too).
                let sequence = audit_sequence(h, |record| {
                    record.event == EventType::Drill
                        && record
                            .detail
                            .as_ref()
                            .is_some_and(|detail| detail.as_str().contains(": shares "))
                })
                .await;
                db.run(
                    "audit_log",
                    &format!("DELETE FROM audit_log WHERE sequence = {sequence}"),
                )
                .await;
            }
            Self::DrillAge => h.clock.advance(Duration::from_secs(91 * 86_400)),
        }
    }
}

/// The sequence of the one audit record `matches` selects.
async fn audit_sequence<S: Storage>(h: &Harness<S>, matches: impl Fn(&AuditRecord) -> bool) -> u64 {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let rows = tx.read_audit(1, 10_000).await.unwrap();
    tx.rollback().await.unwrap();
    let found: Vec<u64> = rows
        .iter()
        .filter(|row| matches(&AuditRecord::decode(&row.record).unwrap()))
        .map(|row| row.sequence)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{found:?}: {:?}",
        found
            .iter()
            .map(|s| AuditRecord::decode(&rows[usize::try_from(*s).unwrap() - 1].record).unwrap())
            .collect::<Vec<_>>()
    );
    found[0]
}

/// Drops the lines of the stored drill report that start with `prefix`.
async fn edit_report<S: Storage>(
    h: &Harness<S>,
    db: &impl Tamper,
    version: &NodeVersion,
    prefix: &str,
) {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let reports = tx.drill_reports(version).await.unwrap();
    tx.rollback().await.unwrap();
    let text = String::from_utf8(reports[0].report.clone()).unwrap();
    assert!(text.lines().any(|line| line.starts_with(prefix)), "{text}");
    let edited: String = text
        .lines()
        .filter(|line| !line.starts_with(prefix))
        .map(|line| format!("{line}\n"))
        .collect();
    db.run(
        "drill_reports",
        &format!(
            "UPDATE drill_reports SET report = {} WHERE {WHERE_VERSION}",
            db.blob(edited.as_bytes())
        ),
    )
    .await;
}

/// Applies `removal` to a complete version and checks the items that fail
/// and what the first says.
pub async fn removal_fails_its_item<S: Storage>(
    h: &Harness<S>,
    db: &impl Tamper,
    removal: Removal,
) {
    let version = wallet_version();
    assert!(
        failed(h, &version).await.is_empty(),
        "{removal:?}: not complete"
    );
    removal.apply(h, db).await;
    let (expected, says) = removal.expected();
    assert_eq!(failed(h, &version).await, expected, "{removal:?}");
    let kind = if expected[0].starts_with("GEN") {
        ChecklistKind::Generation
    } else {
        ChecklistKind::Drill
    };
    let report = checklist(h, &version, kind).await;
    for id in expected {
        let what = missing(&report, id);
        assert!(!what.is_empty());
    }
    let what = missing(&report, expected.last().unwrap());
    assert!(what.contains(says), "{removal:?}: {what}");
}

/// The deletion of the complete version's server shares as stored state,
/// written through storage the way the deletion operation does (it is not
/// part of this crate yet): a delete request approved by a business owner
/// and security and consumed, both server slots soft-deleted and, after
/// the cooldown, hard-deleted with their KEKs destroyed, each step
/// audited; a zero-retention record; a witnessed checkpoint. Every
/// deletion item then passes; before each step, the items that need it
/// fail.
pub async fn a_deleted_version_passes_the_deletion_checklist<S: Storage>(c: &Complete<S>) {
    use shardkeep_audit::{AuditRecord, FileWitness, append, checkpoint};
    use shardkeep_backup::{ApprovalOperation, ApprovalParams, ApprovalSubject};
    use shardkeep_storage::{ApprovalStore, SlotDeletionStore, SlotKekStore};
    use shardkeep_types::{FreeText, ShareIndex};

    let h = &c.r.f.h;
    let version = c.version().clone();
    let deletion = async || checklist(h, &version, ChecklistKind::Deletion).await;
    let server: Vec<ShareIndex> = [1, 2].map(|i| ShareIndex::new(i).unwrap()).into();
    let record = |event: EventType, index: Option<ShareIndex>, detail: &str| {
        let mut record = AuditRecord::new(event, h.clock_now(), h.operator.clone());
        record.key_id = Some(version.key_id.clone());
        record.node_id = Some(version.node_id.clone());
        record.version = Some(version.version);
        record.share_index = index;
        record.detail = Some(FreeText::new(detail).unwrap());
        record
    };

    // The approvals.
    let request = h
        .service
        .request_approval(
            &h.operator,
            ApprovalParams {
                operation: ApprovalOperation::Delete,
                subject: Some(ApprovalSubject {
                    version: version.clone(),
                    split_id: c.r.generated.split_id,
                }),
                target: None,
                allow_server_shares: false,
                slots: server.clone(),
                change_hash: None,
                ticket: text("DEL-2026-1"),
                risk_note_hash: [0x44; 32],
            },
        )
        .await
        .unwrap();
    let bytes = request.encode().unwrap();
    let hash = request.hash().unwrap();
    c.r.f
        .approve(&bytes, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    assert!(missing(&deletion().await, "DEL-03").contains("no consumed delete request"));
    c.r.f
        .approve(&bytes, "sec-2", Role::Security)
        .await
        .unwrap();
    assert!(missing(&deletion().await, "DEL-03").contains("no consumed delete request"));
    // The soft delete consumes them.
    let now = h.clock_now();
    let cooldown_until = now.checked_add(Duration::from_secs(7 * 86_400)).unwrap();
    let mut tx = h.service.storage().begin().await.unwrap();
    tx.consume_approval_request(&hash, now, &h.operator)
        .await
        .unwrap();
    for index in &server {
        tx.soft_delete_slot(&version.slot(*index), &h.operator, now, cooldown_until)
            .await
            .unwrap();
        append(
            &mut tx,
            &record(EventType::SoftDelete, Some(*index), "soft delete"),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let report = deletion().await;
    assert_eq!(
        report.failed(),
        ["DEL-05", "DEL-06", "DEL-07", "DEL-08"],
        "{report:#?}"
    );
    assert!(missing(&report, "DEL-05").contains("a rollback is still possible"));

    // The hard delete, after the cooldown, destroys the KEKs.
    h.clock.advance(Duration::from_secs(7 * 86_400));
    let now = h.clock_now();
    let mut tx = h.service.storage().begin().await.unwrap();
    for index in &server {
        let slot = version.slot(*index);
        tx.hard_delete_slot(&slot, now, b"kek destroyed; search: not found")
            .await
            .unwrap();
        tx.mark_slot_kek_destroyed(&slot, now).await.unwrap();
        append(
            &mut tx,
            &record(EventType::HardDelete, Some(*index), "hard delete"),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let report = deletion().await;
    assert_eq!(report.failed(), ["DEL-07", "DEL-08"], "{report:#?}");
    assert_eq!(missing(&report, "DEL-07"), "no audit checkpoint is stored");

    let mut witness = FileWitness::open(h.dir.path().join("witness.log")).unwrap();
    checkpoint(
        h.service.storage(),
        h.signer.as_ref(),
        &mut witness,
        h.clock_now(),
    )
    .await
    .unwrap();
    assert_eq!(deletion().await.failed(), ["DEL-08"]);

    let mut tx = h.service.storage().begin().await.unwrap();
    append(
        &mut tx,
        &record(EventType::ZeroRetention, None, "zero-retention certificate"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // The certificate's record follows the checkpoint the certificate
    // names: the checkpoint still covers every record that changed a slot.
    assert!(deletion().await.passed());
    // A later change to a slot is not covered until the next checkpoint.
    let mut tx = h.service.storage().begin().await.unwrap();
    append(
        &mut tx,
        &record(
            EventType::HardDelete,
            Some(ShareIndex::new(1).unwrap()),
            "hard delete",
        ),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let report = deletion().await;
    assert_eq!(report.failed(), ["DEL-07"]);
    assert!(missing(&report, "DEL-07").contains("before the last deletion record"));
    checkpoint(
        h.service.storage(),
        h.signer.as_ref(),
        &mut witness,
        h.clock_now(),
    )
    .await
    .unwrap();
    let report = deletion().await;
    assert!(report.passed(), "{report:#?}");
    // A deleted version's generation facts stay: the KEK pins, the records.
    let generation = checklist(h, &version, ChecklistKind::Generation).await;
    assert_eq!(generation.failed(), Vec::<&str>::new(), "{generation:#?}");
}

/// A drill under a pre-approved schedule passes `DRL-01` on the
/// schedule's request, which is never consumed.
pub async fn a_scheduled_drill_passes_its_approval_item<S: Storage>(c: &Complete<S>) {
    use shardkeep_backup::DrillSchedule;

    let r = &c.r;
    let h = &r.f.h;
    let day = Duration::from_secs(24 * 60 * 60);
    let schedule = DrillSchedule {
        not_before: h.clock_now(),
        not_after: h.clock_now().checked_add(day * 100).unwrap(),
        cadence: day * 30,
    };
    let params = r
        .drill_params()
        .schedule_approval_params(r.generated.split_id, &schedule)
        .unwrap();
    let request = h
        .service
        .request_approval(&h.operator, params)
        .await
        .unwrap();
    r.f.approve(&request.encode().unwrap(), "sec-2", Role::Security)
        .await
        .unwrap();
    let hash = request.hash().unwrap();
    let descriptor = h
        .service
        .start_scheduled_drill(&h.operator, &hash, &schedule, r.drill_params())
        .await
        .unwrap();
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    r.submit(&descriptor, &submissions, &codec()).await.unwrap();
    let report = checklist(h, c.version(), ChecklistKind::Drill).await;
    assert!(report.passed(), "{report:#?}");
    let approval = &report.item("DRL-01").unwrap().evidence[0];
    assert_eq!(approval.id, hash.to_string());
    assert!(
        approval.detail.contains("pre-approved schedule"),
        "{approval:?}"
    );
    assert!(approval.detail.ends_with("consumed never"), "{approval:?}");
}

/// Only compliance, security and auditor persons compute checklists; a
/// refusal is audited; an unknown version is an error.
pub async fn checklists_are_authorized<S: Storage>(c: &Complete<S>) {
    use shardkeep_backup::Error;

    let h = &c.r.f.h;
    let query = ChecklistQuery {
        version: c.version().clone(),
        kind: ChecklistKind::Generation,
    };
    assert!(matches!(
        h.service.checklist(&h.operator, &query).await,
        Err(Error::MissingRole { .. })
    ));
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::AccessDenied);
    assert!(matches!(
        h.service.checklist(&actor("nobody"), &query).await,
        Err(Error::UnknownPerson(_))
    ));
    // Security may; the call is audited as an inspection of the version.
    h.service.checklist(&h.security, &query).await.unwrap();
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Inspect);
    assert_eq!(record.version, Some(c.version().version));
    assert_eq!(
        record.detail.unwrap().as_str(),
        "generation checklist: 8 of 8 items pass"
    );
    let mut other = query.clone();
    other.version.version = KeyVersion::new(7);
    assert!(matches!(
        h.service.checklist(&reviewer(), &other).await,
        Err(Error::Storage(
            shardkeep_storage::Error::KeyVersionNotFound(_)
        ))
    ));
}

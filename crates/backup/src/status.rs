//! Status and listing: what the gRPC `GetBackupStatus` and
//! `ListBackupShares` return.
//!
//! Status is per key version (key, node, version) and paginated with an
//! opaque page token that encodes the keyset position: one storage query
//! per page, never one per node. Every call is authorised at use time,
//! counted against the caller's inspect rate limit and audited (`inspect`).
//!
//! How each field is computed:
//!
//! - **recoverable**: the version is not retired and at least `t` of its
//!   external shares have a confirmed delivery receipt (the custodians alone
//!   can rebuild the node; server shares carry no receipt and do not count).
//! - **next drill due**: a version that never passed a drill is due at
//!   once; so is one changed since its last passed drill (custodian change,
//!   KEK migration: the version's last change) or made under a policy other
//!   than the one in force, since that policy was set; otherwise the last
//!   passed drill plus the drill interval (90 days). Only active versions
//!   fall due.
//! - **needs regeneration**: the version was made under a policy other than
//!   the one in force (or before split references were stored).
//! - **outstanding deliveries**: external shares without a confirmed
//!   receipt.
//! - **exposure**: whether the node counts in an exposure of its group key
//!   (the server's shares plus one custodian's reach `t` on more nodes than
//!   the group's tss-lib threshold), computed per group key on the page.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use shardkeep_audit::{EventType, Outcome};
use shardkeep_sss_core::CurveId;
use shardkeep_storage::{
    AccessControlStore, DrillSummary, ExposureRow, GroupStore, KeyVersionState, PersonRecord,
    RegistryStore, SealedShareStore, SlotFilter, SlotState, StatusFilter, StatusStore,
    StatusSummary, Storage, Transaction, VersionStatusRow,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, KekId, KeyId, KeyVersion, NodeId, NodeVersion,
    ShareSlot, Threshold, Timestamp,
};
use shardkeep_wire::Reader;

use crate::access::{RateCheck, RateKind};
use crate::error::Error;
use crate::policy::{NodeCustody, exposures};
use crate::registry::Role;
use crate::service::BackupService;

/// Most rows one status or listing page returns; a larger page size asks
/// for this many.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The page size when the caller names none (0).
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Domain tag of the query fingerprint in a page token.
pub const PAGE_TOKEN_TAG: &[u8] = b"shardkeep/page-token/v1";

/// The page token format version.
const PAGE_TOKEN_VERSION: u8 = 1;
/// Query kinds a page token belongs to.
const STATUS_QUERY: u8 = 1;
const LISTING_QUERY: u8 = 2;
/// Bytes of the query fingerprint in a token: enough to tell queries apart
/// (tokens are not secrets and carry no authority).
const FINGERPRINT_LEN: usize = 8;
/// Longest page token, in characters (hex of version, kind, fingerprint
/// and the longest position, a share slot).
const MAX_PAGE_TOKEN_LEN: usize = 2 * (1 + 1 + FINGERPRINT_LEN + 1 + 64 + 1 + 64 + 4 + 1);

/// The roles that may read status and listings.
const INSPECT_ROLES: [Role; 4] = [
    Role::Operator,
    Role::Security,
    Role::Compliance,
    Role::Auditor,
];

/// Which key versions a status call covers, and which page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusQuery {
    /// Only this group key.
    pub key_id: Option<KeyId>,
    /// Only nodes with this id.
    pub node_id: Option<NodeId>,
    /// Retired versions too.
    pub include_retired: bool,
    /// Rows per page: 0 means [`DEFAULT_PAGE_SIZE`], more than
    /// [`MAX_PAGE_SIZE`] means [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// The previous page's `next_page_token`; `None` for the first page.
    pub page_token: Option<String>,
}

impl StatusQuery {
    fn filter(&self) -> StatusFilter {
        StatusFilter {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            include_retired: self.include_retired,
        }
    }

    /// The query's fingerprint: a token only continues the query it came
    /// from.
    fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut encoded = Vec::new();
        put_opt_name(&mut encoded, self.key_id.as_ref().map(KeyId::as_str));
        put_opt_name(&mut encoded, self.node_id.as_ref().map(NodeId::as_str));
        encoded.push(u8::from(self.include_retired));
        fingerprint(STATUS_QUERY, &encoded)
    }
}

/// Which server-held shares a listing covers, and which page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareListQuery {
    /// Only this group key.
    pub key_id: Option<KeyId>,
    /// Only this node.
    pub node_id: Option<NodeId>,
    /// Only this version (with a key and a node).
    pub version: Option<KeyVersion>,
    /// Rows per page, as [`StatusQuery::page_size`].
    pub page_size: u32,
    /// The previous page's `next_page_token`; `None` for the first page.
    pub page_token: Option<String>,
}

impl ShareListQuery {
    fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut encoded = Vec::new();
        put_opt_name(&mut encoded, self.key_id.as_ref().map(KeyId::as_str));
        put_opt_name(&mut encoded, self.node_id.as_ref().map(NodeId::as_str));
        match self.version {
            None => encoded.push(0),
            Some(version) => {
                encoded.push(1);
                encoded.extend_from_slice(&version.get().to_be_bytes());
            }
        }
        fingerprint(LISTING_QUERY, &encoded)
    }
}

/// `0` for none, `1 || u8 len || name` for a name: injective.
fn put_opt_name(out: &mut Vec<u8>, name: Option<&str>) {
    match name {
        None => out.push(0),
        Some(name) => {
            out.push(1);
            // Names are 1-64 bytes.
            out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(name.as_bytes());
        }
    }
}

fn fingerprint(kind: u8, encoded_query: &[u8]) -> [u8; FINGERPRINT_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(PAGE_TOKEN_TAG);
    hasher.update([kind]);
    hasher.update(encoded_query);
    let digest: [u8; 32] = hasher.finalize().into();
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    out
}

/// The page size a request gets: 0 is the default, anything above the cap
/// is the cap.
#[must_use]
pub fn effective_page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// `hex(version (1) || kind (1) || fingerprint (8) || position)`.
fn encode_token(kind: u8, fingerprint: [u8; FINGERPRINT_LEN], position: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(2 + FINGERPRINT_LEN + position.len());
    bytes.push(PAGE_TOKEN_VERSION);
    bytes.push(kind);
    bytes.extend_from_slice(&fingerprint);
    bytes.extend_from_slice(position);
    hex::encode(bytes)
}

/// Decodes a token of `kind` for the query of `fingerprint`, handing the
/// position to `read`, which must consume all of it.
fn decode_token<T>(
    token: &str,
    kind: u8,
    fingerprint: [u8; FINGERPRINT_LEN],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, shardkeep_types::Error>,
) -> Result<T, Error> {
    let malformed = Error::BadPageToken {
        why: "it does not decode",
    };
    if token.len() > MAX_PAGE_TOKEN_LEN {
        return Err(malformed);
    }
    let bytes = hex::decode(token).map_err(|_| Error::BadPageToken {
        why: "it does not decode",
    })?;
    let mut reader = Reader::new(&bytes);
    let header = (|| -> Result<_, shardkeep_wire::FramingError> {
        Ok((
            reader.u8("version")?,
            reader.u8("kind")?,
            *reader.array::<FINGERPRINT_LEN>("fingerprint")?,
        ))
    })();
    let Ok((version, token_kind, token_fingerprint)) = header else {
        return Err(malformed);
    };
    if version != PAGE_TOKEN_VERSION {
        return Err(Error::BadPageToken {
            why: "unknown token version",
        });
    }
    if token_kind != kind || token_fingerprint != fingerprint {
        return Err(Error::BadPageToken {
            why: "it was issued for another query",
        });
    }
    let position = read(&mut reader).map_err(|_| Error::BadPageToken {
        why: "it does not decode",
    })?;
    reader
        .finish("page token")
        .map_err(|_| Error::BadPageToken {
            why: "it does not decode",
        })?;
    Ok(position)
}

/// When the next drill of a version falls due, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillDue {
    /// When it falls (or fell) due.
    pub due_at: Timestamp,
    /// Why then.
    pub reason: DrillDueReason,
    /// Whether it is due now (`due_at` is not after the time of the call).
    pub overdue: bool,
}

/// Why a drill falls due when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrillDueReason {
    /// The version never passed a drill: due since it was made.
    NeverPassed,
    /// The version changed since its last passed drill (custodian change,
    /// KEK migration): due since the change.
    ChangedSinceDrill,
    /// The policy in force changed since the last passed drill: due since
    /// it was set.
    PolicyChanged,
    /// The quarterly interval since the last passed drill.
    Interval,
}

/// Whether a version's node counts in an exposure of its group key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExposureState {
    /// Not an active version: the rule applies to active versions only.
    NotApplicable,
    /// The group key is not registered, so its tss-lib threshold is
    /// unknown.
    UnknownGroup,
    /// The rule holds for this node.
    Clear,
    /// With the server's shares, these custodians could rebuild this node
    /// and more nodes of the group key than its tss-lib threshold allows.
    Exposed {
        /// The custodian entities, sorted.
        custodians: Vec<CustodianId>,
    },
}

/// The status of one key version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionStatus {
    /// Which key, node and version.
    pub version: NodeVersion,
    /// Its `t` and `n`.
    pub threshold: Threshold,
    /// Its curve; `None` for a version made before split references were
    /// stored.
    pub curve: Option<CurveId>,
    /// Where it is in its life.
    pub state: KeyVersionState,
    /// When it was made.
    pub created_at: Timestamp,
    /// Server share slots the policy gave it (indices `1..=`).
    pub server_shares: u8,
    /// Server shares held and readable.
    pub server_shares_held: u8,
    /// Server shares soft-deleted (in their cooldown).
    pub server_shares_soft_deleted: u8,
    /// Server shares hard-deleted (crypto-shredded).
    pub server_shares_hard_deleted: u8,
    /// External share slots (`n` minus the server's).
    pub external_shares: u8,
    /// External slots mapped to a custodian.
    pub external_assigned: u8,
    /// External shares with a confirmed delivery receipt.
    pub external_confirmed: u8,
    /// External shares without a confirmed receipt.
    pub outstanding_deliveries: u8,
    /// Failed delivery attempts.
    pub deliveries_failed: u32,
    /// Whether the custodians alone can rebuild the node (see the module
    /// documentation).
    pub recoverable: bool,
    /// The oldest confirmation (receipt or inventory proof) across the
    /// external shares; `None` while one was never confirmed.
    pub last_inventory_at: Option<Timestamp>,
    /// The latest drill.
    pub last_drill: Option<DrillSummary>,
    /// When the latest passed drill ended.
    pub last_passed_drill_at: Option<Timestamp>,
    /// The next drill; `None` unless the version is active.
    pub next_drill: Option<DrillDue>,
    /// The version's last change that makes a drill due.
    pub last_change_at: Timestamp,
    /// Made under another policy than the one in force.
    pub needs_regeneration: bool,
    /// The exposure rule for this node.
    pub exposure: ExposureState,
    /// After a re-split replaced this version (retiring or retired): its
    /// old containers whose custodians have not yet signed a destruction
    /// statement. Empty for any other version.
    pub outstanding_destructions: Vec<crate::OutstandingDestruction>,
}

/// One page of status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusPage {
    /// The versions, ordered by key, node and version.
    pub versions: Vec<VersionStatus>,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// The time the status was computed at.
    pub as_of: Timestamp,
}

/// Totals for the service's status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusOverview {
    /// The storage totals over the selected versions.
    pub totals: StatusSummary,
    /// The hash of the policy in force, if one is set.
    pub policy_hash: Option<[u8; 32]>,
    /// The time the totals were computed at.
    pub as_of: Timestamp,
}

/// One server-held share, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerShareEntry {
    /// The slot.
    pub slot: ShareSlot,
    /// Its envelope id.
    pub envelope_id: EnvelopeId,
    /// The KEK its data key is wrapped under.
    pub kek_id: KekId,
    /// Its deletion state.
    pub state: SlotState,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// One page of server-held shares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareListPage {
    /// The shares, ordered by key, node, version and index.
    pub shares: Vec<ServerShareEntry>,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// The time of the listing.
    pub as_of: Timestamp,
}

/// What status needs to know besides the row: the time, the policy in
/// force and the drill interval.
pub(crate) struct StatusContext {
    pub(crate) now: Timestamp,
    pub(crate) drill_interval: std::time::Duration,
    /// The policy in force: its hash and when it was set.
    pub(crate) policy: Option<([u8; 32], Timestamp)>,
}

impl StatusContext {
    /// The status of one row, with `exposure` computed for its group.
    pub(crate) fn version_status(
        &self,
        row: &VersionStatusRow,
        exposure: ExposureState,
    ) -> Result<VersionStatus, Error> {
        let curve = row
            .split
            .map(|split| CurveId::from_u8(split.curve))
            .transpose()?;
        let server_shares = row.split.map_or(0, |split| split.server_shares);
        let external_shares = row.threshold.n().saturating_sub(server_shares);
        let made_under_other_policy = match (row.split, self.policy) {
            (None, _) => true,
            (Some(split), Some((current, _))) => split.policy_hash != current,
            (Some(_), None) => false,
        };
        let active = row.state == KeyVersionState::Active;
        Ok(VersionStatus {
            version: row.version.clone(),
            threshold: row.threshold,
            curve,
            state: row.state,
            created_at: row.created_at,
            server_shares,
            server_shares_held: row.server_active,
            server_shares_soft_deleted: row.server_soft_deleted,
            server_shares_hard_deleted: row.server_hard_deleted,
            external_shares,
            external_assigned: row.external_assigned,
            external_confirmed: row.external_confirmed,
            outstanding_deliveries: external_shares.saturating_sub(row.external_confirmed),
            deliveries_failed: row.deliveries_failed,
            recoverable: is_recoverable(row),
            last_inventory_at: row.last_inventory_at,
            last_drill: row.last_drill,
            last_passed_drill_at: row.last_passed_drill_at,
            next_drill: active.then(|| self.next_drill(row, made_under_other_policy)),
            last_change_at: row.last_change_at,
            needs_regeneration: made_under_other_policy,
            exposure,
            outstanding_destructions: Vec::new(),
        })
    }

    /// The earliest of the reasons that apply (see the module
    /// documentation).
    fn next_drill(&self, row: &VersionStatusRow, made_under_other_policy: bool) -> DrillDue {
        let (due_at, reason) = match row.last_passed_drill_at {
            None => (row.last_change_at, DrillDueReason::NeverPassed),
            Some(passed) => {
                let mut due = (
                    passed
                        .checked_add(self.drill_interval)
                        .unwrap_or_else(|| latest_time(passed)),
                    DrillDueReason::Interval,
                );
                if row.last_change_at > passed && row.last_change_at < due.0 {
                    due = (row.last_change_at, DrillDueReason::ChangedSinceDrill);
                }
                if let (true, Some((_, set_at))) = (made_under_other_policy, self.policy) {
                    // A policy set before the last pass still leaves this
                    // version under another policy: due at once.
                    let since = set_at.max(passed);
                    if since < due.0 {
                        due = (since, DrillDueReason::PolicyChanged);
                    }
                }
                due
            }
        };
        DrillDue {
            due_at,
            reason,
            overdue: due_at <= self.now,
        }
    }
}

/// The latest representable time, for a due date beyond it.
fn latest_time(fallback: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(i64::MAX.unsigned_abs()).unwrap_or(fallback)
}

/// Not retired, and at least `t` external shares with confirmed receipts.
pub(crate) fn is_recoverable(row: &VersionStatusRow) -> bool {
    !matches!(row.state, KeyVersionState::Retired { .. })
        && row.external_confirmed >= row.threshold.t()
}

/// The exposure of each active node of `key_id`, from the group's
/// exposure rows: node -> custodians it is exposed to.
pub(crate) async fn exposure_of_key<T: StatusStore + GroupStore + Send>(
    tx: &mut T,
    key_id: &KeyId,
) -> Result<Option<BTreeMap<NodeId, BTreeSet<CustodianId>>>, Error> {
    let group = match tx.group(key_id).await {
        Ok(group) => group,
        Err(shardkeep_storage::Error::GroupNotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let rows = tx.exposure_rows(key_id).await?;
    Ok(Some(exposed_nodes(group.tss_degree, rows)))
}

/// [`exposure_of_key`] of each of `keys`, in two storage queries per
/// [`KEYS_PER_QUERY`](shardkeep_storage::KEYS_PER_QUERY) keys (a status
/// page's keys) instead of two per key.
async fn exposure_of_keys<T: StatusStore + GroupStore + Send>(
    tx: &mut T,
    keys: &[KeyId],
) -> Result<BTreeMap<KeyId, Option<BTreeMap<NodeId, BTreeSet<CustodianId>>>>, Error> {
    let degrees: BTreeMap<KeyId, u16> = tx
        .groups_of(keys)
        .await?
        .into_iter()
        .map(|group| (group.key_id, group.tss_degree))
        .collect();
    let mut rows_by_key: BTreeMap<KeyId, Vec<ExposureRow>> = BTreeMap::new();
    for row in tx.exposure_rows_of(keys).await? {
        rows_by_key.entry(row.key_id.clone()).or_default().push(row);
    }
    Ok(keys
        .iter()
        .map(|key| {
            let exposed = degrees.get(key).map(|&tss_degree| {
                exposed_nodes(tss_degree, rows_by_key.remove(key).unwrap_or_default())
            });
            (key.clone(), exposed)
        })
        .collect())
}

/// Which nodes of a group of degree `tss_degree` each custodian entity is
/// exposed for, from the group's exposure rows.
fn exposed_nodes(
    tss_degree: u16,
    rows: Vec<ExposureRow>,
) -> BTreeMap<NodeId, BTreeSet<CustodianId>> {
    let mut nodes: BTreeMap<NodeId, NodeCustody> = BTreeMap::new();
    for row in rows {
        let node = nodes
            .entry(row.node_id.clone())
            .or_insert_with(|| NodeCustody {
                node: row.node_id.clone(),
                t: row.t,
                server_shares: row.server_active,
                custodians: BTreeMap::new(),
            });
        *node.custodians.entry(row.custodian).or_insert(0) += row.shares;
    }
    let nodes: Vec<NodeCustody> = nodes.into_values().collect();
    let mut exposed: BTreeMap<NodeId, BTreeSet<CustodianId>> = BTreeMap::new();
    for exposure in exposures(tss_degree, &nodes) {
        for node in exposure.nodes {
            exposed
                .entry(node)
                .or_default()
                .insert(exposure.custodian.clone());
        }
    }
    exposed
}

impl<S: Storage> BackupService<S>
where
    S::Transaction: RegistryStore + GroupStore + StatusStore + AccessControlStore,
{
    /// One page of the status of the key versions `query` selects: per
    /// version, the shares held and confirmed, the recoverable flag, the
    /// drills, the deliveries outstanding, the exposure state. One storage
    /// query for the page (plus two per group key on it, for exposure).
    /// Audited (`inspect`).
    ///
    /// # Errors
    /// [`Error::BadPageToken`]; [`Error::UnknownPerson`],
    /// [`Error::PersonRevoked`], [`Error::MissingRole`] (operator,
    /// security, compliance or auditor); [`Error::RateLimited`]; storage
    /// and audit failures.
    pub async fn status(&self, actor: &ActorId, query: &StatusQuery) -> Result<StatusPage, Error> {
        let result = self.status_page_of(actor, query).await;
        self.observed(actor, result).await
    }

    async fn status_page_of(
        &self,
        actor: &ActorId,
        query: &StatusQuery,
    ) -> Result<StatusPage, Error> {
        let fingerprint = query.fingerprint();
        let after = match &query.page_token {
            None => None,
            Some(token) => {
                match decode_token(token, STATUS_QUERY, fingerprint, NodeVersion::decode) {
                    Ok(after) => Some(after),
                    Err(error) => return self.refuse_inspect(actor, "status", error).await,
                }
            }
        };
        let page_size = effective_page_size(query.page_size);
        let mut tx = self.begin_inspect(actor).await?;
        let rows = tx
            .status_page(&query.filter(), after.as_ref(), page_size.saturating_add(1))
            .await?;
        let has_more = rows.len() > usize::try_from(page_size).unwrap_or(usize::MAX);
        let rows = &rows[..rows
            .len()
            .min(usize::try_from(page_size).unwrap_or(usize::MAX))];
        let context = StatusContext {
            now: self.now(),
            drill_interval: self.config().drill_interval,
            policy: tx
                .current_policy()
                .await?
                .map(|policy| (policy.hash, policy.set_at)),
        };
        let versions = self.statuses_of(&mut tx, rows, &context).await?;
        let next_page_token = match (has_more, rows.last()) {
            (true, Some(last)) => {
                let mut position = Vec::new();
                last.version.encode(&mut position);
                Some(encode_token(STATUS_QUERY, fingerprint, &position))
            }
            _ => None,
        };
        let mut record = self.record(EventType::Inspect, actor, None);
        record.key_id.clone_from(&query.key_id);
        record.node_id.clone_from(&query.node_id);
        record.detail = Some(FreeText::sanitized(&format!(
            "status: {} versions{}{}",
            versions.len(),
            if after.is_some() { ", continued" } else { "" },
            if next_page_token.is_some() {
                ", more follow"
            } else {
                ""
            },
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(StatusPage {
            versions,
            next_page_token,
            as_of: context.now,
        })
    }

    /// The status of each of `rows`, with the exposure of its group key
    /// (two storage queries per 32 group keys among the active rows) and, for
    /// a version that is not active, its outstanding destruction
    /// statements.
    pub(crate) async fn statuses_of(
        &self,
        tx: &mut S::Transaction,
        rows: &[VersionStatusRow],
        context: &StatusContext,
    ) -> Result<Vec<VersionStatus>, Error> {
        let active_keys: Vec<KeyId> = rows
            .iter()
            .filter(|row| row.state == KeyVersionState::Active)
            .map(|row| row.version.key_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let exposure_by_key = exposure_of_keys(tx, &active_keys).await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in rows {
            let exposure = if row.state == KeyVersionState::Active {
                match exposure_by_key.get(&row.version.key_id) {
                    Some(Some(exposed)) => match exposed.get(&row.version.node_id) {
                        Some(custodians) => ExposureState::Exposed {
                            custodians: custodians.iter().cloned().collect(),
                        },
                        None => ExposureState::Clear,
                    },
                    _ => ExposureState::UnknownGroup,
                }
            } else {
                ExposureState::NotApplicable
            };
            let mut status = context.version_status(row, exposure)?;
            if row.state != KeyVersionState::Active {
                status.outstanding_destructions = self.outstanding_of(tx, &row.version).await?;
            }
            versions.push(status);
        }
        Ok(versions)
    }

    /// Totals over the key versions `query` selects (its page size and
    /// token are ignored), for the service's status page. One storage
    /// query. Audited (`inspect`).
    ///
    /// # Errors
    /// As [`BackupService::status`], without [`Error::BadPageToken`].
    pub async fn status_overview(
        &self,
        actor: &ActorId,
        query: &StatusQuery,
    ) -> Result<StatusOverview, Error> {
        let result = async {
            let mut tx = self.begin_inspect(actor).await?;
            let totals = tx.status_summary(&query.filter()).await?;
            let policy_hash = tx.current_policy().await?.map(|policy| policy.hash);
            let mut record = self.record(EventType::Inspect, actor, None);
            record.key_id.clone_from(&query.key_id);
            record.node_id.clone_from(&query.node_id);
            record.detail = Some(FreeText::sanitized(&format!(
                "status summary: {} versions",
                totals.versions
            ))?);
            Self::audit(&mut tx, &record).await?;
            tx.commit().await?;
            Ok(StatusOverview {
                totals,
                policy_hash,
                as_of: self.now(),
            })
        }
        .await;
        self.observed(actor, result).await
    }

    /// One page of the server-held shares `query` selects: slot, envelope
    /// id, KEK id, deletion state, creation time. Audited (`inspect`).
    ///
    /// # Errors
    /// As [`BackupService::status`].
    pub async fn list_server_shares(
        &self,
        actor: &ActorId,
        query: &ShareListQuery,
    ) -> Result<ShareListPage, Error> {
        let result = self.share_page_of(actor, query).await;
        self.observed(actor, result).await
    }

    async fn share_page_of(
        &self,
        actor: &ActorId,
        query: &ShareListQuery,
    ) -> Result<ShareListPage, Error> {
        let fingerprint = query.fingerprint();
        let after = match &query.page_token {
            None => None,
            Some(token) => match decode_token(token, LISTING_QUERY, fingerprint, ShareSlot::decode)
            {
                Ok(after) => Some(after),
                Err(error) => return self.refuse_inspect(actor, "listing", error).await,
            },
        };
        let page_size = usize::try_from(effective_page_size(query.page_size)).unwrap_or(usize::MAX);
        let mut tx = self.begin_inspect(actor).await?;
        let filter = SlotFilter {
            key_id: query.key_id.clone(),
            node_id: query.node_id.clone(),
            version: query.version,
        };
        // Storage lists every matching slot in order; the page is the run
        // after the token's position.
        let slots = tx.list_slots(&filter).await?;
        let mut rest = slots
            .into_iter()
            .filter(|summary| after.as_ref().is_none_or(|after| summary.slot > *after));
        let shares: Vec<ServerShareEntry> = rest
            .by_ref()
            .take(page_size)
            .map(|summary| ServerShareEntry {
                slot: summary.slot,
                envelope_id: EnvelopeId::from_bytes(summary.envelope_id),
                kek_id: summary.kek_id,
                state: summary.state,
                created_at: summary.stored_at,
            })
            .collect();
        let next_page_token = match (rest.next(), shares.last()) {
            (Some(_), Some(last)) => {
                let mut position = Vec::new();
                last.slot.encode(&mut position);
                Some(encode_token(LISTING_QUERY, fingerprint, &position))
            }
            _ => None,
        };
        let mut record = self.record(EventType::Inspect, actor, None);
        record.key_id.clone_from(&query.key_id);
        record.node_id.clone_from(&query.node_id);
        record.version = query.version;
        record.detail = Some(FreeText::sanitized(&format!(
            "listing: {} server shares{}",
            shares.len(),
            if next_page_token.is_some() {
                ", more follow"
            } else {
                ""
            },
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(ShareListPage {
            shares,
            next_page_token,
            as_of: self.now(),
        })
    }

    /// The person behind `actor`, looked up now, who must be active and
    /// hold one of `roles`.
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] naming the first of `roles`.
    pub(crate) async fn authorize_any(
        tx: &mut S::Transaction,
        actor: &ActorId,
        roles: &[Role],
    ) -> Result<PersonRecord, Error> {
        let mut first_refusal = None;
        for role in roles {
            match Self::authorize(tx, actor, *role).await {
                Ok(person) => return Ok(person),
                Err(refusal @ Error::MissingRole { .. }) => {
                    first_refusal.get_or_insert(refusal);
                }
                Err(other) => return Err(other),
            }
        }
        Err(first_refusal.unwrap_or_else(|| Error::UnknownPerson(actor.clone())))
    }

    /// Opens the write transaction of an inspect call: authorises `actor`
    /// (one of the inspect roles) and counts the call against its rate
    /// limit. A refusal is recorded (access denied; rate limited: an
    /// anomaly too) and returned as the error.
    pub(crate) async fn begin_inspect(&self, actor: &ActorId) -> Result<S::Transaction, Error> {
        let mut tx = self.begin().await?;
        if let Err(refusal) = Self::authorize_any(&mut tx, actor, &INSPECT_ROLES).await {
            drop(tx);
            return self.refuse(actor, None, refusal).await;
        }
        match self.count_in(&mut tx, actor, RateKind::Inspect).await? {
            RateCheck::Allowed => Ok(tx),
            RateCheck::Refused(error) => {
                tx.commit().await?;
                Err(error)
            }
        }
    }

    /// Records a failed inspect call (audit `inspect`, failed) in a
    /// transaction of its own, and returns `error`.
    pub(crate) async fn refuse_inspect<T>(
        &self,
        actor: &ActorId,
        what: &str,
        error: Error,
    ) -> Result<T, Error> {
        let mut record = self.record(EventType::Inspect, actor, None);
        record.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&error.to_string())?,
        };
        record.detail = Some(FreeText::sanitized(what)?);
        let mut tx = self.begin().await?;
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use shardkeep_storage::SplitSummary;

    use super::*;

    fn at(days: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + days * 86_400_000).unwrap()
    }

    fn row(t: u8, confirmed: u8) -> VersionStatusRow {
        VersionStatusRow {
            version: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-1").unwrap(),
                version: KeyVersion::new(1),
            },
            threshold: Threshold::new(usize::from(t), 5).unwrap(),
            state: KeyVersionState::Active,
            created_at: at(0),
            split: Some(SplitSummary {
                curve: 1,
                policy_hash: [1; 32],
                server_shares: 2,
            }),
            server_active: 2,
            server_soft_deleted: 0,
            server_hard_deleted: 0,
            external_assigned: 3,
            external_confirmed: confirmed,
            deliveries_failed: 0,
            last_inventory_at: None,
            last_drill: None,
            last_passed_drill_at: None,
            last_change_at: at(0),
        }
    }

    fn context(now: u64, policy: Option<([u8; 32], u64)>) -> StatusContext {
        StatusContext {
            now: at(now),
            drill_interval: Duration::from_secs(90 * 86_400),
            policy: policy.map(|(hash, set)| (hash, at(set))),
        }
    }

    #[test]
    fn recoverable_needs_t_confirmed_external_shares() {
        assert!(!is_recoverable(&row(3, 2)));
        assert!(is_recoverable(&row(3, 3)));
        let mut retired = row(3, 3);
        retired.state = KeyVersionState::Retired {
            since: at(1),
            at: at(8),
        };
        assert!(!is_recoverable(&retired));
    }

    #[test]
    fn a_version_never_drilled_is_due_at_once() {
        let status = context(5, None)
            .version_status(&row(3, 3), ExposureState::Clear)
            .unwrap();
        let due = status.next_drill.unwrap();
        assert_eq!(due.reason, DrillDueReason::NeverPassed);
        assert_eq!(due.due_at, at(0));
        assert!(due.overdue);
        assert_eq!(status.outstanding_deliveries, 0);
        assert_eq!(status.external_shares, 3);
    }

    #[test]
    fn drills_fall_due_quarterly_and_at_once_after_a_change() {
        let mut drilled = row(3, 3);
        drilled.last_passed_drill_at = Some(at(10));
        let due = context(20, Some(([1; 32], 0)))
            .version_status(&drilled, ExposureState::Clear)
            .unwrap()
            .next_drill
            .unwrap();
        assert_eq!(
            (due.due_at, due.reason, due.overdue),
            (at(100), DrillDueReason::Interval, false)
        );

        drilled.last_change_at = at(15);
        let due = context(20, Some(([1; 32], 0)))
            .version_status(&drilled, ExposureState::Clear)
            .unwrap()
            .next_drill
            .unwrap();
        assert_eq!(
            (due.due_at, due.reason, due.overdue),
            (at(15), DrillDueReason::ChangedSinceDrill, true)
        );
    }

    #[test]
    fn a_policy_change_makes_a_drill_due_and_the_version_need_regeneration() {
        let mut drilled = row(3, 3);
        drilled.last_passed_drill_at = Some(at(10));
        let status = context(30, Some(([2; 32], 12)))
            .version_status(&drilled, ExposureState::Clear)
            .unwrap();
        assert!(status.needs_regeneration);
        let due = status.next_drill.unwrap();
        assert_eq!(
            (due.due_at, due.reason),
            (at(12), DrillDueReason::PolicyChanged)
        );
        // The same policy: nothing to regenerate.
        let status = context(30, Some(([1; 32], 12)))
            .version_status(&drilled, ExposureState::Clear)
            .unwrap();
        assert!(!status.needs_regeneration);
        assert_eq!(status.next_drill.unwrap().reason, DrillDueReason::Interval);
    }

    #[test]
    fn only_active_versions_fall_due() {
        let mut retiring = row(3, 3);
        retiring.state = KeyVersionState::Retiring {
            since: at(1),
            cooldown_until: at(8),
        };
        let status = context(30, None)
            .version_status(&retiring, ExposureState::NotApplicable)
            .unwrap();
        assert_eq!(status.next_drill, None);
        assert!(status.recoverable);
    }

    #[test]
    fn page_sizes_are_capped() {
        assert_eq!(effective_page_size(0), DEFAULT_PAGE_SIZE);
        assert_eq!(effective_page_size(7), 7);
        assert_eq!(effective_page_size(MAX_PAGE_SIZE), MAX_PAGE_SIZE);
        assert_eq!(effective_page_size(u32::MAX), MAX_PAGE_SIZE);
    }

    fn query(key: Option<&str>) -> StatusQuery {
        StatusQuery {
            key_id: key.map(|key| KeyId::new(key).unwrap()),
            ..StatusQuery::default()
        }
    }

    #[test]
    fn tokens_continue_only_their_own_query() {
        let position = row(3, 3).version;
        let mut bytes = Vec::new();
        position.encode(&mut bytes);
        let token = encode_token(STATUS_QUERY, query(None).fingerprint(), &bytes);
        let decoded = decode_token(
            &token,
            STATUS_QUERY,
            query(None).fingerprint(),
            NodeVersion::decode,
        )
        .unwrap();
        assert_eq!(decoded, position);
        assert!(matches!(
            decode_token(
                &token,
                STATUS_QUERY,
                query(Some("key-1")).fingerprint(),
                NodeVersion::decode
            ),
            Err(Error::BadPageToken {
                why: "it was issued for another query"
            })
        ));
        let listing = ShareListQuery::default().fingerprint();
        assert!(matches!(
            decode_token(&token, LISTING_QUERY, listing, ShareSlot::decode),
            Err(Error::BadPageToken { .. })
        ));
    }

    #[test]
    fn tokens_that_do_not_decode_are_refused() {
        let fingerprint = query(None).fingerprint();
        let position = row(3, 3).version;
        let mut bytes = Vec::new();
        position.encode(&mut bytes);
        let good = encode_token(STATUS_QUERY, fingerprint, &bytes);
        let mut trailing = good.clone();
        trailing.push_str("00");
        let mut version = good.clone();
        version.replace_range(0..2, "02");
        for bad in [
            String::new(),
            "zz".to_owned(),
            good[..good.len() - 2].to_owned(),
            trailing,
            "ab".repeat(MAX_PAGE_TOKEN_LEN),
        ] {
            assert!(
                matches!(
                    decode_token(&bad, STATUS_QUERY, fingerprint, NodeVersion::decode),
                    Err(Error::BadPageToken {
                        why: "it does not decode"
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            decode_token(&version, STATUS_QUERY, fingerprint, NodeVersion::decode),
            Err(Error::BadPageToken {
                why: "unknown token version"
            })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_panic(token in "[0-9a-f]{0,300}") {
            let _ = decode_token(&token, STATUS_QUERY, query(None).fingerprint(), NodeVersion::decode);
        }

        #[test]
        fn every_position_round_trips(
            key in "[a-z0-9]{1,64}", node in "[a-z0-9.:-]{1,64}", version in any::<u32>(), index in 1u8..=255
        ) {
            let slot = NodeVersion {
                key_id: KeyId::new(key).unwrap(),
                node_id: NodeId::new(node).unwrap(),
                version: KeyVersion::new(version),
            }
            .slot(shardkeep_types::ShareIndex::new(index).unwrap());
            let fingerprint = ShareListQuery::default().fingerprint();
            let mut bytes = Vec::new();
            slot.encode(&mut bytes);
            let token = encode_token(LISTING_QUERY, fingerprint, &bytes);
            prop_assert!(token.len() <= MAX_PAGE_TOKEN_LEN);
            let decoded = decode_token(&token, LISTING_QUERY, fingerprint, ShareSlot::decode).unwrap();
            prop_assert_eq!(decoded, slot);
        }
    }
}

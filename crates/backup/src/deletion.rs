//! Deletion and zero retention of server-held shares (procedure step 7,
//! checklist DEL-01 to DEL-08): soft delete under approvals, a cooldown in
//! which the deletion can be rolled back, then the hard delete that
//! destroys each slot's KEK, and the zero-retention certificate.
//!
//! Preconditions, checked at the soft delete and again at the hard delete
//! ([`deletion_evidence`]): at least `t` external shares confirmed by
//! receipt at distinct custodian entities that are still registered, with
//! the person the share was sealed to still registered (DEL-01); a passed
//! drill of this version from external shares only (DEL-02); no open
//! recovery session or drill (with its sandbox) of any version of the node.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use shardkeep_audit::{AuditRecord, EventType, Witness, append, checkpoint};
use shardkeep_kms::{DestroyOutcome, KekPin, ShredMethod};
use shardkeep_storage::{
    ApprovalOperation, ApprovalRecord, ApprovalRequestHash, ApprovalStore, DeliveryOutcome,
    DrillOutcome, EntityState, KeyVersionState, KeyVersionStore, PersonState, SlotDeletionStore,
    SlotKekStore, SlotState, Storage, Transaction,
};
use shardkeep_types::{ActorId, CustodianId, FreeText, NodeVersion, ShareIndex, Signer, Timestamp};

use crate::approval::{ApprovalParams, ApprovalRequest, ApprovalSubject, MAX_APPROVAL_TICKET_LEN};
use crate::approval_ops::{consume_approvals, is_approval_refusal};
use crate::error::Error;
use crate::reference::VerifiedSplit;
use crate::registry::Role;
use crate::service::BackupService;
use crate::zero_retention::{
    ApprovalEvidence, ComplianceSignOff, DestroyedSlot, DrillEvidence, ReceiptEvidence,
    ZeroRetentionBody, ZeroRetentionCertificate, evidence_hash,
};

/// Domain tag of [`immediate_delete_hash`].
pub const IMMEDIATE_DELETE_TAG: &[u8] = b"shardkeep/immediate-delete/v1";

/// Version of the evidence bytes a hard-deleted slot keeps in storage.
const SLOT_EVIDENCE_VERSION: u8 = 1;

/// What a soft delete names: the exact slots, and the approved request
/// that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionParams {
    /// The key version.
    pub version: NodeVersion,
    /// The server-held slots to delete, strictly increasing.
    pub slots: Vec<ShareIndex>,
    /// The approved delete request.
    pub request: ApprovalRequestHash,
    /// The ticket the request names.
    pub ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    /// The hash of the risk note the request names.
    pub risk_note_hash: [u8; 32],
}

/// A registered soft delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftDeleted {
    /// The key version.
    pub version: NodeVersion,
    /// The slots soft-deleted.
    pub slots: Vec<ShareIndex>,
    /// When.
    pub at: Timestamp,
    /// The earliest hard delete.
    pub cooldown_until: Timestamp,
    /// Who approved it, in which role.
    pub approvers: Vec<(ActorId, Role)>,
}

/// A hard delete done, and the body of its zero-retention certificate,
/// for the compliance person to sign
/// ([`sign_zero_retention`](crate::sign_zero_retention)) before
/// [`BackupService::issue_zero_retention_certificate`] issues it. Only
/// the service makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroRetentionDraft {
    body: ZeroRetentionBody,
}

impl ZeroRetentionDraft {
    /// The body the compliance person reads and signs.
    #[must_use]
    pub fn body(&self) -> &ZeroRetentionBody {
        &self.body
    }
}

/// A hard delete's certificate body before its checkpoint is witnessed
/// (after the deletion commits).
struct Unwitnessed {
    deployment: shardkeep_types::Label,
    version: NodeVersion,
    split_id: [u8; 32],
    method: ShredMethod,
    slots: Vec<DestroyedSlot>,
    receipts: Vec<ReceiptEvidence>,
    drill: DrillEvidence,
    request: ApprovalRequestHash,
    approvals: Vec<ApprovalEvidence>,
    deletion_records: (u64, u64),
    drafted_at: Timestamp,
}

impl Unwitnessed {
    fn witnessed(self, checkpoint: shardkeep_audit::Checkpoint) -> ZeroRetentionBody {
        // Drawn up once the checkpoint is witnessed.
        let drafted_at = self.drafted_at.max(checkpoint.signed_at);
        ZeroRetentionBody {
            deployment: self.deployment,
            version: self.version,
            split_id: self.split_id,
            method: self.method,
            slots: self.slots,
            receipts: self.receipts,
            drill: self.drill,
            request: self.request,
            approvals: self.approvals,
            deletion_records: self.deletion_records,
            checkpoint,
            drafted_at,
        }
    }
}

/// The evidence that the node stays recoverable without the server.
struct DeletionEvidence {
    receipts: Vec<ReceiptEvidence>,
    drill: DrillEvidence,
}

/// Whether a deletion needs `t` confirmed registered custodians (DEL-01),
/// or is the immediate answer to an exposure, where a revoked custodian
/// is the reason for deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmations {
    AtLeastThreshold,
    Exposed,
}

/// How many distinct custodian entities the receipts come from, counting
/// only those marked registered: two receipts of one entity count once.
fn distinct_registered(receipts: &[(CustodianId, bool)]) -> usize {
    receipts
        .iter()
        .filter(|(_, registered)| *registered)
        .map(|(custodian, _)| custodian)
        .collect::<BTreeSet<_>>()
        .len()
}

/// In `tx`: the preconditions of a deletion of server slots of `version`
/// (see the module documentation), and the evidence that meets them.
///
/// # Errors
/// [`Error::DeletionSessionOpen`], [`Error::DeletionTooFewConfirmed`],
/// [`Error::DeletionWithoutDrill`]; storage errors.
async fn deletion_evidence<T: Transaction>(
    tx: &mut T,
    version: &NodeVersion,
    split: &VerifiedSplit,
    rule: Confirmations,
) -> Result<DeletionEvidence, Error> {
    for other in tx.key_versions(&version.key_id, &version.node_id).await? {
        if let Some(session) = tx.open_recovery_session(&other.version).await? {
            return Err(Error::DeletionSessionOpen {
                version: version.clone(),
                session: session.id,
            });
        }
    }
    let custody = tx.custody_map(version).await?;
    let mut receipts = Vec::new();
    let mut counted = Vec::new();
    for delivery in tx.deliveries(version).await? {
        let DeliveryOutcome::Delivered { receipt } = &delivery.outcome else {
            continue;
        };
        // Only the receipt of the envelope the slot's custodian holds now.
        let Some(entry) = custody.iter().find(|entry| {
            entry.slot == delivery.slot
                && entry.custodian == delivery.custodian
                && *entry.envelope_id.as_bytes() == delivery.envelope_id
        }) else {
            continue;
        };
        if split.is_server_index(entry.slot.index) {
            continue;
        }
        let entity = tx.entity(&entry.custodian).await?;
        let person = tx.person(&entry.person).await?;
        let registered = matches!(entity.state, EntityState::Active)
            && matches!(person.state, PersonState::Active)
            && entity.members.contains(&entry.person);
        counted.push((entry.custodian.clone(), registered));
        if registered {
            receipts.push(ReceiptEvidence {
                index: entry.slot.index,
                custodian: entry.custodian.clone(),
                envelope_id: delivery.envelope_id,
                receipt_hash: evidence_hash("receipt", receipt),
            });
        }
    }
    let needed = split.threshold().t();
    let confirmed = distinct_registered(&counted);
    if rule == Confirmations::AtLeastThreshold && confirmed < usize::from(needed) {
        return Err(Error::DeletionTooFewConfirmed {
            version: version.clone(),
            confirmed,
            needed,
        });
    }
    receipts.sort_by_key(|receipt| receipt.index);
    receipts.dedup_by_key(|receipt| receipt.index);
    let drill = tx
        .drill_reports(version)
        .await?
        .into_iter()
        .rev()
        .find(|report| {
            matches!(report.outcome, DrillOutcome::Passed)
                && report.shares_used.len() >= usize::from(needed)
                && report
                    .shares_used
                    .iter()
                    .all(|index| !split.is_server_index(*index))
        })
        .ok_or_else(|| Error::DeletionWithoutDrill(version.clone()))?;
    Ok(DeletionEvidence {
        receipts,
        drill: DrillEvidence {
            started_at: drill.started_at,
            finished_at: drill.finished_at,
            shares_used: drill.shares_used,
            report_hash: evidence_hash("drill-report", &drill.report),
        },
    })
}

/// Whether an error is a refusal of a deletion's preconditions or slot
/// states, audited as a failed deletion event.
fn is_deletion_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::NotServerSlot(_)
            | Error::DeletionTooFewConfirmed { .. }
            | Error::DeletionWithoutDrill(_)
            | Error::DeletionSessionOpen { .. }
            | Error::SlotState { .. }
            | Error::DeletionCooldown { .. }
            | Error::DeletionRequestMismatch { .. }
            | Error::SlotKekMissing(_)
            | Error::VersionNotExposed(_)
    )
}

/// The change hash of a delete request for an immediate hard delete of
/// an exposed version (no cooldown): `SHA-256("shardkeep/immediate-delete/v1"
/// || key id || node id || version)`, names length-prefixed. A request
/// without it authorises a soft delete only; one with it nothing else.
#[must_use]
pub fn immediate_delete_hash(version: &NodeVersion) -> [u8; 32] {
    let mut encoded = Vec::with_capacity(2 * 65 + 4);
    version.key_id.encode_prefixed(&mut encoded);
    version.node_id.encode_prefixed(&mut encoded);
    encoded.extend_from_slice(&version.version.get().to_be_bytes());
    Sha256::new()
        .chain_update(IMMEDIATE_DELETE_TAG)
        .chain_update(&encoded)
        .finalize()
        .into()
}

/// Whether a custodian entity holding a share of the version, or the
/// person it was sealed to, is revoked: with the server's shares, what
/// they hold may rebuild the node's share.
async fn is_exposed<T: Transaction>(tx: &mut T, version: &NodeVersion) -> Result<bool, Error> {
    for entry in tx.custody_map(version).await? {
        let entity = tx.entity(&entry.custodian).await?;
        let person = tx.person(&entry.person).await?;
        if !matches!(entity.state, EntityState::Active)
            || !matches!(person.state, PersonState::Active)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A storage refusal of a slot's state as this crate's error.
fn slot_state_error(slot: &shardkeep_types::ShareSlot, error: shardkeep_storage::Error) -> Error {
    match error {
        shardkeep_storage::Error::SlotSoftDeleted { .. } => Error::SlotState {
            slot: slot.clone(),
            state: "soft-deleted",
        },
        shardkeep_storage::Error::SlotHardDeleted(_) => Error::SlotState {
            slot: slot.clone(),
            state: "hard-deleted",
        },
        shardkeep_storage::Error::SlotNotSoftDeleted(_) => Error::SlotState {
            slot: slot.clone(),
            state: "active, not soft-deleted",
        },
        shardkeep_storage::Error::SealedShareNotFound(_) => Error::NotServerSlot(slot.clone()),
        other => other.into(),
    }
}

/// What a hard-deleted slot keeps in storage as evidence (version 1):
/// version, shred method code, KEK id, fingerprint, whether the key was
/// there to destroy, the look-alikes left alone, the request, the
/// hard-delete record's sequence. A hard delete run again after a failure
/// past its commit rebuilds the certificate's slots from it.
struct SlotEvidence {
    method: ShredMethod,
    kek_id: shardkeep_types::KekId,
    fingerprint: [u8; 32],
    destroyed_now: bool,
    look_alikes: u32,
    request: ApprovalRequestHash,
    sequence: u64,
}

impl SlotEvidence {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.push(SLOT_EVIDENCE_VERSION);
        out.push(match self.method {
            ShredMethod::HsmDestroy => 1,
            _ => 2,
        });
        self.kek_id.encode_prefixed(&mut out);
        out.extend_from_slice(&self.fingerprint);
        out.push(u8::from(self.destroyed_now));
        out.extend_from_slice(&self.look_alikes.to_be_bytes());
        out.extend_from_slice(&self.request.0);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out
    }

    /// The evidence this build wrote, or `None` for anything else.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = shardkeep_wire::Reader::new(bytes);
        if reader.u8("version").ok()? != SLOT_EVIDENCE_VERSION {
            return None;
        }
        let method = match reader.u8("method").ok()? {
            1 => ShredMethod::HsmDestroy,
            2 => ShredMethod::FileDelete,
            _ => return None,
        };
        let kek_id = shardkeep_types::KekId::decode_prefixed(&mut reader).ok()?;
        let fingerprint = *reader.array::<32>("fingerprint").ok()?;
        let destroyed_now = match reader.u8("destroyed").ok()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let look_alikes = reader.u32("look-alikes").ok()?;
        let request = ApprovalRequestHash(*reader.array::<32>("request").ok()?);
        let sequence = reader.u64("sequence").ok()?;
        reader.finish("slot evidence").ok()?;
        Some(Self {
            method,
            kek_id,
            fingerprint,
            destroyed_now,
            look_alikes,
            request,
            sequence,
        })
    }
}

/// The weaker of two methods: a certificate over several slots claims
/// what holds for all of them.
fn weaker(a: ShredMethod, b: ShredMethod) -> ShredMethod {
    if a == ShredMethod::HsmDestroy && b == ShredMethod::HsmDestroy {
        ShredMethod::HsmDestroy
    } else {
        ShredMethod::FileDelete
    }
}

fn approvers(approvals: &[ApprovalRecord]) -> Vec<(ActorId, Role)> {
    approvals
        .iter()
        .map(|approval| (approval.approver.clone(), approval.role))
        .collect()
}

impl<S: Storage> BackupService<S> {
    /// Soft-deletes server-held slots of a version (DEL-03, DEL-04): an
    /// operator runs the delete request they made, approved by a business
    /// owner and a security person; the request must name exactly these
    /// slots. In one transaction: the preconditions, the approvals consumed,
    /// each slot soft-deleted with the cooldown, one `soft-delete` record
    /// per slot. Refusals are audited.
    ///
    /// # Errors
    /// The refusals of authorization and approval consumption (audited);
    /// [`Error::NotServerSlot`], [`Error::SlotState`],
    /// [`Error::DeletionSessionOpen`], [`Error::DeletionTooFewConfirmed`],
    /// [`Error::DeletionWithoutDrill`] (audited); storage and audit errors.
    pub async fn soft_delete(
        &self,
        actor: &ActorId,
        params: &DeletionParams,
    ) -> Result<SoftDeleted, Error> {
        let version = &params.version;
        let now = self.now();
        let cooldown_until =
            now.checked_add(self.config().cooldown)
                .ok_or(Error::InvalidConfig {
                    setting: "cooldown",
                    why: "reaches past the last representable time",
                })?;
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], Some(version))
            .await?;
        match self
            .soft_delete_in(&mut tx, actor, params, None, now, cooldown_until)
            .await
        {
            Ok(approvals) => {
                tx.commit().await?;
                Ok(SoftDeleted {
                    version: version.clone(),
                    slots: params.slots.clone(),
                    at: now,
                    cooldown_until,
                    approvers: approvers(&approvals),
                })
            }
            Err(error) if is_approval_refusal(&error) || is_deletion_refusal(&error) => {
                drop(tx);
                let tx = self.begin().await?;
                self.refuse_as(tx, EventType::SoftDelete, actor, Some(version), error)
                    .await
            }
            Err(other) => Err(other),
        }
    }

    async fn soft_delete_in(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        params: &DeletionParams,
        change_hash: Option<[u8; 32]>,
        now: Timestamp,
        cooldown_until: Timestamp,
    ) -> Result<Vec<ApprovalRecord>, Error> {
        let version = &params.version;
        let reference = tx.split_reference(version).await?;
        let split = VerifiedSplit::verify(version, &reference, self.trusted_signers())?;
        for index in &params.slots {
            if !split.is_server_index(*index) {
                return Err(Error::NotServerSlot(version.slot(*index)));
            }
        }
        let rule = if change_hash.is_some() {
            Confirmations::Exposed
        } else {
            Confirmations::AtLeastThreshold
        };
        deletion_evidence(tx, version, &split, rule).await?;
        let expected = ApprovalParams {
            operation: ApprovalOperation::Delete,
            subject: Some(ApprovalSubject {
                version: version.clone(),
                split_id: *split.split_id(),
            }),
            target: None,
            allow_server_shares: false,
            slots: params.slots.clone(),
            change_hash,
            ticket: params.ticket.clone(),
            risk_note_hash: params.risk_note_hash,
        };
        let deployment = self.config().deployment_id.clone();
        let (approvals, _) =
            consume_approvals(tx, &deployment, &params.request, &expected, actor, now).await?;
        let approver_ids: BTreeSet<ActorId> = approvals
            .iter()
            .map(|approval| approval.approver.clone())
            .collect();
        let retired = matches!(
            tx.key_version(version).await?.state,
            KeyVersionState::Retired { .. }
        );
        for index in &params.slots {
            let slot = version.slot(*index);
            // A retired version's server shares were soft-deleted by its
            // retirement, under no request: this approved request takes
            // them over, its cooldown starting now, so that they are
            // hard-deleted under it.
            if retired && matches!(tx.slot_state(&slot).await?, SlotState::SoftDeleted { .. }) {
                tx.rollback_slot_deletion(&slot)
                    .await
                    .map_err(|error| slot_state_error(&slot, error))?;
            }
            tx.soft_delete_slot(&slot, actor, now, cooldown_until)
                .await
                .map_err(|error| slot_state_error(&slot, error))?;
            let mut record = self.record(EventType::SoftDelete, actor, Some(version));
            record.share_index = Some(*index);
            record.approvers.clone_from(&approver_ids);
            record.detail = Some(FreeText::sanitized(&format!(
                "soft-deleted under request {}, ticket {}; hard delete from {cooldown_until}",
                params.request,
                params.ticket.as_str()
            ))?);
            Self::audit(tx, &record).await?;
        }
        Ok(approvals)
    }

    /// The answer to an exposed version (a custodian holding one of its
    /// shares, or the person it was sealed to, was revoked: with the
    /// server's shares they could rebuild the node's share): an immediate
    /// hard delete of the version's server slots, without cooldown, under
    /// its own approvals: a delete request of exactly these slots whose
    /// change hash is [`immediate_delete_hash`] of the version, approved by
    /// a business owner and a security person. In one transaction the
    /// slots are soft-deleted and hard-deleted as in
    /// [`soft_delete`](Self::soft_delete) and
    /// [`hard_delete`](Self::hard_delete), each KEK destroyed; the other
    /// preconditions hold (a passed external-only drill, no open session)
    /// but `t` confirmed registered custodians is not asked for (the
    /// revocation is why). Then the checkpoint is witnessed and the
    /// certificate's body returned; its slots show a soft and hard delete
    /// at the same time. A reshare (a new version) is the other answer.
    ///
    /// # Errors
    /// [`Error::VersionNotExposed`], and the errors of
    /// [`soft_delete`](Self::soft_delete) and
    /// [`hard_delete`](Self::hard_delete) (refusals audited as
    /// `hard-delete`).
    pub async fn hard_delete_exposed<W: Witness>(
        &self,
        actor: &ActorId,
        params: &DeletionParams,
        audit_signer: &dyn Signer,
        witness: &mut W,
    ) -> Result<ZeroRetentionDraft, Error> {
        let version = &params.version;
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], Some(version))
            .await?;
        let done = async {
            if !is_exposed(&mut tx, version).await? {
                return Err(Error::VersionNotExposed(version.clone()));
            }
            let change = Some(immediate_delete_hash(version));
            self.soft_delete_in(&mut tx, actor, params, change, now, now)
                .await?;
            self.hard_delete_in(&mut tx, actor, version, &params.request, now)
                .await
        }
        .await;
        let draft = match done {
            Ok(draft) => draft,
            Err(error) if is_approval_refusal(&error) || is_deletion_refusal(&error) => {
                drop(tx);
                let tx = self.begin().await?;
                return self
                    .refuse_as(tx, EventType::HardDelete, actor, Some(version), error)
                    .await;
            }
            Err(other) => return Err(other),
        };
        tx.commit().await?;
        let witnessed = checkpoint(self.storage(), audit_signer, witness, now).await?;
        let body = draft.witnessed(witnessed);
        body.validate()?;
        Ok(ZeroRetentionDraft { body })
    }

    /// Rolls a soft delete back inside its cooldown (or any time before
    /// the hard delete): the slots are active again. An operator or a
    /// security person may do it, without approvals (it keeps what the
    /// deletion would remove). One `rollback` record per slot.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::NotServerSlot`],
    /// [`Error::SlotState`] for a slot that is active or already
    /// hard-deleted (audited); storage and audit errors.
    pub async fn rollback_deletion(
        &self,
        actor: &ActorId,
        version: &NodeVersion,
        slots: &[ShareIndex],
    ) -> Result<(), Error> {
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator, Role::Security], Some(version))
            .await?;
        for index in slots {
            let slot = version.slot(*index);
            let refusal = match tx.slot_state(&slot).await {
                Ok(SlotState::SoftDeleted { .. }) => match tx.rollback_slot_deletion(&slot).await {
                    Ok(()) => None,
                    Err(error) => Some(slot_state_error(&slot, error)),
                },
                Ok(state) => Some(Error::SlotState {
                    slot: slot.clone(),
                    state: state.name(),
                }),
                Err(error) => Some(slot_state_error(&slot, error)),
            };
            if let Some(error) = refusal {
                if !is_deletion_refusal(&error) {
                    return Err(error);
                }
                drop(tx);
                let tx = self.begin().await?;
                return self
                    .refuse_as(tx, EventType::Rollback, actor, Some(version), error)
                    .await;
            }
            let mut record = self.record(EventType::Rollback, actor, Some(version));
            record.share_index = Some(*index);
            record.detail = Some(FreeText::sanitized("soft delete rolled back")?);
            Self::audit(&mut tx, &record).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Hard-deletes the slots a consumed delete request soft-deleted, once
    /// their cooldown ended (DEL-05, DEL-06, DEL-07): the preconditions
    /// again; each slot's KEK destroyed by its pinned id and fingerprint
    /// (the provider searches again and confirms it gone), the slot's bytes
    /// erased with the destroy's evidence kept, the KEK marked destroyed,
    /// one `hard-delete` record per slot, all in one transaction; then an
    /// audit checkpoint signed by `audit_signer` is appended to `witness`.
    /// Returns the certificate's body for the compliance sign-off.
    ///
    /// A KEK destroyed before a failure of the transaction is found absent
    /// when the hard delete is run again, which then completes. Run again
    /// after a failure past the commit (the checkpoint or the witness), it
    /// destroys and writes nothing: the slots' kept evidence names the
    /// request, and a new checkpoint is witnessed for the same slots.
    ///
    /// # Errors
    /// The refusals of authorization (audited);
    /// [`Error::DeletionRequestMismatch`], [`Error::SlotState`],
    /// [`Error::DeletionCooldown`], [`Error::SlotKekMissing`], and the
    /// preconditions' refusals (audited); [`Error::Kms`] when a KEK cannot
    /// be destroyed; storage and audit errors.
    pub async fn hard_delete<W: Witness>(
        &self,
        actor: &ActorId,
        version: &NodeVersion,
        request: &ApprovalRequestHash,
        audit_signer: &dyn Signer,
        witness: &mut W,
    ) -> Result<ZeroRetentionDraft, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], Some(version))
            .await?;
        let draft = match self
            .hard_delete_in(&mut tx, actor, version, request, now)
            .await
        {
            Ok(draft) => draft,
            Err(error) if is_deletion_refusal(&error) => {
                drop(tx);
                let tx = self.begin().await?;
                return self
                    .refuse_as(tx, EventType::HardDelete, actor, Some(version), error)
                    .await;
            }
            Err(other) => return Err(other),
        };
        tx.commit().await?;
        let witnessed = checkpoint(self.storage(), audit_signer, witness, now).await?;
        let body = draft.witnessed(witnessed);
        body.validate()?;
        Ok(ZeroRetentionDraft { body })
    }

    async fn hard_delete_in(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        version: &NodeVersion,
        hash: &ApprovalRequestHash,
        now: Timestamp,
    ) -> Result<Unwitnessed, Error> {
        let mismatch = |why| Error::DeletionRequestMismatch {
            request: *hash,
            why,
        };
        let record = match tx.approval_request(hash).await {
            Ok(record) => record,
            Err(shardkeep_storage::Error::ApprovalRequestNotFound(_)) => {
                return Err(mismatch("no such request"));
            }
            Err(other) => return Err(other.into()),
        };
        let request =
            ApprovalRequest::decode(&record.encoding).map_err(|_| mismatch("corrupt request"))?;
        let consumed_at = record
            .consumed_at
            .ok_or(mismatch("the request was never used to soft-delete"))?;
        let subject = match (&request.params.operation, &request.params.subject) {
            (ApprovalOperation::Delete, Some(subject)) if subject.version == *version => subject,
            _ => return Err(mismatch("not a delete request of this version")),
        };
        let reference = tx.split_reference(version).await?;
        let split = VerifiedSplit::verify(version, &reference, self.trusted_signers())?;
        if subject.split_id != *split.split_id() {
            return Err(mismatch("another split of the version"));
        }
        let rule = if request.params.change_hash.is_some() {
            Confirmations::Exposed
        } else {
            Confirmations::AtLeastThreshold
        };
        let evidence = deletion_evidence(tx, version, &split, rule).await?;

        // Every slot: soft-deleted by this request, cooled down, pinned.
        let mut pins = Vec::with_capacity(request.params.slots.len());
        let mut method = ShredMethod::HsmDestroy;
        let mut slots = Vec::with_capacity(request.params.slots.len());
        let mut sequences = Vec::with_capacity(request.params.slots.len());
        for index in &request.params.slots {
            let slot = version.slot(*index);
            let soft_deleted_at = match tx
                .slot_state(&slot)
                .await
                .map_err(|error| slot_state_error(&slot, error))?
            {
                // Hard-deleted under this request by a run whose checkpoint
                // failed after the commit: nothing to destroy again.
                SlotState::HardDeleted {
                    soft_deleted_at,
                    at,
                    evidence,
                } => {
                    let kept = SlotEvidence::decode(&evidence)
                        .filter(|kept| kept.request == *hash)
                        .ok_or(Error::SlotState {
                            slot: slot.clone(),
                            state: "hard-deleted",
                        })?;
                    method = weaker(method, kept.method);
                    sequences.push(kept.sequence);
                    slots.push(DestroyedSlot {
                        index: *index,
                        kek_id: kept.kek_id,
                        fingerprint: kept.fingerprint,
                        soft_deleted_at,
                        hard_deleted_at: at,
                    });
                    continue;
                }
                SlotState::SoftDeleted {
                    at, cooldown_until, ..
                } => {
                    if at != consumed_at {
                        return Err(mismatch("a slot was soft-deleted under another request"));
                    }
                    if now < cooldown_until {
                        return Err(Error::DeletionCooldown {
                            slot,
                            until: cooldown_until,
                        });
                    }
                    at
                }
                state => {
                    return Err(Error::SlotState {
                        slot,
                        state: state.name(),
                    });
                }
            };
            let kek = match tx.slot_kek(&slot).await? {
                Some(kek) if kek.destroyed_at.is_none() => kek,
                _ => return Err(Error::SlotKekMissing(slot)),
            };
            let pin = KekPin {
                kek_id: kek.kek_id,
                fingerprint: kek.fingerprint,
            };
            pins.push((*index, slot, pin, soft_deleted_at));
        }

        let approvals = tx.approvals(hash).await?;
        let approver_ids: BTreeSet<ActorId> = approvals
            .iter()
            .map(|approval| approval.approver.clone())
            .collect();
        for (index, slot, pin, soft_deleted_at) in pins {
            let report = self.keks().destroy_slot_kek(&slot, &pin)?;
            method = weaker(method, report.method);
            let mut audit: AuditRecord = self.record(EventType::HardDelete, actor, Some(version));
            audit.share_index = Some(index);
            audit.approvers.clone_from(&approver_ids);
            audit.detail = Some(FreeText::sanitized(&format!(
                "KEK {} (fingerprint {}) destroyed by {}{}; {} look-alike key(s) left alone; request {hash}",
                pin.kek_id,
                hex::encode(pin.fingerprint),
                report.method,
                if report.outcome == DestroyOutcome::Destroyed {
                    ""
                } else {
                    " (already absent)"
                },
                report.look_alikes,
            ))?);
            let appended = append(tx, &audit).await?;
            sequences.push(appended.sequence);
            tx.mark_slot_kek_destroyed(&slot, now).await?;
            let kept = SlotEvidence {
                method: report.method,
                kek_id: pin.kek_id.clone(),
                fingerprint: pin.fingerprint,
                destroyed_now: report.outcome == DestroyOutcome::Destroyed,
                look_alikes: u32::try_from(report.look_alikes).unwrap_or(u32::MAX),
                request: *hash,
                sequence: appended.sequence,
            };
            tx.hard_delete_slot(&slot, now, &kept.encode())
                .await
                .map_err(|error| slot_state_error(&slot, error))?;
            slots.push(DestroyedSlot {
                index,
                kek_id: pin.kek_id,
                fingerprint: pin.fingerprint,
                soft_deleted_at,
                hard_deleted_at: now,
            });
        }
        slots.sort_by_key(|slot| slot.index);
        let first = sequences.iter().copied().min().unwrap_or_default();
        let last = sequences.iter().copied().max().unwrap_or_default();
        Ok(Unwitnessed {
            deployment: self.config().deployment_id.clone(),
            version: version.clone(),
            split_id: *split.split_id(),
            method,
            slots,
            receipts: evidence.receipts,
            drill: evidence.drill,
            request: *hash,
            approvals: approvals
                .into_iter()
                .map(|approval| ApprovalEvidence {
                    approver: approval.approver,
                    role: approval.role,
                    signature: approval.signature,
                })
                .collect(),
            deletion_records: (first, last),
            drafted_at: now,
        })
    }

    /// Issues the zero-retention certificate of a hard delete (DEL-08):
    /// the sign-off must be by `actor`, an active compliance person, with
    /// their registered approval key, over exactly the draft's body; the
    /// certificate is signed by `issuer` (the zero-retention key, not the
    /// audit or envelope key) and audited (`zero-retention`).
    ///
    /// # Errors
    /// The refusals of authorization (audited);
    /// [`Error::ZeroRetentionSignOff`] (audited);
    /// [`Error::ZeroRetentionCertificateInvalid`] for a signature that does
    /// not verify (audited); [`Error::Signing`]; storage and audit errors.
    pub async fn issue_zero_retention_certificate(
        &self,
        actor: &ActorId,
        draft: &ZeroRetentionDraft,
        sign_off: &ComplianceSignOff,
        issuer: &dyn Signer,
    ) -> Result<Vec<u8>, Error> {
        let body = &draft.body;
        let version = &body.version;
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, person) = self
            .authorize_or_refuse(tx, actor, &[Role::Compliance], Some(version))
            .await?;
        let refusal = |why| Error::ZeroRetentionSignOff {
            person: sign_off.person.clone(),
            why,
        };
        let checked = if sign_off.person != *actor {
            Err(refusal("signed by another person than the caller"))
        } else if person.keys.approval_key != Some(sign_off.public_key) {
            Err(refusal("not the person's registered approval key"))
        } else {
            sign_off.verify(body)
        };
        if let Err(error) = checked {
            drop(tx);
            let tx = self.begin().await?;
            return self
                .refuse_as(tx, EventType::ZeroRetention, actor, Some(version), error)
                .await;
        }
        let certificate =
            ZeroRetentionCertificate::issue(body.clone(), sign_off.clone(), issuer, now)?;
        let bytes = certificate.encode()?;
        let mut record = self.record(EventType::ZeroRetention, actor, Some(version));
        record.approvers = body
            .approvals
            .iter()
            .map(|approval| approval.approver.clone())
            .collect();
        let slots: Vec<String> = body.slots.iter().map(|s| s.index.to_string()).collect();
        record.detail = Some(FreeText::sanitized(&format!(
            "zero-retention certificate for slots {} ({}), signed by {}, certificate hash {}",
            slots.join(", "),
            body.method,
            issuer.signer_id(),
            hex::encode(evidence_hash("zero-retention-certificate", &bytes)),
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custodian(name: &str) -> CustodianId {
        CustodianId::new(name).unwrap()
    }

    /// Two custodians of one entity confirm one entity, not two; a
    /// revoked one confirms none.
    #[test]
    fn receipts_count_distinct_registered_entities() {
        let a = custodian("bank-a");
        let b = custodian("bank-b");
        assert_eq!(
            distinct_registered(&[(a.clone(), true), (a.clone(), true), (b.clone(), true)]),
            2
        );
        assert_eq!(distinct_registered(&[(a.clone(), true), (b, false)]), 1);
        assert_eq!(distinct_registered(&[(a, false)]), 0);
    }

    #[test]
    fn slot_evidence_round_trips_and_refuses_other_bytes() {
        let kept = SlotEvidence {
            method: ShredMethod::HsmDestroy,
            kek_id: shardkeep_types::KekId::new("kek-4").unwrap(),
            fingerprint: [0x44; 32],
            destroyed_now: true,
            look_alikes: 1,
            request: ApprovalRequestHash([0x22; 32]),
            sequence: 41,
        };
        let bytes = kept.encode();
        let back = SlotEvidence::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.sequence, 41);
        assert_eq!(back.request, kept.request);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SlotEvidence::decode(&longer).is_none());
        assert!(SlotEvidence::decode(&bytes[..bytes.len() - 1]).is_none());
        let mut method = bytes;
        method[1] = 3;
        assert!(SlotEvidence::decode(&method).is_none());
    }

    #[test]
    fn a_mix_of_methods_is_certified_as_the_weaker() {
        use ShredMethod::{FileDelete, HsmDestroy};
        assert_eq!(weaker(HsmDestroy, HsmDestroy), HsmDestroy);
        assert_eq!(weaker(HsmDestroy, FileDelete), FileDelete);
        assert_eq!(weaker(FileDelete, HsmDestroy), FileDelete);
    }
}

//! The storage traits. Upper layers are generic over [`Storage`] and never
//! name a backend.
//!
//! Every operation runs inside a [`Transaction`]; one transaction is one unit
//! of work, so an operation's state change, the approvals it consumes and the
//! audit record it appends commit together or not at all.

use core::future::Future;

use shardkeep_types::Threshold;
use shardkeep_types::{
    ActorId, CustodianId, FreeText, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion,
    ShareSlot, Timestamp,
};

use crate::error::Error;
use crate::records::{
    AnomalyRecord, ApprovalRecord, ApprovalRequestHash, ApprovalRequestRecord, AuditEntry,
    AuditHead, AuditLogId, AuditRow, CustodyEntry, DIGEST_LEN, DeliveryRecord, DeliveryStats,
    DestructionStatementRecord, DrillReport, DrillStats, EntityRecord, ExposureRow, GroupRecord,
    InventoryChallenge, InventoryProofRecord, KeyVersionRecord, MAX_REVOCATION_REASON_LEN,
    PUBLIC_KEY_LEN, PersonKeyEpoch, PersonKeys, PersonRecord, PolicyRecord, RecoverySessionId,
    RecoverySessionOutcome, RecoverySessionRecord, RoleSet, SealedShare, ShareAccess, SlotFilter,
    SlotKekRecord, SlotState, SlotSummary, SplitReference, StatusFilter, StatusSummary,
    StoredCheckpoint, VersionStatusRow,
};

/// A storage backend: hands out transactions.
///
/// Write transactions are serialised: at most one is open at a time across
/// every process sharing the database (SQLite: `BEGIN IMMEDIATE`;
/// PostgreSQL: a transaction advisory lock taken at `BEGIN`). Read-only
/// transactions see a consistent snapshot and never wait for writers.
pub trait Storage: Send + Sync {
    /// The transaction type.
    type Transaction: Transaction;

    /// Starts a write transaction, waiting for the writer before it.
    ///
    /// # Errors
    /// [`Error::DatabaseUnavailable`] when no connection is had within the
    /// acquire timeout (the database is down or unreachable),
    /// [`Error::Database`] when the database refuses or the writer before
    /// holds the lock past its timeout.
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, Error>> + Send;

    /// Starts a read-only transaction on a consistent snapshot; writes in it
    /// fail with [`Error::ReadOnlyTransaction`].
    ///
    /// # Errors
    /// [`Error::DatabaseUnavailable`] when no connection is had within the
    /// acquire timeout, [`Error::Database`] when the database refuses.
    fn begin_read_only(&self) -> impl Future<Output = Result<Self::Transaction, Error>> + Send;
}

/// One unit of work over every record kind.
///
/// A failed write (or a database failure) aborts the transaction: it is
/// rolled back at once, later calls fail with [`Error::TransactionAborted`]
/// and [`commit`](Self::commit) refuses, so a half-done operation can never
/// be committed. A read's refusal (not found, soft-deleted...) changes
/// nothing and leaves the transaction usable, e.g. to audit the refusal.
/// Dropping a transaction rolls it back.
pub trait Transaction:
    KeyVersionStore
    + RegistryStore
    + GroupStore
    + SealedShareStore
    + SlotDeletionStore
    + CustodyStore
    + ReceiptStore
    + ApprovalStore
    + RecoverySessionStore
    + DrillStore
    + DestructionStore
    + InventoryStore
    + AccessControlStore
    + StatusStore
    + ShareAccessLog
    + SlotKekStore
    + AuditStore
    + crate::audit_reviews::AuditReviewStore
    + Send
{
    /// Commits everything written in the transaction.
    ///
    /// # Errors
    /// [`Error::TransactionAborted`] after an earlier error (nothing is
    /// committed), or [`Error::Database`].
    fn commit(self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Discards everything written in the transaction.
    ///
    /// # Errors
    /// [`Error::Database`] when the database fails.
    fn rollback(self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Key versions: one split of one node's share, `active` -> `retiring`
/// (cooldown, can be rolled back) -> `retired`. At most one version of a
/// node is active.
pub trait KeyVersionStore {
    /// Registers a new, active key version with its split reference, which
    /// every later check of its shares uses. The version's group must be
    /// registered (with the reference's curve) and the reference's policy
    /// set; its last change is its creation.
    ///
    /// # Errors
    /// [`Error::KeyVersionExists`], [`Error::ActiveVersionExists`],
    /// [`Error::BlobLength`] (commitments, binding),
    /// [`Error::ServerSharesOutOfRange`], [`Error::GroupNotFound`],
    /// [`Error::CurveMismatch`], [`Error::PolicyNotFound`].
    fn create_key_version(
        &mut self,
        version: &NodeVersion,
        threshold: Threshold,
        reference: &SplitReference,
        created_by: &ActorId,
        created_at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The split reference stored with a version.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::SplitReferenceNotFound`]
    /// for a version created before references were stored.
    fn split_reference(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<SplitReference, Error>> + Send;

    /// The number the node's next version gets: one more than its latest,
    /// 1 for a node without versions.
    ///
    /// # Errors
    /// [`Error::CounterExhausted`] after version `u32::MAX`.
    fn next_key_version(
        &mut self,
        key_id: &KeyId,
        node_id: &NodeId,
    ) -> impl Future<Output = Result<KeyVersion, Error>> + Send;

    /// Records a change that makes a drill of the version due (a custodian
    /// change, a KEK migration...): `what` happened at `at`.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::KeyVersionState`] for a
    /// retired version, [`Error::TimesOutOfOrder`] when `at` is before the
    /// last change recorded.
    fn record_version_change(
        &mut self,
        version: &NodeVersion,
        what: &Label,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Reads one key version.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`].
    fn key_version(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<KeyVersionRecord, Error>> + Send;

    /// Every version of one node, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn key_versions(
        &mut self,
        key_id: &KeyId,
        node_id: &NodeId,
    ) -> impl Future<Output = Result<Vec<KeyVersionRecord>, Error>> + Send;

    /// Starts retiring an active version: it enters its cooldown.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::KeyVersionState`],
    /// [`Error::TimesOutOfOrder`] when the cooldown ends before `at`.
    fn begin_key_retirement(
        &mut self,
        version: &NodeVersion,
        at: Timestamp,
        cooldown_until: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Rolls a retiring version back to active.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::KeyVersionState`],
    /// [`Error::ActiveVersionExists`].
    fn rollback_key_retirement(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Retires a retiring version whose cooldown has ended.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::KeyVersionState`],
    /// [`Error::KeyVersionCooldown`].
    fn retire_key_version(
        &mut self,
        version: &NodeVersion,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Sealed shares the server holds, one per slot.
pub trait SealedShareStore {
    /// Stores a sealed share in an empty slot of an active version. The
    /// envelope must be a well-formed sealed envelope of `share.slot`; its
    /// KEK id and envelope id are taken from the bytes.
    ///
    /// # Errors
    /// [`Error::BlobLength`], [`Error::InvalidEnvelope`],
    /// [`Error::EnvelopeSlotMismatch`], [`Error::KeyVersionNotFound`],
    /// [`Error::KeyVersionState`] (not active),
    /// [`Error::ShareIndexOutOfRange`], [`Error::SealedShareExists`],
    /// [`Error::SlotHeldByCustodian`].
    fn store_sealed_share(
        &mut self,
        share: &SealedShare,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Loads an active sealed share. Callers record the read with
    /// [`ShareAccessLog::record_share_access`] in the same transaction, and
    /// verify the envelope before they open it.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`], [`Error::SlotSoftDeleted`],
    /// [`Error::SlotHardDeleted`]; [`Error::CorruptRow`] when the stored
    /// envelope is not a sealed envelope of the slot or disagrees with the
    /// row's KEK id or envelope id.
    fn load_sealed_share(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<SealedShare, Error>> + Send;

    /// Stores the re-wrapped envelope of an active share (KEK migration:
    /// the envelope crate's `VerifiedEnvelope::rewrap`), if the share is
    /// still wrapped under `current_kek`. The new envelope must be the
    /// stored one with another key-wrap trailer: same slot, same envelope
    /// id. Its trailer's KEK becomes the slot's KEK; once this commits,
    /// `current_kek` may be destroyed.
    ///
    /// # Errors
    /// [`Error::BlobLength`], [`Error::InvalidEnvelope`],
    /// [`Error::EnvelopeSlotMismatch`], [`Error::SealedShareNotFound`],
    /// [`Error::SlotSoftDeleted`], [`Error::SlotHardDeleted`],
    /// [`Error::KekMismatch`], [`Error::EnvelopeIdMismatch`].
    fn rewrap_sealed_share(
        &mut self,
        slot: &ShareSlot,
        current_kek: &KekId,
        envelope: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Lists server-held slots (any state) matching `filter`, ordered by
    /// key, node, version and index.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn list_slots(
        &mut self,
        filter: &SlotFilter,
    ) -> impl Future<Output = Result<Vec<SlotSummary>, Error>> + Send;
}

/// Deletion state per server-held slot: active -> soft-deleted (cooldown,
/// rollback possible) -> hard-deleted (bytes erased, evidence kept).
pub trait SlotDeletionStore {
    /// The slot's deletion state.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`].
    fn slot_state(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<SlotState, Error>> + Send;

    /// Registers the deletion of an active slot.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`], [`Error::SlotSoftDeleted`],
    /// [`Error::SlotHardDeleted`], [`Error::TimesOutOfOrder`].
    fn soft_delete_slot(
        &mut self,
        slot: &ShareSlot,
        by: &ActorId,
        at: Timestamp,
        cooldown_until: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Rolls a soft-deleted slot back to active.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`], [`Error::SlotNotSoftDeleted`],
    /// [`Error::SlotHardDeleted`].
    fn rollback_slot_deletion(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Hard-deletes a soft-deleted slot whose cooldown has ended: erases the
    /// envelope and the wrapped key and keeps `evidence`. The caller destroys
    /// the slot's KEK (crypto-shredding) in the same unit of work.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`], [`Error::SlotNotSoftDeleted`],
    /// [`Error::SlotHardDeleted`], [`Error::SlotCooldown`],
    /// [`Error::BlobLength`].
    fn hard_delete_slot(
        &mut self,
        slot: &ShareSlot,
        now: Timestamp,
        evidence: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The KEK of each server-held slot: id and key fingerprint, as pinned by
/// the key store, and when the key was destroyed. A slot has at most one
/// live (not destroyed) KEK; a KEK id belongs to one slot, once.
pub trait SlotKekStore {
    /// Records the KEK just created for a slot of an existing version.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::ShareIndexOutOfRange`],
    /// [`Error::SlotHeldByCustodian`], [`Error::SlotKekExists`] when the
    /// slot has a live KEK, [`Error::KekIdInUse`] when the id was ever
    /// recorded, [`Error::TimesOutOfOrder`] when it is destroyed before it
    /// was created.
    fn record_slot_kek(
        &mut self,
        record: &SlotKekRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The slot's live KEK or, when it has none, the one destroyed last;
    /// `None` when no KEK was ever recorded for the slot.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn slot_kek(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<Option<SlotKekRecord>, Error>> + Send;

    /// Records that the slot's live KEK was destroyed at `at`. The record
    /// stays, as evidence.
    ///
    /// # Errors
    /// [`Error::SlotKekNotFound`] when the slot has no live KEK,
    /// [`Error::TimesOutOfOrder`] when `at` is before its creation.
    fn mark_slot_kek_destroyed(
        &mut self,
        slot: &ShareSlot,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The custody map: external share slot -> custodian entity, the member
/// the share was sealed to, the recipient, envelope and container
/// delivered, and the last confirmation.
pub trait CustodyStore {
    /// Maps a slot of an existing version to a custodian: an active,
    /// registered entity holding no other share of the version, one of its
    /// active members, and that member's registered age recipient.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::ShareIndexOutOfRange`],
    /// [`Error::CustodyEntryExists`], [`Error::SlotHeldByServer`],
    /// [`Error::EntityNotFound`], [`Error::EntityRevoked`],
    /// [`Error::PersonNotMember`], [`Error::PersonNotFound`],
    /// [`Error::PersonRevoked`], [`Error::RecipientMismatch`],
    /// [`Error::EntityHoldsShare`].
    fn assign_custodian(
        &mut self,
        entry: &CustodyEntry,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Replaces the entry of a mapped slot (a custodian change; a legacy
    /// entry becomes a full one), with the checks of
    /// [`assign_custodian`](Self::assign_custodian). The confirmation time
    /// becomes `entry.confirmed_at`.
    ///
    /// # Errors
    /// [`Error::CustodyEntryNotFound`], and the registry errors of
    /// [`assign_custodian`](Self::assign_custodian).
    fn update_custodian(
        &mut self,
        entry: &CustodyEntry,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records a confirmation that the custodian still holds the share:
    /// the slot's confirmation time becomes `at` unless a later one is
    /// recorded. Receipts and inventory proofs confirm on their own.
    ///
    /// # Errors
    /// [`Error::CustodyEntryNotFound`], [`Error::LegacyCustodyEntry`].
    fn confirm_custody(
        &mut self,
        slot: &ShareSlot,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The custodian of one slot.
    ///
    /// # Errors
    /// [`Error::CustodyEntryNotFound`], [`Error::LegacyCustodyEntry`] for
    /// an entry made before the registry.
    fn custody_entry(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<CustodyEntry, Error>> + Send;

    /// The custody map of one version, by share index.
    ///
    /// # Errors
    /// [`Error::LegacyCustodyEntry`], [`Error::Database`].
    fn custody_map(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<Vec<CustodyEntry>, Error>> + Send;
}

/// Delivery records: receipts and failures, append-only.
pub trait ReceiptStore {
    /// Records a delivery attempt of the mapped custodian's envelope.
    /// Failures may repeat; a slot has at most one confirmed receipt, which
    /// also confirms the custody entry (at `recorded_at`).
    ///
    /// # Errors
    /// [`Error::CustodyEntryNotFound`], [`Error::LegacyCustodyEntry`],
    /// [`Error::CustodianMismatch`], [`Error::DeliveryEnvelopeMismatch`],
    /// [`Error::ReceiptExists`], [`Error::BlobLength`].
    fn record_delivery(
        &mut self,
        delivery: &DeliveryRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Every delivery record of one version, in recording order.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn deliveries(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<Vec<DeliveryRecord>, Error>> + Send;
}

/// Approval requests and signed approvals. A request is consumed once, in the
/// transaction of the operation it authorises; approvals are append-only.
/// The caller checks signatures, registrations and the approval rule;
/// storage keeps the records and the single use.
pub trait ApprovalStore {
    /// Stores a new, open request (`consumed_at` and `consumed_by` must be
    /// `None`).
    ///
    /// # Errors
    /// [`Error::ApprovalRequestExists`], [`Error::TimesOutOfOrder`]
    /// (`expires_at` not after `created_at`, or a request given as
    /// consumed), [`Error::BlobLength`] (encoding).
    fn insert_approval_request(
        &mut self,
        request: &ApprovalRequestRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// A stored request, consumed or not.
    ///
    /// # Errors
    /// [`Error::ApprovalRequestNotFound`].
    fn approval_request(
        &mut self,
        hash: &ApprovalRequestHash,
    ) -> impl Future<Output = Result<ApprovalRequestRecord, Error>> + Send;

    /// Records one person's approval of an open request.
    ///
    /// # Errors
    /// [`Error::ApprovalRequestNotFound`], [`Error::ApprovalConsumed`],
    /// [`Error::ApproverIsRequester`], [`Error::ApprovalExists`].
    fn insert_approval(
        &mut self,
        approval: &ApprovalRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The approvals of a request, in recording order (then approver).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn approvals(
        &mut self,
        hash: &ApprovalRequestHash,
    ) -> impl Future<Output = Result<Vec<ApprovalRecord>, Error>> + Send;

    /// Marks a request consumed at `at` by `by`, once: a row-level
    /// `UPDATE ... WHERE consumed_at IS NULL`, so of two transactions
    /// consuming the same request only one succeeds.
    ///
    /// # Errors
    /// [`Error::ApprovalRequestNotFound`], [`Error::ApprovalConsumed`],
    /// [`Error::TimesOutOfOrder`] (`at` before the request's creation).
    fn consume_approval_request(
        &mut self,
        hash: &ApprovalRequestHash,
        at: Timestamp,
        by: &ActorId,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Recovery sessions' non-secret metadata: at most one open session per
/// key version; rows are never deleted; an open session's idle deadline
/// moves, and it is closed once.
pub trait RecoverySessionStore {
    /// Stores a new, open session (`closed_at` and `outcome` must be
    /// `None`).
    ///
    /// # Errors
    /// [`Error::RecoverySessionExists`], [`Error::RecoverySessionOpen`]
    /// (another session of the version is open),
    /// [`Error::KeyVersionNotFound`], [`Error::ApprovalRequestNotFound`],
    /// [`Error::TimesOutOfOrder`].
    fn insert_recovery_session(
        &mut self,
        session: &RecoverySessionRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// A stored session, open or closed.
    ///
    /// # Errors
    /// [`Error::RecoverySessionNotFound`].
    fn recovery_session(
        &mut self,
        id: &RecoverySessionId,
    ) -> impl Future<Output = Result<RecoverySessionRecord, Error>> + Send;

    /// The open session of `version`, if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn open_recovery_session(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<Option<RecoverySessionRecord>, Error>> + Send;

    /// The session started last under the approval request `request`, if
    /// any, open or closed (a pre-approved drill schedule starts several:
    /// its cadence counts from the last).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn latest_recovery_session_of_request(
        &mut self,
        request: &ApprovalRequestHash,
    ) -> impl Future<Output = Result<Option<RecoverySessionRecord>, Error>> + Send;

    /// Moves an open session's idle deadline (its activity).
    ///
    /// # Errors
    /// [`Error::RecoverySessionNotFound`], [`Error::RecoverySessionClosed`],
    /// [`Error::TimesOutOfOrder`] (not after the start, or past the end).
    fn touch_recovery_session(
        &mut self,
        id: &RecoverySessionId,
        idle_expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Closes an open session at `at` with `outcome`, once (row-level:
    /// `UPDATE ... WHERE closed_at IS NULL`).
    ///
    /// # Errors
    /// [`Error::RecoverySessionNotFound`], [`Error::RecoverySessionClosed`],
    /// [`Error::TimesOutOfOrder`] (`at` before the start).
    fn close_recovery_session(
        &mut self,
        id: &RecoverySessionId,
        at: Timestamp,
        outcome: RecoverySessionOutcome,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Recovery drill reports, append-only.
pub trait DrillStore {
    /// Records a drill report of an existing version.
    ///
    /// # Errors
    /// [`Error::KeyVersionNotFound`], [`Error::DrillReportExists`],
    /// [`Error::TimesOutOfOrder`], [`Error::UnorderedShareIndices`],
    /// [`Error::BlobLength`].
    fn record_drill(
        &mut self,
        report: &DrillReport,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The drill reports of one version, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn drill_reports(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<Vec<DrillReport>, Error>> + Send;
}

/// Who read which sealed share, when: append-only.
pub trait ShareAccessLog {
    /// Records a read of a stored slot.
    ///
    /// # Errors
    /// [`Error::SealedShareNotFound`].
    fn record_share_access(
        &mut self,
        access: &ShareAccess,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The reads of one slot, in recording order.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn share_accesses(
        &mut self,
        slot: &ShareSlot,
    ) -> impl Future<Output = Result<Vec<ShareAccess>, Error>> + Send;

    /// Every read at or after `since`, oldest first, at most `limit` rows
    /// (capped at [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn share_accesses_since(
        &mut self,
        since: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ShareAccess>, Error>> + Send;
}

/// The raw append-only audit table. Storage knows nothing of hashing: it
/// hands the head to the audit crate's builder under the head lock and
/// stores what comes back with `sequence = head + 1`, `prev_hash = head`.
pub trait AuditStore {
    /// Appends one row. `build` runs under the head lock (the write
    /// transaction) and receives the current head. Several appends in one
    /// transaction (at most
    /// [`MAX_AUDIT_APPENDS_PER_TRANSACTION`](crate::MAX_AUDIT_APPENDS_PER_TRANSACTION))
    /// form a grouped commit.
    ///
    /// # Errors
    /// [`Error::AuditBatchFull`], [`Error::BlobLength`] for a record over
    /// [`MAX_AUDIT_RECORD_LEN`](crate::MAX_AUDIT_RECORD_LEN),
    /// [`Error::AuditSequenceExhausted`], [`Error::ReadOnlyTransaction`].
    fn append_audit<F>(&mut self, build: F) -> impl Future<Output = Result<AuditRow, Error>> + Send
    where
        F: FnOnce(&AuditHead) -> AuditEntry + Send;

    /// The current head ([`AuditHead::GENESIS`] for an empty log).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn audit_head(&mut self) -> impl Future<Output = Result<AuditHead, Error>> + Send;

    /// Rows with `sequence >= from`, in order, at most `limit` (capped at
    /// [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn read_audit(
        &mut self,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRow>, Error>> + Send;

    /// The log's identity, fixed when the log was created.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`] when the identity row is
    /// missing or malformed.
    fn audit_log_id(&mut self) -> impl Future<Output = Result<AuditLogId, Error>> + Send;

    /// Stores a signed checkpoint of a head on the chain: its sequence at
    /// or below the head, its hash the log's hash at that sequence. Several
    /// checkpoints of one sequence are all kept. A database trigger checks
    /// the same rule again.
    ///
    /// # Errors
    /// [`Error::CheckpointAhead`], [`Error::CheckpointOffChain`],
    /// [`Error::BlobLength`], [`Error::ReadOnlyTransaction`].
    fn store_checkpoint(
        &mut self,
        checkpoint: &StoredCheckpoint,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The checkpoint stored last, if any.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn latest_checkpoint(
        &mut self,
    ) -> impl Future<Output = Result<Option<StoredCheckpoint>, Error>> + Send;
}

/// The registry: persons with every key and identity they use, and the
/// custodian entities they act for. Checks look a person up at the time of
/// use, so a revocation takes effect at once.
pub trait RegistryStore {
    /// Registers a new person: active, at key epoch 1 (the epoch's
    /// validity starts at `registered_at`).
    ///
    /// # Errors
    /// [`Error::PersonExists`], [`Error::InvalidRegistration`] (not active
    /// or not epoch 1), [`Error::InvalidAgeRecipient`],
    /// [`Error::KeyInUse`] when any key or fingerprint is, or was in any
    /// epoch, another person's.
    fn register_person(
        &mut self,
        person: &PersonRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// One person, revoked or not.
    ///
    /// # Errors
    /// [`Error::PersonNotFound`].
    fn person(&mut self, id: &ActorId) -> impl Future<Output = Result<PersonRecord, Error>> + Send;

    /// The persons of `ids` that exist, revoked or not, in no particular
    /// order (an id without a person is simply absent): one query per
    /// [`PERSONS_PER_QUERY`](crate::PERSONS_PER_QUERY) ids, where
    /// [`person`](Self::person) is one per id.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn persons_named(
        &mut self,
        ids: &[ActorId],
    ) -> impl Future<Output = Result<Vec<PersonRecord>, Error>> + Send;

    /// The person whose current keys hold this mTLS certificate
    /// fingerprint, revoked or not (the caller checks the state); `None`
    /// when no person's current keys do.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn person_by_tls_fingerprint(
        &mut self,
        fingerprint: &[u8; PUBLIC_KEY_LEN],
    ) -> impl Future<Output = Result<Option<PersonRecord>, Error>> + Send;

    /// Persons ordered by id, after `after`, at most `limit` (capped at
    /// [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn persons(
        &mut self,
        after: Option<&ActorId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<PersonRecord>, Error>> + Send;

    /// Replaces an active person's keys: a new epoch starts at `at`, the
    /// current one ends there. Returns the new epoch.
    ///
    /// # Errors
    /// [`Error::PersonNotFound`], [`Error::PersonRevoked`],
    /// [`Error::InvalidAgeRecipient`], [`Error::KeyInUse`],
    /// [`Error::KeyRetired`] when a key is one the person held in an
    /// earlier epoch but not now,
    /// [`Error::TimesOutOfOrder`] when `at` is before the current epoch
    /// began, [`Error::CounterExhausted`].
    fn rotate_person_keys(
        &mut self,
        id: &ActorId,
        keys: &PersonKeys,
        at: Timestamp,
    ) -> impl Future<Output = Result<u32, Error>> + Send;

    /// Replaces an active person's roles.
    ///
    /// # Errors
    /// [`Error::PersonNotFound`], [`Error::PersonRevoked`].
    fn set_person_roles(
        &mut self,
        id: &ActorId,
        roles: RoleSet,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Revokes a person; their current key epoch ends at `at`.
    ///
    /// # Errors
    /// [`Error::PersonNotFound`], [`Error::PersonRevoked`] when already
    /// revoked, [`Error::TimesOutOfOrder`] when `at` is before the current
    /// epoch began.
    fn revoke_person(
        &mut self,
        id: &ActorId,
        by: &ActorId,
        reason: &FreeText<MAX_REVOCATION_REASON_LEN>,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Every key epoch of a person, oldest first. Append-only: the evidence
    /// a past signature is checked against.
    ///
    /// # Errors
    /// [`Error::PersonNotFound`].
    fn person_key_history(
        &mut self,
        id: &ActorId,
    ) -> impl Future<Output = Result<Vec<PersonKeyEpoch>, Error>> + Send;

    /// Registers a new, active custodian entity.
    ///
    /// # Errors
    /// [`Error::EntityExists`], [`Error::InvalidRegistration`] (not
    /// active), [`Error::InvalidMembers`], [`Error::PersonNotFound`],
    /// [`Error::PersonRevoked`], [`Error::PersonInOtherEntity`] (a person
    /// acts for at most one active entity).
    fn register_entity(
        &mut self,
        entity: &EntityRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// One entity, revoked or not.
    ///
    /// # Errors
    /// [`Error::EntityNotFound`].
    fn entity(
        &mut self,
        id: &CustodianId,
    ) -> impl Future<Output = Result<EntityRecord, Error>> + Send;

    /// Every entity, ordered by id.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn entities(&mut self) -> impl Future<Output = Result<Vec<EntityRecord>, Error>> + Send;

    /// Revokes an entity: it gets no new share, and its members may act for
    /// another entity.
    ///
    /// # Errors
    /// [`Error::EntityNotFound`], [`Error::EntityRevoked`] when already
    /// revoked.
    fn revoke_entity(
        &mut self,
        id: &CustodianId,
        by: &ActorId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Group keys of the MPC network and the backup policies in force.
pub trait GroupStore {
    /// Registers a group key; repeating it with the same values (any
    /// registration time) changes nothing.
    ///
    /// # Errors
    /// [`Error::GroupExists`] when the key id is registered with other
    /// values, [`Error::InvalidGroupParameters`], [`Error::BlobLength`].
    fn register_group(
        &mut self,
        group: &GroupRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// One group.
    ///
    /// # Errors
    /// [`Error::GroupNotFound`].
    fn group(&mut self, key_id: &KeyId) -> impl Future<Output = Result<GroupRecord, Error>> + Send;

    /// The registered groups among `keys`, in key order, each once: the
    /// groups of a status page in a query per
    /// [`KEYS_PER_QUERY`](crate::KEYS_PER_QUERY) keys.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn groups_of(
        &mut self,
        keys: &[KeyId],
    ) -> impl Future<Output = Result<Vec<GroupRecord>, Error>> + Send;

    /// Sets the policy in force (appends: every policy ever set is kept).
    ///
    /// # Errors
    /// [`Error::BlobLength`], [`Error::PolicyConflict`] when the hash was
    /// set with another encoding, [`Error::TimesOutOfOrder`] when `set_at`
    /// is before the current policy's.
    fn set_policy(
        &mut self,
        policy: &PolicyRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The policy set last, if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn current_policy(
        &mut self,
    ) -> impl Future<Output = Result<Option<PolicyRecord>, Error>> + Send;

    /// A policy by hash (as set first, if set several times).
    ///
    /// # Errors
    /// [`Error::PolicyNotFound`].
    fn policy(
        &mut self,
        hash: &[u8; DIGEST_LEN],
    ) -> impl Future<Output = Result<PolicyRecord, Error>> + Send;
}

/// Single-use inventory challenges and the proofs that answer them.
pub trait InventoryStore {
    /// Records a freshly issued challenge for the custodian mapped to the
    /// slot.
    ///
    /// # Errors
    /// [`Error::ChallengeExists`], [`Error::CustodyEntryNotFound`],
    /// [`Error::CustodianMismatch`], [`Error::TimesOutOfOrder`] when it
    /// expires before it is issued.
    fn issue_inventory_challenge(
        &mut self,
        challenge: &InventoryChallenge,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Consumes an open, unexpired challenge and returns it: single use.
    ///
    /// # Errors
    /// [`Error::ChallengeNotFound`], [`Error::ChallengeConsumed`],
    /// [`Error::ChallengeExpired`].
    fn consume_inventory_challenge(
        &mut self,
        nonce: &[u8; DIGEST_LEN],
        now: Timestamp,
    ) -> impl Future<Output = Result<InventoryChallenge, Error>> + Send;

    /// Records the verified proof of a consumed challenge, and sets the
    /// slot's confirmation time to `verified_at`.
    ///
    /// # Errors
    /// [`Error::ChallengeNotFound`], [`Error::ChallengeNotConsumed`],
    /// [`Error::ChallengeSlotMismatch`], [`Error::InventoryProofExists`],
    /// [`Error::CustodyPersonMismatch`], [`Error::TimesOutOfOrder`] when
    /// verified before the challenge was issued, [`Error::BlobLength`].
    fn record_inventory_proof(
        &mut self,
        proof: &InventoryProofRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Rate counters and anomaly records, in the database so that every
/// replica sees the same.
pub trait AccessControlStore {
    /// Adds one to the counter of (person, kind, window) and returns the
    /// new count: an upsert, so replicas share it.
    ///
    /// # Errors
    /// [`Error::CounterExhausted`], [`Error::Database`].
    fn bump_rate_counter(
        &mut self,
        person: &ActorId,
        kind: &Label,
        window_start: Timestamp,
    ) -> impl Future<Output = Result<u32, Error>> + Send;

    /// Appends an anomaly.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn record_anomaly(
        &mut self,
        anomaly: &AnomalyRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Anomalies at or after `since`, oldest first, at most `limit` (capped
    /// at [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn anomalies_since(
        &mut self,
        since: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AnomalyRecord>, Error>> + Send;

    /// How many anomalies of each kind were recorded, by kind.
    ///
    /// # Errors
    /// [`Error::Database`].
    fn anomaly_counts(&mut self) -> impl Future<Output = Result<Vec<(Label, u64)>, Error>> + Send;
}

/// Status and metrics: one query per page, never one per node.
pub trait StatusStore {
    /// The status of the versions `filter` selects, ordered by key, node
    /// and version, after `after` (keyset pagination), at most `limit`
    /// (capped at [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)). One SQL query.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn status_page(
        &mut self,
        filter: &StatusFilter,
        after: Option<&NodeVersion>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<VersionStatusRow>, Error>> + Send;

    /// Totals over the versions `filter` selects. One SQL query.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn status_summary(
        &mut self,
        filter: &StatusFilter,
    ) -> impl Future<Output = Result<StatusSummary, Error>> + Send;

    /// The active versions of one group key with, per custodian entity, how
    /// many of the version's shares it holds; ordered by node, version and
    /// custodian.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn exposure_rows(
        &mut self,
        key_id: &KeyId,
    ) -> impl Future<Output = Result<Vec<ExposureRow>, Error>> + Send;

    /// [`exposure_rows`](Self::exposure_rows) of each of `keys`, ordered by
    /// key, node, version and custodian, each row once: the keys of a
    /// status page in a query per [`KEYS_PER_QUERY`](crate::KEYS_PER_QUERY)
    /// keys.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn exposure_rows_of(
        &mut self,
        keys: &[KeyId],
    ) -> impl Future<Output = Result<Vec<ExposureRow>, Error>> + Send;

    /// Delivery attempts, confirmations and failure reasons over the
    /// versions that are not retired.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn delivery_stats(&mut self) -> impl Future<Output = Result<DeliveryStats, Error>> + Send;

    /// Drill counts and passes, and the latest `recent` drills (capped at
    /// [`MAX_PAGE_ROWS`](crate::MAX_PAGE_ROWS)).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn drill_stats(
        &mut self,
        recent: u32,
    ) -> impl Future<Output = Result<DrillStats, Error>> + Send;
}

/// Destruction statements of old external containers, one per slot.
pub trait DestructionStore {
    /// Records the (already verified) statement of one external slot.
    ///
    /// # Errors
    /// [`Error::CustodyEntryNotFound`] when the slot has no custody entry,
    /// [`Error::DestructionStatementExists`], [`Error::BlobLength`],
    /// [`Error::TimesOutOfOrder`] when it was recorded before the statement
    /// says the container was destroyed.
    fn record_destruction_statement(
        &mut self,
        record: &DestructionStatementRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The statements recorded for a version, by share index.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::CorruptRow`].
    fn destruction_statements(
        &mut self,
        version: &NodeVersion,
    ) -> impl Future<Output = Result<Vec<DestructionStatementRecord>, Error>> + Send;
}

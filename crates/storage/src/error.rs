//! The one error type of this crate.

use shardkeep_types::{
    ActorId, CustodianId, KekId, KeyId, NodeVersion, ShareSlot, Threshold, Timestamp,
};

use crate::records::{ApprovalRequestHash, RecoverySessionId};

/// Everything a storage operation can refuse or fail with.
///
/// Each missing, duplicate or conflicting record has its own variant, so the
/// service can audit and answer precisely. A failed write aborts the
/// transaction it came from: nothing it wrote is committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- input -----
    /// An opaque blob is shorter or longer than its field allows.
    #[error("{field} has {len} bytes; allowed {min}..={max}")]
    BlobLength {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
    },
    /// Two times of one record are in the wrong order (e.g. an expiry before
    /// the issue time, a cooldown that ends before it starts).
    #[error("{field} is earlier than the time it must follow")]
    TimesOutOfOrder {
        /// The field that is too early.
        field: &'static str,
    },
    /// Drill share indices are not strictly increasing.
    #[error("drill share indices must be strictly increasing")]
    UnorderedShareIndices,

    // ----- key versions -----
    /// No such key version.
    #[error("key version {0} not found")]
    KeyVersionNotFound(NodeVersion),
    /// The key version already exists.
    #[error("key version {0} already exists")]
    KeyVersionExists(NodeVersion),
    /// Another version of the node is active; one at a time.
    #[error("key version {active} is already active")]
    ActiveVersionExists {
        /// The version that is active.
        active: NodeVersion,
    },
    /// The key version is not in the state the operation needs.
    #[error("key version {version} is {found}, the operation needs {expected}")]
    KeyVersionState {
        /// The version.
        version: NodeVersion,
        /// The state the operation needs.
        expected: &'static str,
        /// The state it is in.
        found: &'static str,
    },
    /// The key version's retirement cooldown has not ended.
    #[error("key version {version} is in cooldown until {until}")]
    KeyVersionCooldown {
        /// The version.
        version: NodeVersion,
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// The share index is above the version's share count.
    #[error("share slot {slot} is beyond the version's {total} shares")]
    ShareIndexOutOfRange {
        /// The slot.
        slot: ShareSlot,
        /// The version's share count.
        total: u8,
    },

    // ----- server-held share slots -----
    /// No sealed share in this slot.
    #[error("no sealed share in slot {0}")]
    SealedShareNotFound(ShareSlot),
    /// The slot already holds a sealed share (or once did).
    #[error("slot {0} already holds a sealed share")]
    SealedShareExists(ShareSlot),
    /// The slot is mapped to an external custodian, so the server cannot
    /// hold it.
    #[error("slot {0} belongs to an external custodian")]
    SlotHeldByCustodian(ShareSlot),
    /// The slot is held by the server, so it cannot go to a custodian.
    #[error("slot {0} is held by the server")]
    SlotHeldByServer(ShareSlot),
    /// The slot is soft-deleted: unreadable until rolled back.
    #[error("slot {slot} is soft-deleted (cooldown until {cooldown_until})")]
    SlotSoftDeleted {
        /// The slot.
        slot: ShareSlot,
        /// When its cooldown ends.
        cooldown_until: Timestamp,
    },
    /// The slot is hard-deleted: gone for good.
    #[error("slot {0} is hard-deleted")]
    SlotHardDeleted(ShareSlot),
    /// The operation needs a soft-deleted slot and this one is active.
    #[error("slot {0} is not soft-deleted")]
    SlotNotSoftDeleted(ShareSlot),
    /// The slot's deletion cooldown has not ended.
    #[error("slot {slot} is in cooldown until {until}")]
    SlotCooldown {
        /// The slot.
        slot: ShareSlot,
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// The bytes given as a sealed envelope are not a well-formed sealed
    /// envelope (structure, caps, checksum; a plain envelope is refused).
    #[error("not a well-formed sealed envelope: {0}")]
    InvalidEnvelope(#[source] shardkeep_envelope::Error),
    /// The envelope's header names another slot than the one it is stored
    /// or re-wrapped in: filed there it would be recovered, deleted and
    /// audited as another share.
    #[error("the envelope for slot {slot} is the envelope of {envelope_slot}")]
    EnvelopeSlotMismatch {
        /// The slot of the row.
        slot: ShareSlot,
        /// The slot the envelope's header names.
        envelope_slot: ShareSlot,
    },
    /// A re-wrapped envelope is not the stored envelope (its signed bytes,
    /// hence its id, differ): a re-wrap only replaces the key-wrap trailer.
    #[error("the re-wrapped envelope for slot {0} is not the stored envelope")]
    EnvelopeIdMismatch(ShareSlot),
    /// A re-wrap named a KEK other than the stored one.
    #[error("slot {slot} is wrapped under {stored}, not the KEK named")]
    KekMismatch {
        /// The slot.
        slot: ShareSlot,
        /// The KEK actually stored.
        stored: KekId,
    },

    // ----- slot KEKs -----
    /// The slot already has a live KEK; destroy it (and record that) first.
    #[error("slot {0} already has a live KEK")]
    SlotKekExists(ShareSlot),
    /// The KEK id was already recorded (for this slot or another): a KEK
    /// seals one slot, once.
    #[error("KEK {0} is already recorded")]
    KekIdInUse(KekId),
    /// The slot has no live KEK.
    #[error("slot {0} has no live KEK")]
    SlotKekNotFound(ShareSlot),

    // ----- custody map and receipts -----
    /// No custodian is mapped to the slot.
    #[error("no custodian mapped to slot {0}")]
    CustodyEntryNotFound(ShareSlot),
    /// A custodian is already mapped to the slot.
    #[error("a custodian is already mapped to slot {0}")]
    CustodyEntryExists(ShareSlot),
    /// The delivery names a custodian other than the mapped one.
    #[error("slot {slot} is mapped to custodian {mapped}")]
    CustodianMismatch {
        /// The slot.
        slot: ShareSlot,
        /// The custodian in the map.
        mapped: CustodianId,
    },
    /// The slot already has a confirmed delivery receipt.
    #[error("slot {0} already has a delivery receipt")]
    ReceiptExists(ShareSlot),

    // ----- approvals -----
    /// No approval request with this hash.
    #[error("approval request {0} not found")]
    ApprovalRequestNotFound(ApprovalRequestHash),
    /// A request with this hash was already stored.
    #[error("approval request {0} already exists")]
    ApprovalRequestExists(ApprovalRequestHash),
    /// The request was already consumed by an operation.
    #[error("approval request {0} was already consumed")]
    ApprovalConsumed(ApprovalRequestHash),
    /// This person already approved the request.
    #[error("{approver} already approved request {request}")]
    ApprovalExists {
        /// The request.
        request: ApprovalRequestHash,
        /// The approver.
        approver: ActorId,
    },
    /// The approver is the requester.
    #[error("{0} cannot approve their own request")]
    ApproverIsRequester(ActorId),

    // ----- audit reviews -----
    /// This person already reviewed this range of the audit log.
    #[error("{0} already reviewed this range of the audit log")]
    AuditReviewExists(ActorId),
    /// This review signature is already stored: a replay.
    #[error("this audit review signature is already recorded")]
    AuditReviewSignatureExists,
    /// A reviewed range that is not `1 <= first <= last`.
    #[error("an audit review range must satisfy 1 <= first <= last")]
    AuditReviewRangeInvalid,

    // ----- recovery sessions -----
    /// No recovery session with this id.
    #[error("recovery session {0} not found")]
    RecoverySessionNotFound(RecoverySessionId),
    /// A session with this id was already stored.
    #[error("recovery session {0} already exists")]
    RecoverySessionExists(RecoverySessionId),
    /// Another session of the key version is open.
    #[error("a recovery session of {0} is already open")]
    RecoverySessionOpen(NodeVersion),
    /// The session was already closed.
    #[error("recovery session {0} is closed")]
    RecoverySessionClosed(RecoverySessionId),

    // ----- drills -----
    /// A drill report for this version and start time exists.
    #[error("a drill report for {target} started at {started_at} already exists")]
    DrillReportExists {
        /// The version drilled.
        target: NodeVersion,
        /// When it started.
        started_at: Timestamp,
    },

    // ----- destruction statements -----
    /// The slot already has a destruction statement.
    #[error("a destruction statement for {0} is already recorded")]
    DestructionStatementExists(ShareSlot),

    // ----- audit -----
    /// A transaction may append at most
    /// [`MAX_AUDIT_APPENDS_PER_TRANSACTION`](crate::MAX_AUDIT_APPENDS_PER_TRANSACTION)
    /// audit records.
    #[error("a transaction may append at most {max} audit records")]
    AuditBatchFull {
        /// The limit.
        max: usize,
    },
    /// The audit log has reached the largest sequence number.
    #[error("the audit log is full")]
    AuditSequenceExhausted,
    /// A checkpoint names a sequence beyond the head of the log.
    #[error("checkpoint sequence {sequence} is beyond the audit head {head}")]
    CheckpointAhead {
        /// The checkpoint's sequence.
        sequence: u64,
        /// The head's sequence.
        head: u64,
    },
    /// A checkpoint's head hash is not the log's hash at its sequence: it
    /// names a head that is not on this chain.
    #[error("checkpoint of audit sequence {0} names a hash that is not the log's")]
    CheckpointOffChain(u64),

    // ----- registry -----
    /// No person with this id is registered.
    #[error("person {0} is not registered")]
    PersonNotFound(ActorId),
    /// A person with this id is already registered.
    #[error("person {0} is already registered")]
    PersonExists(ActorId),
    /// The person is revoked.
    #[error("person {0} is revoked")]
    PersonRevoked(ActorId),
    /// A key or identity is (or was, in any key epoch) another person's:
    /// keys are never shared, so a signature names one person.
    #[error("the {kind} is registered to another person")]
    KeyInUse {
        /// Which key: `receipt key`, `approval key`, `age recipient` or
        /// `TLS fingerprint`.
        kind: &'static str,
    },
    /// A key or identity the person held in an earlier key epoch, rotated
    /// out since: a key retired (perhaps because it leaked) never comes
    /// back.
    #[error("the {kind} was rotated out of this person's keys and cannot be registered again")]
    KeyRetired {
        /// Which key: `receipt key`, `approval key`, `age recipient` or
        /// `TLS fingerprint`.
        kind: &'static str,
    },
    /// An age recipient is empty, longer than
    /// [`MAX_AGE_RECIPIENT_LEN`](crate::MAX_AGE_RECIPIENT_LEN) or not
    /// printable ASCII.
    #[error("an age recipient must be 1 to 128 printable ASCII characters")]
    InvalidAgeRecipient,
    /// A registration must be new: a person active at key epoch 1, an
    /// entity active.
    #[error("a new registration cannot have this {field}")]
    InvalidRegistration {
        /// The field: `key_epoch` or `state`.
        field: &'static str,
    },
    /// No custodian entity with this id is registered.
    #[error("custodian entity {0} is not registered")]
    EntityNotFound(CustodianId),
    /// A custodian entity with this id is already registered.
    #[error("custodian entity {0} is already registered")]
    EntityExists(CustodianId),
    /// The custodian entity is revoked.
    #[error("custodian entity {0} is revoked")]
    EntityRevoked(CustodianId),
    /// An entity's members must be sorted, without repeats, and 1 to
    /// [`MAX_ENTITY_MEMBERS`](crate::MAX_ENTITY_MEMBERS).
    #[error("entity members must be 1 to 64 persons, sorted, without repeats")]
    InvalidMembers,
    /// The person already acts for another active entity: one person, at
    /// most one entity, so that distinct entities are distinct people.
    #[error("{person} already acts for custodian entity {entity}")]
    PersonInOtherEntity {
        /// The person.
        person: ActorId,
        /// The active entity they act for.
        entity: CustodianId,
    },
    /// The person does not act for the entity.
    #[error("{person} does not act for custodian entity {entity}")]
    PersonNotMember {
        /// The person.
        person: ActorId,
        /// The entity.
        entity: CustodianId,
    },

    // ----- groups, policies, split references -----
    /// No group with this key id is registered.
    #[error("group {0} is not registered")]
    GroupNotFound(KeyId),
    /// The group is registered with other values.
    #[error("group {0} is registered with other values")]
    GroupExists(KeyId),
    /// A group's tss-lib degree must be at least 1 and below its party
    /// count.
    #[error("tss-lib degree {tss_degree} does not fit {parties} parties")]
    InvalidGroupParameters {
        /// The degree.
        tss_degree: u16,
        /// The party count.
        parties: u16,
    },
    /// No policy with this hash was set.
    #[error("policy {} was never set", hex::encode(.0))]
    PolicyNotFound([u8; 32]),
    /// A policy with this hash was set with another encoding.
    #[error("policy {} was set with another encoding", hex::encode(.0))]
    PolicyConflict([u8; 32]),
    /// The version has no split reference (it was created before they were
    /// stored).
    #[error("key version {0} has no split reference")]
    SplitReferenceNotFound(NodeVersion),
    /// The split's server shares must be below `t`, and the external ones
    /// at least `t`.
    #[error("{server_shares} server shares do not fit a {threshold} split")]
    ServerSharesOutOfRange {
        /// The server shares asked for.
        server_shares: u8,
        /// The version's threshold.
        threshold: Threshold,
    },
    /// The split reference names another curve than the group's.
    #[error("the split is on curve {reference}, the group on curve {group}")]
    CurveMismatch {
        /// The group's curve byte.
        group: u8,
        /// The reference's curve byte.
        reference: u8,
    },
    /// A counter (key version, key epoch, rate counter) reached its
    /// largest value.
    #[error("the {counter} counter is exhausted")]
    CounterExhausted {
        /// Which counter.
        counter: &'static str,
    },

    // ----- custody (backup) -----
    /// The slot's custody entry was made before the registry existed: it
    /// names no person, recipient or container. Reassign the slot (or
    /// regenerate the version).
    #[error("slot {0} has a custody entry from before the registry")]
    LegacyCustodyEntry(ShareSlot),
    /// The recipient is not the person's registered age recipient.
    #[error("slot {0}: the recipient is not the person's registered age recipient")]
    RecipientMismatch(ShareSlot),
    /// The entity already holds another share of the version: a custodian
    /// never holds two shares of one node.
    #[error("custodian entity {entity} already holds {slot}")]
    EntityHoldsShare {
        /// The entity.
        entity: CustodianId,
        /// The slot it holds.
        slot: ShareSlot,
    },
    /// The delivery names another envelope than the one in the slot's
    /// container.
    #[error("slot {0}: the delivery names another envelope than the custody map")]
    DeliveryEnvelopeMismatch(ShareSlot),

    // ----- inventory -----
    /// No inventory challenge with this nonce.
    #[error("inventory challenge {} not found", hex::encode(.0))]
    ChallengeNotFound([u8; 32]),
    /// The nonce was already issued.
    #[error("inventory challenge {} already exists", hex::encode(.0))]
    ChallengeExists([u8; 32]),
    /// The challenge was already used.
    #[error("inventory challenge {} was already consumed", hex::encode(.0))]
    ChallengeConsumed([u8; 32]),
    /// The challenge lapsed.
    #[error("inventory challenge {} expired at {expired_at}", hex::encode(.nonce))]
    ChallengeExpired {
        /// The nonce.
        nonce: [u8; 32],
        /// When it expired.
        expired_at: Timestamp,
    },
    /// A proof can only be recorded for a consumed challenge.
    #[error("inventory challenge {} is not consumed", hex::encode(.0))]
    ChallengeNotConsumed([u8; 32]),
    /// The proof names another slot than its challenge.
    #[error("inventory challenge {} is for another slot", hex::encode(.0))]
    ChallengeSlotMismatch([u8; 32]),
    /// The challenge already has a proof.
    #[error("inventory challenge {} already has a proof", hex::encode(.0))]
    InventoryProofExists([u8; 32]),
    /// The proof's signer is not the person the slot's share was sealed to.
    #[error("slot {slot} is held by {expected}")]
    CustodyPersonMismatch {
        /// The slot.
        slot: ShareSlot,
        /// The person of its custody entry.
        expected: ActorId,
    },

    // ----- transactions and backends -----
    /// A write in a read-only transaction.
    #[error("write refused: the transaction is read-only")]
    ReadOnlyTransaction,
    /// An earlier operation in this transaction failed; it can only be
    /// rolled back (or dropped).
    #[error("the transaction is aborted by an earlier error; roll it back")]
    TransactionAborted,
    /// A row changed under a write that held the write lock: something
    /// outside this crate wrote to the database.
    #[error("concurrent change to {table} outside the write lock")]
    WriteConflict {
        /// The table.
        table: &'static str,
    },
    /// No database connection within the acquire timeout: the database is
    /// down or unreachable, or every connection of the pool stayed busy.
    /// Nothing was done; retry later.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database unavailable during {operation}: {source}")]
    DatabaseUnavailable {
        /// What storage was doing.
        operation: &'static str,
        /// The driver's error (a pool timeout or an I/O error).
        #[source]
        source: sqlx::Error,
    },
    /// The PostgreSQL server runs with a setting that can lose committed
    /// transactions after a crash (`fsync` or `synchronous_commit` off), so
    /// a recorded operation, approval or audit record could vanish.
    #[error("PostgreSQL setting {setting} = {value} can lose committed transactions")]
    NotDurable {
        /// The setting.
        setting: &'static str,
        /// Its value on the server.
        value: String,
    },
    /// The database refused the statement for lack of privilege
    /// (PostgreSQL SQLSTATE 42501), or one of this crate's triggers refused
    /// a change to evidence: something tried to write what the service may
    /// not. The service records an anomaly
    /// ([`Error::is_privilege_violation`] asks in any build).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("privilege violation during {operation}: {source}")]
    PrivilegeViolation {
        /// What storage was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database failed or refused the statement.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database error during {operation}: {source}")]
    Database {
        /// What storage was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying or checking the schema migrations failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("schema migration failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// The database schema is not at the version this build needs (run the
    /// migrations as the owner role).
    #[error("database schema is at migration {found:?}, this build needs {expected}")]
    SchemaOutdated {
        /// The latest applied migration, if any.
        found: Option<i64>,
        /// The latest migration this build ships.
        expected: i64,
    },
    /// A stored row does not decode: the database was changed outside
    /// this crate.
    #[error("corrupt row in {table}: bad {column}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// Creating or opening the database file failed.
    #[error("database file: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether this is an `Error::PrivilegeViolation`: the database
    /// refused a statement the service role may not run. Callers that work
    /// over any backend ask this instead of naming the variant, which only
    /// a build with a backend (feature `sqlite` or `postgres`) has; in a
    /// build without one no statement runs, and the answer is `false`.
    #[must_use]
    pub fn is_privilege_violation(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::PrivilegeViolation { .. } => true,
            _ => false,
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Error {
    /// Maps a driver error: [`Error::DatabaseUnavailable`] when no
    /// connection could be had (pool timeout, I/O error), else
    /// [`Error::Database`].
    pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| match source {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                Self::DatabaseUnavailable { operation, source }
            }
            source if is_privilege_violation(&source) => {
                Self::PrivilegeViolation { operation, source }
            }
            source => Self::Database { operation, source },
        }
    }
}

/// SQLSTATE `insufficient_privilege`: a missing grant, or a refusal of one
/// of this crate's PostgreSQL triggers guarding evidence.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const PG_INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE `integrity_constraint_violation`, bare: PostgreSQL raises its
/// own constraint failures with a subclass (`23505`, `23514`...), so the
/// bare class comes only from this crate's triggers (audit chain, single
/// consumption, KEK destroyed once, checkpoints on the chain).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const PG_TRIGGER_REFUSAL: &str = "23000";
/// `SQLITE_CONSTRAINT_TRIGGER`: a `RAISE(ABORT, ...)` in a trigger; every
/// trigger of this crate's SQLite schema refuses a change to evidence.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const SQLITE_CONSTRAINT_TRIGGER: &str = "1811";

/// Whether the database refused for lack of privilege or by one of this
/// crate's guard triggers. The codes cannot be confused: PostgreSQL's are
/// five-character SQLSTATEs, SQLite's are extended result codes, and
/// neither `42501` nor `23000` is a SQLite extended code.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn is_privilege_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|code| {
            matches!(
                code.as_ref(),
                PG_INSUFFICIENT_PRIVILEGE | PG_TRIGGER_REFUSAL | SQLITE_CONSTRAINT_TRIGGER
            )
        })
}

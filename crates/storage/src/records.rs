//! The records storage keeps. Plain data with public fields; the backends
//! validate them on write and again on read.

use core::fmt;

use shardkeep_envelope::SealedEnvelopeFrame;

use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, KekId, KeyId, Label, NodeId, NodeVersion,
    ShareSlot, Timestamp,
};
use shardkeep_types::{ShareIndex, Threshold};
// The audit chain's vocabulary lives below storage, so that the audit
// verifier needs no storage crate; storage names it as its own.
pub use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditHead, AuditLogId, AuditRow};

use crate::error::Error;
use crate::types::check_blob;

/// Longest stored envelope, in bytes (a signed, sealed share envelope is a
/// few kilobytes even with 255 Feldman commitments).
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;
/// Longest deletion evidence, in bytes.
pub const MAX_EVIDENCE_LEN: usize = 64 * 1024;
/// Longest signed delivery receipt, in bytes.
pub const MAX_RECEIPT_LEN: usize = 16 * 1024;
/// Longest drill report body, in bytes.
pub const MAX_DRILL_REPORT_LEN: usize = 64 * 1024;
/// Longest custodian contact, in bytes.
pub const MAX_CONTACT_LEN: usize = 512;
/// Longest failure reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Length of an envelope id, a request hash and an approval nonce.
pub const DIGEST_LEN: usize = 32;
/// Length of an ed25519 approval signature.
pub const SIGNATURE_LEN: usize = 64;

/// Where a key version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyVersionState {
    /// In use: its shares are the ones that recover the node.
    Active,
    /// Replaced by a newer version and in its cooldown; can be rolled back.
    Retiring {
        /// When retirement began.
        since: Timestamp,
        /// When the cooldown ends and the version may be retired.
        cooldown_until: Timestamp,
    },
    /// Retired for good.
    Retired {
        /// When retirement began.
        since: Timestamp,
        /// When the version was retired.
        at: Timestamp,
    },
}

impl KeyVersionState {
    /// The state's name, for errors and reports.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Retiring { .. } => "retiring",
            Self::Retired { .. } => "retired",
        }
    }
}

/// A key version: one split of one node's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionRecord {
    /// Which key, node and version.
    pub version: NodeVersion,
    /// The split's threshold and share count.
    pub threshold: Threshold,
    /// When the version was created.
    pub created_at: Timestamp,
    /// Where it is in its life.
    pub state: KeyVersionState,
    /// Who created it; `None` for a version created before creators were
    /// recorded (schema version 6).
    pub created_by: Option<ActorId>,
    /// The last change that makes a drill due (`created` at creation, then
    /// what [`record_version_change`](crate::KeyVersionStore::record_version_change)
    /// recorded).
    pub last_change: Label,
    /// When it happened.
    pub last_change_at: Timestamp,
}

/// A share held by the server: its signed, sealed envelope. The envelope's
/// unsigned trailer names the slot's KEK and carries the data key it
/// wrapped; a re-wrap replaces the trailer and keeps the signed bytes, so
/// the envelope id stays.
///
/// The envelope bytes are the one source of the KEK id, the wrapped key and
/// the envelope id ([`SealedShare::frame`]): what is stored is what a
/// reader opens. Storage checks on every store, re-wrap and load that the
/// envelope is a well-formed sealed envelope of [`slot`](Self::slot).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedShare {
    /// The slot the share fills: its envelope's header must name it.
    pub slot: ShareSlot,
    /// The sealed envelope (at most [`MAX_ENVELOPE_LEN`] bytes; the
    /// envelope crate owns the format).
    pub envelope: Vec<u8>,
    /// When the share was stored.
    pub stored_at: Timestamp,
}

impl SealedShare {
    /// The envelope's frame (envelope id, slot, KEK id, wrapped key),
    /// unauthenticated: readers still verify the envelope's signature.
    ///
    /// # Errors
    /// [`Error::BlobLength`], [`Error::InvalidEnvelope`] when the bytes are
    /// not a well-formed sealed envelope, [`Error::EnvelopeSlotMismatch`]
    /// when its header names another slot.
    pub fn frame(&self) -> Result<SealedEnvelopeFrame, Error> {
        sealed_frame(&self.slot, &self.envelope)
    }
}

/// The frame of `envelope`, which must be a sealed envelope of `slot`.
pub(crate) fn sealed_frame(
    slot: &ShareSlot,
    envelope: &[u8],
) -> Result<SealedEnvelopeFrame, Error> {
    check_blob("envelope", envelope, 1, MAX_ENVELOPE_LEN)?;
    let frame = SealedEnvelopeFrame::parse(envelope).map_err(Error::InvalidEnvelope)?;
    if frame.slot() != *slot {
        return Err(Error::EnvelopeSlotMismatch {
            slot: slot.clone(),
            envelope_slot: frame.slot(),
        });
    }
    Ok(frame)
}

impl fmt::Debug for SealedShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedShare")
            .field("slot", &self.slot)
            .field("envelope_len", &self.envelope.len())
            .field("stored_at", &self.stored_at)
            .finish()
    }
}

/// The deletion state of a server-held share slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// Stored and readable.
    Active,
    /// Registered for deletion; unreadable; can be rolled back until it is
    /// hard-deleted, which the cooldown holds off.
    SoftDeleted {
        /// When deletion was registered.
        at: Timestamp,
        /// Who registered it.
        by: ActorId,
        /// The earliest time of the hard delete.
        cooldown_until: Timestamp,
    },
    /// Gone: envelope and wrapped key erased, the KEK destroyed by the
    /// caller; the evidence stays.
    HardDeleted {
        /// When deletion was registered.
        soft_deleted_at: Timestamp,
        /// When it was hard-deleted.
        at: Timestamp,
        /// What proves it (opaque: the caller's signed statement, the HSM's
        /// destroy confirmation...).
        evidence: Vec<u8>,
    },
}

impl SlotState {
    /// The state's name, for errors and reports.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::SoftDeleted { .. } => "soft-deleted",
            Self::HardDeleted { .. } => "hard-deleted",
        }
    }
}

/// What a listing shows of a server-held slot: everything but the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSummary {
    /// The slot.
    pub slot: ShareSlot,
    /// The KEK of its wrapped data key.
    pub kek_id: KekId,
    /// Its envelope id.
    pub envelope_id: [u8; DIGEST_LEN],
    /// When it was stored.
    pub stored_at: Timestamp,
    /// Its deletion state.
    pub state: SlotState,
}

/// Which slots a listing returns; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFilter {
    /// Only this group key.
    pub key_id: Option<KeyId>,
    /// Only this node.
    pub node_id: Option<NodeId>,
    /// Only this version (meaningful with a key and node).
    pub version: Option<shardkeep_types::KeyVersion>,
}

/// The KEK dedicated to one server-held slot, as the key store pinned it
/// when it created the key: its id and the fingerprint of the key itself,
/// which the key store checks before it opens or destroys the key. Records
/// are never removed: a destroyed KEK's record is the evidence of its
/// destruction.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotKekRecord {
    /// The slot the KEK seals.
    pub slot: ShareSlot,
    /// The KEK's id.
    pub kek_id: KekId,
    /// The key store's fingerprint of the key (public: it identifies the
    /// key, it does not reveal it).
    pub fingerprint: [u8; DIGEST_LEN],
    /// When the KEK was created.
    pub created_at: Timestamp,
    /// When it was destroyed, if it was.
    pub destroyed_at: Option<Timestamp>,
}

impl fmt::Debug for SlotKekRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotKekRecord")
            .field("slot", &self.slot)
            .field("kek_id", &self.kek_id)
            .field("fingerprint", &hex::encode(self.fingerprint))
            .field("created_at", &self.created_at)
            .field("destroyed_at", &self.destroyed_at)
            .finish()
    }
}

/// Who holds an external share: the custodian entity, the member the
/// share was sealed to, and what was delivered.
#[derive(Clone, PartialEq, Eq)]
pub struct CustodyEntry {
    /// The slot of the external share.
    pub slot: ShareSlot,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// The entity's member whose age recipient the container was sealed to
    /// and whose receipt key signs receipts and inventory proofs for it.
    pub person: ActorId,
    /// The age recipient the container was sealed to: the person's
    /// registered recipient when the entry was written.
    pub recipient: String,
    /// The envelope inside the container.
    pub envelope_id: EnvelopeId,
    /// The tagged SHA-256 hash of the container as delivered.
    pub container_hash: [u8; DIGEST_LEN],
    /// When the entry was written or last changed.
    pub updated_at: Timestamp,
    /// The last receipt or inventory proof: when the custodian last showed
    /// it holds the share.
    pub confirmed_at: Option<Timestamp>,
}

impl fmt::Debug for CustodyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustodyEntry")
            .field("slot", &self.slot)
            .field("custodian", &self.custodian)
            .field("person", &self.person)
            .field("recipient", &self.recipient)
            .field("envelope_id", &self.envelope_id)
            .field("container_hash", &hex::encode(self.container_hash))
            .field("updated_at", &self.updated_at)
            .field("confirmed_at", &self.confirmed_at)
            .finish()
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The custodian confirmed receipt; the record holds their signed receipt.
    Delivered {
        /// The signed receipt, opaque (the envelope crate owns the format).
        receipt: Vec<u8>,
    },
    /// The delivery failed.
    Failed {
        /// Why, for people (at most [`MAX_REASON_LEN`] bytes).
        reason: FreeText<MAX_REASON_LEN>,
    },
}

/// One delivery attempt of an external share: the delivery certificate is
/// the set of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The slot delivered.
    pub slot: ShareSlot,
    /// The custodian it went to (must match the custody map).
    pub custodian: CustodianId,
    /// The envelope delivered.
    pub envelope_id: [u8; DIGEST_LEN],
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Longest stored approval request encoding, in bytes.
pub const MAX_APPROVAL_REQUEST_LEN: usize = 4096;

/// The hash naming one approval request (SHA-256 of its tagged canonical
/// encoding, computed by the layer that encodes it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalRequestHash(pub [u8; DIGEST_LEN]);

impl fmt::Debug for ApprovalRequestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalRequestHash({})", hex::encode(self.0))
    }
}

impl fmt::Display for ApprovalRequestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A sensitive operation that needs approvals. The codes are part of the
/// stored and signed formats: never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApprovalOperation {
    /// Recover a node's share (code 1).
    Recover,
    /// Run a recovery drill (code 2).
    Drill,
    /// Delete share slots (code 3).
    Delete,
    /// Change the split policy (code 4).
    PolicyChange,
    /// Change who may approve (code 5).
    ApproverSetChange,
}

impl ApprovalOperation {
    /// Every operation, in code order.
    pub const ALL: [Self; 5] = [
        Self::Recover,
        Self::Drill,
        Self::Delete,
        Self::PolicyChange,
        Self::ApproverSetChange,
    ];

    /// The operation's code in the stored and signed formats.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Recover => 1,
            Self::Drill => 2,
            Self::Delete => 3,
            Self::PolicyChange => 4,
            Self::ApproverSetChange => 5,
        }
    }

    /// The operation of a code, if any.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Recover),
            2 => Some(Self::Drill),
            3 => Some(Self::Delete),
            4 => Some(Self::PolicyChange),
            5 => Some(Self::ApproverSetChange),
            _ => None,
        }
    }

    /// The operation's name, for people.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Recover => "recover",
            Self::Drill => "drill",
            Self::Delete => "delete",
            Self::PolicyChange => "policy-change",
            Self::ApproverSetChange => "approver-set-change",
        }
    }
}

impl fmt::Display for ApprovalOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored approval request: its canonical encoding (what approvers sign
/// the hash of) with the fields storage indexes and checks, and whether an
/// operation consumed it. Consumed once, in the operation's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequestRecord {
    /// The request's hash (primary key).
    pub hash: ApprovalRequestHash,
    /// The canonical encoding (at most [`MAX_APPROVAL_REQUEST_LEN`] bytes).
    pub encoding: Vec<u8>,
    /// The operation asked for.
    pub operation: ApprovalOperation,
    /// The key version it touches, if any (policy and approver-set changes
    /// touch none).
    pub subject: Option<NodeVersion>,
    /// Who asked.
    pub requester: ActorId,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it lapses (after `created_at`).
    pub expires_at: Timestamp,
    /// When an operation consumed it.
    pub consumed_at: Option<Timestamp>,
    /// Who ran the operation that consumed it.
    pub consumed_by: Option<ActorId>,
}

/// One approver's signed approval of a request. Append-only.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The request approved.
    pub request_hash: ApprovalRequestHash,
    /// The approving person.
    pub approver: ActorId,
    /// The role they approve in.
    pub role: Role,
    /// Their ed25519 signature with their registered approval key (checked
    /// by the caller before recording).
    pub signature: [u8; SIGNATURE_LEN],
    /// When it was recorded.
    pub approved_at: Timestamp,
}

impl fmt::Debug for ApprovalRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalRecord")
            .field("request_hash", &self.request_hash)
            .field("approver", &self.approver)
            .field("role", &self.role)
            .field("signature", &hex::encode(self.signature))
            .field("approved_at", &self.approved_at)
            .finish()
    }
}

/// The name of one recovery session: 16 random bytes drawn by the service.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecoverySessionId(pub [u8; 16]);

impl fmt::Debug for RecoverySessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoverySessionId({})", hex::encode(self.0))
    }
}

impl fmt::Display for RecoverySessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// How a recovery session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoverySessionOutcome {
    /// The share was recovered, written, loaded and self-tested.
    Completed,
    /// The recovery failed after threshold (combine, regenerate, self-test).
    Failed,
    /// The session lapsed (idle or past its end) before it completed.
    Expired,
    /// The service gave it up (its replica lost it, or it was cancelled).
    Abandoned,
}

impl RecoverySessionOutcome {
    /// Every outcome.
    pub const ALL: [Self; 4] = [
        Self::Completed,
        Self::Failed,
        Self::Expired,
        Self::Abandoned,
    ];

    /// The stored name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for RecoverySessionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A recovery session's non-secret metadata. The secret (the one-time age
/// identity, the shares received) lives only in the memory of the replica
/// named here. At most one session per key version is open at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySessionRecord {
    /// The session's id (primary key).
    pub id: RecoverySessionId,
    /// The key version it recovers (must exist).
    pub version: NodeVersion,
    /// The split id of that version.
    pub split_id: [u8; DIGEST_LEN],
    /// Recover or drill.
    pub operation: ApprovalOperation,
    /// The approval request it consumed (must exist).
    pub request_hash: ApprovalRequestHash,
    /// The replica whose memory holds the session's secret.
    pub replica: Label,
    /// Who started it.
    pub started_by: ActorId,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ends at the latest (after `started_at`).
    pub expires_at: Timestamp,
    /// When it lapses unless used again (after `started_at`, at most
    /// `expires_at`).
    pub idle_expires_at: Timestamp,
    /// When it was closed.
    pub closed_at: Option<Timestamp>,
    /// How it ended (set with `closed_at`).
    pub outcome: Option<RecoverySessionOutcome>,
}

/// How a recovery drill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillOutcome {
    /// The node's share was recovered, written and passed its self-test.
    Passed,
    /// The drill failed.
    Failed {
        /// Why, for people (at most [`MAX_REASON_LEN`] bytes).
        reason: FreeText<MAX_REASON_LEN>,
    },
}

/// A recovery drill report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    /// The key version drilled.
    pub target: NodeVersion,
    /// When the drill started (with the target, identifies the report).
    pub started_at: Timestamp,
    /// When it ended (not before it started).
    pub finished_at: Timestamp,
    /// Who ran it.
    pub operator: ActorId,
    /// The external shares used, in increasing order without repeats.
    pub shares_used: Vec<ShareIndex>,
    /// How it ended.
    pub outcome: DrillOutcome,
    /// The full report, opaque (at most [`MAX_DRILL_REPORT_LEN`] bytes).
    pub report: Vec<u8>,
}

/// One read of a sealed share: who, why, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareAccess {
    /// The slot read.
    pub slot: ShareSlot,
    /// Who read it.
    pub accessor: ActorId,
    /// Why (e.g. `recover`, `rewrap`).
    pub purpose: Label,
    /// When.
    pub at: Timestamp,
}

/// What the audit crate's builder returns under the head lock: the record's
/// canonical bytes and the hash that chains it to the head it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Canonical record bytes, opaque here (at most
    /// [`MAX_AUDIT_RECORD_LEN`](crate::MAX_AUDIT_RECORD_LEN)).
    pub record: Vec<u8>,
    /// The record's chained hash.
    pub hash: [u8; DIGEST_LEN],
}

/// A signed checkpoint as stored beside the audit table: the head it names
/// and its bytes (opaque here; the audit crate owns the format). A copy for
/// the record: the anchor is the audit crate's witness, outside the
/// database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The audit sequence the checkpoint covers.
    pub sequence: u64,
    /// The log's hash at that sequence (all zeros for sequence 0).
    pub head_hash: [u8; DIGEST_LEN],
    /// The encoded, signed checkpoint.
    pub checkpoint: Vec<u8>,
}

// ----- registry: persons and custodian entities -----

/// Longest display name of a person or a custodian entity, in bytes.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// Longest age recipient (`age1...`), in bytes.
pub const MAX_AGE_RECIPIENT_LEN: usize = 128;
/// Longest reason for revoking a person, in bytes.
pub const MAX_REVOCATION_REASON_LEN: usize = 1024;
/// Most persons acting for one custodian entity.
pub const MAX_ENTITY_MEMBERS: usize = 64;
/// Length of an ed25519 public key and of a TLS certificate fingerprint.
pub const PUBLIC_KEY_LEN: usize = 32;

/// What a registered person may do. Checks look the person's roles up at
/// the time of use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// Runs generate, deliver, inspect, drills, recovery, rotation, deletion.
    Operator,
    /// Approves recovery, deletion, drills, policy and approver-set changes.
    Security,
    /// Assesses risk and authorises recovery and deletion.
    BusinessOwner,
    /// Reviews evidence, signs off deletions, reviews the audit log.
    Compliance,
    /// Acts for a custodian entity: holds an external share offline.
    Custodian,
    /// Reads evidence and reports, changes nothing.
    Auditor,
}

impl Role {
    /// Every role, in the order of their bits in a [`RoleSet`].
    pub const ALL: [Self; 6] = [
        Self::Operator,
        Self::Security,
        Self::BusinessOwner,
        Self::Compliance,
        Self::Custodian,
        Self::Auditor,
    ];

    /// The role's name, for reports and errors.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Security => "security",
            Self::BusinessOwner => "business-owner",
            Self::Compliance => "compliance",
            Self::Custodian => "custodian",
            Self::Auditor => "auditor",
        }
    }

    /// The role's bit in a [`RoleSet`]: part of the stored format, never
    /// renumbered.
    const fn bit(self) -> u8 {
        match self {
            Self::Operator => 1,
            Self::Security => 1 << 1,
            Self::BusinessOwner => 1 << 2,
            Self::Compliance => 1 << 3,
            Self::Custodian => 1 << 4,
            Self::Auditor => 1 << 5,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Role`]s, stored as a bit mask (operator 1, security 2,
/// business owner 4, compliance 8, custodian 16, auditor 32).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role.
    pub const EMPTY: Self = Self(0);

    /// Whether the set holds `role`.
    #[must_use]
    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// The set with `role` added.
    #[must_use]
    pub const fn with(self, role: Role) -> Self {
        Self(self.0 | role.bit())
    }

    /// The set with `role` removed.
    #[must_use]
    pub const fn without(self, role: Role) -> Self {
        Self(self.0 & !role.bit())
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
    }

    /// The stored bit mask.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of a stored bit mask; `None` when it has a bit no role has.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Option<Self> {
        const KNOWN: u8 = (1 << Role::ALL.len()) - 1;
        if bits & !KNOWN == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(roles: I) -> Self {
        roles.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Role::name)).finish()
    }
}

/// Every key and identity one person uses. All public: what the person
/// signs with, is sealed to and connects with, never a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonKeys {
    /// Ed25519 public key signing receipts, inventory proofs, recovery
    /// submissions and destruction statements.
    pub receipt_key: Option<[u8; PUBLIC_KEY_LEN]>,
    /// Ed25519 public key signing approvals, audit reviews and compliance
    /// sign-offs.
    pub approval_key: Option<[u8; PUBLIC_KEY_LEN]>,
    /// The age recipient (`age1...`) external shares are sealed to. The
    /// backup crate parses it; storage checks 1 to
    /// [`MAX_AGE_RECIPIENT_LEN`] printable ASCII characters.
    pub age_recipient: Option<String>,
    /// SHA-256 of the person's mTLS client certificate (DER).
    pub tls_fingerprint: Option<[u8; PUBLIC_KEY_LEN]>,
}

impl fmt::Debug for PersonKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonKeys")
            .field("receipt_key", &self.receipt_key.map(hex::encode))
            .field("approval_key", &self.approval_key.map(hex::encode))
            .field("age_recipient", &self.age_recipient)
            .field("tls_fingerprint", &self.tls_fingerprint.map(hex::encode))
            .finish()
    }
}

/// Whether a person may act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonState {
    /// Registered and active.
    Active,
    /// Revoked: every check refuses the person from `at` on.
    Revoked {
        /// When.
        at: Timestamp,
        /// Who revoked them.
        by: ActorId,
        /// Why.
        reason: FreeText<MAX_REVOCATION_REASON_LEN>,
    },
}

/// A registered person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    /// Their actor id.
    pub id: ActorId,
    /// Their name, for people.
    pub display_name: FreeText<MAX_DISPLAY_NAME_LEN>,
    /// What they may do.
    pub roles: RoleSet,
    /// Their current keys.
    pub keys: PersonKeys,
    /// The epoch of the current keys: 1 at registration, +1 per rotation.
    pub key_epoch: u32,
    /// Active or revoked.
    pub state: PersonState,
    /// When they were registered.
    pub registered_at: Timestamp,
    /// Who registered them.
    pub registered_by: ActorId,
}

/// One epoch of a person's keys: what a signature made in
/// `valid_from..valid_until` is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonKeyEpoch {
    /// The person.
    pub person: ActorId,
    /// The epoch, from 1.
    pub epoch: u32,
    /// The keys of the epoch.
    pub keys: PersonKeys,
    /// When the epoch began.
    pub valid_from: Timestamp,
    /// When it ended (the next rotation, or the person's revocation);
    /// `None` while it is current.
    pub valid_until: Option<Timestamp>,
}

/// Whether a custodian entity may hold shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityState {
    /// Registered and active.
    Active,
    /// Revoked: it receives no new share, its members are free to act for
    /// another entity.
    Revoked {
        /// When.
        at: Timestamp,
        /// Who revoked it.
        by: ActorId,
    },
}

/// A custodian entity: the customer's security team, an escrow company,
/// the company's cold backup. Distinctness rules (one share of a node per
/// entity) are checked on entities, never on keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRecord {
    /// Its custodian id.
    pub id: CustodianId,
    /// Its name, for people.
    pub display_name: FreeText<MAX_DISPLAY_NAME_LEN>,
    /// How to reach it.
    pub contact: FreeText<MAX_CONTACT_LEN>,
    /// The registered persons acting for it: sorted, no repeats, 1 to
    /// [`MAX_ENTITY_MEMBERS`].
    pub members: Vec<ActorId>,
    /// Active or revoked.
    pub state: EntityState,
    /// When it was registered.
    pub registered_at: Timestamp,
}

// ----- groups, policies, split references -----

/// Longest group public key (a compressed point), in bytes.
pub const MAX_GROUP_KEY_LEN: usize = 64;
/// Longest encoded policy, in bytes.
pub const MAX_POLICY_LEN: usize = 4096;
/// Longest encoded set of Feldman commitments, in bytes.
pub const MAX_COMMITMENTS_LEN: usize = 16 * 1024;
/// Longest encoded signed binding, in bytes.
pub const MAX_BINDING_LEN: usize = 1024;

/// One group key of the MPC network.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group key.
    pub key_id: KeyId,
    /// The curve (`shardkeep-sss-core`'s `CurveId` byte).
    pub curve: u8,
    /// The group public key, compressed (1 to [`MAX_GROUP_KEY_LEN`] bytes).
    pub group_public_key: Vec<u8>,
    /// The tss-lib threshold, the polynomial degree: `degree + 1` parties
    /// sign. At least 1 and below `parties`.
    pub tss_degree: u16,
    /// How many parties hold a share of the group key.
    pub parties: u16,
    /// When the group was registered.
    pub registered_at: Timestamp,
}

impl fmt::Debug for GroupRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupRecord")
            .field("key_id", &self.key_id)
            .field("curve", &self.curve)
            .field("group_public_key", &hex::encode(&self.group_public_key))
            .field("tss_degree", &self.tss_degree)
            .field("parties", &self.parties)
            .field("registered_at", &self.registered_at)
            .finish()
    }
}

/// A backup policy as set: its canonical encoding (opaque here; the backup
/// crate owns the format and the hash) and who set it when. The latest set
/// is the one in force.
#[derive(Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The policy's hash, as the backup crate computes it over `encoding`.
    pub hash: [u8; DIGEST_LEN],
    /// The canonical encoding (1 to [`MAX_POLICY_LEN`] bytes).
    pub encoding: Vec<u8>,
    /// When it was set.
    pub set_at: Timestamp,
    /// Who set it.
    pub set_by: ActorId,
}

impl fmt::Debug for PolicyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyRecord")
            .field("hash", &hex::encode(self.hash))
            .field("encoding_len", &self.encoding.len())
            .field("set_at", &self.set_at)
            .field("set_by", &self.set_by)
            .finish()
    }
}

/// What a key version was split into, stored with the version when it is
/// created: every later check (Feldman verification of a submitted share,
/// the binding of a recovered share, the policy it was made under) uses
/// this, never what a share brings with it.
#[derive(Clone, PartialEq, Eq)]
pub struct SplitReference {
    /// The curve (`shardkeep-sss-core`'s `CurveId` byte); the group's curve.
    pub curve: u8,
    /// The split id: a hash of curve, t, n and the commitments.
    pub split_id: [u8; DIGEST_LEN],
    /// The split's encoded Feldman commitments (opaque here, 1 to
    /// [`MAX_COMMITMENTS_LEN`] bytes).
    pub commitments: Vec<u8>,
    /// The encoded signed binding: group key, party id, public share,
    /// archive hash (opaque here, 1 to [`MAX_BINDING_LEN`] bytes).
    pub binding: Vec<u8>,
    /// The hash of the policy in force when the version was made.
    pub policy_hash: [u8; DIGEST_LEN],
    /// How many shares the server holds: indices `1..=server_shares`.
    /// Below the version's `t`, and `n - server_shares >= t`.
    pub server_shares: u8,
}

impl fmt::Debug for SplitReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitReference")
            .field("curve", &self.curve)
            .field("split_id", &hex::encode(self.split_id))
            .field("commitments_len", &self.commitments.len())
            .field("binding_len", &self.binding.len())
            .field("policy_hash", &hex::encode(self.policy_hash))
            .field("server_shares", &self.server_shares)
            .finish()
    }
}

// ----- inventory challenges and proofs -----

/// Longest inventory proof, in bytes.
pub const MAX_INVENTORY_PROOF_LEN: usize = 4096;

/// A single-use challenge for the custodian of one external slot: prove,
/// from the container alone, that the share is still held.
#[derive(Clone, PartialEq, Eq)]
pub struct InventoryChallenge {
    /// The server-drawn nonce naming the challenge.
    pub nonce: [u8; DIGEST_LEN],
    /// The external slot.
    pub slot: ShareSlot,
    /// The custodian entity mapped to the slot.
    pub custodian: CustodianId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it lapses (after `issued_at`).
    pub expires_at: Timestamp,
}

impl fmt::Debug for InventoryChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InventoryChallenge")
            .field("nonce", &hex::encode(self.nonce))
            .field("slot", &self.slot)
            .field("custodian", &self.custodian)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A verified answer to an inventory challenge, kept as evidence.
#[derive(Clone, PartialEq, Eq)]
pub struct InventoryProofRecord {
    /// The challenge answered (consumed).
    pub nonce: [u8; DIGEST_LEN],
    /// Its slot.
    pub slot: ShareSlot,
    /// Who signed it: the person the slot's share was sealed to.
    pub person: ActorId,
    /// The signed proof, opaque (1 to [`MAX_INVENTORY_PROOF_LEN`] bytes).
    pub proof: Vec<u8>,
    /// When the backup crate verified it.
    pub verified_at: Timestamp,
}

impl fmt::Debug for InventoryProofRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InventoryProofRecord")
            .field("nonce", &hex::encode(self.nonce))
            .field("slot", &self.slot)
            .field("person", &self.person)
            .field("proof_len", &self.proof.len())
            .field("verified_at", &self.verified_at)
            .finish()
    }
}

// ----- rate limits and anomalies -----

/// Longest anomaly detail, in bytes.
pub const MAX_ANOMALY_DETAIL_LEN: usize = 1024;

/// An access anomaly: a burst, a read outside an approved session, repeated
/// bad shares, a privilege violation. Append-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRecord {
    /// What kind (e.g. `rate-limited`, `privilege-violation`).
    pub kind: Label,
    /// The person involved, if known.
    pub person: Option<ActorId>,
    /// The slot involved, if any.
    pub slot: Option<ShareSlot>,
    /// When.
    pub at: Timestamp,
    /// What happened, for people.
    pub detail: FreeText<MAX_ANOMALY_DETAIL_LEN>,
}

// ----- status -----

/// Which key versions a status query covers; the default is every
/// version that is not retired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter {
    /// Only this group key.
    pub key_id: Option<KeyId>,
    /// Only nodes with this id.
    pub node_id: Option<NodeId>,
    /// Retired versions too.
    pub include_retired: bool,
}

/// How one drill went, in short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillSummary {
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// Whether it passed.
    pub passed: bool,
}

/// What a status row shows of a version's split reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSummary {
    /// The curve byte.
    pub curve: u8,
    /// The policy the version was made under.
    pub policy_hash: [u8; DIGEST_LEN],
    /// How many shares the server holds (indices `1..=server_shares`).
    pub server_shares: u8,
}

/// The state of one key version, from one query for a whole page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatusRow {
    /// The version.
    pub version: NodeVersion,
    /// Its threshold and share count.
    pub threshold: Threshold,
    /// Where it is in its life.
    pub state: KeyVersionState,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its split reference; `None` only for a version created before split
    /// references were stored (it needs regeneration).
    pub split: Option<SplitSummary>,
    /// Server-held slots that are active.
    pub server_active: u8,
    /// Server-held slots that are soft-deleted.
    pub server_soft_deleted: u8,
    /// Server-held slots that are hard-deleted.
    pub server_hard_deleted: u8,
    /// External slots mapped to a custodian.
    pub external_assigned: u8,
    /// External slots with a confirmed delivery receipt.
    pub external_confirmed: u8,
    /// Failed delivery attempts.
    pub deliveries_failed: u32,
    /// The oldest confirmation (receipt or inventory proof) across the
    /// version's external slots: how stale the least recently confirmed
    /// share is. `None` while a mapped slot was never confirmed, or no slot
    /// is mapped.
    pub last_inventory_at: Option<Timestamp>,
    /// The latest drill (by start time).
    pub last_drill: Option<DrillSummary>,
    /// When the latest passed drill ended.
    pub last_passed_drill_at: Option<Timestamp>,
    /// The last change that makes a drill due (creation, custodian change,
    /// KEK migration...).
    pub last_change_at: Timestamp,
}

/// Totals over the versions a [`StatusFilter`] selects, from one query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSummary {
    /// Versions.
    pub versions: u64,
    /// Distinct (key, node) pairs.
    pub nodes: u64,
    /// Distinct group keys.
    pub keys: u64,
    /// Active server-held slots.
    pub server_shares_active: u64,
    /// External slots with a confirmed delivery receipt.
    pub external_confirmed: u64,
    /// External slots mapped to a custodian.
    pub external_assigned: u64,
    /// Failed delivery attempts.
    pub deliveries_failed: u64,
    /// Drill reports.
    pub drills: u64,
    /// Drill reports that passed.
    pub drills_passed: u64,
}

/// How many shares of one active version one custodian entity holds, with
/// what the server holds of it: the input of the exposure rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureRow {
    /// The group key.
    pub key_id: KeyId,
    /// The node.
    pub node_id: NodeId,
    /// The active version.
    pub version: shardkeep_types::KeyVersion,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// How many of the version's shares it holds.
    pub shares: u8,
    /// How many the server holds, active.
    pub server_active: u8,
    /// The version's threshold `t`.
    pub t: u8,
}

/// Most failure reasons [`DeliveryStats`] lists.
pub const MAX_FAILURE_REASONS: usize = 100;

/// Delivery metrics over the versions that are not retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStats {
    /// External slots mapped to a custodian.
    pub assigned: u64,
    /// Delivery attempts recorded (receipts and failures).
    pub attempts: u64,
    /// Slots with a confirmed receipt.
    pub confirmed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failure reasons with their counts, most frequent first (at most
    /// [`MAX_FAILURE_REASONS`]).
    pub failure_reasons: Vec<(FreeText<MAX_REASON_LEN>, u64)>,
}

/// One recent drill, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentDrill {
    /// The version drilled.
    pub target: NodeVersion,
    /// How it went.
    pub summary: DrillSummary,
}

/// Drill metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillStats {
    /// Drill reports.
    pub drills: u64,
    /// Drill reports that passed.
    pub passed: u64,
    /// The latest drills (by start time), newest first.
    pub recent: Vec<RecentDrill>,
}

/// Longest stored destruction statement, in bytes.
pub const MAX_DESTRUCTION_STATEMENT_LEN: usize = 1024;

/// A custodian's signed statement that it destroyed the container of one
/// external slot of an old version (after a re-split, whose old shares
/// still recover the same `Xi`). The backup service verifies the signature
/// before storing it; storage keeps the bytes and the fields they name.
#[derive(Clone, PartialEq, Eq)]
pub struct DestructionStatementRecord {
    /// The old version's external slot.
    pub slot: ShareSlot,
    /// The envelope in the destroyed container (the slot's custody entry).
    pub envelope_id: EnvelopeId,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// The person who signed.
    pub person: ActorId,
    /// When the custodian says it destroyed the container.
    pub destroyed_at: Timestamp,
    /// When the service recorded the statement.
    pub recorded_at: Timestamp,
    /// The signed statement (1 to [`MAX_DESTRUCTION_STATEMENT_LEN`] bytes).
    pub statement: Vec<u8>,
}

impl fmt::Debug for DestructionStatementRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestructionStatementRecord")
            .field("slot", &self.slot)
            .field("envelope_id", &self.envelope_id)
            .field("custodian", &self.custodian)
            .field("person", &self.person)
            .field("destroyed_at", &self.destroyed_at)
            .field("recorded_at", &self.recorded_at)
            .field("statement_len", &self.statement.len())
            .finish()
    }
}

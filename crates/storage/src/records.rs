//! The records storage keeps. Plain data with public fields; the backends
//! validate them on write and again on read.

use core::fmt;

use shardkeep_envelope::SealedEnvelopeFrame;

use shardkeep_types::{
    ActorId, CustodianId, FreeText, KekId, KeyId, Label, NodeId, NodeVersion, ShareSlot, Timestamp,
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
/// Longest custodian public key (an age recipient, an ed25519 key, an
/// armored key), in bytes.
pub const MAX_CUSTODIAN_KEY_LEN: usize = 4 * 1024;
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

/// Who holds an external share, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyEntry {
    /// The slot of the external share.
    pub slot: ShareSlot,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// How to reach them (free text, at most [`MAX_CONTACT_LEN`] bytes).
    pub contact: FreeText<MAX_CONTACT_LEN>,
    /// Their public key (age recipient or receipt-signing key), opaque.
    pub public_key: Vec<u8>,
    /// When the entry was written or last changed.
    pub updated_at: Timestamp,
    /// When the custodian last confirmed the share is in place and opens.
    pub confirmed_at: Option<Timestamp>,
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

/// A server-issued nonce naming one approval request; approvers sign it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalNonce(pub [u8; DIGEST_LEN]);

impl fmt::Debug for ApprovalNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalNonce({})", hex::encode(self.0))
    }
}

impl fmt::Display for ApprovalNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A sensitive operation waiting for approvals: issued by the server with a
/// fresh nonce, consumed once, in the transaction of the operation itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// The server-issued nonce.
    pub nonce: ApprovalNonce,
    /// The operation (e.g. `recover`, `hard-delete`).
    pub operation: Label,
    /// The hash of the exact request, as the approvers saw it.
    pub request_hash: [u8; DIGEST_LEN],
    /// Who asked.
    pub requester: ActorId,
    /// The change or incident ticket.
    pub ticket: Label,
    /// The key version the operation touches.
    pub target: NodeVersion,
    /// When the nonce was issued.
    pub issued_at: Timestamp,
    /// When the request lapses.
    pub expires_at: Timestamp,
}

/// One approver's signed approval, with every field the signature covers, so
/// it can be checked again from the stored row alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The request's nonce.
    pub nonce: ApprovalNonce,
    /// The operation, as signed (must match the request).
    pub operation: Label,
    /// The request hash, as signed (must match the request).
    pub request_hash: [u8; DIGEST_LEN],
    /// The requester, as signed (must match the request).
    pub requester: ActorId,
    /// The ticket, as signed (must match the request).
    pub ticket: Label,
    /// The role the approver acts in (e.g. `security`, `business-owner`).
    pub role: Label,
    /// The key version, as signed (must match the request).
    pub target: NodeVersion,
    /// When this approval lapses.
    pub expires_at: Timestamp,
    /// Who approved (never the requester).
    pub approver: ActorId,
    /// The approver's ed25519 signature (checked by the caller before
    /// recording).
    pub signature: [u8; SIGNATURE_LEN],
    /// When the approval was recorded.
    pub recorded_at: Timestamp,
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

//! The one error type of this crate.
//!
//! Every refusal of the procedure has its own variant, so callers (the gRPC
//! service, the CLI, tests) can tell them apart; lower crates' errors are
//! wrapped with their source. Messages name ids, indices and settings, never
//! key material, shares or passphrases.
//!
//! At a service boundary, decryption and signature failures must collapse to
//! one opaque status for the caller (the detail goes to the audit record):
//! [`Error::is_opaque_to_caller`] says which.

use shardkeep_types::{
    ActorId, CustodianId, CustodyError, FramingError, KeyId, NodeVersion, ShareSlot,
    ThresholdError, Timestamp,
};

use crate::access::RateKind;
use crate::registry::Role;

/// Why an operation of the backup service was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration setting cannot work.
    #[error("invalid configuration: {setting} {why}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The policy would let the server alone recover a node.
    #[error(
        "policy refused: the server would hold {server} shares but t is {t}; the server must hold fewer than t"
    )]
    PolicyServerShares {
        /// Server shares asked for.
        server: u8,
        /// The threshold.
        t: u8,
    },
    /// The policy would not let the external custodians alone recover a
    /// node (a drill from external shares could never pass).
    #[error(
        "policy refused: external custodians would hold {external} shares but t is {t}; they must hold at least t"
    )]
    PolicyExternalShares {
        /// External shares.
        external: u8,
        /// The threshold.
        t: u8,
    },
    /// The exposure rule: with the server's shares, one custodian entity
    /// could rebuild more nodes' shares of a group key than its tss-lib
    /// threshold allows.
    #[error(
        "exposure rule: custodian {custodian} with the server's shares could rebuild {nodes} nodes' shares of group key {key_id}, more than its tss-lib threshold {allowed}; give some nodes disjoint custodian sets, or delete the server shares of some nodes (zero retention)"
    )]
    Exposure {
        /// The group key.
        key_id: KeyId,
        /// The custodian entity.
        custodian: CustodianId,
        /// Nodes it could rebuild with the server.
        nodes: usize,
        /// The group's tss-lib threshold (polynomial degree).
        allowed: u16,
    },
    /// The person is not registered.
    #[error("{0} is not a registered person")]
    UnknownPerson(ActorId),
    /// The person was revoked: nothing they sign or ask for counts any more.
    #[error("{0} has been revoked")]
    PersonRevoked(ActorId),
    /// The person does not hold the role the operation needs.
    #[error("{person} does not hold the role {role}")]
    MissingRole {
        /// Who.
        person: ActorId,
        /// The role needed.
        role: Role,
    },
    /// Bytes that are not a well-framed value of one of this crate's formats.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// An invalid name, time or free text.
    #[error(transparent)]
    Types(#[from] shardkeep_types::Error),
    /// An invalid threshold or share index.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// The storage backend refused or failed.
    #[error("storage: {0}")]
    Storage(#[source] shardkeep_storage::Error),
    /// An envelope, container or receipt was refused.
    #[error("envelope: {0}")]
    Envelope(#[source] shardkeep_envelope::Error),
    /// The node's save data, archive or keystore was refused.
    #[error("keystore: {0}")]
    Keydata(#[source] shardkeep_keydata::Error),
    /// Secret sharing refused (a share, commitments, a proof).
    #[error("secret sharing: {0}")]
    Sharing(#[source] shardkeep_sss_core::Error),
    /// The KEK provider refused or failed.
    #[error("key custody: {0}")]
    Kms(#[source] shardkeep_kms::Error),
    /// The audit log refused or failed.
    #[error("audit: {0}")]
    Audit(#[source] shardkeep_audit::Error),

    // ----- status, listing, inventory, rate limits (inspect) -----
    /// A page token this service did not issue, or issued for another
    /// query.
    #[error("bad page token ({why}); ask for the first page again, without a token")]
    BadPageToken {
        /// What is wrong with it.
        why: &'static str,
    },
    /// One person made more calls of one kind in the current window than
    /// the configured limit allows. Recorded as an anomaly.
    #[error(
        "rate limited: {person} made {count} {kind} calls in the current window (limit {limit}); wait until {retry_at}, and have security review the anomaly if this was not expected"
    )]
    RateLimited {
        /// Who.
        person: ActorId,
        /// Which kind of call.
        kind: RateKind,
        /// Calls counted in the window, this one included.
        count: u32,
        /// The limit per window.
        limit: u32,
        /// When the next window starts.
        retry_at: Timestamp,
    },
    /// The slot has no custodian to challenge: it is server-held, or not
    /// mapped.
    #[error(
        "{0} is not an external share in custody; check the slot (server-held slots are listed, not challenged)"
    )]
    NotInCustody(ShareSlot),
    /// No inventory challenge has this nonce.
    #[error("no inventory challenge with nonce {}; issue a new challenge", hex::encode(.nonce))]
    ChallengeNotFound {
        /// The nonce.
        nonce: [u8; 32],
    },
    /// The challenge was already answered (or refused): each is single use.
    #[error("inventory challenge {} was already used; issue a new challenge", hex::encode(.nonce))]
    ChallengeConsumed {
        /// The nonce.
        nonce: [u8; 32],
    },
    /// The challenge lapsed before it was answered.
    #[error(
        "the inventory challenge expired at {expired_at}; issue a new challenge and answer it sooner"
    )]
    ChallengeExpired {
        /// When it lapsed.
        expired_at: Timestamp,
    },
    /// A proof repeats the challenge with a field that differs from the
    /// challenge as issued (or the custodian's envelope is for another
    /// slot than the challenge names).
    #[error(
        "the inventory proof does not match its challenge: {field} differs; answer the challenge as issued"
    )]
    ChallengeMismatch {
        /// The field that differs.
        field: &'static str,
    },
    /// A custodian was handed a challenge addressed to another entity.
    #[error(
        "this challenge is for custodian {challenge}, not {custodian}; return it to the operator"
    )]
    ChallengeForOtherCustodian {
        /// The entity the challenge names.
        challenge: CustodianId,
        /// The entity asked to answer.
        custodian: CustodianId,
    },
    /// The person has no registered receipt-signing key, so nothing they
    /// sign can be checked.
    #[error(
        "{0} has no registered receipt key; register one before they sign receipts or inventory proofs"
    )]
    NoReceiptKey(ActorId),
    /// The person does not act for the custodian entity.
    #[error("{person} does not act for custodian {custodian}")]
    NotCustodianMember {
        /// Who.
        person: ActorId,
        /// The entity.
        custodian: CustodianId,
    },
    /// The custodian entity was revoked.
    #[error("custodian {0} has been revoked; move its shares to another custodian")]
    CustodianRevoked(CustodianId),
    /// The proof is signed by a member of the entity other than the person
    /// the slot's container was sealed to.
    #[error(
        "{slot} was sealed to {expected}, but the inventory proof is from {got}; the person who holds the container must answer"
    )]
    InventoryWrongPerson {
        /// The slot.
        slot: ShareSlot,
        /// The person in the custody map.
        expected: ActorId,
        /// The person who signed.
        got: ActorId,
    },
    /// The proof's signature does not verify under the person's
    /// registered receipt key.
    #[error(
        "the inventory proof's signature does not verify under {person}'s registered receipt key"
    )]
    InventorySignatureInvalid {
        /// The person the proof names.
        person: ActorId,
    },
    /// The proof is about another envelope than the one delivered for the
    /// slot (or the custodian's container holds another envelope).
    #[error(
        "the inventory proof for {slot} names another envelope than the one delivered; check which container the custodian opened"
    )]
    InventoryEnvelopeMismatch {
        /// The slot.
        slot: ShareSlot,
    },
    /// The proof was made from another container than the one delivered.
    #[error(
        "the inventory proof for {slot} was made from another container than the one delivered; the custodian must keep the container file exactly as delivered"
    )]
    InventoryContainerMismatch {
        /// The slot.
        slot: ShareSlot,
    },
    /// The proof of possession does not verify against the stored
    /// commitments for this challenge.
    #[error("the proof of possession for {slot} does not verify against the stored commitments")]
    PossessionProofRejected {
        /// The slot.
        slot: ShareSlot,
        /// Why.
        #[source]
        source: shardkeep_sss_core::Error,
    },
    /// The split reference stored for a version does not hold together
    /// (its commitments do not decode on its curve, or do not hash to its
    /// split id): nothing can be checked against it.
    #[error(
        "the stored split reference of {0} is inconsistent; the database may be damaged: restore it from backup and investigate"
    )]
    InconsistentSplitReference(NodeVersion),
    /// A signer failed.
    #[error("signing failed: {0}")]
    Signing(#[source] CustodyError),
}

impl Error {
    /// Whether a service boundary must show this error to a remote caller
    /// as one opaque "cannot verify or decrypt" status, keeping the detail
    /// for the audit record: decryption and signature failures, whose
    /// detail would help an attacker.
    #[must_use]
    pub fn is_opaque_to_caller(&self) -> bool {
        matches!(
            self,
            Self::Envelope(_)
                | Self::Sharing(_)
                | Self::Keydata(_)
                | Self::InventorySignatureInvalid { .. }
                | Self::PossessionProofRejected { .. }
        )
    }
}

impl From<shardkeep_storage::Error> for Error {
    fn from(error: shardkeep_storage::Error) -> Self {
        Self::Storage(error)
    }
}

impl From<shardkeep_envelope::Error> for Error {
    fn from(error: shardkeep_envelope::Error) -> Self {
        Self::Envelope(error)
    }
}

impl From<shardkeep_keydata::Error> for Error {
    fn from(error: shardkeep_keydata::Error) -> Self {
        Self::Keydata(error)
    }
}

impl From<shardkeep_sss_core::Error> for Error {
    fn from(error: shardkeep_sss_core::Error) -> Self {
        Self::Sharing(error)
    }
}

impl From<shardkeep_kms::Error> for Error {
    fn from(error: shardkeep_kms::Error) -> Self {
        Self::Kms(error)
    }
}

impl From<shardkeep_audit::Error> for Error {
    fn from(error: shardkeep_audit::Error) -> Self {
        Self::Audit(error)
    }
}

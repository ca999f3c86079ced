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

use shardkeep_types::{ActorId, CustodianId, FramingError, KeyId, ThresholdError};

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
            Self::Envelope(_) | Self::Sharing(_) | Self::Keydata(_)
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

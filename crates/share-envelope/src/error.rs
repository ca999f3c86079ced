//! The one error type of this crate.

use crate::custody::CustodyError;

/// Everything that can go wrong while building, decoding, verifying, sealing
/// or opening envelopes, containers and receipts.
///
/// Variants never carry secret material (share values, data keys, plaintext).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (key id, node id, signer id, ...) breaks the rule: 1-64 bytes
    /// of `[A-Za-z0-9._:-]`.
    #[error("invalid {what}: {len} bytes, or a byte outside [A-Za-z0-9._:-]")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A party id has leading zero bytes (its encoding must be minimal).
    #[error("party id is not minimally encoded")]
    NonCanonicalPartyId,
    /// A key-custody provider failed.
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    /// A share-level rule failed (threshold, index, point, Feldman check).
    #[error("share: {0}")]
    Share(#[from] shardkeep_sss_core::Error),
}

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod combine;
mod curve;
mod error;
mod ids;
mod possession;
mod secret;
mod share;
mod split;

pub use combine::{
    Recovery, RejectReason, RejectedShare, combine, combine_verified, combine_verified_encoded,
};
#[cfg(feature = "ed25519")]
pub use curve::Ed25519;
#[cfg(feature = "secp256k1")]
pub use curve::Secp256k1;
pub use curve::{Curve, CurveId};
pub use error::{Error, Result};
pub use ids::{InterpolationPoint, PartyId, PartyIdSet, lagrange_at, lagrange_at_zero};
pub use possession::{
    INVENTORY_NONCE_TAG, INVENTORY_PROOF_TAG, MAX_INVENTORY_CONTEXT_LEN, PossessionProof,
    prove_possession, verify_possession,
};
pub use secret::Secret;
/// A backup share's x-coordinate and the `t`-of-`n` of a split: the
/// workspace's shared vocabulary, re-exported so this crate's API names them.
pub use shardkeep_types::{ShareIndex, Threshold, ThresholdError};
pub use share::{Commitments, SHARE_LEN, SPLIT_ID_TAG, Share, SplitId};
pub use split::{Split, split};

/// The curve crates, re-exported so that callers name the same versions.
pub mod curves {
    #[cfg(feature = "ed25519")]
    pub use curve25519_dalek;
    #[cfg(feature = "secp256k1")]
    pub use k256;
}

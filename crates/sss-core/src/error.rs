//! The one error type of this crate.

use shardkeep_types::{ShareIndex, ThresholdError};

use crate::combine::{RejectedList, RejectedShare};
use crate::curve::CurveId;

/// Everything that can go wrong while splitting, decoding, verifying or
/// combining shares.
///
/// No variant carries secret material: values are described by their public
/// position (share index, byte length), never by their content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `t` and `n` break `2 <= t <= n <= 255`.
    #[error("invalid threshold: {t}-of-{n} (need 2 <= t <= n <= 255)")]
    InvalidThreshold {
        /// Shares needed to recover.
        t: usize,
        /// Shares in total.
        n: usize,
    },
    /// A share index is zero or greater than `n`.
    #[error("share index {index} is outside 1..={n}")]
    IndexOutOfRange {
        /// The offending index (0 when the index was zero).
        index: u8,
        /// Shares in total.
        n: u8,
    },
    /// A tss-lib party id reduces to zero modulo the group order.
    #[error("party id is zero modulo the group order")]
    ZeroPartyId,
    /// A tss-lib party id is longer than 64 bytes.
    #[error("party id is {len} bytes long (at most 64)")]
    PartyIdTooLong {
        /// Length of the encoded id.
        len: usize,
    },
    /// Two party ids are equal modulo the group order.
    #[error("duplicate party id at positions {first} and {second}")]
    DuplicatePartyId {
        /// Position of the first occurrence.
        first: usize,
        /// Position of the repeat.
        second: usize,
    },
    /// A Lagrange set contains the same x-coordinate twice or a zero one.
    #[error("interpolation points must be distinct and non-zero")]
    InvalidInterpolationSet,
    /// Two shares carry the same index (plain combine: without commitments
    /// there is no telling which one is right).
    #[error("duplicate share index {0}")]
    DuplicateIndex(ShareIndex),
    /// Fewer shares than the threshold were supplied.
    #[error("{got} shares supplied, {needed} needed")]
    TooFewShares {
        /// Shares supplied.
        got: usize,
        /// Threshold `t`.
        needed: usize,
    },
    /// Shares (or a share and commitments) come from different splits or
    /// carry different `(t, n)`. Only the plain combine and single-share
    /// verification refuse this way; the verified combine rejects the odd
    /// share alone.
    #[error("shares belong to different splits or parameters")]
    MixedSplits,
    /// Commitments and the share they were asked to verify disagree on the
    /// split id: the share was not produced by this split.
    #[error("share {index} does not belong to this split")]
    SplitIdMismatch {
        /// Index of the foreign share.
        index: ShareIndex,
    },
    /// Encoded data was expected to be on another curve.
    #[error("encoded for curve {got:?}, expected {expected:?}")]
    CurveMismatch {
        /// Curve of the caller.
        expected: CurveId,
        /// Curve named by the bytes.
        got: u8,
    },
    /// A byte string has the wrong length.
    #[error("wrong length: expected {expected} bytes, got {got}")]
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A scalar encoding is not the canonical one (it is `>=` the group order).
    #[error("non-canonical scalar encoding")]
    NonCanonicalScalar,
    /// A secret or a share value is zero.
    #[error("zero scalar where a non-zero value is required")]
    ZeroScalar,
    /// Bytes do not encode a point of the curve, or not canonically.
    #[error("invalid point encoding")]
    InvalidPoint,
    /// The point is the identity element.
    #[error("identity point")]
    IdentityPoint,
    /// The point has a torsion component (ed25519): small-order or mixed-order.
    #[error("point is not in the prime-order subgroup")]
    TorsionPoint,
    /// The number of commitments is not `t`.
    #[error("expected {expected} commitments, got {got}")]
    CommitmentCount {
        /// Threshold `t`.
        expected: usize,
        /// Commitments supplied.
        got: usize,
    },
    /// One share failed its Feldman check.
    #[error("share {index} fails its Feldman commitment check")]
    ShareVerification {
        /// Index of the bad share.
        index: ShareIndex,
    },
    /// A verified combine rejected shares and fewer than `t` good ones remain.
    #[error("{valid} valid shares, {needed} needed; rejected: {}", RejectedList(.rejected))]
    TooFewValidShares {
        /// Every share left out, in input order, with its reason.
        rejected: Vec<RejectedShare>,
        /// Distinct shares that passed every check.
        valid: usize,
        /// Threshold `t`.
        needed: usize,
    },
    /// The recovered secret does not match commitment 0 (`secret*G != C0`).
    #[error("recovered secret does not match commitment 0")]
    SecretCommitmentMismatch,
    /// The commitments evaluate to the identity at this index, so the public
    /// share `Y_i` proves nothing (commitments built to do so).
    #[error("public share {index} is the identity point")]
    IdentityPublicShare {
        /// The index whose public share is the identity.
        index: ShareIndex,
    },
    /// The context of a proof of possession is longer than the cap.
    #[error("proof context is {len} bytes long (at most {max})")]
    ContextTooLong {
        /// Length of the context.
        len: usize,
        /// The cap, `MAX_INVENTORY_CONTEXT_LEN`.
        max: usize,
    },
    /// A proof of possession does not verify for these commitments, index
    /// and context: made for another statement, altered, or forged.
    #[error("proof of possession of share {index} does not verify")]
    PossessionProofRejected {
        /// The index the proof was checked for.
        index: ShareIndex,
    },
    /// The operating system's random number generator failed.
    #[error("operating system randomness unavailable")]
    RandomnessUnavailable,
    /// vsss-rs refused to split (its error, mapped; it never carries secrets).
    #[error("splitting failed: {0}")]
    Split(&'static str),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Threshold rules come from `shardkeep-types`; this crate reports them as
/// its own variants of the same names.
impl From<ThresholdError> for Error {
    fn from(error: ThresholdError) -> Self {
        match error {
            ThresholdError::InvalidThreshold { t, n } => Self::InvalidThreshold { t, n },
            ThresholdError::IndexOutOfRange { index, n } => Self::IndexOutOfRange { index, n },
        }
    }
}

//! Recovering the secret: plain interpolation, and the verified, robust
//! combine that names bad shares.

use core::fmt;

use ff::Field;
use rand::TryRng;
use rand::rngs::SysRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::curve::Curve;
use crate::error::{Error, Result};
use shardkeep_types::{ShareIndex, Threshold};

use crate::ids::lagrange_at_zero_into;
use crate::secret::Secret;
use crate::share::{Commitments, SHARE_LEN, Share, SplitId};

/// Bits of each random batch-verification weight: a bad share passes the
/// batch check with probability at most 2^-128.
const WEIGHT_BITS: usize = 128;

/// Interpolates the secret from at least `t` shares of one split, without
/// checking them against commitments. Consumes (and so wipes) the shares.
///
/// Refuses, with a typed error and never a wrong secret: fewer than `t`
/// shares ([`Error::TooFewShares`]), a repeated index
/// ([`Error::DuplicateIndex`]), shares of different splits or parameters
/// ([`Error::MixedSplits`]). Zero indices and indices above `n` cannot be
/// represented in a [`Share`]. Without commitments there is no reference to
/// tell the good share from the bad one, so any such conflict refuses the
/// whole set.
///
/// A share with a wrong value still yields a wrong secret here: use
/// [`combine_verified`] whenever commitments are at hand.
///
/// # Errors
/// As above, and [`Error::ZeroScalar`] if the interpolation yields zero.
pub fn combine<C: Curve>(shares: Vec<Share<C>>) -> Result<Secret<C>> {
    check_set(&shares)?;
    let secret = interpolate(shares.iter());
    // The shares are wiped here, whatever the outcome.
    drop(shares);
    secret
}

/// Why the verified combine left a share out.
///
/// Every check is against the commitments the caller passed (the split it
/// pinned), never against another share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The encoding is not [`SHARE_LEN`] bytes long
    /// ([`combine_verified_encoded`] only).
    WrongLength {
        /// Length of the encoding.
        got: usize,
    },
    /// The share names another curve than the commitments'
    /// ([`combine_verified_encoded`] only: a [`Share`] is typed by its curve).
    WrongCurve {
        /// The curve byte of the encoding.
        got: u8,
    },
    /// The share claims other parameters `(t, n)` than the commitments'.
    WrongThreshold {
        /// The `t` the share claims.
        t: u8,
        /// The `n` the share claims.
        n: u8,
    },
    /// The index is zero or above the commitments' `n`
    /// ([`combine_verified_encoded`] only: a [`Share`] whose `n` is right has
    /// its index in range).
    IndexOutOfRange,
    /// The split id is not the one recomputed from the commitments.
    WrongSplitId,
    /// The value is not a canonical non-zero scalar
    /// ([`combine_verified_encoded`] only).
    InvalidValue,
    /// Another share with the same index passed its Feldman check; this one
    /// failed it.
    DuplicateIndex,
    /// The value fails its Feldman check (and no other share with its index
    /// passed).
    FeldmanCheckFailed,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { got } => write!(f, "{got} bytes long, not {SHARE_LEN}"),
            Self::WrongCurve { got } => write!(f, "curve byte {got} is not the commitments' curve"),
            Self::WrongThreshold { t, n } => {
                write!(f, "claims {t}-of-{n}, not the commitments' parameters")
            }
            Self::IndexOutOfRange => f.write_str("index outside 1..=n"),
            Self::WrongSplitId => f.write_str("split id is not the commitments'"),
            Self::InvalidValue => f.write_str("value is not a canonical non-zero scalar"),
            Self::DuplicateIndex => f.write_str(
                "index taken by a share that verifies; this one fails its Feldman check",
            ),
            Self::FeldmanCheckFailed => f.write_str("fails its Feldman check"),
        }
    }
}

/// One share the verified combine left out, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectedShare {
    /// Position of the share in the caller's input, from 0. It names the
    /// share even when its index is forged or repeated.
    pub position: usize,
    /// The index the share claims; `None` when it claims none (index byte
    /// zero, or an encoding too short to carry one).
    pub index: Option<ShareIndex>,
    /// Why it was left out.
    pub reason: RejectReason,
}

impl fmt::Display for RejectedShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "share #{}", self.position)?;
        if let Some(index) = self.index {
            write!(f, " (index {index})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Displays a list of rejected shares, `; `-separated (for error messages).
pub(crate) struct RejectedList<'a>(pub(crate) &'a [RejectedShare]);

impl fmt::Display for RejectedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rejected) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            rejected.fmt(f)?;
        }
        Ok(())
    }
}

/// The result of a verified combine: the secret, and every share that was
/// left out with its reason.
pub struct Recovery<C: Curve> {
    secret: Secret<C>,
    rejected: Vec<RejectedShare>,
}

impl<C: Curve> Recovery<C> {
    /// The recovered secret; `secret * G == C_0` was checked.
    #[must_use]
    pub fn secret(&self) -> &Secret<C> {
        &self.secret
    }

    /// The shares that were not used, in input order, each with its reason.
    /// A verified copy of a share already used is not listed (see
    /// [`combine_verified`]).
    #[must_use]
    pub fn rejected(&self) -> &[RejectedShare] {
        &self.rejected
    }

    /// The secret alone.
    #[must_use]
    pub fn into_secret(self) -> Secret<C> {
        self.secret
    }
}

impl<C: Curve> fmt::Debug for Recovery<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery")
            .field("secret", &self.secret)
            .field("rejected", &self.rejected)
            .finish()
    }
}

/// Recovers the secret from shares checked against `commitments`, robustly:
/// bad shares are named and left out, and the secret is recovered from the
/// good ones whenever at least `t` remain.
///
/// The reference is always `commitments`, the caller's pinned split, never a
/// share: one forged share, wherever it sits in the input, cannot make the
/// honest ones look foreign.
///
/// 1. Each share's header is checked against the commitments: its `(t, n)`
///    ([`RejectReason::WrongThreshold`]) and its split id, recomputed from
///    the commitments ([`RejectReason::WrongSplitId`]).
/// 2. If the remaining shares have distinct indices and there are at least
///    `t` of them, they and the interpolated secret are verified in one batch
///    with fresh random 128-bit weights `r_i` from the operating system:
///    `(r_0*secret + sum r_i*s_i)*G == r_0*C_0 + sum_j (sum_i r_i*x_i^j)*C_j`.
///    The left side is one constant-time generator-table multiplication (it
///    involves the secret shares); the right side is a variable-time
///    multi-scalar multiplication over public commitments, public indices
///    and the weights, which reveal nothing about the shares. This is the
///    whole cost when every share is good.
/// 3. Otherwise every remaining share is checked alone. A share that fails
///    is rejected, as [`RejectReason::DuplicateIndex`] if another share with
///    its index passes, else [`RejectReason::FeldmanCheckFailed`]: of two
///    shares with one index, the one that verifies stays. Two shares with one
///    index that both verify have equal values (the Feldman equation fixes
///    `value * G`, and `G` has prime order): the later one is a redundant
///    copy, compared with the first in constant time and dropped without
///    being listed. The secret is then recovered from the good shares and
///    checked against `C_0`.
///
/// Consumes (and so wipes) the shares. [`Recovery::rejected`] and
/// [`Error::TooFewValidShares`] name each share by its position in `shares`.
///
/// # Errors
/// [`Error::TooFewShares`] when fewer than the commitments' `t` shares are
/// given (nothing is checked then); [`Error::TooFewValidShares`] listing
/// every rejected share when fewer than `t` good ones remain;
/// [`Error::SecretCommitmentMismatch`] if the result does not match `C_0`;
/// [`Error::RandomnessUnavailable`].
pub fn combine_verified<C: Curve>(
    shares: Vec<Share<C>>,
    commitments: &Commitments<C>,
) -> Result<Recovery<C>> {
    let threshold = commitments.threshold();
    require_enough(shares.len(), threshold)?;
    let split_id = commitments.split_id();
    let mut rejected = Vec::new();
    let mut candidates = Vec::with_capacity(shares.len());
    for (position, share) in shares.into_iter().enumerate() {
        match header_mismatch(&share, threshold, split_id) {
            // The rejected share is dropped, and so wiped, here.
            Some(reason) => rejected.push(RejectedShare {
                position,
                index: Some(share.index()),
                reason,
            }),
            None => candidates.push(Candidate { position, share }),
        }
    }
    recover(candidates, rejected, commitments)
}

/// [`combine_verified`] over shares still in their [`Share::to_bytes`]
/// encoding, for input straight from custodians: an encoding that does not
/// decode under the commitments' parameters is rejected with its reason
/// instead of failing the whole recovery.
///
/// Each encoding is checked in order: its length
/// ([`RejectReason::WrongLength`]), curve ([`RejectReason::WrongCurve`]),
/// `(t, n)` ([`RejectReason::WrongThreshold`]), index
/// ([`RejectReason::IndexOutOfRange`]), split id
/// ([`RejectReason::WrongSplitId`]) and value
/// ([`RejectReason::InvalidValue`]); the shares that decode go on as in
/// [`combine_verified`]. The caller keeps (and wipes) its input buffers.
///
/// # Errors
/// As [`combine_verified`].
pub fn combine_verified_encoded<C: Curve, B: AsRef<[u8]>>(
    encoded: &[B],
    commitments: &Commitments<C>,
) -> Result<Recovery<C>> {
    let threshold = commitments.threshold();
    require_enough(encoded.len(), threshold)?;
    let split_id = commitments.split_id();
    let mut rejected = Vec::new();
    let mut candidates = Vec::with_capacity(encoded.len());
    for (position, bytes) in encoded.iter().enumerate() {
        match decode_candidate(bytes.as_ref(), threshold, split_id) {
            Ok(share) => candidates.push(Candidate { position, share }),
            Err((index, reason)) => rejected.push(RejectedShare {
                position,
                index,
                reason,
            }),
        }
    }
    recover(candidates, rejected, commitments)
}

/// A share that passed the header checks, with its input position.
struct Candidate<C: Curve> {
    position: usize,
    share: Share<C>,
}

fn require_enough(got: usize, threshold: Threshold) -> Result<()> {
    let needed = usize::from(threshold.t());
    if got < needed {
        return Err(Error::TooFewShares { got, needed });
    }
    Ok(())
}

/// The header checks of [`combine_verified`]. Headers are public: plain
/// comparisons.
fn header_mismatch<C: Curve>(
    share: &Share<C>,
    threshold: Threshold,
    split_id: SplitId,
) -> Option<RejectReason> {
    let claimed = share.threshold();
    if claimed != threshold {
        return Some(RejectReason::WrongThreshold {
            t: claimed.t(),
            n: claimed.n(),
        });
    }
    (share.split_id() != split_id).then_some(RejectReason::WrongSplitId)
}

/// Decodes one encoding of [`combine_verified_encoded`] against the
/// commitments' parameters. The header bytes are public and compared in
/// variable time; the value is only decoded.
fn decode_candidate<C: Curve>(
    bytes: &[u8],
    threshold: Threshold,
    split_id: SplitId,
) -> core::result::Result<Share<C>, (Option<ShareIndex>, RejectReason)> {
    let index = bytes.get(3).copied().and_then(ShareIndex::new);
    let reject = |reason| (index, reason);
    let Ok(bytes) = <&[u8; SHARE_LEN]>::try_from(bytes) else {
        return Err(reject(RejectReason::WrongLength { got: bytes.len() }));
    };
    let [curve, t, n, raw_index] = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if curve != C::ID.to_u8() {
        return Err(reject(RejectReason::WrongCurve { got: curve }));
    }
    if (t, n) != (threshold.t(), threshold.n()) {
        return Err(reject(RejectReason::WrongThreshold { t, n }));
    }
    let Ok(index) = threshold.share_index(raw_index) else {
        return Err(reject(RejectReason::IndexOutOfRange));
    };
    if bytes[4..36] != split_id.as_bytes()[..] {
        return Err(reject(RejectReason::WrongSplitId));
    }
    let mut value = Zeroizing::new([0u8; 32]);
    value.copy_from_slice(&bytes[36..]);
    // The header was checked above, so the only errors left are a
    // non-canonical or zero value.
    Share::from_parts(threshold, index, split_id, &value)
        .map_err(|_| reject(RejectReason::InvalidValue))
}

/// Steps 2 and 3 of [`combine_verified`], over the shares whose headers
/// passed.
fn recover<C: Curve>(
    candidates: Vec<Candidate<C>>,
    mut rejected: Vec<RejectedShare>,
    commitments: &Commitments<C>,
) -> Result<Recovery<C>> {
    let needed = usize::from(commitments.threshold().t());
    let mut indices = IndexSet::default();
    let distinct = candidates.iter().all(|c| indices.insert(c.share.index()));
    if distinct && candidates.len() >= needed {
        // Every share good is the expected case: one batch check. A failed
        // interpolation (bad values can sum to zero) is a failed batch too.
        if let Ok(secret) = interpolate(candidates.iter().map(|c| &c.share))
            && batch_verify(&candidates, &secret, commitments)?
        {
            return Ok(Recovery { secret, rejected });
        }
    }

    let good = keep_verified(candidates, &mut rejected, commitments);
    rejected.sort_unstable_by_key(|r| r.position);
    if good.len() < needed {
        return Err(Error::TooFewValidShares {
            rejected,
            valid: good.len(),
            needed,
        });
    }
    let secret = interpolate(good.iter())?;
    if !bool::from(secret.public_point().ct_eq(commitments.public_key())) {
        return Err(Error::SecretCommitmentMismatch);
    }
    Ok(Recovery { secret, rejected })
}

/// Checks every candidate alone; returns those that verify, one per index,
/// and appends the others to `rejected` (see [`combine_verified`], step 3).
///
/// Whether a share verifies is public (it is reported); the check itself is
/// constant time in the share's value.
fn keep_verified<C: Curve>(
    candidates: Vec<Candidate<C>>,
    rejected: &mut Vec<RejectedShare>,
    commitments: &Commitments<C>,
) -> Vec<Share<C>> {
    let verdicts: Vec<bool> = candidates
        .iter()
        .map(|c| commitments.feldman_holds(&c.share))
        .collect();
    let mut verified_indices = IndexSet::default();
    for (candidate, &ok) in candidates.iter().zip(&verdicts) {
        if ok {
            verified_indices.insert(candidate.share.index());
        }
    }
    let mut kept_indices = IndexSet::default();
    let mut good: Vec<Share<C>> = Vec::with_capacity(candidates.len());
    for (Candidate { position, share }, ok) in candidates.into_iter().zip(verdicts) {
        let index = share.index();
        let reason = if !ok {
            if verified_indices.contains(index) {
                RejectReason::DuplicateIndex
            } else {
                RejectReason::FeldmanCheckFailed
            }
        } else if kept_indices.insert(index) {
            good.push(share);
            continue;
        } else if good
            .iter()
            .any(|kept| kept.index() == index && bool::from(kept.ct_eq(&share)))
        {
            // A verified copy of a kept share: equal, so nothing to report.
            continue;
        } else {
            // Two different values that both verify at one index would mean
            // the group arithmetic is broken; refuse the copy rather than
            // trust either silently.
            RejectReason::DuplicateIndex
        };
        rejected.push(RejectedShare {
            position,
            index: Some(index),
            reason,
        });
    }
    good
}

/// A set of share indices, one bit each. Indices are public.
#[derive(Default)]
struct IndexSet([u64; 4]);

impl IndexSet {
    /// Adds `index`; `false` if it was already present.
    fn insert(&mut self, index: ShareIndex) -> bool {
        let (word, bit) = Self::position(index);
        let fresh = self.0[word] >> bit & 1 == 0;
        self.0[word] |= 1 << bit;
        fresh
    }

    fn contains(&self, index: ShareIndex) -> bool {
        let (word, bit) = Self::position(index);
        self.0[word] >> bit & 1 == 1
    }

    fn position(index: ShareIndex) -> (usize, u8) {
        let i = index.get();
        (usize::from(i / 64), i % 64)
    }
}

/// One randomised check of every candidate and of `secret` against the
/// commitments (see [`combine_verified`]).
fn batch_verify<C: Curve>(
    candidates: &[Candidate<C>],
    secret: &Secret<C>,
    commitments: &Commitments<C>,
) -> Result<bool> {
    let t = commitments.points().len();
    let mut weights = random_weights::<C>(candidates.len() + 1)?.into_iter();
    let secret_weight = weights.next().ok_or(Error::RandomnessUnavailable)?;

    // Secret side: k = r_0*secret + sum r_i*s_i. Constant time.
    let mut k = secret_weight * secret.expose_scalar();
    // Public side: coefficient of C_j is sum_i r_i*x_i^j (+ r_0 for j = 0).
    let mut coefficients = vec![C::Scalar::ZERO; t];
    coefficients[0] = secret_weight;
    for (candidate, weight) in candidates.iter().zip(weights) {
        k += weight * candidate.share.value();
        let x = C::Scalar::from(u64::from(candidate.share.index().get()));
        let mut power = weight;
        for c in &mut coefficients {
            *c += power;
            power *= x;
        }
    }
    let lhs = C::mul_base(&k);
    k.zeroize();
    let rhs = C::multiscalar_mul_vartime(&coefficients, commitments.points());
    Ok(lhs.ct_eq(&rhs).into())
}

/// `count` fresh uniformly random weights of [`WEIGHT_BITS`] bits each, from
/// one read of the operating system's generator.
fn random_weights<C: Curve>(count: usize) -> Result<Vec<C::Scalar>> {
    const WEIGHT_BYTES: usize = WEIGHT_BITS / 8;
    let mut bytes = vec![0u8; count * WEIGHT_BYTES];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| Error::RandomnessUnavailable)?;
    bytes
        .chunks_exact(WEIGHT_BYTES)
        .map(|chunk| {
            let mut wide = [0u8; 32];
            wide[32 - WEIGHT_BYTES..].copy_from_slice(chunk);
            // Below 2^128, hence below the group order: always canonical.
            C::scalar_from_be_bytes(&wide).ok_or(Error::RandomnessUnavailable)
        })
        .collect()
}

/// Structural checks of the plain [`combine`], which has no commitments and
/// so takes the first share as the reference.
fn check_set<C: Curve>(shares: &[Share<C>]) -> Result<()> {
    let first = shares
        .first()
        .ok_or(Error::TooFewShares { got: 0, needed: 2 })?;
    let (threshold, split_id) = (first.threshold(), first.split_id());
    let mut seen = IndexSet::default();
    for share in shares {
        if share.threshold() != threshold || share.split_id() != split_id {
            return Err(Error::MixedSplits);
        }
        if !seen.insert(share.index()) {
            return Err(Error::DuplicateIndex(share.index()));
        }
    }
    require_enough(shares.len(), threshold)
}

/// `sum lambda_i * s_i` over the given shares. The Lagrange coefficients
/// depend on public indices only; the products with the secret values are
/// constant-time field multiplications.
fn interpolate<'a, C: Curve>(
    shares: impl ExactSizeIterator<Item = &'a Share<C>> + Clone,
) -> Result<Secret<C>> {
    let xs: Vec<C::Scalar> = shares
        .clone()
        .map(|s| C::Scalar::from(u64::from(s.index().get())))
        .collect();
    let mut lambdas = vec![C::Scalar::ZERO; xs.len()];
    lagrange_at_zero_into::<C>(&xs, &mut lambdas)?;
    let mut sum = C::Scalar::ZERO;
    for (lambda, share) in lambdas.iter().zip(shares) {
        sum += *lambda * share.value();
    }
    let secret = Secret::from_scalar(sum);
    sum.zeroize();
    secret
}

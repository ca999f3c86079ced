//! Recovering the secret: plain interpolation, and the verified, robust
//! combine that names bad shares.

use core::fmt;

use ff::Field;
use rand::TryRng;
use rand::rngs::SysRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::curve::Curve;
use crate::error::{Error, Result};
use crate::ids::{ShareIndex, Threshold, lagrange_at_zero_into};
use crate::secret::Secret;
use crate::share::{Commitments, Share, SplitId};

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
/// represented in a [`Share`].
///
/// A share with a wrong value still yields a wrong secret here: use
/// [`combine_verified`] whenever commitments are at hand.
///
/// # Errors
/// As above, and [`Error::ZeroScalar`] if the interpolation yields zero.
pub fn combine<C: Curve>(shares: Vec<Share<C>>) -> Result<Secret<C>> {
    check_set(&shares)?;
    let secret = interpolate(&shares);
    // The shares are wiped here, whatever the outcome.
    drop(shares);
    secret
}

/// The result of [`combine_verified`]: the secret, and the shares that were
/// left out because they failed their Feldman check.
pub struct Recovery<C: Curve> {
    secret: Secret<C>,
    rejected: Vec<ShareIndex>,
}

impl<C: Curve> Recovery<C> {
    /// The recovered secret; `secret * G == C_0` was checked.
    #[must_use]
    pub fn secret(&self) -> &Secret<C> {
        &self.secret
    }

    /// Indices of the shares that failed verification and were not used.
    #[must_use]
    pub fn rejected(&self) -> &[ShareIndex] {
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

/// Recovers the secret from shares checked against `commitments`, robustly.
///
/// 1. The set is checked as by [`combine`], and its parameters and split id
///    against the commitments (the split id is recomputed from them).
/// 2. All shares and the interpolated secret are verified in one batch with
///    fresh random 128-bit weights `r_i` drawn from the operating system:
///    `(r_0*secret + sum r_i*s_i)*G == r_0*C_0 + sum_j (sum_i r_i*x_i^j)*C_j`.
///    The left side is one constant-time generator-table multiplication (it
///    involves the secret shares); the right side is a variable-time
///    multi-scalar multiplication over public commitments, public indices
///    and the weights, which reveal nothing about the shares.
/// 3. If the batch fails, every share is checked alone; the bad ones are
///    named in [`Recovery::rejected`] and the secret is recovered from the
///    good ones if at least `t` remain, then checked against `C_0`.
///
/// Consumes (and so wipes) the shares.
///
/// # Errors
/// The errors of [`combine`]; [`Error::MixedSplits`] or
/// [`Error::SplitIdMismatch`] when the shares do not belong to these
/// commitments; [`Error::TooFewValidShares`] naming the bad shares when fewer
/// than `t` good ones remain; [`Error::SecretCommitmentMismatch`] if the
/// result does not match `C_0`; [`Error::RandomnessUnavailable`].
pub fn combine_verified<C: Curve>(
    shares: Vec<Share<C>>,
    commitments: &Commitments<C>,
) -> Result<Recovery<C>> {
    let (threshold, split_id) = check_set(&shares)?;
    if threshold != commitments.threshold() {
        return Err(Error::MixedSplits);
    }
    if split_id != commitments.split_id() {
        return Err(Error::SplitIdMismatch {
            index: shares[0].index(),
        });
    }

    let secret = interpolate(&shares)?;
    if batch_verify(&shares, &secret, commitments)? {
        return Ok(Recovery {
            secret,
            rejected: Vec::new(),
        });
    }
    drop(secret);

    // Slow path: find the culprits, recover from the rest.
    let (good, bad): (Vec<Share<C>>, Vec<Share<C>>) = shares
        .into_iter()
        .partition(|share| commitments.feldman_holds(share));
    let rejected: Vec<ShareIndex> = bad.iter().map(Share::index).collect();
    if good.len() < usize::from(threshold.t()) {
        return Err(Error::TooFewValidShares {
            bad: rejected,
            valid: good.len(),
            needed: usize::from(threshold.t()),
        });
    }
    let secret = interpolate(&good)?;
    if !bool::from(secret.public_point().ct_eq(commitments.public_key())) {
        return Err(Error::SecretCommitmentMismatch);
    }
    Ok(Recovery { secret, rejected })
}

/// One randomised check of every share and of `secret` against the
/// commitments (see [`combine_verified`]).
fn batch_verify<C: Curve>(
    shares: &[Share<C>],
    secret: &Secret<C>,
    commitments: &Commitments<C>,
) -> Result<bool> {
    let t = commitments.points().len();
    let mut weights = random_weights::<C>(shares.len() + 1)?.into_iter();
    let secret_weight = weights.next().ok_or(Error::RandomnessUnavailable)?;

    // Secret side: k = r_0*secret + sum r_i*s_i. Constant time.
    let mut k = secret_weight * secret.expose_scalar();
    // Public side: coefficient of C_j is sum_i r_i*x_i^j (+ r_0 for j = 0).
    let mut coefficients = vec![C::Scalar::ZERO; t];
    coefficients[0] = secret_weight;
    for (share, weight) in shares.iter().zip(weights) {
        k += weight * share.value();
        let x = C::Scalar::from(u64::from(share.index().get()));
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

/// Structural checks shared by both combines; returns the common parameters.
fn check_set<C: Curve>(shares: &[Share<C>]) -> Result<(Threshold, SplitId)> {
    let first = shares
        .first()
        .ok_or(Error::TooFewShares { got: 0, needed: 2 })?;
    let (threshold, split_id) = (first.threshold(), first.split_id());
    let mut seen = [0u64; 4];
    for share in shares {
        if share.threshold() != threshold || share.split_id() != split_id {
            return Err(Error::MixedSplits);
        }
        let i = share.index().get();
        let (word, bit) = (usize::from(i / 64), i % 64);
        if seen[word] >> bit & 1 == 1 {
            return Err(Error::DuplicateIndex(share.index()));
        }
        seen[word] |= 1 << bit;
    }
    if shares.len() < usize::from(threshold.t()) {
        return Err(Error::TooFewShares {
            got: shares.len(),
            needed: usize::from(threshold.t()),
        });
    }
    Ok((threshold, split_id))
}

/// `sum lambda_i * s_i` over the given shares. The Lagrange coefficients
/// depend on public indices only; the products with the secret values are
/// constant-time field multiplications.
fn interpolate<C: Curve>(shares: &[Share<C>]) -> Result<Secret<C>> {
    let xs: Vec<C::Scalar> = shares
        .iter()
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

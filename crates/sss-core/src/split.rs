//! Splitting a secret with Feldman commitments, on top of vsss-rs.

use core::fmt;

use ff::Field;
use group::Group;
use rand_core::CryptoRng;
use vsss_rs::{
    DefaultShare, Feldman, IdentifierPrimeField, ParticipantIdGenerator, Polynomial, Shamir,
    Share as _, ValueGroup,
};
use zeroize::Zeroize;

use crate::curve::Curve;
use crate::error::{Error, Result};
use shardkeep_types::{ShareIndex, Threshold};

use crate::secret::Secret;
use crate::share::{Commitments, Share};

/// vsss-rs's share type for curve `C`; it never leaves this module.
type VsssShare<C> = DefaultShare<
    IdentifierPrimeField<<C as Curve>::Scalar>,
    IdentifierPrimeField<<C as Curve>::Scalar>,
>;
type VsssVerifier<C> = ValueGroup<<C as Curve>::Point>;

/// The output of [`split`]: `n` shares and the commitments that verify them.
pub struct Split<C: Curve> {
    commitments: Commitments<C>,
    shares: Vec<Share<C>>,
}

impl<C: Curve> Split<C> {
    /// The Feldman commitments (public).
    #[must_use]
    pub fn commitments(&self) -> &Commitments<C> {
        &self.commitments
    }

    /// The shares, ordered by index `1..=n`.
    #[must_use]
    pub fn shares(&self) -> &[Share<C>] {
        &self.shares
    }

    /// Takes the commitments and the shares apart.
    #[must_use]
    pub fn into_parts(self) -> (Commitments<C>, Vec<Share<C>>) {
        (self.commitments, self.shares)
    }
}

impl<C: Curve> fmt::Debug for Split<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split")
            .field("commitments", &self.commitments)
            .field("shares", &self.shares)
            .finish()
    }
}

/// Splits `secret` into `threshold.n()` shares, any `threshold.t()` of which
/// recover it, with Feldman commitments to the polynomial.
///
/// ```
/// use rand::{SeedableRng, rngs::ChaCha20Rng};
/// use shardkeep_sss_core::{combine, split, Secp256k1, Secret, Threshold};
/// use subtle::ConstantTimeEq;
///
/// let mut rng = ChaCha20Rng::from_seed([7; 32]);
/// let secret = Secret::<Secp256k1>::random(&mut rng);
/// let split = split(&secret, Threshold::new(3, 5)?, &mut rng)?;
/// for share in split.shares() {
///     split.commitments().verify(share)?;
/// }
/// let (_, mut shares) = split.into_parts();
/// shares.truncate(3);
/// let recovered = combine(shares)?;
/// assert!(bool::from(recovered.ct_eq(&secret)));
/// # Ok::<(), shardkeep_sss_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Split`] if vsss-rs refuses (it should not for a valid
/// [`Threshold`]), [`Error::ZeroScalar`] / [`Error::IdentityPoint`] in the
/// negligible case of a zero share value or coefficient.
pub fn split<C: Curve, R: CryptoRng + ?Sized>(
    secret: &Secret<C>,
    threshold: Threshold,
    rng: &mut R,
) -> Result<Split<C>> {
    let t = usize::from(threshold.t());
    let n = usize::from(threshold.n());
    let one = IdentifierPrimeField(C::Scalar::ONE);
    let ids = [ParticipantIdGenerator::Sequential {
        start: one,
        increment: one,
        count: n,
    }];
    let mut intercept = IdentifierPrimeField(*secret.expose_scalar());
    let result = <ZeroizingVsss<C> as Feldman<VsssShare<C>, VsssVerifier<C>>>::
        split_secret_with_participant_generators_and_verifiers(
            t, n, &intercept, None, &mut *rng, &ids,
        );
    intercept.0.zeroize();
    let (mut vsss_shares, verifiers) = result.map_err(map_vsss_error)?;

    let outcome = convert(threshold, &vsss_shares, verifiers);
    for share in &mut vsss_shares {
        share.value_mut().0.zeroize();
    }
    outcome
}

fn convert<C: Curve>(
    threshold: Threshold,
    vsss_shares: &[VsssShare<C>],
    verifiers: Vec<VsssVerifier<C>>,
) -> Result<Split<C>> {
    // vsss-rs returns [generator, C_0, .., C_{t-1}]: the generator is fixed
    // by the curve, never carried, so it is dropped here.
    let mut verifiers = verifiers.into_iter();
    let generator = verifiers.next().ok_or(Error::Split("empty verifier set"))?;
    if generator.0 != C::Point::generator() {
        return Err(Error::Split("unexpected generator in verifier set"));
    }
    let commitments = Commitments::from_points(threshold, verifiers.map(|v| v.0).collect())?;
    let split_id = commitments.split_id();

    if vsss_shares.len() != usize::from(threshold.n()) {
        return Err(Error::Split("wrong number of shares"));
    }
    let shares = vsss_shares
        .iter()
        .zip(threshold.indices())
        .map(|(vsss_share, index)| {
            check_identifier::<C>(vsss_share, index)?;
            Share::from_scalar(threshold, index, split_id, vsss_share.value().0)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Split {
        commitments,
        shares,
    })
}

/// The participant generator numbers shares 1..=n; make sure it did.
fn check_identifier<C: Curve>(share: &VsssShare<C>, index: ShareIndex) -> Result<()> {
    if share.identifier().0 == C::Scalar::from(u64::from(index.get())) {
        Ok(())
    } else {
        Err(Error::Split("share identifiers are not 1..=n"))
    }
}

fn map_vsss_error(error: vsss_rs::Error) -> Error {
    // `vsss_rs::Error` implements neither `std::error::Error` nor carries
    // secrets; keep a static description.
    Error::Split(match error {
        vsss_rs::Error::SharingMinThreshold => "threshold below 2",
        vsss_rs::Error::SharingLimitLessThanThreshold => "n below t",
        vsss_rs::Error::SharingMaxRequest | vsss_rs::Error::InvalidSizeRequest => {
            "too many shares requested"
        }
        vsss_rs::Error::InvalidGenerator(reason) => reason,
        _ => "vsss-rs rejected the split",
    })
}

/// The vsss-rs scheme with a polynomial that is wiped when dropped (vsss-rs's
/// own `Vec` polynomial is not), so the random coefficients do not outlive
/// the split.
struct ZeroizingVsss<C: Curve>(core::marker::PhantomData<C>);

impl<C: Curve> Shamir<VsssShare<C>> for ZeroizingVsss<C> {
    type InnerPolynomial = ZeroizingPolynomial<C>;
    type ShareSet = Vec<VsssShare<C>>;
}

impl<C: Curve> Feldman<VsssShare<C>, VsssVerifier<C>> for ZeroizingVsss<C> {
    type VerifierSet = Vec<VsssVerifier<C>>;
}

struct ZeroizingPolynomial<C: Curve>(Vec<VsssShare<C>>);

impl<C: Curve> Polynomial<VsssShare<C>> for ZeroizingPolynomial<C> {
    fn create(size_hint: usize) -> Self {
        Self(vec![VsssShare::<C>::default(); size_hint])
    }

    fn coefficients(&self) -> &[VsssShare<C>] {
        &self.0
    }

    fn coefficients_mut(&mut self) -> &mut [VsssShare<C>] {
        &mut self.0
    }
}

impl<C: Curve> Drop for ZeroizingPolynomial<C> {
    fn drop(&mut self) {
        for coefficient in &mut self.0 {
            coefficient.identifier_mut().0.zeroize();
            coefficient.value_mut().0.zeroize();
        }
    }
}

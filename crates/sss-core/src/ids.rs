//! The two kinds of public x-coordinate: backup share indices
//! ([`ShareIndex`], with [`Threshold`], from `shardkeep-types`) and tss-lib
//! party ids. They are different things and never mix; both can be
//! interpolated over.

use core::fmt;

use ff::Field;
use shardkeep_types::ShareIndex;
use subtle::ConstantTimeEq;

use crate::curve::Curve;
use crate::error::{Error, Result};

/// A tss-lib party id (`ShareID`, an entry of `Ks`) reduced modulo the group
/// order, non-zero. Not a backup share index.
///
/// tss-lib draws party ids as arbitrary big integers (its EdDSA fixtures use
/// ids above the ed25519 order) and reduces them before interpolating; so
/// does this type.
pub struct PartyId<C: Curve> {
    scalar: C::Scalar,
}

impl<C: Curve> PartyId<C> {
    /// Reduces a big-endian integer (tss-lib's `big.Int` bytes, at most 64
    /// bytes) modulo the group order.
    ///
    /// # Errors
    /// [`Error::PartyIdTooLong`], or [`Error::ZeroPartyId`] when the id is a
    /// multiple of the order.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self> {
        let scalar = C::scalar_reduce_be_vartime(bytes)?;
        if bool::from(scalar.is_zero()) {
            return Err(Error::ZeroPartyId);
        }
        Ok(Self { scalar })
    }

    /// The reduced id as a scalar.
    #[must_use]
    pub fn to_scalar(&self) -> C::Scalar {
        self.scalar
    }
}

impl<C: Curve> Clone for PartyId<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C: Curve> Copy for PartyId<C> {}

impl<C: Curve> PartialEq for PartyId<C> {
    fn eq(&self, other: &Self) -> bool {
        // Party ids are public; the constant-time comparison is just the
        // one the scalar type offers.
        self.scalar.ct_eq(&other.scalar).into()
    }
}
impl<C: Curve> Eq for PartyId<C> {}

impl<C: Curve> fmt::Debug for PartyId<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = C::scalar_to_be_bytes(&self.scalar);
        write!(f, "PartyId({})", Hex(bytes.as_slice()))
    }
}

/// The party ids of one tss-lib group, in `Ks` order, pairwise distinct.
pub struct PartyIdSet<C: Curve> {
    ids: Vec<PartyId<C>>,
}

impl<C: Curve> PartyIdSet<C> {
    /// Builds the set, refusing duplicates (after reduction).
    ///
    /// # Errors
    /// [`Error::DuplicatePartyId`] naming both positions.
    pub fn new(ids: Vec<PartyId<C>>) -> Result<Self> {
        for (second, id) in ids.iter().enumerate() {
            if let Some(first) = ids[..second].iter().position(|other| other == id) {
                return Err(Error::DuplicatePartyId { first, second });
            }
        }
        Ok(Self { ids })
    }

    /// The ids in their original order.
    #[must_use]
    pub fn as_slice(&self) -> &[PartyId<C>] {
        &self.ids
    }

    /// Number of parties.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Position of `id` in the set.
    #[must_use]
    pub fn position(&self, id: &PartyId<C>) -> Option<usize> {
        self.ids.iter().position(|other| other == id)
    }
}

impl<C: Curve> fmt::Debug for PartyIdSet<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.ids).finish()
    }
}

/// A public x-coordinate that Lagrange interpolation can run over: a
/// [`ShareIndex`] or a [`PartyId`].
pub trait InterpolationPoint<C: Curve> {
    /// The x-coordinate as a scalar.
    fn x(&self) -> C::Scalar;
}

impl<C: Curve> InterpolationPoint<C> for ShareIndex {
    fn x(&self) -> C::Scalar {
        C::Scalar::from(u64::from(self.get()))
    }
}

impl<C: Curve> InterpolationPoint<C> for PartyId<C> {
    fn x(&self) -> C::Scalar {
        self.scalar
    }
}

/// Lagrange coefficients at 0 over distinct, non-zero public x-coordinates:
/// `f(0) = sum coefficients[i] * f(x_i)` for any polynomial of degree below
/// `points.len()`.
///
/// ```
/// # use shardkeep_sss_core::{lagrange_at_zero, Secp256k1, Threshold};
/// let t = Threshold::new(2, 3)?;
/// let idx = [t.share_index(1)?, t.share_index(2)?];
/// let l = lagrange_at_zero::<Secp256k1, _>(&idx)?;
/// // f(x) = 5 + 7x: f(1) = 12, f(2) = 19, f(0) = 5
/// let f0 = l[0] * k256::Scalar::from(12u64) + l[1] * k256::Scalar::from(19u64);
/// assert_eq!(f0, k256::Scalar::from(5u64));
/// # Ok::<(), shardkeep_sss_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInterpolationSet`] for an empty set, a zero or a repeated
/// x-coordinate.
pub fn lagrange_at_zero<C: Curve, P: InterpolationPoint<C>>(
    points: &[P],
) -> Result<Vec<C::Scalar>> {
    let xs: Vec<C::Scalar> = points.iter().map(InterpolationPoint::x).collect();
    let mut out = vec![C::Scalar::ZERO; xs.len()];
    lagrange_at_zero_into::<C>(&xs, &mut out)?;
    Ok(out)
}

/// Lagrange coefficients at an arbitrary public `at`: `f(at) = sum
/// coefficients[i] * f(x_i)`. Used to check that further points lie on the
/// polynomial a quorum defines.
///
/// # Errors
/// [`Error::InvalidInterpolationSet`] for an empty set or a repeated
/// x-coordinate.
pub fn lagrange_at<C: Curve, P: InterpolationPoint<C>>(
    points: &[P],
    at: &C::Scalar,
) -> Result<Vec<C::Scalar>> {
    let xs: Vec<C::Scalar> = points.iter().map(InterpolationPoint::x).collect();
    if xs.is_empty() {
        return Err(Error::InvalidInterpolationSet);
    }
    // numerators[i] = prod_{j != i} (at - x_j), from prefix and suffix products.
    let m = xs.len();
    let mut numerators = vec![C::Scalar::ONE; m];
    let mut acc = C::Scalar::ONE;
    for i in 0..m {
        numerators[i] = acc;
        acc *= *at - xs[i];
    }
    acc = C::Scalar::ONE;
    for i in (0..m).rev() {
        numerators[i] *= acc;
        acc *= *at - xs[i];
    }
    // denominators[i] = prod_{j != i} (x_i - x_j); zero iff two x coincide.
    let mut denominators: Vec<C::Scalar> = (0..m)
        .map(|i| {
            xs.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(C::Scalar::ONE, |d, (_, xj)| d * (xs[i] - xj))
        })
        .collect();
    C::batch_invert_vartime(&mut denominators)?;
    Ok(numerators
        .iter()
        .zip(&denominators)
        .map(|(n, d)| *n * d)
        .collect())
}

/// The interpolation kernel of the combine path, allocation-free given
/// `out`: `out[i] = prod_{j != i} x_j / (x_j - x_i)`, computed as
/// `P / (x_i * prod_{j != i} (x_j - x_i))` with `P = prod x_j`, so that one
/// batched inversion serves every coefficient.
///
/// Variable time: the x-coordinates are public (share indices, party ids).
pub(crate) fn lagrange_at_zero_into<C: Curve>(
    xs: &[C::Scalar],
    out: &mut [C::Scalar],
) -> Result<()> {
    if xs.is_empty() || xs.len() != out.len() {
        return Err(Error::InvalidInterpolationSet);
    }
    let mut product = C::Scalar::ONE;
    for (i, (xi, slot)) in xs.iter().zip(out.iter_mut()).enumerate() {
        product *= xi;
        let mut denominator = *xi;
        for (j, xj) in xs.iter().enumerate() {
            if j != i {
                denominator *= *xj - xi;
            }
        }
        *slot = denominator;
    }
    // A zero or repeated x makes some denominator, hence the batch, zero.
    C::batch_invert_vartime(out)?;
    for slot in out.iter_mut() {
        *slot *= product;
    }
    Ok(())
}

/// Lower-case hex of public bytes, for `Debug` output.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

// The tests run on secp256k1 (whose order they spell out).
#[cfg(test)]
#[cfg(feature = "secp256k1")]
mod tests {
    use super::*;
    use crate::{Secp256k1, Threshold};
    use k256::Scalar;

    #[test]
    fn party_ids_reduce_and_refuse_zero_and_duplicates() {
        let order = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        assert_eq!(
            PartyId::<Secp256k1>::from_be_bytes(&order),
            Err(Error::ZeroPartyId)
        );
        assert_eq!(
            PartyId::<Secp256k1>::from_be_bytes(&[]),
            Err(Error::ZeroPartyId)
        );
        assert_eq!(
            PartyId::<Secp256k1>::from_be_bytes(&[1; 65]),
            Err(Error::PartyIdTooLong { len: 65 })
        );
        // order + 7 reduces to 7.
        let mut order_plus_7 = order.clone();
        *order_plus_7.last_mut().unwrap() += 7;
        let reduced = PartyId::<Secp256k1>::from_be_bytes(&order_plus_7).unwrap();
        assert_eq!(reduced, PartyId::from_be_bytes(&[7]).unwrap());
        let ids = vec![
            PartyId::from_be_bytes(&[3]).unwrap(),
            PartyId::from_be_bytes(&[7]).unwrap(),
            reduced,
        ];
        assert_eq!(
            PartyIdSet::<Secp256k1>::new(ids).unwrap_err(),
            Error::DuplicatePartyId {
                first: 1,
                second: 2
            }
        );
    }

    #[test]
    fn lagrange_refuses_zero_and_repeated_points() {
        let t = Threshold::new(2, 3).unwrap();
        let one = t.share_index(1).unwrap();
        assert_eq!(
            lagrange_at_zero::<Secp256k1, _>(&[one, one]),
            Err(Error::InvalidInterpolationSet)
        );
        assert_eq!(
            lagrange_at_zero::<Secp256k1, ShareIndex>(&[]),
            Err(Error::InvalidInterpolationSet)
        );
        assert_eq!(
            lagrange_at::<Secp256k1, _>(&[one, one], &Scalar::from(9u64)),
            Err(Error::InvalidInterpolationSet)
        );
    }

    #[test]
    fn lagrange_at_zero_agrees_with_lagrange_at() {
        let ids: Vec<PartyId<Secp256k1>> = [5u8, 9, 200, 77]
            .iter()
            .map(|b| PartyId::from_be_bytes(&[*b]).unwrap())
            .collect();
        let at_zero = lagrange_at_zero::<Secp256k1, _>(&ids).unwrap();
        let general = lagrange_at::<Secp256k1, _>(&ids, &Scalar::ZERO).unwrap();
        assert_eq!(at_zero, general);
        // Interpolating at one of the points picks that point.
        let at_third = lagrange_at::<Secp256k1, _>(&ids, &ids[2].to_scalar()).unwrap();
        assert_eq!(
            at_third,
            [Scalar::ZERO, Scalar::ZERO, Scalar::ONE, Scalar::ZERO]
        );
    }
}

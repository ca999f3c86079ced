//! secp256k1 through k256.

use ff::PrimeField;
use group::{CurveAffine, Group, GroupEncoding};
use k256::elliptic_curve::bigint::U512;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::sec1::FromSec1Point;
use k256::{AffinePoint, ProjectivePoint, Scalar, Sec1Point};
use wnaf::array::typenum::U5;
use wnaf::{WnafBase, WnafScalar};
use zeroize::Zeroizing;

use super::{Curve, CurveId, point_repr, private, widen_be};
use crate::error::{Error, Result};

/// secp256k1, the curve of tss-lib's ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secp256k1;

impl private::Sealed for Secp256k1 {}

impl Curve for Secp256k1 {
    const ID: CurveId = CurveId::Secp256k1;
    const POINT_LEN: usize = 33;

    type Scalar = Scalar;
    type Point = ProjectivePoint;

    fn scalar_from_be_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
        // k256's canonical repr is big-endian; `from_repr` rejects values >= n.
        Scalar::from_repr((*bytes).into()).into()
    }

    fn scalar_to_be_bytes(scalar: &Scalar) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let mut repr = scalar.to_repr();
        out.copy_from_slice(&repr);
        zeroize::Zeroize::zeroize(repr.as_mut_slice());
        out
    }

    fn scalar_reduce_be_vartime(bytes: &[u8]) -> Result<Scalar> {
        let wide = widen_be(bytes)?;
        Ok(<Scalar as Reduce<U512>>::reduce(&U512::from_be_slice(
            &wide,
        )))
    }

    fn mul_base(scalar: &Scalar) -> ProjectivePoint {
        ProjectivePoint::mul_by_generator(scalar)
    }

    fn multiscalar_mul_vartime(scalars: &[Scalar], points: &[ProjectivePoint]) -> ProjectivePoint {
        // Variable time (interleaved wNAF, Straus): callers pass public
        // scalars and points only. Plain wNAF rather than k256's GLV
        // `lincomb_vartime`: the scalars here are batch-verification
        // coefficients of ~130-150 bits, which GLV cannot shorten further,
        // while it doubles the number of precomputed tables.
        let bases: Vec<WnafBase<ProjectivePoint, U5>> = points.iter().map(WnafBase::new).collect();
        let digits: Vec<WnafScalar<Scalar, U5>> = scalars.iter().map(WnafScalar::new).collect();
        WnafBase::multiscalar_mul(bases.iter().zip(digits.iter()))
    }

    fn invert_vartime(value: &Scalar) -> Option<Scalar> {
        // Bernstein-Yang in variable time: callers invert public values only.
        value.invert_vartime().into()
    }

    fn decode_point(bytes: &[u8]) -> Result<ProjectivePoint> {
        let repr = point_repr::<AffinePoint>(bytes, Self::POINT_LEN)?;
        let point: Option<AffinePoint> = AffinePoint::from_bytes(&repr).into();
        let point = point.ok_or(Error::InvalidPoint)?;
        if bool::from(point.is_identity()) {
            return Err(Error::IdentityPoint);
        }
        // Only one encoding per point: re-encode and compare (catches x >= p).
        // Affine, so re-encoding costs no field inversion.
        if point.to_bytes().as_slice() != bytes {
            return Err(Error::InvalidPoint);
        }
        Ok(ProjectivePoint::from(point))
    }

    fn point_from_affine_be(x: &[u8; 32], y: &[u8; 32]) -> Result<ProjectivePoint> {
        let sec1 = Sec1Point::from_affine_coordinates(x.into(), y.into(), false);
        let point: Option<AffinePoint> = AffinePoint::from_sec1_point(&sec1).into();
        let point = ProjectivePoint::from(point.ok_or(Error::InvalidPoint)?);
        if bool::from(point.is_identity()) {
            return Err(Error::IdentityPoint);
        }
        Ok(point)
    }
}

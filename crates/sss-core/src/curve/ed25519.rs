//! edwards25519 through curve25519-dalek, on **Edwards** points: tss-lib
//! stores twisted-Edwards affine coordinates, which Ristretto encodings would
//! never match.

use crypto_bigint::{NonZero, U256};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use zeroize::{Zeroize, Zeroizing};

use super::{Curve, CurveId, private, widen_be};
use crate::error::{Error, Result};

/// edwards25519, the curve of tss-lib's EdDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519;

impl private::Sealed for Ed25519 {}

/// p = 2^255 - 19.
const FIELD_MODULUS: U256 =
    U256::from_be_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");

const MODULUS_NONZERO: NonZero<U256> = NonZero::<U256>::new_unwrap(FIELD_MODULUS);

impl Curve for Ed25519 {
    const ID: CurveId = CurveId::Ed25519;
    const POINT_LEN: usize = 32;

    type Scalar = Scalar;
    type Point = EdwardsPoint;

    fn scalar_from_be_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
        let mut le = *bytes;
        le.reverse();
        let scalar = Scalar::from_canonical_bytes(le).into();
        le.zeroize();
        scalar
    }

    fn scalar_to_be_bytes(scalar: &Scalar) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new(scalar.to_bytes());
        out.reverse();
        out
    }

    fn scalar_reduce_be_vartime(bytes: &[u8]) -> Result<Scalar> {
        let mut wide = widen_be(bytes)?;
        wide.reverse();
        Ok(Scalar::from_bytes_mod_order_wide(&wide))
    }

    fn mul_base(scalar: &Scalar) -> EdwardsPoint {
        EdwardsPoint::mul_base(scalar)
    }

    fn multiscalar_mul_vartime(scalars: &[Scalar], points: &[EdwardsPoint]) -> EdwardsPoint {
        // Variable time (Straus / Pippenger): public scalars and points only.
        EdwardsPoint::vartime_multiscalar_mul(scalars, points)
    }

    fn invert_vartime(value: &Scalar) -> Option<Scalar> {
        // curve25519-dalek only offers a constant-time inversion; it is
        // correct here too, just not the fastest possible.
        if value == &Scalar::ZERO {
            None
        } else {
            Some(value.invert())
        }
    }

    fn decode_point(bytes: &[u8]) -> Result<EdwardsPoint> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| Error::WrongLength {
            expected: Self::POINT_LEN,
            got: bytes.len(),
        })?;
        // Two encodings decompress() accepts are not canonical: y >= p (it
        // reduces y modulo p), and a set sign bit with x = 0, which happens
        // for y = 1 and y = -1 only. Checking the bytes is far cheaper than
        // re-compressing, which costs a field inversion.
        let mut y_be = array;
        y_be[31] &= 0x7f;
        y_be.reverse();
        let y = U256::from_be_slice(&y_be);
        let sign_bit = array[31] & 0x80 != 0;
        let x_is_zero = y == U256::ONE || y == FIELD_MODULUS.wrapping_sub(&U256::ONE);
        if y >= FIELD_MODULUS || (sign_bit && x_is_zero) {
            return Err(Error::InvalidPoint);
        }
        let point = CompressedEdwardsY(array)
            .decompress()
            .ok_or(Error::InvalidPoint)?;
        validate(point)
    }

    fn point_from_affine_be(x: &[u8; 32], y: &[u8; 32]) -> Result<EdwardsPoint> {
        let x_int = U256::from_be_slice(x);
        let y_int = U256::from_be_slice(y);
        if x_int >= FIELD_MODULUS || y_int >= FIELD_MODULUS || !on_curve(&x_int, &y_int) {
            return Err(Error::InvalidPoint);
        }
        // On the curve, y and the parity of x determine the point.
        let mut compressed = *y;
        compressed.reverse();
        compressed[31] |= (x[31] & 1) << 7;
        let point = CompressedEdwardsY(compressed)
            .decompress()
            .ok_or(Error::InvalidPoint)?;
        validate(point)
    }
}

fn validate(point: EdwardsPoint) -> Result<EdwardsPoint> {
    if point == EdwardsPoint::identity() {
        return Err(Error::IdentityPoint);
    }
    if !point.is_torsion_free() {
        return Err(Error::TorsionPoint);
    }
    Ok(point)
}

/// `-x^2 + y^2 = 1 + d x^2 y^2 (mod p)` with `d = -121665/121666`, multiplied
/// through by 121666 to avoid the inversion. Variable time: coordinates of
/// public points only.
fn on_curve(x: &U256, y: &U256) -> bool {
    let p = &MODULUS_NONZERO;
    let d_num = U256::from_u32(121_665);
    let d_den = U256::from_u32(121_666);
    let xx = x.mul_mod_vartime(x, p);
    let yy = y.mul_mod_vartime(y, p);
    let lhs = d_den.mul_mod_vartime(&yy.sub_mod(&xx, p), p);
    let xxyy = xx.mul_mod_vartime(&yy, p);
    let rhs = d_den.sub_mod(&d_num.mul_mod_vartime(&xxyy, p), p);
    lhs == rhs
}

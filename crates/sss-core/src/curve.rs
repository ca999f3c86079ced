//! The curves shares live on, and the few group operations the crate needs.
//!
//! Every operation that takes secret input (`mul_base`, scalar arithmetic)
//! is constant time. The `*_vartime` operations are for public values only:
//! share indices, party ids, commitments, verification weights.

use core::fmt;

use ff::PrimeField;
use group::{Group, GroupEncoding};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

#[cfg(feature = "ed25519")]
mod ed25519;
#[cfg(feature = "secp256k1")]
mod secp256k1;

#[cfg(feature = "ed25519")]
pub use ed25519::Ed25519;
#[cfg(feature = "secp256k1")]
pub use secp256k1::Secp256k1;

/// Wire identifier of a curve: one byte in every encoding and hash that
/// names a curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CurveId {
    /// secp256k1 (tss-lib ECDSA).
    Secp256k1 = 1,
    /// edwards25519 (tss-lib EdDSA).
    Ed25519 = 2,
}

impl CurveId {
    /// The wire byte.
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a wire byte.
    ///
    /// # Errors
    /// [`Error::CurveMismatch`] naming the byte when it is not a known curve.
    pub const fn from_u8(byte: u8) -> Result<Self> {
        match byte {
            1 => Ok(Self::Secp256k1),
            2 => Ok(Self::Ed25519),
            got => Err(Error::CurveMismatch {
                expected: Self::Secp256k1,
                got,
            }),
        }
    }

    /// The curve's name as tss-lib writes it in `"Curve"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for CurveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A prime-order group that shares can live on.
///
/// Sealed: implemented by [`Secp256k1`] and (feature `ed25519`) [`Ed25519`]
/// only. Scalars travel as 32-byte **big-endian** integers below the group
/// order on every curve (the way tss-lib's big integers read), points in
/// their standard compressed form (SEC1 for secp256k1, RFC 8032 for
/// ed25519).
pub trait Curve: private::Sealed + Copy + fmt::Debug + Send + Sync + 'static {
    /// Wire identifier.
    const ID: CurveId;
    /// Length of an encoded point.
    const POINT_LEN: usize;

    /// Scalar field element.
    type Scalar: PrimeField + Zeroize + ConstantTimeEq + Default + Send + Sync;
    /// Group element.
    type Point: Group<Scalar = Self::Scalar>
        + GroupEncoding
        + ConstantTimeEq
        + Default
        + fmt::Debug
        + Send
        + Sync;

    /// Decodes a canonical 32-byte big-endian scalar; `None` when it is not
    /// below the group order.
    fn scalar_from_be_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar>;

    /// Encodes a scalar as 32 big-endian bytes, in a buffer that is wiped
    /// when dropped.
    fn scalar_to_be_bytes(scalar: &Self::Scalar) -> Zeroizing<[u8; 32]>;

    /// Reduces a big-endian integer of up to 64 bytes modulo the group order
    /// (tss-lib does this with party ids). Variable time: public input only.
    ///
    /// # Errors
    /// [`Error::PartyIdTooLong`] for more than 64 bytes.
    fn scalar_reduce_be_vartime(bytes: &[u8]) -> Result<Self::Scalar>;

    /// `scalar * G` with the curve's precomputed generator table, constant
    /// time in `scalar`.
    fn mul_base(scalar: &Self::Scalar) -> Self::Point;

    /// `sum scalars[i] * points[i]`, **variable time**: only for public
    /// scalars and points.
    fn multiscalar_mul_vartime(scalars: &[Self::Scalar], points: &[Self::Point]) -> Self::Point;

    /// Inverts every element of `values` in place with one field inversion,
    /// **variable time**: only for public values.
    ///
    /// # Errors
    /// [`Error::InvalidInterpolationSet`] when an element is zero; `values`
    /// is then left unchanged.
    fn batch_invert_vartime(values: &mut [Self::Scalar]) -> Result<()> {
        batch_invert_with(values, Self::invert_vartime)
    }

    /// Inverts one public value, **variable time**.
    fn invert_vartime(value: &Self::Scalar) -> Option<Self::Scalar>;

    /// Decodes a point from its canonical compressed encoding and checks
    /// that it is a usable public key: on the curve, canonically encoded,
    /// not the identity, and (ed25519) free of torsion.
    ///
    /// # Errors
    /// [`Error::WrongLength`], [`Error::InvalidPoint`],
    /// [`Error::IdentityPoint`] or [`Error::TorsionPoint`].
    fn decode_point(bytes: &[u8]) -> Result<Self::Point>;

    /// Decodes a point from affine coordinates as tss-lib stores them
    /// (`{"Coords": [x, y]}`, each a 32-byte big-endian integer; twisted
    /// Edwards coordinates for ed25519), with the checks of
    /// [`Curve::decode_point`].
    ///
    /// # Errors
    /// As [`Curve::decode_point`].
    fn point_from_affine_be(x: &[u8; 32], y: &[u8; 32]) -> Result<Self::Point>;

    /// Encodes a point in its canonical compressed form.
    fn encode_point(point: &Self::Point, out: &mut Vec<u8>) {
        out.extend_from_slice(point.to_bytes().as_ref());
    }
}

/// Montgomery's trick: one inversion for the whole slice. Shared by the
/// curve implementations; the inversion itself is curve-specific.
pub(crate) fn batch_invert_with<S: PrimeField>(
    values: &mut [S],
    invert: impl Fn(&S) -> Option<S>,
) -> Result<()> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = S::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= v;
    }
    let mut inv = invert(&acc).ok_or(Error::InvalidInterpolationSet)?;
    for (v, before) in values.iter_mut().zip(prefix).rev() {
        let next = inv * *v;
        *v = inv * before;
        inv = next;
    }
    Ok(())
}

/// Checks the length of a point encoding and copies it into the curve's
/// fixed-size representation.
pub(crate) fn point_repr<P: GroupEncoding>(bytes: &[u8], expected: usize) -> Result<P::Repr> {
    let mut repr = P::Repr::default();
    if bytes.len() != expected || repr.as_ref().len() != expected {
        return Err(Error::WrongLength {
            expected,
            got: bytes.len(),
        });
    }
    repr.as_mut().copy_from_slice(bytes);
    Ok(repr)
}

/// Left-pads a big-endian integer of at most 64 bytes to 64 bytes.
#[cfg(any(feature = "secp256k1", feature = "ed25519"))]
pub(crate) fn widen_be(bytes: &[u8]) -> Result<[u8; 64]> {
    let mut wide = [0u8; 64];
    let start = 64usize
        .checked_sub(bytes.len())
        .ok_or(Error::PartyIdTooLong { len: bytes.len() })?;
    wide[start..].copy_from_slice(bytes);
    Ok(wide)
}

mod private {
    /// Seals [`super::Curve`]: only this crate's curves implement it.
    pub trait Sealed {}
}

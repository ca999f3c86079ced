//! The secret being shared: an MPC node's share `Xi`, a non-zero scalar.

use core::fmt;

use ff::Field;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::curve::Curve;
use crate::error::{Error, Result};

/// A secret scalar: wiped on drop, compared in constant time, never printed.
///
/// No `Clone`, `Copy`, `PartialEq` or `Debug` derives: equality is
/// [`ConstantTimeEq`], `Debug` prints `Secret(<redacted>)`.
pub struct Secret<C: Curve> {
    scalar: C::Scalar,
}

impl<C: Curve> Secret<C> {
    /// Decodes a 32-byte big-endian scalar (how tss-lib's `Xi` reads once
    /// left-padded to 32 bytes).
    ///
    /// # Errors
    /// [`Error::NonCanonicalScalar`] when it is not below the group order,
    /// [`Error::ZeroScalar`] when it is zero.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let scalar = C::scalar_from_be_bytes(bytes).ok_or(Error::NonCanonicalScalar)?;
        Self::from_scalar(scalar)
    }

    /// Wraps a scalar.
    ///
    /// # Errors
    /// [`Error::ZeroScalar`] when it is zero.
    pub fn from_scalar(mut scalar: C::Scalar) -> Result<Self> {
        if bool::from(scalar.is_zero()) {
            return Err(Error::ZeroScalar);
        }
        let secret = Self { scalar };
        scalar.zeroize();
        Ok(secret)
    }

    /// A uniformly random non-zero secret.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let scalar = C::Scalar::random(&mut *rng);
            if let Ok(secret) = Self::from_scalar(scalar) {
                return secret;
            }
        }
    }

    /// The 32-byte big-endian encoding, in a buffer wiped on drop.
    #[must_use]
    pub fn to_be_bytes(&self) -> Zeroizing<[u8; 32]> {
        C::scalar_to_be_bytes(&self.scalar)
    }

    /// The scalar itself, for callers that compute with it (signing tests).
    /// Keep what you derive from it in zeroizing types.
    #[must_use]
    pub fn expose_scalar(&self) -> &C::Scalar {
        &self.scalar
    }

    /// The public point `secret * G` (constant time in the secret).
    #[must_use]
    pub fn public_point(&self) -> C::Point {
        C::mul_base(&self.scalar)
    }
}

impl<C: Curve> ConstantTimeEq for Secret<C> {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.scalar.ct_eq(&other.scalar)
    }
}

impl<C: Curve> Drop for Secret<C> {
    fn drop(&mut self) {
        self.scalar.zeroize();
    }
}

impl<C: Curve> ZeroizeOnDrop for Secret<C> {}

impl<C: Curve> fmt::Debug for Secret<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

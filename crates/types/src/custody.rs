//! The two key-custody traits every shardkeep crate shares, and the data
//! keys they handle.
//!
//! - [`KeyEncryptionKey`]: wraps and unwraps per-envelope data keys. One
//!   instance is one KEK; providers (`shardkeep-kms`: local key file, PKCS#11
//!   HSM) hand out one per share slot, so destroying it crypto-shreds the slot.
//! - [`Signer`]: ed25519 signatures for envelopes, receipts and audit
//!   checkpoints; each purpose uses its own key.
//!
//! The reference implementations that hold keys in process memory are
//! [`InMemoryKek`](crate::InMemoryKek) and
//! [`InMemorySigner`](crate::InMemorySigner) (feature `in-memory`).

use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::ids::ShareSlot;
use crate::names::{KekId, SignerId};

/// Length of a data key.
pub const DATA_KEY_LEN: usize = 32;

/// Longest wrapped data key accepted anywhere, in bytes (checked before
/// allocating when decoding).
pub const MAX_WRAPPED_KEY_LEN: usize = 512;

/// Why a key-custody operation failed. Every crate that calls a custody
/// provider carries it in a `Custody` variant of its own error; it never
/// contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustodyError {
    /// The key does not exist (never created, or destroyed: crypto-shredded).
    #[error("key {0} not found")]
    KeyNotFound(String),
    /// Unwrapping failed: wrong KEK, or the wrapped key was altered.
    /// Deliberately opaque.
    #[error("data key unwrap failed")]
    UnwrapFailed,
    /// The wrapped data key has an impossible length.
    #[error("wrapped data key has {0} bytes")]
    WrappedKeyLength(usize),
    /// The provider (file system, HSM) failed; the text names the operation
    /// and the provider's error code, never key material.
    #[error("key provider failure: {0}")]
    Provider(String),
}

/// A 256-bit AES-GCM-SIV data key: one per envelope. Wiped on drop,
/// redacted in `Debug`, no `Clone`.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A fresh random data key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        rng.fill_bytes(key.as_mut_slice());
        Self(key)
    }

    /// Wraps key bytes (for example, as unwrapped by an HSM). The caller
    /// should wipe its copy.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; DATA_KEY_LEN]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The key bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for DataKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl ZeroizeOnDrop for DataKey {}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key wrapped by a [`KeyEncryptionKey`]: opaque ciphertext, public.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    /// Wraps ciphertext bytes.
    ///
    /// # Errors
    /// [`CustodyError::WrappedKeyLength`] when empty or longer than
    /// [`MAX_WRAPPED_KEY_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, CustodyError> {
        if bytes.is_empty() || bytes.len() > MAX_WRAPPED_KEY_LEN {
            return Err(CustodyError::WrappedKeyLength(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The ciphertext.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// A key-encryption key: wraps and unwraps data keys. The wrapped form is
/// stored beside the sealed share, outside the signed envelope bytes, so a
/// share can be re-wrapped under a new KEK without re-signing.
///
/// `Debug` is a supertrait so that boxed providers can be printed; an
/// implementation prints its id, never key material.
pub trait KeyEncryptionKey: fmt::Debug + Send + Sync {
    /// Which KEK this is; stored beside the wrapped key.
    fn kek_id(&self) -> &KekId;

    /// The share slot this KEK is dedicated to, if it is a per-slot KEK.
    /// Sealing and re-wrapping refuse a KEK that is not for the envelope's own
    /// slot, so per-slot crypto-shredding cannot be defeated by accident.
    fn slot(&self) -> Option<&ShareSlot> {
        None
    }

    /// Wraps a data key.
    ///
    /// # Errors
    /// [`CustodyError`] when the provider fails.
    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError>;

    /// Unwraps a data key.
    ///
    /// # Errors
    /// [`CustodyError::UnwrapFailed`] for a wrong KEK or altered input,
    /// [`CustodyError::KeyNotFound`] when the KEK is gone, or a provider
    /// failure.
    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError>;
}

/// An ed25519 signing key held by a custody provider.
///
/// Callers pass the complete message, which begins with its own domain tag
/// (`shardkeep/<purpose>/v1`); each purpose uses its own key.
///
/// `Debug` is a supertrait so that boxed signers can be printed; an
/// implementation prints its id and public key, never the private key.
pub trait Signer: fmt::Debug + Send + Sync {
    /// Which key this is; written beside every signature it makes.
    fn signer_id(&self) -> &SignerId;

    /// The public key that verifies this signer's signatures.
    fn verifying_key(&self) -> VerifyingKey;

    /// Signs `message` (pure Ed25519, RFC 8032).
    ///
    /// # Errors
    /// [`CustodyError`] when the provider fails.
    fn sign(&self, message: &[u8]) -> Result<Signature, CustodyError>;
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn wrapped_keys_are_bounded() {
        assert_eq!(
            WrappedKey::new(Vec::new()),
            Err(CustodyError::WrappedKeyLength(0))
        );
        assert_eq!(
            WrappedKey::new(vec![1; MAX_WRAPPED_KEY_LEN + 1]),
            Err(CustodyError::WrappedKeyLength(MAX_WRAPPED_KEY_LEN + 1))
        );
        let wrapped = WrappedKey::new(vec![1; MAX_WRAPPED_KEY_LEN]).unwrap();
        assert_eq!(wrapped.as_bytes().len(), MAX_WRAPPED_KEY_LEN);
        assert_eq!(format!("{wrapped:?}"), "WrappedKey(512 bytes)");
    }

    #[test]
    fn data_keys_compare_in_constant_time_and_print_redacted() {
        let a = DataKey::from_bytes(&[0x42; DATA_KEY_LEN]);
        let b = DataKey::from_bytes(&[0x42; DATA_KEY_LEN]);
        let mut rng = rand::rngs::ChaCha20Rng::from_seed([9; 32]);
        let c = DataKey::generate(&mut rng);
        assert!(bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
        assert_eq!(a.expose(), &[0x42; DATA_KEY_LEN]);
        assert_eq!(format!("{a:?}"), "DataKey(<redacted>)");
    }
}

//! The server-side sealing primitive as this crate uses it: AES-256-GCM-SIV
//! with a 96-bit nonce under a per-envelope [`DataKey`].

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::Zeroizing;

use crate::error::Error;
use shardkeep_types::DataKey;

/// Nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// Authentication tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `plaintext` with `aad` authenticated alongside.
pub(crate) fn seal(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    Aes256GcmSiv::new(key.expose().into())
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Only possible for inputs of gigabytes; the share is 32 bytes.
        .map_err(|_| Error::DecryptionFailed)
}

/// Decrypts and authenticates; the plaintext lands in a buffer wiped on
/// drop. Any failure is [`Error::DecryptionFailed`], without detail.
pub(crate) fn open(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    Aes256GcmSiv::new(key.expose().into())
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Error::DecryptionFailed)
}

#[cfg(test)]
mod zeroize_tests {
    /// The hash states and cipher instances that see data keys are wiped
    /// when dropped; checked here, so that this crate does not depend on
    /// another crate of the build enabling the `zeroize` features.
    #[test]
    fn cipher_and_hash_states_that_see_keys_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<sha2::Sha256>();
        wiped_on_drop::<aes::Aes256>();
        // polyval's `zeroize` feature wipes it in `Drop` without the
        // marker trait, so the manifest is what shows it is on.
    }
}

//! Helpers shared by the provider tests (`local.rs`, `pkcs11.rs`): share
//! slots, data keys, and a "share" sealed the way the envelope seals one.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use aes_gcm_siv::aead::{Aead, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_types::ShareIndex;
use shardkeep_types::{
    CustodyError, DataKey, KeyEncryptionKey, KeyId, KeyVersion, NodeId, ShareSlot, WrappedKey,
};
use subtle::ConstantTimeEq;

pub(crate) fn slot(key: &str, node: &str, version: u32, index: u8) -> ShareSlot {
    ShareSlot {
        key_id: KeyId::new(key).unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(version),
        index: ShareIndex::new(index).unwrap(),
    }
}

/// A data key drawn from a generator seeded with `seed`.
pub(crate) fn data_key(seed: u8) -> DataKey {
    DataKey::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
}

pub(crate) fn same_key(a: &DataKey, b: &DataKey) -> bool {
    bool::from(a.ct_eq(b))
}

/// Seals `share` the way the envelope does: AES-256-GCM-SIV under a fresh
/// data key (from `seed`), the data key wrapped under `kek`.
pub(crate) fn seal(kek: &dyn KeyEncryptionKey, share: &[u8], seed: u8) -> (WrappedKey, Vec<u8>) {
    let key = data_key(seed);
    let sealed = Aes256GcmSiv::new(key.expose().into())
        .encrypt(&Nonce::from([0; 12]), share)
        .unwrap();
    (kek.wrap(&key).unwrap(), sealed)
}

/// Unwraps the data key with `kek` and opens what [`seal`] sealed.
pub(crate) fn open(
    kek: &dyn KeyEncryptionKey,
    (wrapped, sealed): &(WrappedKey, Vec<u8>),
) -> Result<Vec<u8>, CustodyError> {
    let key = kek.unwrap(wrapped)?;
    Ok(Aes256GcmSiv::new(key.expose().into())
        .decrypt(&Nonce::from([0; 12]), &sealed[..])
        .unwrap())
}

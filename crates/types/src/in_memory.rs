//! Reference custody providers that hold their keys in process memory:
//! for tests, examples and embedders with a key store of their own.

use core::fmt;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use rand::TryRng;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::custody::{CustodyError, DATA_KEY_LEN, DataKey, KeyEncryptionKey, Signer, WrappedKey};
use crate::ids::ShareSlot;
use crate::names::{KekId, SignerId};

/// Domain tag of the wrapping AAD of an in-memory KEK bound to no slot.
const IN_MEMORY_WRAP_TAG: &[u8] = b"shardkeep/in-memory-kek/v1";
/// Domain tag of the wrapping AAD of an in-memory KEK bound to a slot.
const IN_MEMORY_SLOT_WRAP_TAG: &[u8] = b"shardkeep/in-memory-slot-kek/v1";

/// A KEK held in process memory: AES-256-GCM-SIV, random nonce. For tests,
/// examples and embedders with their own key store.
///
/// A KEK made by [`InMemoryKek::for_slot`] or
/// [`InMemoryKek::from_bytes_for_slot`] is dedicated to one [`ShareSlot`]:
/// [`KeyEncryptionKey::slot`] names it, sealing and re-wrapping a server
/// envelope accept it for that slot only, and its wrapping AAD is
/// `"shardkeep/in-memory-slot-kek/v1" || kek id || slot` (each name with its
/// length byte), so a wrapped key moved to another slot's KEK of the same
/// bytes does not unwrap. One made by [`InMemoryKek::generate`] or
/// [`InMemoryKek::from_bytes`] is bound to no slot (AAD
/// `"shardkeep/in-memory-kek/v1" || kek id`): it wraps other data keys (a
/// keystore file), never a server envelope.
pub struct InMemoryKek {
    id: KekId,
    slot: Option<ShareSlot>,
    key: Zeroizing<[u8; 32]>,
}

impl InMemoryKek {
    /// A fresh random KEK bound to no slot.
    pub fn generate<R: CryptoRng + ?Sized>(id: KekId, rng: &mut R) -> Self {
        Self::random(id, None, rng)
    }

    /// A fresh random KEK dedicated to `slot`.
    pub fn for_slot<R: CryptoRng + ?Sized>(id: KekId, slot: ShareSlot, rng: &mut R) -> Self {
        Self::random(id, Some(slot), rng)
    }

    /// A KEK bound to no slot, from existing key bytes; the caller should
    /// wipe its copy.
    #[must_use]
    pub fn from_bytes(id: KekId, key: &[u8; 32]) -> Self {
        Self {
            id,
            slot: None,
            key: Zeroizing::new(*key),
        }
    }

    /// A KEK dedicated to `slot`, from existing key bytes; the caller should
    /// wipe its copy.
    #[must_use]
    pub fn from_bytes_for_slot(id: KekId, slot: ShareSlot, key: &[u8; 32]) -> Self {
        Self {
            id,
            slot: Some(slot),
            key: Zeroizing::new(*key),
        }
    }

    fn random<R: CryptoRng + ?Sized>(id: KekId, slot: Option<ShareSlot>, rng: &mut R) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut_slice());
        Self { id, slot, key }
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(IN_MEMORY_SLOT_WRAP_TAG.len() + 2 * (1 + 64) + 5);
        match &self.slot {
            None => {
                aad.extend_from_slice(IN_MEMORY_WRAP_TAG);
                self.id.encode_prefixed(&mut aad);
            }
            Some(slot) => {
                aad.extend_from_slice(IN_MEMORY_SLOT_WRAP_TAG);
                self.id.encode_prefixed(&mut aad);
                slot.encode(&mut aad);
            }
        }
        aad
    }

    /// Wraps under a given nonce. [`KeyEncryptionKey::wrap`] draws the
    /// nonce from the operating system; this is for reproducible output
    /// (golden vectors draw it from a seeded generator). AES-GCM-SIV
    /// resists nonce reuse: a repeated nonce reveals only whether two
    /// wrapped data keys are equal.
    ///
    /// # Errors
    /// [`CustodyError::Provider`] when AES-GCM-SIV refuses (it does not for
    /// a 32-byte key).
    pub fn wrap_with_nonce(
        &self,
        data_key: &DataKey,
        nonce: [u8; 12],
    ) -> Result<WrappedKey, CustodyError> {
        let cipher = Aes256GcmSiv::new((&*self.key).into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: data_key.expose(),
                    aad: &self.aad(),
                },
            )
            .map_err(|_| CustodyError::Provider("AES-GCM-SIV wrap failed".into()))?;
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        WrappedKey::new(out)
    }
}

impl fmt::Debug for InMemoryKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryKek")
            .field("id", &self.id)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey for InMemoryKek {
    fn kek_id(&self) -> &KekId {
        &self.id
    }

    fn slot(&self) -> Option<&ShareSlot> {
        self.slot.as_ref()
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError> {
        let mut nonce = [0u8; 12];
        rand::rngs::SysRng.try_fill_bytes(&mut nonce).map_err(|_| {
            CustodyError::Provider("operating system randomness unavailable".into())
        })?;
        self.wrap_with_nonce(data_key, nonce)
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError> {
        let bytes = wrapped.as_bytes();
        if bytes.len() != 12 + DATA_KEY_LEN + 16 {
            return Err(CustodyError::UnwrapFailed);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CustodyError::UnwrapFailed)?;
        let cipher = Aes256GcmSiv::new((&*self.key).into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: &self.aad(),
                    },
                )
                .map_err(|_| CustodyError::UnwrapFailed)?,
        );
        let key: &[u8; DATA_KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CustodyError::UnwrapFailed)?;
        Ok(DataKey::from_bytes(key))
    }
}

/// An ed25519 signing key held in process memory.
pub struct InMemorySigner {
    id: SignerId,
    key: SigningKey,
}

impl InMemorySigner {
    /// A fresh random signing key.
    pub fn generate<R: CryptoRng + ?Sized>(id: SignerId, rng: &mut R) -> Self {
        Self {
            id,
            key: SigningKey::generate(rng),
        }
    }

    /// A signer from a 32-byte ed25519 seed; the caller should wipe its copy.
    #[must_use]
    pub fn from_seed(id: SignerId, seed: &[u8; 32]) -> Self {
        Self {
            id,
            key: SigningKey::from_bytes(seed),
        }
    }
}

impl fmt::Debug for InMemorySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemorySigner")
            .field("id", &self.id)
            .field("verifying_key", &self.key.verifying_key())
            .finish_non_exhaustive()
    }
}

impl Signer for InMemorySigner {
    fn signer_id(&self) -> &SignerId {
        &self.id
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, CustodyError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use subtle::ConstantTimeEq;

    use super::*;

    #[test]
    fn boxed_providers_debug_print_their_ids_only() {
        let kek: Box<dyn KeyEncryptionKey> = Box::new(InMemoryKek::from_bytes(
            KekId::new("kek-1").unwrap(),
            &[0x4b; 32],
        ));
        let signer: Box<dyn Signer> = Box::new(InMemorySigner::from_seed(
            SignerId::new("signer-1").unwrap(),
            &[7; 32],
        ));
        let printed = format!("{kek:?} {signer:?}");
        assert!(printed.contains("kek-1"), "{printed}");
        assert!(printed.contains("signer-1"), "{printed}");
        assert!(!printed.contains("75, 75, 75"), "{printed}");
        assert!(!printed.contains("4b4b4b"), "{printed}");
        assert!(!printed.contains("7, 7, 7, 7"), "{printed}");
    }

    fn slot(index: u8) -> ShareSlot {
        ShareSlot {
            key_id: crate::KeyId::new("key-1").unwrap(),
            node_id: crate::NodeId::new("node-a").unwrap(),
            version: crate::KeyVersion::new(1),
            index: crate::ShareIndex::new(index).unwrap(),
        }
    }

    #[test]
    fn slot_bound_keks_name_their_slot_and_wrap_for_it_only() {
        let id = KekId::new("kek-1").unwrap();
        let unbound = InMemoryKek::from_bytes(id.clone(), &[0x4b; 32]);
        let for_one = InMemoryKek::from_bytes_for_slot(id.clone(), slot(1), &[0x4b; 32]);
        let for_two = InMemoryKek::from_bytes_for_slot(id.clone(), slot(2), &[0x4b; 32]);
        assert_eq!(unbound.slot(), None);
        assert_eq!(for_one.slot(), Some(&slot(1)));
        let generated = InMemoryKek::for_slot(
            id,
            slot(2),
            &mut rand::rngs::ChaCha20Rng::from_seed([1; 32]),
        );
        assert_eq!(generated.slot(), Some(&slot(2)));
        assert!(format!("{generated:?}").contains("node-a"));

        let data_key = DataKey::from_bytes(&[0x11; DATA_KEY_LEN]);
        let wrapped = for_one.wrap(&data_key).unwrap();
        assert!(bool::from(
            for_one.unwrap(&wrapped).unwrap().ct_eq(&data_key)
        ));
        // Same key bytes, another slot or no slot: the AAD differs.
        for other in [&for_two, &unbound] {
            assert_eq!(
                other.unwrap(&wrapped).unwrap_err(),
                CustodyError::UnwrapFailed
            );
        }
        let wrapped = unbound.wrap(&data_key).unwrap();
        assert_eq!(
            for_one.unwrap(&wrapped).unwrap_err(),
            CustodyError::UnwrapFailed
        );
    }
}

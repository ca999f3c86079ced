//! What the backup service needs from any KEK provider, whatever holds the
//! keys: per-slot KEKs that are created once, pinned, and afterwards
//! opened and destroyed only by their pin.

use core::fmt;

use sha2::{Digest, Sha256};
use shardkeep_types::{KekId, KeyEncryptionKey, ShareSlot};
use subtle::ConstantTimeEq;

use crate::error::Error;

/// Domain tag of KEK fingerprints.
const FINGERPRINT_TAG: &[u8] = b"shardkeep/kek-fingerprint/v1";

/// Length of a KEK fingerprint.
pub const FINGERPRINT_LEN: usize = 32;

/// Names exactly one slot KEK: the slot's KEK id and a fingerprint of the
/// key itself, recorded (by the backup service, in storage) when the KEK is
/// created and required to open or destroy it afterwards.
///
/// A provider accepts a key for a pin only if the key's fingerprint
/// matches, so a key planted under the slot's name (label, `CKA_ID`, file
/// name) by someone else is never used and never mistaken for the slot's
/// key when it is destroyed.
///
/// Both values are public: the fingerprint is a domain-tagged hash from
/// which nothing about the key can be learnt (see the crate documentation
/// for how each provider computes it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KekPin {
    /// The KEK id (stored beside every data key wrapped under the KEK).
    pub kek_id: KekId,
    /// `SHA-256("shardkeep/kek-fingerprint/v1" || len || kek id || slot ||
    /// len (u16 BE) || check)`, where `check` is provider-defined.
    pub fingerprint: [u8; FINGERPRINT_LEN],
}

impl fmt::Debug for KekPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekPin")
            .field("kek_id", &self.kek_id)
            .field("fingerprint", &hex::encode(self.fingerprint))
            .finish()
    }
}

impl KekPin {
    /// Whether `fingerprint` is this pin's. Constant-time, although
    /// fingerprints are public: it costs nothing and keeps the rule simple.
    pub(crate) fn matches(&self, fingerprint: &[u8; FINGERPRINT_LEN]) -> bool {
        bool::from(self.fingerprint.ct_eq(fingerprint))
    }

    /// Refuses a pin that was made for another KEK id than `expected` (the
    /// id this provider gives `slot`).
    pub(crate) fn check_id(&self, slot: &ShareSlot, expected: &KekId) -> Result<(), Error> {
        if self.kek_id == *expected {
            Ok(())
        } else {
            Err(Error::KekPinIdMismatch {
                slot: slot.clone(),
                expected: expected.clone(),
                found: self.kek_id.clone(),
            })
        }
    }
}

/// The fingerprint of a slot KEK from its provider-defined `check` bytes
/// (at most 64 KiB; every provider's are a few dozen bytes).
pub(crate) fn fingerprint(kek_id: &KekId, slot: &ShareSlot, check: &[u8]) -> [u8; FINGERPRINT_LEN] {
    let mut header = Vec::with_capacity(3 * 65 + 5 + 2);
    kek_id.encode_prefixed(&mut header);
    slot.encode(&mut header);
    let check_len = u16::try_from(check.len()).unwrap_or(u16::MAX);
    header.extend_from_slice(&check_len.to_be_bytes());
    Sha256::new()
        .chain_update(FINGERPRINT_TAG)
        .chain_update(&header)
        .chain_update(check)
        .finalize()
        .into()
}

/// Whether the pinned KEK was there to destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestroyOutcome {
    /// The pinned KEK existed and is now destroyed.
    Destroyed,
    /// The pinned KEK was not there (already destroyed, or never created):
    /// a retried hard delete succeeds.
    AlreadyAbsent,
}

/// How a provider destroys a slot KEK: what a deletion certificate may
/// honestly claim about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShredMethod {
    /// The key object was destroyed inside a hardware (or PKCS#11) token,
    /// found by its pinned id and fingerprint, and a search found it gone:
    /// every data key wrapped under it is crypto-shredded.
    HsmDestroy,
    /// The key file was unlinked from a file system. **Not** a
    /// crypto-shred: copies of the file (backups, snapshots, blocks the
    /// file system has not reused) may still hold the key.
    FileDelete,
}

impl ShredMethod {
    /// The method's name in certificates and reports: `hsm-destroy`, or
    /// `file-delete (not a crypto-shred)`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::HsmDestroy => "hsm-destroy",
            Self::FileDelete => "file-delete (not a crypto-shred)",
        }
    }
}

impl fmt::Display for ShredMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What destroying a slot's pinned KEK did and found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DestroyReport {
    /// How the key was destroyed (named honestly: a file delete is no
    /// crypto-shred).
    pub method: ShredMethod,
    /// Whether the pinned KEK was destroyed now or already gone. Either
    /// way it is gone when the report is returned: the provider looked
    /// again after destroying it.
    pub outcome: DestroyOutcome,
    /// Other keys found under the slot's name (PKCS#11: `CKA_ID` or label;
    /// local store: other records of the slot) that are not the pinned KEK:
    /// planted objects, or KEKs an interrupted creation left behind. They
    /// are left alone, neither blocking the delete nor destroyed in the
    /// pinned key's place; a count above zero deserves a look by an
    /// operator.
    pub look_alikes: usize,
}

/// A source of per-share-slot KEKs: one KEK per (key, node, version, share
/// index), so destroying one crypto-shreds exactly that slot.
///
/// Every KEK is created by [`create_slot_kek`](Self::create_slot_kek),
/// which returns its [`KekPin`]; the caller records the pin (in the same
/// transaction as the first share sealed under the KEK) and passes it to
/// open or destroy the KEK later. Providers find keys by pin, never by name
/// alone.
///
/// Implemented by [`LocalKeyStore`](crate::LocalKeyStore) and (feature
/// `pkcs11`) `Pkcs11Token`; object-safe, so a service can pick the provider
/// from its configuration.
pub trait SlotKekProvider: Send + Sync {
    /// The KEK id `slot` has in this provider, computed without touching
    /// the key store. Stored beside every data key wrapped for the slot,
    /// and in every pin of the slot.
    fn slot_kek_id(&self, slot: &ShareSlot) -> KekId;

    /// Creates a new KEK for `slot` and returns it with its pin. Every call
    /// creates a new key, even when the slot has one: if the caller cannot
    /// record the pin (its transaction failed, or another creator recorded
    /// one first), it should destroy the new KEK with that pin.
    ///
    /// # Errors
    /// The provider's [`Error`].
    fn create_slot_kek(
        &self,
        slot: &ShareSlot,
    ) -> Result<(Box<dyn KeyEncryptionKey>, KekPin), Error>;

    /// The pinned KEK of `slot` (opening a share never creates one).
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`] for a pin of another KEK id;
    /// [`Error::SlotKekNotFound`] when the pinned KEK does not exist (never
    /// created, or destroyed); [`Error::KekPinMismatch`] when the slot has
    /// KEKs but none matches the pin; otherwise the provider's [`Error`].
    fn open_slot_kek(
        &self,
        slot: &ShareSlot,
        pin: &KekPin,
    ) -> Result<Box<dyn KeyEncryptionKey>, Error>;

    /// Destroys the pinned KEK of `slot` (hard delete: crypto-shredding),
    /// then looks again to confirm it is gone. Keys under the slot's name
    /// that do not match the pin are left alone and counted in the report.
    /// Idempotent.
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`], [`Error::DestroyIncomplete`] when the
    /// pinned KEK is still there afterwards, or the provider's [`Error`];
    /// nothing is destroyed when it fails before the key is removed.
    fn destroy_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<DestroyReport, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::tests::slot;

    #[test]
    fn fingerprints_bind_id_slot_and_check() {
        let id = KekId::new("file-slot-x").unwrap();
        let other_id = KekId::new("p11-slot-x").unwrap();
        let s = slot("k", "n", 1, 1);
        let base = fingerprint(&id, &s, b"check");
        assert_ne!(base, fingerprint(&other_id, &s, b"check"));
        assert_ne!(base, fingerprint(&id, &slot("k", "n", 1, 2), b"check"));
        assert_ne!(base, fingerprint(&id, &s, b"checK"));
        assert_eq!(base, fingerprint(&id, &s, b"check"));
    }

    #[test]
    fn fingerprint_is_pinned() {
        // Changing the construction orphans every recorded pin: this pins it.
        let s = slot("key-1", "node-1", 1, 2);
        let id = KekId::new("file-slot-abc").unwrap();
        let mut expected = Sha256::new();
        expected.update(b"shardkeep/kek-fingerprint/v1");
        expected.update(b"\x0dfile-slot-abc");
        expected.update(hex::decode("056b65792d31066e6f64652d310000000102").unwrap());
        expected.update([0, 3]);
        expected.update(b"abc");
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(fingerprint(&id, &s, b"abc"), expected);
    }

    #[test]
    fn pins_compare_by_fingerprint_and_refuse_other_ids() {
        let s = slot("k", "n", 1, 1);
        let pin = KekPin {
            kek_id: KekId::new("file-slot-a").unwrap(),
            fingerprint: [1; 32],
        };
        assert!(pin.matches(&[1; 32]));
        assert!(!pin.matches(&[2; 32]));
        pin.check_id(&s, &KekId::new("file-slot-a").unwrap())
            .unwrap();
        assert!(matches!(
            pin.check_id(&s, &KekId::new("file-slot-b").unwrap()),
            Err(Error::KekPinIdMismatch { .. })
        ));
        assert!(format!("{pin:?}").contains(&"01".repeat(32)));
    }
}

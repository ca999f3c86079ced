//! What the backup service needs from any KEK provider, whatever holds the
//! keys.

use shardkeep_envelope::{KekId, KeyEncryptionKey, ShareSlot};

use crate::error::Error;

/// What destroying a slot's KEK found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestroyOutcome {
    /// The KEK existed and is now destroyed.
    Destroyed,
    /// There was no KEK to destroy (already destroyed, or never created):
    /// a retried hard delete succeeds.
    AlreadyAbsent,
}

/// A source of per-share-slot KEKs: one KEK per (key, node, version, share
/// index), so destroying one crypto-shreds exactly that slot.
///
/// Implemented by [`LocalKeyStore`](crate::LocalKeyStore) and (feature
/// `pkcs11`) `Pkcs11Token`; object-safe, so a service can pick the provider
/// from its configuration.
pub trait SlotKekProvider: Send + Sync {
    /// The KEK id `slot` has in this provider, computed without touching
    /// the key store. Stored beside every data key wrapped for the slot.
    fn slot_kek_id(&self, slot: &ShareSlot) -> KekId;

    /// The KEK of `slot`, created on first use (sealing a new share).
    ///
    /// # Errors
    /// The provider's [`Error`].
    fn slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error>;

    /// The KEK of `slot` if it exists (opening a share never creates one).
    ///
    /// # Errors
    /// [`Error::SlotKekNotFound`] when it was never created or has been
    /// destroyed; otherwise the provider's [`Error`].
    fn open_slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error>;

    /// Destroys the KEK of `slot` (hard delete: crypto-shredding).
    /// Idempotent.
    ///
    /// # Errors
    /// The provider's [`Error`]; nothing is destroyed when it fails before
    /// the key is removed.
    fn destroy_slot_kek(&self, slot: &ShareSlot) -> Result<DestroyOutcome, Error>;
}

//! The local key-file provider: a master KEK file and one wrapped KEK file
//! per share slot in a private directory, and ed25519 signers in key files.

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::TryRng;
use shardkeep_types::{
    CustodyError, DATA_KEY_LEN, DataKey, InMemorySigner, KekId, KeyEncryptionKey, ShareSlot,
    Signer, SignerId, WrappedKey,
};
use zeroize::Zeroizing;

use crate::error::{Error, KeyFileError, KeyKind};
use crate::fsutil::{KeyDir, TEMP_PREFIX, io_error, key_file_location};
use crate::keyfile::{KeyFile, NONCE_LEN, SEALED_LEN, SECRET_LEN, SlotRecord};
use crate::provider::{
    DestroyOutcome, DestroyReport, FINGERPRINT_LEN, KekPin, ShredMethod, SlotKekProvider,
    fingerprint,
};
use crate::slot::slot_kek_id;

/// Name of the master KEK file inside a store directory.
const MASTER_FILE: &str = "master.key";
/// Name of the directory of slot KEK records inside a store directory.
const SLOTS_DIR: &str = "slots";
/// Extension of slot KEK records.
const SLOT_EXTENSION: &str = "kek";
/// Prefix of this provider's slot KEK ids.
const KEK_ID_PREFIX: &str = "file-slot-";
/// Domain tag of the AAD that binds a slot record to its master key and slot.
const SLOT_RECORD_TAG: &[u8] = b"shardkeep/kms-slot-record/v1";
/// Domain tag of the AAD that binds a wrapped data key to its KEK and slot.
const DATA_KEY_WRAP_TAG: &[u8] = b"shardkeep/kms-local-wrap/v1";
/// First byte of a wrapped data key (format version).
const WRAPPED_VERSION: u8 = 1;
/// Length of a wrapped data key: version, nonce, data key, tag.
pub(crate) const WRAPPED_LEN: usize = 1 + NONCE_LEN + DATA_KEY_LEN + 16;

fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, Error> {
    let mut out = Zeroizing::new([0u8; N]);
    rand::rngs::SysRng
        .try_fill_bytes(out.as_mut_slice())
        .map_err(|_| Error::Randomness)?;
    Ok(out)
}

fn read_existing(dir: &KeyDir, name: &str) -> Result<Option<KeyFile>, Error> {
    let Some(bytes) = dir.read_key_file(name)? else {
        return Ok(None);
    };
    KeyFile::parse(&bytes)
        .map(Some)
        .map_err(|source| Error::KeyFile {
            path: dir.entry_path(name),
            source,
        })
}

fn wrong_kind(path: PathBuf, expected: KeyKind, found: &KeyFile) -> Error {
    Error::KeyFile {
        path,
        source: KeyFileError::WrongKind {
            expected,
            found: found.kind(),
        },
    }
}

/// Writes a new random master KEK into a store directory.
fn write_master(root: &KeyDir, master_id: KekId) -> Result<(), Error> {
    let master = KeyFile::MasterKek {
        id: master_id,
        key: random_bytes()?,
    };
    root.create_key_file(MASTER_FILE, &master.encode())
}

/// The fingerprint of a local slot KEK: the KEK bytes themselves are the
/// check (a SHA-256 preimage of 256 random bits gives nothing away).
fn local_fingerprint(
    kek_id: &KekId,
    slot: &ShareSlot,
    key: &[u8; SECRET_LEN],
) -> [u8; FINGERPRINT_LEN] {
    fingerprint(kek_id, slot, key)
}

/// The file name of the slot record a pin names:
/// `<kek id>.<fingerprint, 64 hex digits>.kek`.
fn record_name(pin: &KekPin) -> String {
    format!(
        "{}.{}.{SLOT_EXTENSION}",
        pin.kek_id,
        hex::encode(pin.fingerprint)
    )
}

/// A directory of KEKs for one machine: a master KEK (`master.key`) and, for
/// every share slot, its own KEK wrapped under the master KEK
/// (`slots/<kek id>.<fingerprint>.kek`). Destroying a slot's KEK makes every
/// data key wrapped under it unrecoverable (subject to the limits of file
/// deletion described in the crate documentation).
///
/// The directory must belong to this user and be closed to writes by group
/// and others, and so must its parents (unless sticky, like `/tmp`); every
/// key file must belong to this user and be closed to group and others
/// entirely. The store keeps the directories open and works through those
/// handles only. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LocalKeyStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    dir: PathBuf,
    slots: KeyDir,
    master_id: KekId,
    master_key: Zeroizing<[u8; SECRET_LEN]>,
}

impl fmt::Debug for LocalKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyStore")
            .field("dir", &self.inner.dir)
            .field("master_id", &self.inner.master_id)
            .finish_non_exhaustive()
    }
}

impl LocalKeyStore {
    /// Creates a store: the directory (mode 0700, with missing parents) and
    /// a fresh random master KEK named `master_id`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the directory already has a master key;
    /// [`Error::InsecureDirectory`], [`Error::WrongOwner`],
    /// [`Error::UntrustedParent`] or [`Error::Symlink`] for an unsafe
    /// existing directory or parent; I/O and randomness failures.
    pub fn create(dir: impl AsRef<Path>, master_id: KekId) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let root = KeyDir::create(dir)?;
        let slots = root.subdir(SLOTS_DIR, true)?;
        write_master(&root, master_id)?;
        Self::from_dirs(dir, &root, slots)
    }

    /// Opens an existing store.
    ///
    /// # Errors
    /// Permission and ownership errors for the directory, its parents or
    /// the master key file, [`Error::KeyFile`] when the master key file
    /// does not parse, and I/O errors (`NotFound` when there is no master
    /// key file).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let root = KeyDir::open(dir)?;
        let slots = root.subdir(SLOTS_DIR, false)?;
        Self::from_dirs(dir, &root, slots)
    }

    fn from_dirs(dir: &Path, root: &KeyDir, slots: KeyDir) -> Result<Self, Error> {
        let Some(file) = read_existing(root, MASTER_FILE)? else {
            return Err(Error::Io {
                op: "open",
                path: root.entry_path(MASTER_FILE),
                source: std::io::ErrorKind::NotFound.into(),
            });
        };
        let KeyFile::MasterKek { id, key } = file else {
            return Err(wrong_kind(
                root.entry_path(MASTER_FILE),
                KeyKind::MasterKek,
                &file,
            ));
        };
        Ok(Self {
            inner: Arc::new(StoreInner {
                dir: dir.to_path_buf(),
                slots,
                master_id: id,
                master_key: key,
            }),
        })
    }

    /// Opens the store in `dir`, creating it (with master key `master_id`)
    /// when the directory is missing or empty. Refuses to create a new
    /// master key beside existing slot records.
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open), and
    /// [`Error::MasterKeyMissing`].
    pub fn open_or_create(dir: impl AsRef<Path>, master_id: KekId) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let root = KeyDir::create(dir)?;
        let slots = root.subdir(SLOTS_DIR, true)?;
        if root.contains(MASTER_FILE)? {
            return Self::from_dirs(dir, &root, slots);
        }
        let has_records = slots.names()?.iter().any(|name| {
            !name
                .to_str()
                .is_some_and(|name| name.starts_with(TEMP_PREFIX))
        });
        if has_records {
            return Err(Error::MasterKeyMissing {
                path: root.entry_path(MASTER_FILE),
            });
        }
        match write_master(&root, master_id) {
            // Another process created it between our look and our create.
            Ok(()) | Err(Error::AlreadyExists { .. }) => Self::from_dirs(dir, &root, slots),
            Err(error) => Err(error),
        }
    }

    /// The store directory (as given when opened; the store never opens it
    /// by path again).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The master KEK's id.
    #[must_use]
    pub fn master_id(&self) -> &KekId {
        &self.inner.master_id
    }

    /// The KEK id of `slot` in this provider (`file-slot-` and 48 hex
    /// digits of a digest of the slot). Computed, never looked up.
    #[must_use]
    pub fn slot_kek_id(slot: &ShareSlot) -> KekId {
        slot_kek_id(KEK_ID_PREFIX, slot)
    }

    /// Creates a new KEK for `slot`, sealed under the master KEK in a record
    /// of its own, and returns it; [`LocalSlotKek::pin`] is what to record.
    /// Every call creates a new KEK (see [`SlotKekProvider::create_slot_kek`]).
    ///
    /// # Errors
    /// Permission, I/O and randomness failures.
    pub fn create_slot_kek(&self, slot: &ShareSlot) -> Result<LocalSlotKek, Error> {
        let kek_id = Self::slot_kek_id(slot);
        let secret = random_bytes::<SECRET_LEN>()?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        let cipher = Aes256GcmSiv::new((&*self.inner.master_key).into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: secret.as_slice(),
                    aad: &record_aad(&self.inner.master_id, &kek_id, slot),
                },
            )
            .map_err(|_| Error::SealFailed)?;
        let sealed: [u8; SEALED_LEN] = sealed.try_into().map_err(|_| Error::SealFailed)?;
        let pin = KekPin {
            fingerprint: local_fingerprint(&kek_id, slot, &secret),
            kek_id: kek_id.clone(),
        };
        let record = KeyFile::SlotKek(SlotRecord {
            id: kek_id,
            master_id: self.inner.master_id.clone(),
            slot: slot.clone(),
            nonce: *nonce,
            sealed,
        });
        let kek = self.handle(slot, pin);
        self.inner
            .slots
            .create_key_file(&kek.record, &record.encode())?;
        // Read back what was written, through the same checks as every use.
        kek.load()?;
        Ok(kek)
    }

    /// The pinned KEK of `slot`; opening a share never creates one.
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`] for a pin of another KEK id;
    /// [`Error::SlotKekNotFound`] when the pinned KEK does not exist (never
    /// created, or destroyed); [`Error::KekPinMismatch`] when its record
    /// holds another key (replaced or renamed); permission, format and
    /// integrity errors for its record ([`Error::SlotMismatch`],
    /// [`Error::MasterKeyMismatch`], [`Error::SlotRecordUnwrapFailed`]).
    pub fn open_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<LocalSlotKek, Error> {
        pin.check_id(slot, &Self::slot_kek_id(slot))?;
        let kek = self.handle(slot, pin.clone());
        kek.load()?;
        Ok(kek)
    }

    /// Destroys the pinned KEK of `slot`: overwrites its record with zeros,
    /// fsyncs, unlinks it and fsyncs the directory (also for temporary
    /// copies an interrupted create may have left), then checks that it is
    /// gone. Afterwards every data key wrapped under it fails to unwrap
    /// with [`CustodyError::KeyNotFound`]. Other records of the slot (KEKs
    /// created but never pinned) are left alone and counted as look-alikes.
    /// Idempotent.
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`], [`Error::DestroyIncomplete`], and
    /// permission and I/O errors; the record is left in place when they
    /// occur before the unlink.
    pub fn destroy_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<DestroyReport, Error> {
        pin.check_id(slot, &Self::slot_kek_id(slot))?;
        let slots = &self.inner.slots;
        let name = record_name(pin);
        let removed = slots.erase(&name)?;
        slots.remove_temp_files(&name)?;
        if slots.contains(&name)? {
            return Err(Error::DestroyIncomplete {
                slot: slot.clone(),
                kek_id: pin.kek_id.clone(),
            });
        }
        let prefix = format!("{}.", pin.kek_id);
        let look_alikes = slots
            .names()?
            .iter()
            .filter_map(|name| name.to_str())
            .filter(|name| name.starts_with(&prefix))
            .count();
        Ok(DestroyReport {
            method: ShredMethod::FileDelete,
            outcome: if removed {
                DestroyOutcome::Destroyed
            } else {
                DestroyOutcome::AlreadyAbsent
            },
            look_alikes,
        })
    }

    fn handle(&self, slot: &ShareSlot, pin: KekPin) -> LocalSlotKek {
        LocalSlotKek {
            record: record_name(&pin),
            pin,
            slot: slot.clone(),
            store: Arc::clone(&self.inner),
        }
    }
}

/// The AAD that binds a slot record to its master key, KEK id and slot.
pub(crate) fn record_aad(master_id: &KekId, kek_id: &KekId, slot: &ShareSlot) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SLOT_RECORD_TAG.len() + 4 * 65 + 5);
    aad.extend_from_slice(SLOT_RECORD_TAG);
    master_id.encode_prefixed(&mut aad);
    kek_id.encode_prefixed(&mut aad);
    slot.encode(&mut aad);
    aad
}

/// The AAD that binds a wrapped data key to its KEK id and slot.
pub(crate) fn wrap_aad(kek_id: &KekId, slot: &ShareSlot) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_KEY_WRAP_TAG.len() + 3 * 65 + 5);
    aad.extend_from_slice(DATA_KEY_WRAP_TAG);
    kek_id.encode_prefixed(&mut aad);
    slot.encode(&mut aad);
    aad
}

impl SlotKekProvider for LocalKeyStore {
    fn slot_kek_id(&self, slot: &ShareSlot) -> KekId {
        Self::slot_kek_id(slot)
    }

    fn create_slot_kek(
        &self,
        slot: &ShareSlot,
    ) -> Result<(Box<dyn KeyEncryptionKey>, KekPin), Error> {
        let kek = LocalKeyStore::create_slot_kek(self, slot)?;
        let pin = kek.pin().clone();
        Ok((Box::new(kek), pin))
    }

    fn open_slot_kek(
        &self,
        slot: &ShareSlot,
        pin: &KekPin,
    ) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(LocalKeyStore::open_slot_kek(self, slot, pin)?))
    }

    fn destroy_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<DestroyReport, Error> {
        LocalKeyStore::destroy_slot_kek(self, slot, pin)
    }
}

/// The pinned KEK of one share slot in a [`LocalKeyStore`].
///
/// A handle, not a copy of the key: every wrap and unwrap reads the pinned
/// record from disk and checks the key's fingerprint against the pin, so
/// once the KEK is destroyed (by this or any other process) both fail with
/// [`CustodyError::KeyNotFound`], as with the HSM provider, and a record
/// replaced under the pinned name is refused.
///
/// Wrapped data keys are `0x01 || nonce (12) || AES-256-GCM-SIV(slot KEK,
/// data key) (48)`, 61 bytes, with AAD `"shardkeep/kms-local-wrap/v1" ||
/// len || kek id || slot`, so a wrapped key moved to another slot's record
/// does not open.
pub struct LocalSlotKek {
    pin: KekPin,
    slot: ShareSlot,
    /// The record's file name in the store's slots directory.
    record: String,
    store: Arc<StoreInner>,
}

impl fmt::Debug for LocalSlotKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSlotKek")
            .field("pin", &self.pin)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl LocalSlotKek {
    /// The pin of this KEK: what to record, and what opens or destroys it.
    #[must_use]
    pub fn pin(&self) -> &KekPin {
        &self.pin
    }

    /// Reads and opens the pinned record: the slot KEK bytes, after checking
    /// them against the pin.
    fn load(&self) -> Result<Zeroizing<[u8; SECRET_LEN]>, Error> {
        let slots = &self.store.slots;
        let path = || slots.entry_path(&self.record);
        let Some(file) = read_existing(slots, &self.record)? else {
            return Err(Error::SlotKekNotFound {
                slot: self.slot.clone(),
                kek_id: self.pin.kek_id.clone(),
            });
        };
        let KeyFile::SlotKek(record) = file else {
            return Err(wrong_kind(path(), KeyKind::SlotKek, &file));
        };
        if record.id != self.pin.kek_id || record.slot != self.slot {
            return Err(Error::SlotMismatch { path: path() });
        }
        if record.master_id != self.store.master_id {
            return Err(Error::MasterKeyMismatch {
                path: path(),
                expected: self.store.master_id.clone(),
                found: record.master_id,
            });
        }
        let cipher = Aes256GcmSiv::new((&*self.store.master_key).into());
        let opened = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::from(record.nonce),
                    Payload {
                        msg: &record.sealed,
                        aad: &record_aad(&self.store.master_id, &self.pin.kek_id, &self.slot),
                    },
                )
                .map_err(|_| Error::SlotRecordUnwrapFailed { path: path() })?,
        );
        let mut key = Zeroizing::new([0u8; SECRET_LEN]);
        if opened.len() != SECRET_LEN {
            return Err(Error::SlotRecordUnwrapFailed { path: path() });
        }
        key.copy_from_slice(&opened);
        if !self
            .pin
            .matches(&local_fingerprint(&self.pin.kek_id, &self.slot, &key))
        {
            return Err(Error::KekPinMismatch {
                slot: self.slot.clone(),
                kek_id: self.pin.kek_id.clone(),
            });
        }
        Ok(key)
    }
}

/// Wraps a data key under raw KEK bytes (the local wrapped-key format).
pub(crate) fn wrap_with(
    kek: &[u8; SECRET_LEN],
    nonce: [u8; NONCE_LEN],
    data_key: &DataKey,
    aad: &[u8],
) -> Result<WrappedKey, CustodyError> {
    let sealed = Aes256GcmSiv::new(kek.into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: data_key.expose(),
                aad,
            },
        )
        .map_err(|_| CustodyError::Provider("AES-GCM-SIV wrap failed".into()))?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAPPED_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    WrappedKey::new(out)
}

/// Unwraps the local wrapped-key format; every failure is the same opaque
/// [`CustodyError::UnwrapFailed`].
pub(crate) fn unwrap_with(
    kek: &[u8; SECRET_LEN],
    wrapped: &WrappedKey,
    aad: &[u8],
) -> Result<DataKey, CustodyError> {
    let bytes = wrapped.as_bytes();
    let Some((&WRAPPED_VERSION, rest)) = bytes.split_first() else {
        return Err(CustodyError::UnwrapFailed);
    };
    if bytes.len() != WRAPPED_LEN {
        return Err(CustodyError::UnwrapFailed);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CustodyError::UnwrapFailed)?;
    let plain = Zeroizing::new(
        Aes256GcmSiv::new(kek.into())
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .map_err(|_| CustodyError::UnwrapFailed)?,
    );
    let key: &[u8; DATA_KEY_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CustodyError::UnwrapFailed)?;
    Ok(DataKey::from_bytes(key))
}

impl KeyEncryptionKey for LocalSlotKek {
    fn kek_id(&self) -> &KekId {
        &self.pin.kek_id
    }

    fn slot(&self) -> Option<&ShareSlot> {
        Some(&self.slot)
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError> {
        let kek = self.load()?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        wrap_with(
            &kek,
            *nonce,
            data_key,
            &wrap_aad(&self.pin.kek_id, &self.slot),
        )
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError> {
        let kek = self.load()?;
        unwrap_with(&kek, wrapped, &wrap_aad(&self.pin.kek_id, &self.slot))
    }
}

/// An ed25519 signer whose seed lives in a key file (mode 0600, owned by
/// this user, checked on every open). Once loaded it signs like the
/// envelope crate's in-memory signer, which it wraps.
pub struct KeyFileSigner {
    signer: InMemorySigner,
}

impl fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFileSigner")
            .field("id", self.signer.signer_id())
            .field("verifying_key", &self.signer.verifying_key())
            .finish_non_exhaustive()
    }
}

impl KeyFileSigner {
    /// Generates a signing key and writes it to a new file at `path`
    /// (atomically, mode 0600, never overwriting).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when `path` exists; the directory checks of
    /// [`open`](Self::open); I/O and randomness failures.
    pub fn create(path: impl AsRef<Path>, id: SignerId) -> Result<Self, Error> {
        let (dir, name) = key_file_location(path.as_ref())?;
        let file = KeyFile::Ed25519Seed {
            id,
            seed: random_bytes()?,
        };
        dir.create_key_file(&name, &file.encode())?;
        Self::open_in(&dir, &name)
    }

    /// Opens a signer key file. Its directory must pass the key-directory
    /// checks (see [`LocalKeyStore`]): whoever can write to it could swap
    /// the key file.
    ///
    /// # Errors
    /// Permission and ownership errors for the file, its directory and
    /// their parents ([`Error::InsecurePermissions`],
    /// [`Error::InsecureDirectory`], [`Error::WrongOwner`],
    /// [`Error::UntrustedParent`], [`Error::Symlink`],
    /// [`Error::NotRegularFile`]),
    /// [`Error::KeyFile`] when it does not parse or holds another kind of
    /// key, and I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let (dir, name) = key_file_location(path.as_ref())?;
        Self::open_in(&dir, &name)
    }

    fn open_in(dir: &KeyDir, name: &str) -> Result<Self, Error> {
        let Some(file) = read_existing(dir, name)? else {
            return Err(io_error("open", &dir.entry_path(name))(
                std::io::ErrorKind::NotFound.into(),
            ));
        };
        let KeyFile::Ed25519Seed { id, seed } = file else {
            return Err(wrong_kind(
                dir.entry_path(name),
                KeyKind::Ed25519Seed,
                &file,
            ));
        };
        Ok(Self {
            signer: InMemorySigner::from_seed(id, &seed),
        })
    }
}

impl Signer for KeyFileSigner {
    fn signer_id(&self) -> &SignerId {
        self.signer.signer_id()
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.signer.verifying_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, CustodyError> {
        self.signer.sign(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::tests::slot;

    #[test]
    fn wrapped_key_has_the_documented_length_and_version() {
        let kek = [9u8; 32];
        let data_key = DataKey::from_bytes(&[1; 32]);
        let wrapped = wrap_with(&kek, [2; 12], &data_key, b"aad").unwrap();
        assert_eq!(wrapped.as_bytes().len(), WRAPPED_LEN);
        assert_eq!(wrapped.as_bytes()[0], WRAPPED_VERSION);
        assert_eq!(&wrapped.as_bytes()[1..13], &[2; 12]);
        let back = unwrap_with(&kek, &wrapped, b"aad").unwrap();
        assert_eq!(back.expose(), data_key.expose());
        assert_eq!(
            unwrap_with(&kek, &wrapped, b"other aad").unwrap_err(),
            CustodyError::UnwrapFailed
        );
        let mut versioned = wrapped.as_bytes().to_vec();
        versioned[0] = 2;
        assert_eq!(
            unwrap_with(&kek, &WrappedKey::new(versioned).unwrap(), b"aad").unwrap_err(),
            CustodyError::UnwrapFailed
        );
    }

    #[test]
    fn slot_kek_ids_carry_the_provider_prefix() {
        let id = LocalKeyStore::slot_kek_id(&slot("k", "n", 0, 1));
        assert!(id.as_str().starts_with(KEK_ID_PREFIX));
    }
}

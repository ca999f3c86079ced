//! The local key-file provider: a master KEK file and one wrapped KEK file
//! per share slot in a private directory, and ed25519 signers in key files.

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::TryRng;
use shardkeep_envelope::{
    CustodyError, DATA_KEY_LEN, DataKey, InMemorySigner, KekId, KeyEncryptionKey, ShareSlot,
    Signer, SignerId, WrappedKey,
};
use zeroize::Zeroizing;

use crate::error::{Error, KeyFileError, KeyKind};
use crate::fsutil::{
    TEMP_PREFIX, check_key_dir, create_key_file, ensure_key_dir, io_error, overwrite_and_remove,
    read_key_file, remove_temp_files,
};
use crate::keyfile::{KeyFile, NONCE_LEN, SEALED_LEN, SECRET_LEN, SlotRecord};
use crate::provider::{DestroyOutcome, SlotKekProvider};
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

fn read_existing(path: &Path) -> Result<Option<KeyFile>, Error> {
    let Some(bytes) = read_key_file(path)? else {
        return Ok(None);
    };
    KeyFile::parse(&bytes)
        .map(Some)
        .map_err(|source| Error::KeyFile {
            path: path.to_path_buf(),
            source,
        })
}

fn wrong_kind(path: &Path, expected: KeyKind, found: &KeyFile) -> Error {
    Error::KeyFile {
        path: path.to_path_buf(),
        source: KeyFileError::WrongKind {
            expected,
            found: found.kind(),
        },
    }
}

/// A directory of KEKs for one machine: a master KEK (`master.key`) and, for
/// every share slot, its own KEK wrapped under the master KEK
/// (`slots/<kek id>.kek`). Destroying a slot's KEK makes every data key
/// wrapped under it unrecoverable (subject to the limits of file deletion
/// described in the crate documentation).
///
/// The directory must belong to this user and be closed to writes by group
/// and others; every key file must belong to this user and be closed to
/// group and others entirely. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LocalKeyStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    dir: PathBuf,
    slots_dir: PathBuf,
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
    /// [`Error::InsecureDirectory`] / [`Error::WrongOwner`] for an unsafe
    /// existing directory; I/O and randomness failures.
    pub fn create(dir: impl AsRef<Path>, master_id: KekId) -> Result<Self, Error> {
        let dir = dir.as_ref();
        ensure_key_dir(dir)?;
        let slots_dir = dir.join(SLOTS_DIR);
        ensure_key_dir(&slots_dir)?;
        let master = KeyFile::MasterKek {
            id: master_id,
            key: random_bytes()?,
        };
        create_key_file(&dir.join(MASTER_FILE), &master.encode())?;
        Self::open(dir)
    }

    /// Opens an existing store.
    ///
    /// # Errors
    /// Permission and ownership errors for the directory or master key
    /// file, [`Error::KeyFile`] when the master key file does not parse, and
    /// I/O errors (`NotFound` when there is no master key file).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        check_key_dir(dir)?;
        let slots_dir = dir.join(SLOTS_DIR);
        check_key_dir(&slots_dir)?;
        let master_path = dir.join(MASTER_FILE);
        let Some(file) = read_existing(&master_path)? else {
            return Err(Error::Io {
                op: "open",
                path: master_path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        };
        let KeyFile::MasterKek { id, key } = file else {
            return Err(wrong_kind(&master_path, KeyKind::MasterKek, &file));
        };
        Ok(Self {
            inner: Arc::new(StoreInner {
                dir: dir.to_path_buf(),
                slots_dir,
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
        let master_path = dir.join(MASTER_FILE);
        match std::fs::symlink_metadata(&master_path) {
            Ok(_) => return Self::open(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "stat",
                    path: master_path,
                    source,
                });
            }
        }
        let slots_dir = dir.join(SLOTS_DIR);
        if let Ok(mut entries) = std::fs::read_dir(&slots_dir) {
            let has_records = entries.any(|e| {
                e.is_ok_and(|e| !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            });
            if has_records {
                return Err(Error::MasterKeyMissing { path: master_path });
            }
        }
        match Self::create(dir, master_id) {
            // Another process created it between our look and our create.
            Err(Error::AlreadyExists { .. }) => Self::open(dir),
            other => other,
        }
    }

    /// The store directory.
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

    fn record_path(&self, kek_id: &KekId) -> PathBuf {
        self.inner
            .slots_dir
            .join(format!("{kek_id}.{SLOT_EXTENSION}"))
    }

    /// The KEK of `slot`, created on first use. Safe against concurrent
    /// callers in this and other processes: exactly one KEK is ever created
    /// per slot.
    ///
    /// # Errors
    /// As [`open_slot_kek`](Self::open_slot_kek), and I/O or randomness
    /// failures while creating.
    pub fn slot_kek(&self, slot: &ShareSlot) -> Result<LocalSlotKek, Error> {
        match self.open_slot_kek(slot) {
            Err(Error::SlotKekNotFound { .. }) => {}
            other => return other,
        }
        let kek = self.handle(slot);
        let secret = random_bytes::<SECRET_LEN>()?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        let cipher = Aes256GcmSiv::new((&*self.inner.master_key).into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: secret.as_slice(),
                    aad: &record_aad(&self.inner.master_id, &kek.id, slot),
                },
            )
            .map_err(|_| Error::SealFailed)?;
        let sealed: [u8; SEALED_LEN] = sealed.try_into().map_err(|_| Error::SealFailed)?;
        let record = KeyFile::SlotKek(SlotRecord {
            id: kek.id.clone(),
            master_id: self.inner.master_id.clone(),
            slot: slot.clone(),
            nonce: *nonce,
            sealed,
        });
        match create_key_file(&kek.path, &record.encode()) {
            // Lost a race with another creator: theirs is the slot's KEK.
            Ok(()) | Err(Error::AlreadyExists { .. }) => self.open_slot_kek(slot),
            Err(error) => Err(error),
        }
    }

    /// The KEK of `slot` if it exists; opening a share never creates one.
    ///
    /// # Errors
    /// [`Error::SlotKekNotFound`] when it does not exist (never created, or
    /// destroyed); permission, format and integrity errors for its record
    /// ([`Error::SlotMismatch`], [`Error::MasterKeyMismatch`],
    /// [`Error::SlotRecordUnwrapFailed`]).
    pub fn open_slot_kek(&self, slot: &ShareSlot) -> Result<LocalSlotKek, Error> {
        let kek = self.handle(slot);
        kek.load()?;
        Ok(kek)
    }

    /// Destroys the KEK of `slot`: overwrites its record with zeros, fsyncs,
    /// unlinks it and fsyncs the directory (also for temporary copies an
    /// interrupted create may have left). Afterwards every data key wrapped
    /// under it fails to unwrap with [`CustodyError::KeyNotFound`].
    /// Idempotent.
    ///
    /// # Errors
    /// Permission and I/O errors; the record is left in place when they
    /// occur before the unlink.
    pub fn destroy_slot_kek(&self, slot: &ShareSlot) -> Result<DestroyOutcome, Error> {
        let kek = self.handle(slot);
        let removed = overwrite_and_remove(&kek.path)?;
        remove_temp_files(
            &self.inner.slots_dir,
            &format!("{}.{SLOT_EXTENSION}", kek.id),
        )?;
        Ok(if removed {
            DestroyOutcome::Destroyed
        } else {
            DestroyOutcome::AlreadyAbsent
        })
    }

    fn handle(&self, slot: &ShareSlot) -> LocalSlotKek {
        let id = Self::slot_kek_id(slot);
        LocalSlotKek {
            path: self.record_path(&id),
            id,
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

    fn slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(LocalKeyStore::slot_kek(self, slot)?))
    }

    fn open_slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(LocalKeyStore::open_slot_kek(self, slot)?))
    }

    fn destroy_slot_kek(&self, slot: &ShareSlot) -> Result<DestroyOutcome, Error> {
        LocalKeyStore::destroy_slot_kek(self, slot)
    }
}

/// The KEK of one share slot in a [`LocalKeyStore`].
///
/// A handle, not a copy of the key: every wrap and unwrap reads the slot's
/// record from disk, so once the slot is destroyed (by this or any other
/// process) both fail with [`CustodyError::KeyNotFound`], as with the HSM
/// provider. If the slot's KEK is later created anew, the handle uses the
/// new key, under which data keys wrapped by the old one fail with
/// [`CustodyError::UnwrapFailed`].
///
/// Wrapped data keys are `0x01 || nonce (12) || AES-256-GCM-SIV(slot KEK,
/// data key) (48)`, 61 bytes, with AAD `"shardkeep/kms-local-wrap/v1" ||
/// len || kek id || slot`, so a wrapped key moved to another slot's record
/// does not open.
pub struct LocalSlotKek {
    id: KekId,
    slot: ShareSlot,
    path: PathBuf,
    store: Arc<StoreInner>,
}

impl fmt::Debug for LocalSlotKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSlotKek")
            .field("id", &self.id)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl LocalSlotKek {
    /// The share slot this KEK belongs to.
    #[must_use]
    pub fn slot(&self) -> &ShareSlot {
        &self.slot
    }

    /// Reads and opens the slot's record: the slot KEK bytes.
    fn load(&self) -> Result<Zeroizing<[u8; SECRET_LEN]>, Error> {
        let Some(file) = read_existing(&self.path)? else {
            return Err(Error::SlotKekNotFound {
                slot: self.slot.clone(),
                kek_id: self.id.clone(),
            });
        };
        let KeyFile::SlotKek(record) = file else {
            return Err(wrong_kind(&self.path, KeyKind::SlotKek, &file));
        };
        if record.id != self.id || record.slot != self.slot {
            return Err(Error::SlotMismatch {
                path: self.path.clone(),
            });
        }
        if record.master_id != self.store.master_id {
            return Err(Error::MasterKeyMismatch {
                path: self.path.clone(),
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
                        aad: &record_aad(&self.store.master_id, &self.id, &self.slot),
                    },
                )
                .map_err(|_| Error::SlotRecordUnwrapFailed {
                    path: self.path.clone(),
                })?,
        );
        let mut key = Zeroizing::new([0u8; SECRET_LEN]);
        if opened.len() != SECRET_LEN {
            return Err(Error::SlotRecordUnwrapFailed {
                path: self.path.clone(),
            });
        }
        key.copy_from_slice(&opened);
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
        &self.id
    }

    fn slot(&self) -> Option<&ShareSlot> {
        Some(&self.slot)
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError> {
        let kek = self.load()?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        wrap_with(&kek, *nonce, data_key, &wrap_aad(&self.id, &self.slot))
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError> {
        let kek = self.load()?;
        unwrap_with(&kek, wrapped, &wrap_aad(&self.id, &self.slot))
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
    /// [`Error::AlreadyExists`] when `path` exists; I/O and randomness
    /// failures.
    pub fn create(path: impl AsRef<Path>, id: SignerId) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = KeyFile::Ed25519Seed {
            id,
            seed: random_bytes()?,
        };
        create_key_file(path, &file.encode())?;
        Self::open(path)
    }

    /// Opens a signer key file.
    ///
    /// # Errors
    /// Permission and ownership errors ([`Error::InsecurePermissions`],
    /// [`Error::WrongOwner`], [`Error::Symlink`], [`Error::NotRegularFile`]),
    /// [`Error::KeyFile`] when it does not parse or holds another kind of
    /// key, and I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let Some(file) = read_existing(path)? else {
            return Err(io_error("open", path)(std::io::ErrorKind::NotFound.into()));
        };
        let KeyFile::Ed25519Seed { id, seed } = file else {
            return Err(wrong_kind(path, KeyKind::Ed25519Seed, &file));
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

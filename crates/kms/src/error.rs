//! The one error type of this crate, and its mapping onto the envelope
//! crate's [`CustodyError`].

use core::fmt;
use std::io;
use std::path::PathBuf;

use shardkeep_types::{CustodyError, FramingError, KekId, ShareSlot, SignerId};

/// Everything that can go wrong while opening, creating or destroying keys.
///
/// Variants name files, token labels and key ids, never key material or PINs.
/// The [`KeyEncryptionKey`](shardkeep_types::KeyEncryptionKey) and
/// [`Signer`](shardkeep_types::Signer) methods return
/// [`CustodyError`] instead (see `From<Error> for CustodyError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system call failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("open", "read", "create", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A key file is a symbolic link; key files must be regular files so that
    /// nobody can point the store at a file they control.
    #[error("{path} is a symbolic link; a key file must be a regular file")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A key file is a directory, device, FIFO or socket.
    #[error("{path} is not a regular file")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// A key directory is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A directory on the way to a key directory (or a symbolic link among
    /// them) belongs to another user than root or this process's: that user
    /// could swap the key directory for one of their own.
    #[error(
        "{path} is owned by uid {owner}; parents of a key directory must belong to root or uid {expected}"
    )]
    UntrustedParent {
        /// The directory or link.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        expected: u32,
    },
    /// A key file or key directory belongs to another user.
    #[error("{path} is owned by uid {owner}, but this process runs as uid {expected}")]
    WrongOwner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        expected: u32,
    },
    /// A key file can be read or written by group or others.
    #[error(
        "{path} has mode {mode:04o}; group and others must have no access to a key file (chmod 600)"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key directory, or a parent of one without the sticky bit, can be
    /// written by group or others, who could then replace or delete key
    /// files (or the key directory itself).
    #[error(
        "{path} has mode {mode:04o}; group and others must not write to a key directory or its parents (chmod go-w)"
    )]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Refused to overwrite an existing key file.
    #[error("{path} already exists; refusing to overwrite a key")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A key file does not parse.
    #[error("{path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyFileError,
    },
    /// The store's master key file is gone while slot records remain: the
    /// store will not silently create a new master key that cannot open them.
    #[error("master key file {path} is missing but the store holds slot key records")]
    MasterKeyMissing {
        /// Where the master key file should be.
        path: PathBuf,
    },
    /// A slot record was wrapped under another master key.
    #[error("{path} is wrapped under master key {found}; this store's master key is {expected}")]
    MasterKeyMismatch {
        /// The slot record.
        path: PathBuf,
        /// This store's master key id.
        expected: KekId,
        /// The master key id in the record.
        found: KekId,
    },
    /// A slot record names another share slot than the one it is filed
    /// under (a renamed or copied file).
    #[error("{path} holds the key of another share slot")]
    SlotMismatch {
        /// The slot record.
        path: PathBuf,
    },
    /// A slot record did not open under the master key: altered, or written
    /// under another master key with the same id. Deliberately opaque.
    #[error("{path} does not open under the master key")]
    SlotRecordUnwrapFailed {
        /// The slot record.
        path: PathBuf,
    },
    /// The KEK of a share slot does not exist: never created, or destroyed
    /// (crypto-shredded).
    #[error("no KEK {kek_id} for share slot {slot}")]
    SlotKekNotFound {
        /// The share slot.
        slot: ShareSlot,
        /// The KEK id the slot would have.
        kek_id: KekId,
    },
    /// A [`KekPin`](crate::KekPin) names another KEK id than the one this
    /// provider gives the slot (a pin of another slot or provider).
    #[error("the pin names KEK {found}, but share slot {slot} has KEK {expected} here")]
    KekPinIdMismatch {
        /// The share slot.
        slot: ShareSlot,
        /// The KEK id the slot has in this provider.
        expected: KekId,
        /// The KEK id in the pin.
        found: KekId,
    },
    /// The slot has a KEK, but not the pinned one: a wrong pin, a key planted
    /// under the slot's name, or a record replaced since the pin was taken.
    /// The key found is not used.
    #[error("no KEK {kek_id} of share slot {slot} matches the pinned fingerprint")]
    KekPinMismatch {
        /// The share slot.
        slot: ShareSlot,
        /// The KEK id.
        kek_id: KekId,
    },
    /// The pinned KEK was still there after it was destroyed.
    #[error("KEK {kek_id} of share slot {slot} survived destruction")]
    DestroyIncomplete {
        /// The share slot.
        slot: ShareSlot,
        /// The KEK id.
        kek_id: KekId,
    },
    /// No signing key with this id exists.
    #[error("signer {0} not found")]
    SignerNotFound(SignerId),
    /// A signing key with this id already exists.
    #[error("signer {0} already exists")]
    SignerExists(SignerId),
    /// Signing keys with this id exist, but none whose signatures verify
    /// under the pinned public key: a wrong pin, or a planted key.
    #[error("no signing key of signer {0} matches the pinned public key")]
    SignerPinMismatch(SignerId),
    /// AES-GCM-SIV refused to seal a new slot KEK under the master key
    /// (cannot happen for 32-byte keys; reported rather than unwrapped).
    #[error("sealing a new slot KEK failed")]
    SealFailed,
    /// The operating system's random number generator failed.
    #[error("operating system randomness unavailable")]
    Randomness,
    /// The PKCS#11 module (shared library) could not be loaded.
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// No initialised token carries this label.
    #[error("no initialised PKCS#11 token is labelled {0:?}")]
    TokenNotFound(String),
    /// Several tokens carry this label; refusing to guess.
    #[error("{count} PKCS#11 tokens are labelled {label:?}")]
    TokenAmbiguous {
        /// The label.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// The token refused the user PIN.
    #[error("the token refused the user PIN")]
    PinIncorrect,
    /// The token's user PIN is locked after too many failures.
    #[error("the token's user PIN is locked")]
    PinLocked,
    /// The token lacks a mechanism this provider needs.
    #[error("the token does not offer {0}")]
    MechanismUnsupported(&'static str),
    /// A key the token just generated does not have the attributes asked
    /// for (for example it is extractable, or allowed to decrypt): the
    /// token ignored part of the template. The key is destroyed, not used.
    /// (Existing objects with wrong attributes are never errors: they are
    /// not this provider's keys and are ignored.)
    #[error("token object {label:?} is unsafe to use: {reason}")]
    UnsafeKeyObject {
        /// The object's label.
        label: String,
        /// Which attribute is wrong.
        reason: &'static str,
    },
    /// The token's ed25519 public key is malformed or not on the curve.
    #[error("the token returned a malformed ed25519 public key")]
    InvalidPublicKey,
    /// A signature made by the token did not verify under its public key.
    #[error("a signature made by the token did not verify")]
    TokenSignatureInvalid,
    /// Another PKCS#11 call failed.
    #[error("PKCS#11 {function} failed: {reason}")]
    Pkcs11 {
        /// The PKCS#11 function (`C_WrapKey`, ...).
        function: &'static str,
        /// The return value or library error.
        reason: String,
    },
}

impl From<Error> for CustodyError {
    /// A missing slot KEK or signer becomes [`CustodyError::KeyNotFound`];
    /// everything else a [`CustodyError::Provider`] carrying the message
    /// (which names files and ids, never key material).
    fn from(error: Error) -> Self {
        match error {
            Error::SlotKekNotFound { kek_id, .. } => Self::KeyNotFound(kek_id.to_string()),
            Error::SignerNotFound(id) => Self::KeyNotFound(id.to_string()),
            other => Self::Provider(other.to_string()),
        }
    }
}

/// The kinds of key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A local store's master KEK (raw 256-bit AES key).
    MasterKek,
    /// An ed25519 signing key seed.
    Ed25519Seed,
    /// A share slot's KEK, wrapped under the master KEK.
    SlotKek,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MasterKek => "master KEK",
            Self::Ed25519Seed => "ed25519 seed",
            Self::SlotKek => "slot KEK",
        })
    }
}

/// Why a key file does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Not framed as a key file: longer than any key file can be (checked
    /// before reading it), wrong magic, unsupported version, truncated, or
    /// with bytes after its checksum.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A key kind this build does not know.
    #[error("unknown key kind {0}")]
    UnknownKind(u8),
    /// Holds another kind of key than the one asked for.
    #[error("holds a {found} key, expected a {expected} key")]
    WrongKind {
        /// The kind asked for.
        expected: KeyKind,
        /// The kind in the file.
        found: KeyKind,
    },
    /// A name field breaks the name rule (1-64 bytes of `[A-Za-z0-9._:-]`).
    #[error("invalid {0} in key file")]
    InvalidName(&'static str),
    /// The share index is zero.
    #[error("share index 0 in key file")]
    ZeroShareIndex,
    /// The checksum does not match: the file was altered or damaged.
    #[error("key file checksum mismatch")]
    ChecksumMismatch,
}

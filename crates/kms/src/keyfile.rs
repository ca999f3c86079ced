//! The key-file format (version 1, magic `shkp-key`): a master KEK, an
//! ed25519 signing seed, or a slot KEK sealed under the master KEK, then a
//! SHA-256 checksum. The byte layout is in the repository's
//! `docs/formats.md`, section "KMS key file v1".
//!
//! Every field is fixed-width or length-prefixed and names are validated, so
//! each key has exactly one encoding; the parser rejects short, long and
//! trailing input and checks the length cap before reading a file.

use sha2::{Digest, Sha256};
use shardkeep_types::{KekId, KeyId, KeyVersion, NodeId, ShareIndex, ShareSlot, SignerId};
use shardkeep_wire::{Reader, check_total_len};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{KeyFileError, KeyKind};

/// First bytes of every key file.
pub(crate) const MAGIC: [u8; 8] = *b"shkp-key";
/// The format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Domain tag of the trailing checksum.
const CHECKSUM_TAG: &[u8] = b"shardkeep/kms-keyfile/v1";
/// Length of raw secrets (master KEK, ed25519 seed, slot KEK).
pub(crate) const SECRET_LEN: usize = 32;
/// AES-GCM-SIV nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// A sealed slot KEK: the key and the AEAD tag.
pub(crate) const SEALED_LEN: usize = SECRET_LEN + 16;
const CHECKSUM_LEN: usize = 32;

/// Longest possible key file, in bytes: a slot record with four 64-byte
/// names is 8+1+1+65 + 3*65+4+1+12+48 + 32 = 362; the cap leaves room.
pub const MAX_KEY_FILE_LEN: usize = 512;

/// A share slot's KEK as stored on disk: wrapped under the master KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotRecord {
    /// The slot KEK's id.
    pub(crate) id: KekId,
    /// The master KEK that wraps it.
    pub(crate) master_id: KekId,
    /// The slot it belongs to.
    pub(crate) slot: ShareSlot,
    /// AES-256-GCM-SIV nonce.
    pub(crate) nonce: [u8; NONCE_LEN],
    /// The sealed slot KEK.
    pub(crate) sealed: [u8; SEALED_LEN],
}

/// The contents of one key file.
pub(crate) enum KeyFile {
    /// A master KEK.
    MasterKek {
        /// Its id.
        id: KekId,
        /// The AES-256 key.
        key: Zeroizing<[u8; SECRET_LEN]>,
    },
    /// An ed25519 signing key.
    Ed25519Seed {
        /// Its id.
        id: SignerId,
        /// The RFC 8032 seed.
        seed: Zeroizing<[u8; SECRET_LEN]>,
    },
    /// A wrapped slot KEK.
    SlotKek(SlotRecord),
}

impl core::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::MasterKek { id, .. } => f
                .debug_struct("MasterKek")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::Ed25519Seed { id, .. } => f
                .debug_struct("Ed25519Seed")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::SlotKek(record) => f.debug_tuple("SlotKek").field(record).finish(),
        }
    }
}

impl KeyKind {
    const fn code(self) -> u8 {
        match self {
            Self::MasterKek => 1,
            Self::Ed25519Seed => 2,
            Self::SlotKek => 3,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::MasterKek),
            2 => Some(Self::Ed25519Seed),
            3 => Some(Self::SlotKek),
            _ => None,
        }
    }
}

impl KeyFile {
    /// The kind of key held.
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            Self::MasterKek { .. } => KeyKind::MasterKek,
            Self::Ed25519Seed { .. } => KeyKind::Ed25519Seed,
            Self::SlotKek(_) => KeyKind::SlotKek,
        }
    }

    /// The file bytes, in a buffer wiped on drop.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN));
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind().code());
        match self {
            Self::MasterKek { id, key } => {
                id.encode_prefixed(&mut out);
                out.extend_from_slice(key.as_slice());
            }
            Self::Ed25519Seed { id, seed } => {
                id.encode_prefixed(&mut out);
                out.extend_from_slice(seed.as_slice());
            }
            Self::SlotKek(record) => {
                record.id.encode_prefixed(&mut out);
                record.master_id.encode_prefixed(&mut out);
                record.slot.encode(&mut out);
                out.extend_from_slice(&record.nonce);
                out.extend_from_slice(&record.sealed);
            }
        }
        let checksum = checksum(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Parses a whole key file.
    ///
    /// # Errors
    /// A [`KeyFileError`] naming the first defect found.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, KeyFileError> {
        check_total_len("key file", bytes.len(), MAX_KEY_FILE_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version("key file", &MAGIC, VERSION)?;
        let code = reader.u8("kind")?;
        let kind = KeyKind::from_code(code).ok_or(KeyFileError::UnknownKind(code))?;
        let file = match kind {
            KeyKind::MasterKek => Self::MasterKek {
                id: read_name(&mut reader, "kek_id", KekId::from_bytes)?,
                key: read_secret(&mut reader, "key")?,
            },
            KeyKind::Ed25519Seed => Self::Ed25519Seed {
                id: read_name(&mut reader, "signer_id", SignerId::from_bytes)?,
                seed: read_secret(&mut reader, "seed")?,
            },
            KeyKind::SlotKek => {
                let id = read_name(&mut reader, "kek_id", KekId::from_bytes)?;
                let master_id = read_name(&mut reader, "master kek_id", KekId::from_bytes)?;
                let key_id = read_name(&mut reader, "key_id", KeyId::from_bytes)?;
                let node_id = read_name(&mut reader, "node_id", NodeId::from_bytes)?;
                let version = KeyVersion::new(reader.u32("version")?);
                let index =
                    ShareIndex::new(reader.u8("index")?).ok_or(KeyFileError::ZeroShareIndex)?;
                Self::SlotKek(SlotRecord {
                    id,
                    master_id,
                    slot: ShareSlot {
                        key_id,
                        node_id,
                        version,
                        index,
                    },
                    nonce: *reader.array("nonce")?,
                    sealed: *reader.array("sealed")?,
                })
            }
        };
        let body_len = reader.offset();
        let stored: [u8; CHECKSUM_LEN] = *reader.array("checksum")?;
        reader.finish("key file")?;
        // The body holds secrets, so compare in constant time.
        if !bool::from(checksum(&bytes[..body_len]).ct_eq(&stored)) {
            return Err(KeyFileError::ChecksumMismatch);
        }
        Ok(file)
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::new()
        .chain_update(CHECKSUM_TAG)
        .chain_update(body)
        .finalize()
        .into()
}

/// A secret (master KEK, ed25519 seed), copied straight into a buffer wiped
/// on drop.
fn read_secret(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<Zeroizing<[u8; SECRET_LEN]>, KeyFileError> {
    let mut out = Zeroizing::new([0u8; SECRET_LEN]);
    out.copy_from_slice(reader.array::<SECRET_LEN>(field)?);
    Ok(out)
}

/// A one-byte length then that many bytes, validated by `make` (the names'
/// own constructors enforce 1-64 bytes of the name alphabet).
fn read_name<T, E>(
    reader: &mut Reader<'_>,
    what: &'static str,
    make: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, KeyFileError> {
    let len = usize::from(reader.u8(what)?);
    make(reader.take(len, what)?).map_err(|_| KeyFileError::InvalidName(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::tests::{name_strategy, slot_strategy};
    use proptest::prelude::*;

    fn file_strategy() -> impl Strategy<Value = KeyFile> {
        prop_oneof![
            (name_strategy(), any::<[u8; 32]>()).prop_map(|(id, key)| KeyFile::MasterKek {
                id: KekId::new(id).unwrap(),
                key: Zeroizing::new(key),
            }),
            (name_strategy(), any::<[u8; 32]>()).prop_map(|(id, seed)| KeyFile::Ed25519Seed {
                id: SignerId::new(id).unwrap(),
                seed: Zeroizing::new(seed),
            }),
            (
                name_strategy(),
                name_strategy(),
                slot_strategy(),
                any::<[u8; 12]>(),
                proptest::collection::vec(any::<u8>(), 48),
            )
                .prop_map(|(id, master, slot, nonce, sealed)| {
                    KeyFile::SlotKek(SlotRecord {
                        id: KekId::new(id).unwrap(),
                        master_id: KekId::new(master).unwrap(),
                        slot,
                        nonce,
                        sealed: sealed.try_into().unwrap(),
                    })
                }),
        ]
    }

    fn same(a: &KeyFile, b: &KeyFile) -> bool {
        match (a, b) {
            (KeyFile::MasterKek { id, key }, KeyFile::MasterKek { id: id2, key: key2 }) => {
                id == id2 && key == key2
            }
            (
                KeyFile::Ed25519Seed { id, seed },
                KeyFile::Ed25519Seed {
                    id: id2,
                    seed: seed2,
                },
            ) => id == id2 && seed == seed2,
            (KeyFile::SlotKek(r), KeyFile::SlotKek(r2)) => r == r2,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_parse_round_trip(file in file_strategy()) {
            let bytes = file.encode();
            prop_assert!(bytes.len() <= MAX_KEY_FILE_LEN);
            let parsed = KeyFile::parse(&bytes).unwrap();
            prop_assert!(same(&file, &parsed));
            prop_assert_eq!(&*parsed.encode(), &*bytes);
        }

        #[test]
        fn every_truncation_is_refused(file in file_strategy(), cut in any::<prop::sample::Index>()) {
            let bytes = file.encode();
            let cut = cut.index(bytes.len());
            prop_assert!(KeyFile::parse(&bytes[..cut]).is_err());
        }

        #[test]
        fn every_single_bit_flip_is_refused(file in file_strategy(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = file.encode();
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(KeyFile::parse(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            // Whatever parses has exactly one encoding: these bytes.
            if let Ok(file) = KeyFile::parse(&data) {
                prop_assert_eq!(&*file.encode(), &data);
            }
        }
    }

    #[test]
    fn trailing_and_oversized_input_is_refused() {
        let file = KeyFile::MasterKek {
            id: KekId::new("master").unwrap(),
            key: Zeroizing::new([7; 32]),
        };
        let mut bytes = file.encode().to_vec();
        bytes.push(0);
        assert_eq!(
            KeyFile::parse(&bytes).unwrap_err(),
            KeyFileError::Framing(shardkeep_types::FramingError::TrailingBytes {
                what: "key file",
                len: 1
            })
        );
        let big = vec![0u8; MAX_KEY_FILE_LEN + 1];
        assert!(matches!(
            KeyFile::parse(&big),
            Err(KeyFileError::Framing(
                shardkeep_types::FramingError::TooLarge { len: 513, .. }
            ))
        ));
    }
}

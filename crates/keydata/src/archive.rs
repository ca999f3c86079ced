//! The protocol archive: everything in a save data except `Xi`, sealed under
//! a key derived from `Xi`, so that a copy can sit beside every share and a
//! rebuilt node recovers fully from external shares alone.
//!
//! The byte layout of format v1 (magic `shkp-arc`) and its key derivation
//! are in the repository's `docs/formats.md`, section "Protocol archive v1".
//! In short: a header (magic, version, KDF id, curve, a random salt, the
//! body length) is the AAD of an AES-256-GCM-SIV body whose key and nonce
//! HKDF-SHA256 derives from `Xi`, the salt and the node's ids; the salt
//! makes every archive's key fresh, so the nonce needs no storage.
//!
//! Plaintext: the save data's JSON exactly as [`LocalPartySaveData::to_json`]
//! writes it, without the `Xi` member.

use core::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use shardkeep_envelope::{MAX_ARCHIVE_LEN, archive_hash};
use shardkeep_sss_core::{Curve, CurveId, Secret};
use shardkeep_types::NodeVersion;
use shardkeep_wire::Reader;
use zeroize::Zeroizing;

use crate::codec::{self, NONCE_LEN, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::json::{self, Value};
use crate::save_data::{Inner, LocalPartySaveData, XI_KEY, xi_digits};

/// Magic bytes at the start of every sealed archive.
pub const ARCHIVE_MAGIC: [u8; 8] = *b"shkp-arc";
/// The archive format version this build writes and reads.
pub const ARCHIVE_VERSION: u8 = 1;
/// KDF id 1: HKDF-SHA256 over `Xi`, with the salt and the info that
/// `docs/formats.md` ("Protocol archive v1") describes.
pub const ARCHIVE_KDF_HKDF_SHA256: u8 = 1;
/// Domain tag at the start of the archive key derivation's info.
pub const ARCHIVE_KEY_TAG: &[u8] = b"shardkeep/archive-key/v1";

const SALT_LEN: usize = 32;
const HEADER_LEN: usize = 8 + 1 + 1 + 1 + SALT_LEN + 4;
/// The longest body: a sealed archive must fit a custodian container
/// (`shardkeep_envelope::MAX_ARCHIVE_LEN`, 4 MiB in all). A real archive is
/// a few tens of kilobytes.
const MAX_BODY_LEN: usize = MAX_ARCHIVE_LEN - HEADER_LEN;
const MAX_PLAINTEXT_LEN: usize = MAX_BODY_LEN - TAG_LEN;

/// A sealed protocol archive: public bytes whose structure has been
/// checked; opening needs the node's `Xi` and ids.
///
/// Its hash ([`SealedArchive::hash`], the envelope crate's `archive_hash`)
/// is what every envelope's binding signs.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedArchive {
    bytes: Vec<u8>,
    curve: CurveId,
}

impl SealedArchive {
    /// Checks the structure of a sealed archive: magic, version, KDF, curve,
    /// body length, no trailing bytes. Nothing is decrypted.
    ///
    /// # Errors
    /// [`Error::Archive`] naming the defect.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let header = parse_header(&bytes).map_err(Error::Archive)?;
        Ok(Self {
            bytes,
            curve: header.curve,
        })
    }

    /// The archive's bytes, as stored and hashed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, owned.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The curve of the key it belongs to.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        self.curve
    }

    /// `SHA-256("shardkeep/archive-hash/v1" || bytes)`: the value an
    /// envelope binding signs.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        archive_hash(&self.bytes)
    }

    /// Decrypts the archive with the node's secret share and ids, and
    /// returns the JSON without `Xi`.
    pub(crate) fn open<C: Curve>(
        &self,
        xi: &Secret<C>,
        id: &NodeVersion,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let header = parse_header(&self.bytes).map_err(Error::Archive)?;
        if header.curve != C::ID {
            return Err(Error::CurveMismatch {
                expected: header.curve,
                got: C::ID,
            });
        }
        let key = derive_key::<C>(xi, &header.salt, id);
        codec::open(
            &key.key,
            &key.nonce,
            &self.bytes[..HEADER_LEN],
            &self.bytes[HEADER_LEN..],
        )
        .ok_or(Error::ArchiveOpenFailed)
    }
}

impl fmt::Debug for SealedArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedArchive")
            .field("curve", &self.curve)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

struct Header {
    curve: CurveId,
    salt: [u8; SALT_LEN],
}

fn parse_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let mut reader = Reader::new(bytes);
    reader.magic_and_version("protocol archive", &ARCHIVE_MAGIC, ARCHIVE_VERSION)?;
    let kdf = reader.u8("kdf")?;
    if kdf != ARCHIVE_KDF_HKDF_SHA256 {
        return Err(FormatError::UnsupportedKdf(kdf));
    }
    let curve_byte = reader.u8("curve")?;
    let curve = CurveId::from_u8(curve_byte).map_err(|_| FormatError::UnknownCurve(curve_byte))?;
    let salt = *reader.array::<SALT_LEN>("salt")?;
    let body = reader.prefixed_u32("body", TAG_LEN + 1, MAX_BODY_LEN)?;
    debug_assert_eq!(reader.offset() - body.len(), HEADER_LEN);
    reader.finish("archive")?;
    Ok(Header { curve, salt })
}

/// The archive's AES-256 key and nonce.
struct ArchiveKey {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; NONCE_LEN],
}

/// HKDF-SHA256 expands to at most 255 hash lengths; 44 bytes are far below,
/// so `expand` cannot fail.
const _: () = assert!(32 + NONCE_LEN <= 255 * 32);

/// HKDF-SHA256 over `Xi`, the salt and the node's ids (`docs/formats.md`).
fn derive_key<C: Curve>(xi: &Secret<C>, salt: &[u8; SALT_LEN], id: &NodeVersion) -> ArchiveKey {
    let mut info = Vec::with_capacity(ARCHIVE_KEY_TAG.len() + 1 + 2 * 65 + 4);
    info.extend_from_slice(ARCHIVE_KEY_TAG);
    info.push(C::ID.to_u8());
    id.encode(&mut info);
    let ikm = xi.to_be_bytes();
    let hkdf = Hkdf::<Sha256>::new(Some(salt), ikm.as_slice());
    let mut okm = Zeroizing::new([0u8; 32 + NONCE_LEN]);
    // Cannot fail: see the assertion above.
    let _ = hkdf.expand(&info, okm.as_mut_slice());
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&okm[32..]);
    ArchiveKey { key, nonce }
}

/// Seals `plaintext` (the JSON without `Xi`) under `xi`, `id` and `salt`.
pub(crate) fn seal<C: Curve>(
    xi: &Secret<C>,
    id: &NodeVersion,
    salt: [u8; SALT_LEN],
    plaintext: &[u8],
) -> Result<SealedArchive> {
    let bad_length = || Error::Archive(codec::body_length_error(plaintext.len(), MAX_BODY_LEN));
    // An empty plaintext would give a body the parser refuses.
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(bad_length());
    }
    let body_len = plaintext.len() + TAG_LEN;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&ARCHIVE_MAGIC);
    out.push(ARCHIVE_VERSION);
    out.push(ARCHIVE_KDF_HKDF_SHA256);
    out.push(C::ID.to_u8());
    out.extend_from_slice(&salt);
    // body_len <= MAX_BODY_LEN < 2^32.
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes());
    let key = derive_key::<C>(xi, &salt, id);
    let header = out.clone();
    if !codec::seal_into(&key.key, &key.nonce, &header, plaintext, &mut out) {
        return Err(bad_length());
    }
    Ok(SealedArchive {
        bytes: out,
        curve: C::ID,
    })
}

impl LocalPartySaveData {
    /// Seals the protocol archive: the whole save data except `Xi`, under a
    /// key derived from `Xi` and `id` with a fresh random salt.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`].
    pub fn seal_archive(&self, id: &NodeVersion) -> Result<SealedArchive> {
        let mut salt = [0u8; SALT_LEN];
        codec::os_random(&mut salt)?;
        self.seal_archive_with_salt(id, salt)
    }

    pub(crate) fn seal_archive_with_salt(
        &self,
        id: &NodeVersion,
        salt: [u8; SALT_LEN],
    ) -> Result<SealedArchive> {
        let Value::Object(mut members) = self.to_value() else {
            return Err(Error::UnknownProtocol);
        };
        members.retain(|(key, _)| key != XI_KEY);
        let plaintext = json::write(&Value::Object(members));
        match &self.inner {
            Inner::Ecdsa(key, _) => seal(&key.xi, id, salt, &plaintext),
            Inner::Eddsa(key) => seal(&key.xi, id, salt, &plaintext),
        }
    }
}

/// Opens `archive` with `xi` and `id` and puts `Xi` back: the full save
/// data, not yet checked against any binding (see
/// [`regenerate`](crate::regenerate)).
pub(crate) fn open_save_data<C: Curve>(
    xi: &Secret<C>,
    archive: &SealedArchive,
    id: &NodeVersion,
) -> Result<LocalPartySaveData> {
    let plaintext = archive.open(xi, id)?;
    let Value::Object(mut members) = json::parse(&plaintext)? else {
        return Err(Error::UnknownProtocol);
    };
    if members.iter().any(|(key, _)| key == XI_KEY) {
        // An archive never holds Xi; one that does was not written here.
        return Err(Error::Field {
            field: XI_KEY.to_owned(),
            problem: crate::FieldError::Unknown,
        });
    }
    members.push((XI_KEY.to_owned(), Value::Number(xi_digits(xi))));
    let data = LocalPartySaveData::from_value(Value::Object(members))?;
    if data.curve() != C::ID {
        return Err(Error::CurveMismatch {
            expected: data.curve(),
            got: C::ID,
        });
    }
    Ok(data)
}

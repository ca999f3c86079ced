//! The pieces the two binary formats (sealed archive, keystore file) share:
//! names and the key version on the wire (through [`shardkeep_wire`], its
//! errors carried as [`FormatError::Framing`]), the AES-256-GCM-SIV calls that never
//! leave a plaintext copy behind, and the operating system's randomness.

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::TryRng;
use shardkeep_types::{KeyId, KeyVersion, MAX_NAME_LEN, NodeId, NodeVersion};
use shardkeep_wire::{FramingError, Reader};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, FormatError, Result};

/// Length of an AES-256-GCM-SIV tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of an AES-256-GCM-SIV nonce.
pub(crate) const NONCE_LEN: usize = 12;

/// A name (key, node or KEK id): one length byte, then 1-64 bytes.
pub(crate) fn read_name<'a>(
    reader: &mut Reader<'a>,
    field: &'static str,
) -> Result<&'a [u8], FormatError> {
    Ok(reader.prefixed_u8(field, 1, MAX_NAME_LEN)?)
}

/// Reads what [`NodeVersion::encode`] writes: the key version the archive
/// key and the keystore file are bound to.
pub(crate) fn read_node_version(reader: &mut Reader<'_>) -> Result<NodeVersion, FormatError> {
    let key_id = KeyId::from_bytes(read_name(reader, "key_id")?)
        .map_err(|_| FormatError::InvalidName("key_id"))?;
    let node_id = NodeId::from_bytes(read_name(reader, "node_id")?)
        .map_err(|_| FormatError::InvalidName("node_id"))?;
    let version = KeyVersion::new(reader.u32("version")?);
    Ok(NodeVersion {
        key_id,
        node_id,
        version,
    })
}

/// The error for a plaintext that gives a body outside `TAG_LEN + 1 ..=
/// max_body`.
pub(crate) fn body_length_error(plaintext_len: usize, max_body: usize) -> FormatError {
    FramingError::LengthOutOfRange {
        field: "body",
        len: plaintext_len.saturating_add(TAG_LEN),
        min: TAG_LEN + 1,
        max: max_body,
    }
    .into()
}

/// Encrypts `plaintext` into `out` (appended: ciphertext, then tag). `out`
/// must have room for `plaintext.len() + TAG_LEN` more bytes so that no
/// reallocation copies the plaintext; the caller reserves it.
///
/// Returns `false`, with `out` as it was and the plaintext copy wiped, when
/// AES-GCM-SIV refuses (only for inputs over 2^36 bytes; callers cap theirs
/// far below).
#[must_use]
pub(crate) fn seal_into(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    debug_assert!(out.capacity() - out.len() >= plaintext.len() + TAG_LEN);
    let cipher = Aes256GcmSiv::new(key.into());
    let start = out.len();
    out.extend_from_slice(plaintext);
    match cipher.encrypt_inout_detached(&Nonce::from(*nonce), aad, (&mut out[start..]).into()) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            true
        }
        Err(_) => {
            out[start..].zeroize();
            out.truncate(start);
            false
        }
    }
}

/// Decrypts `ciphertext || tag` into a wiped buffer of the exact size.
///
/// # Errors
/// `None` when the tag does not verify (the caller maps it to its opaque
/// error).
pub(crate) fn open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let body_len = sealed.len().checked_sub(TAG_LEN)?;
    let (body, tag) = sealed.split_at(body_len);
    let tag = Tag::try_from(tag).ok()?;
    let cipher = Aes256GcmSiv::new(key.into());
    let mut plain = Zeroizing::new(Vec::with_capacity(body_len));
    plain.extend_from_slice(body);
    cipher
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, plain.as_mut_slice().into(), &tag)
        .ok()?;
    Some(plain)
}

/// Fills `out` from the operating system's generator.
pub(crate) fn os_random(out: &mut [u8]) -> Result<()> {
    rand::rngs::SysRng
        .try_fill_bytes(out)
        .map_err(|_| Error::RandomnessUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_version_round_trips_and_names_are_bounded() {
        let id = NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(3),
        };
        let mut out = Vec::new();
        id.encode(&mut out);
        assert_eq!(hex::encode(&out), "056b65792d31066e6f64652d6100000003");
        let mut r = Reader::new(&out);
        assert_eq!(read_node_version(&mut r).unwrap(), id);
        r.finish("id").unwrap();
        assert!(matches!(
            read_name(&mut Reader::new(&[0]), "key_id"),
            Err(FormatError::Framing(FramingError::LengthOutOfRange {
                len: 0,
                ..
            }))
        ));
        assert!(matches!(
            read_name(&mut Reader::new(&[65]), "key_id"),
            Err(FormatError::Framing(FramingError::LengthOutOfRange {
                len: 65,
                ..
            }))
        ));
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [1u8; NONCE_LEN];
        let mut sealed = Vec::with_capacity(3 + TAG_LEN);
        assert!(seal_into(&key, &nonce, b"aad", b"abc", &mut sealed));
        assert_eq!(sealed.len(), 3 + TAG_LEN);
        assert_eq!(
            open(&key, &nonce, b"aad", &sealed).unwrap().as_slice(),
            b"abc"
        );
        assert!(open(&key, &nonce, b"aae", &sealed).is_none());
        sealed[0] ^= 1;
        assert!(open(&key, &nonce, b"aad", &sealed).is_none());
        assert!(open(&key, &nonce, b"aad", &sealed[..TAG_LEN - 1]).is_none());
    }
}

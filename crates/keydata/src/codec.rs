//! The pieces the two binary formats (sealed archive, keystore file) share:
//! a bounds-checked reader, the AES-256-GCM-SIV calls that never leave a
//! plaintext copy behind, and the operating system's randomness.

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::TryRng;
use shardkeep_envelope::{KeyId, KeyVersion, NodeId};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, FormatError, Result};

/// Length of an AES-256-GCM-SIV tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of an AES-256-GCM-SIV nonce.
pub(crate) const NONCE_LEN: usize = 12;

/// A borrowed byte slice read front to back. Every read checks the length
/// first; [`Reader::finish`] refuses leftovers.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], FormatError> {
        let rest = self.bytes.len() - self.pos;
        if rest < len {
            return Err(FormatError::Truncated {
                field,
                needed: len - rest,
            });
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A length read as `width` bytes, checked against `min..=max`
    /// before anything is allocated for it.
    pub(crate) fn length(
        &mut self,
        field: &'static str,
        width: LengthWidth,
        min: usize,
        max: usize,
    ) -> Result<usize, FormatError> {
        let len = match width {
            LengthWidth::U8 => usize::from(self.u8(field)?),
            LengthWidth::U16 => usize::from(self.u16(field)?),
            LengthWidth::U32 => usize::try_from(self.u32(field)?).unwrap_or(usize::MAX),
        };
        if len < min || len > max {
            return Err(FormatError::Length {
                field,
                len,
                min,
                max,
            });
        }
        Ok(len)
    }

    /// A name (key, node or KEK id): one length byte, then the name.
    pub(crate) fn name(&mut self, field: &'static str) -> Result<&'a [u8], FormatError> {
        let len = self.length(field, LengthWidth::U8, 1, shardkeep_envelope::MAX_NAME_LEN)?;
        self.take(len, field)
    }

    pub(crate) fn finish(&self) -> Result<(), FormatError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            extra => Err(FormatError::TrailingData(extra)),
        }
    }
}

/// Width of a length prefix.
#[derive(Clone, Copy)]
pub(crate) enum LengthWidth {
    U8,
    U16,
    U32,
}

/// Appends `u8 length || name`; names are at most 64 bytes.
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

/// Lower-case hex of public bytes, for messages and file names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One node's keydata at one key version: what the archive key and the
/// keystore file are bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeydataId {
    /// The MPC group key.
    pub key_id: KeyId,
    /// The node holding the share.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
}

impl KeydataId {
    /// `u8 len || key_id || u8 len || node_id || version (u32 big-endian)`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_name(out, self.key_id.as_str());
        put_name(out, self.node_id.as_str());
        out.extend_from_slice(&self.version.get().to_be_bytes());
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, FormatError> {
        let key_id = KeyId::from_bytes(reader.name("key_id")?)
            .map_err(|_| FormatError::InvalidName("key_id"))?;
        let node_id = NodeId::from_bytes(reader.name("node_id")?)
            .map_err(|_| FormatError::InvalidName("node_id"))?;
        let version = KeyVersion::new(reader.u32("version")?);
        Ok(Self {
            key_id,
            node_id,
            version,
        })
    }
}

/// The error for a plaintext that gives a body outside `TAG_LEN + 1 ..=
/// max_body`.
pub(crate) fn body_length_error(plaintext_len: usize, max_body: usize) -> FormatError {
    FormatError::Length {
        field: "body",
        len: plaintext_len.saturating_add(TAG_LEN),
        min: TAG_LEN + 1,
        max: max_body,
    }
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
    fn reader_refuses_short_long_and_trailing_input() {
        let mut r = Reader::new(&[0, 5, 1, 2]);
        assert_eq!(r.u16("a").unwrap(), 5);
        assert_eq!(
            r.u32("b").unwrap_err(),
            FormatError::Truncated {
                field: "b",
                needed: 2
            }
        );
        assert_eq!(r.finish().unwrap_err(), FormatError::TrailingData(2));
        let mut r = Reader::new(&[9]);
        assert!(matches!(
            r.length("len", LengthWidth::U8, 1, 8),
            Err(FormatError::Length { len: 9, .. })
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

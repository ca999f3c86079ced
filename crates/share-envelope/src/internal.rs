//! Not part of the public API: the stage views the criterion bench uses
//! for its cost breakdown. May change without notice. Public values only:
//! no keys (the fuzz entry points and their fixed keys are in `fuzzing`,
//! compiled only with `cfg(fuzzing)`).

use core::fmt;

use shardkeep_sss_core::CurveId;

use crate::envelope::{ENVELOPE_SIGNATURE_TAG, RawEnvelope};
use crate::error::Error;
use shardkeep_types::WrappedKey;

/// The pieces of an envelope each verification primitive works on, so the
/// bench can time the primitives alone on the exact inputs `decode_verify`
/// and `open` give them. For a plain envelope `message` holds the share
/// value: `Debug` prints lengths only.
pub struct EnvelopeView {
    /// `"shardkeep/envelope/v1" || signed bytes`: the ed25519 message.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: [u8; 64],
    /// The signed header: the AEAD's associated data.
    pub header: Vec<u8>,
    /// Sealed payload: nonce then ciphertext and tag (empty when plain).
    pub sealed_payload: Vec<u8>,
    /// The curve.
    pub curve: CurveId,
    /// `t`.
    pub t: u8,
    /// `n`.
    pub n: u8,
    /// The share index.
    pub index: u8,
    /// The commitments' wire bytes.
    pub commitments: Vec<u8>,
    /// The group public key's wire bytes.
    pub group_public_key: Vec<u8>,
    /// The party id's wire bytes.
    pub party_id: Vec<u8>,
    /// The public share's wire bytes.
    pub public_share: Vec<u8>,
    /// The archive hash.
    pub archive_hash: [u8; 32],
    /// The wrapped data key (sealed only).
    pub wrapped_key: Option<WrappedKey>,
}

impl fmt::Debug for EnvelopeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeView")
            .field("message_len", &self.message.len())
            .field("curve", &self.curve)
            .field("t", &self.t)
            .field("n", &self.n)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Splits an envelope into an [`EnvelopeView`] (structure only).
///
/// # Errors
/// The structural errors of `decode_verify`.
pub fn envelope_view(bytes: &[u8]) -> Result<EnvelopeView, Error> {
    let raw = RawEnvelope::parse(bytes)?;
    let mut message = Vec::with_capacity(ENVELOPE_SIGNATURE_TAG.len() + raw.signed.len());
    message.extend_from_slice(ENVELOPE_SIGNATURE_TAG);
    message.extend_from_slice(raw.signed);
    Ok(EnvelopeView {
        message,
        signature: *raw.signature,
        header: raw.header.to_vec(),
        sealed_payload: match raw.wrap {
            Some(_) => raw.payload.to_vec(),
            None => Vec::new(),
        },
        curve: raw.curve,
        t: raw.t,
        n: raw.n,
        index: raw.index,
        commitments: raw.commitments.to_vec(),
        group_public_key: raw.group_public_key.to_vec(),
        party_id: raw.party_id.to_vec(),
        public_share: raw.public_share.to_vec(),
        archive_hash: raw.archive_hash,
        wrapped_key: raw.wrap.map(|(_, wrapped)| wrapped),
    })
}

/// The bookkeeping part of `decode_verify` alone: structural parse,
/// checksum and envelope id (no signature, no curve arithmetic).
///
/// # Errors
/// The structural errors and [`Error::ChecksumMismatch`].
pub fn parse_and_hash(bytes: &[u8]) -> Result<[u8; 32], Error> {
    let raw = RawEnvelope::parse(bytes)?;
    raw.check_checksum()?;
    Ok(*raw.id().as_bytes())
}

//! Not part of the public API: entry points for the fuzz targets
//! (`fuzz/fuzz_targets/envelope_*.rs`) and the stage views the criterion
//! bench uses for its cost breakdown. May change without notice.
//!
//! The fuzz helpers assert format invariants (every accepted input
//! re-encodes to itself); a failed assertion is a finding.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use shardkeep_sss_core::{CurveId, ShareIndex};

use crate::container::{ContainerIdentity, OpenedContainer, open_container};
use crate::custody::WrappedKey;
use crate::envelope::{ENVELOPE_SIGNATURE_TAG, RawEnvelope, VerifiedEnvelope};
use crate::error::Error;
use crate::ids::{CustodianId, SignerId};
use crate::receipt::{CustodianSet, Receipt, VerifiedReceipt};
use crate::trust::TrustedSigners;

/// Seed of the envelope signing key the fuzz targets trust; the golden
/// vectors are signed with it, so they serve as seed corpus.
pub const FUZZ_SIGNER_SEED: [u8; 32] = [7; 32];
/// The signer id the fuzz targets trust (and the golden vectors use).
pub const FUZZ_SIGNER_ID: &str = "server-signer-1";
/// Seed of the receipt key of the custodian the fuzz targets register.
pub const FUZZ_CUSTODIAN_SEED: [u8; 32] = [8; 32];
/// The custodian the fuzz targets register, at share index 4.
pub const FUZZ_CUSTODIAN_ID: &str = "custodian-a";
/// The X25519 identity the container fuzz target opens with (a throwaway
/// key made for fuzzing; its recipient is
/// `age14kvhregdypuq89epl8x9lscjjfjmf8eyye69vev9dmjzfy0c04estv9kp8`).
pub const FUZZ_AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-1KJMS7CKLKSM0WE6248TCS29HTPLYU9AD80NPDNG8EJ7YZMLD6QLQ3LF27R";

fn fuzz_trust() -> &'static TrustedSigners {
    static TRUST: OnceLock<TrustedSigners> = OnceLock::new();
    TRUST.get_or_init(|| {
        let mut trust = TrustedSigners::new();
        if let Ok(id) = SignerId::new(FUZZ_SIGNER_ID) {
            let key = SigningKey::from_bytes(&FUZZ_SIGNER_SEED).verifying_key();
            // A fixed, valid key: cannot be refused.
            let _ = trust.add(id, key);
        }
        trust
    })
}

fn fuzz_custodians() -> &'static CustodianSet {
    static SET: OnceLock<CustodianSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = CustodianSet::new();
        if let (Ok(id), Some(index)) = (CustodianId::new(FUZZ_CUSTODIAN_ID), ShareIndex::new(4)) {
            let key = SigningKey::from_bytes(&FUZZ_CUSTODIAN_SEED).verifying_key();
            let _ = set.insert(index, id, key);
        }
        set
    })
}

fn fuzz_identity() -> &'static [age::x25519::Identity] {
    static IDENTITY: OnceLock<Vec<age::x25519::Identity>> = OnceLock::new();
    IDENTITY.get_or_init(|| FUZZ_AGE_IDENTITY.parse().into_iter().collect())
}

/// Fuzz target `envelope_decode`: structural parse with a re-encoding round
/// trip, the share rules (reachable without a valid signature), and the
/// full `decode_verify`.
pub fn fuzz_envelope_decode(data: &[u8]) {
    if let Ok(raw) = RawEnvelope::parse(data) {
        let reencoded = raw.reencode();
        assert_eq!(
            reencoded.as_deref().ok(),
            Some(data),
            "envelope re-encoding differs"
        );
        let _ = raw.check_checksum();
        let _ = raw.validate();
    }
    let _ = VerifiedEnvelope::decode_verify(data, fuzz_trust());
}

/// Fuzz target `envelope_container_open`: the age container path with a
/// fixed identity, and the contents layout on the raw input.
pub fn fuzz_container_open(data: &[u8]) {
    let _ = open_container(
        data,
        ContainerIdentity::X25519(fuzz_identity()),
        fuzz_trust(),
    );
    let _ = OpenedContainer::decode_verify(data, fuzz_trust());
}

/// Fuzz target `envelope_receipt_decode`: structural parse with a
/// re-encoding round trip, then verification against a fixed custodian set.
pub fn fuzz_receipt_decode(data: &[u8]) {
    if let Ok((receipt, signed, signature)) = Receipt::parse(data) {
        let mut out = Vec::with_capacity(data.len());
        let encoded = receipt.encode_signed(&mut out);
        assert!(encoded.is_ok(), "parsed receipt does not re-encode");
        assert_eq!(out.as_slice(), signed, "receipt re-encoding differs");
        out.extend_from_slice(signature);
        assert_eq!(out.as_slice(), data, "receipt re-encoding differs");
    }
    let _ = VerifiedReceipt::decode_verify(data, fuzz_custodians());
}

/// The pieces of an envelope each verification primitive works on, so the
/// bench can time the primitives alone on the exact inputs `decode_verify`
/// and `open` give them.
#[derive(Debug)]
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

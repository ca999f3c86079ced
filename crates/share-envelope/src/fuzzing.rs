//! Entry points of the cargo-fuzz targets in `fuzz/`, compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); not part of the API. One function
//! per target: it parses arbitrary bytes, re-encodes what parses and
//! asserts the round trip, so a panic is a finding. They trust fixed keys
//! (`fixtures.rs`), which must never ship.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

#[cfg(feature = "containers")]
use crate::container::{ContainerIdentity, OpenedContainer, open_container, open_x25519_container};
use crate::envelope::{RawEnvelope, VerifiedEnvelope};
#[cfg(feature = "containers")]
use crate::fixtures::FUZZ_AGE_IDENTITY;
use crate::fixtures::{FUZZ_CUSTODIAN_ID, FUZZ_CUSTODIAN_SEED, FUZZ_SIGNER_ID, FUZZ_SIGNER_SEED};
use crate::receipt::{CustodianSet, Receipt, VerifiedReceipt};
use crate::trust::TrustedSigners;
use shardkeep_types::{CustodianId, ShareIndex, SignerId};

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

#[cfg(feature = "containers")]
fn fuzz_identity() -> &'static [age::x25519::Identity] {
    static IDENTITY: OnceLock<Vec<age::x25519::Identity>> = OnceLock::new();
    IDENTITY.get_or_init(|| FUZZ_AGE_IDENTITY.parse().into_iter().collect())
}

/// Target `envelope_decode`: structural parse with a re-encoding round
/// trip, the share rules (reachable without a valid signature), and the
/// full `decode_verify`.
///
/// # Panics
/// When a parsed envelope re-encodes differently.
pub fn envelope_decode(data: &[u8]) {
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

/// Target `envelope_container_open`: the age container paths with a fixed
/// identity (both openers), and the contents layout on the raw input.
///
/// # Panics
/// When the two openers disagree.
#[cfg(feature = "containers")]
pub fn container_open(data: &[u8]) {
    let any = open_container(
        data,
        ContainerIdentity::X25519(fuzz_identity()),
        fuzz_trust(),
    );
    let x25519_only = open_x25519_container(data, fuzz_identity(), fuzz_trust());
    // The two openers agree on what opens with an X25519 identity.
    assert_eq!(
        any.as_ref().map(|opened| opened.envelope().id()).ok(),
        x25519_only
            .as_ref()
            .map(|opened| opened.envelope().id())
            .ok(),
        "open_container and open_x25519_container disagree"
    );
    let _ = OpenedContainer::decode_verify(data, fuzz_trust());
}

/// Target `envelope_receipt_decode`: structural parse with a re-encoding
/// round trip, then verification against a fixed custodian set.
///
/// # Panics
/// When a parsed receipt re-encodes differently.
pub fn receipt_decode(data: &[u8]) {
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

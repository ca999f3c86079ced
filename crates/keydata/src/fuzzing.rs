//! Entry points of the cargo-fuzz targets in `fuzz/`, compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); not part of the API. One function
//! per target: it parses arbitrary bytes, re-encodes what parses and
//! asserts the round trip, so a panic is a finding.
#![allow(
    clippy::expect_used,
    reason = "the fuzz helpers assert their round trips: a panic is a finding"
)]

use shardkeep_sss_core::{Curve, Ed25519, Secp256k1, Secret};
use shardkeep_types::{
    DataKey, InMemoryKek, KekId, KeyEncryptionKey, KeyId, KeyVersion, NodeId, NodeVersion,
};
use subtle::ConstantTimeEq;

use crate::archive::{SealedArchive, open_save_data, seal};
use crate::keystore::{KekKeystoreCodec, KeystoreCodec};
use crate::save_data::LocalPartySaveData;

fn fuzz_id() -> Option<NodeVersion> {
    Some(NodeVersion {
        key_id: KeyId::new("fuzz-key").ok()?,
        node_id: NodeId::new("fuzz-node").ok()?,
        version: KeyVersion::new(1),
    })
}

/// A fixed secret share, valid on both curves.
fn fuzz_xi<C: Curve>() -> Option<Secret<C>> {
    Secret::from_be_bytes(&[1; 32]).ok()
}

/// Parses tss-lib JSON; whatever parses must write back to bytes that
/// parse to equal data and write identically again.
///
/// # Panics
/// When a round trip breaks.
pub fn json_load(data: &[u8]) {
    if let Ok(parsed) = LocalPartySaveData::from_json(data) {
        check_round_trip(&parsed);
    }
}

fn check_round_trip(parsed: &LocalPartySaveData) {
    let written = parsed.to_json();
    let again = LocalPartySaveData::from_json(&written).expect("written JSON parses");
    assert!(
        bool::from(again.ct_eq(parsed)),
        "round trip changed the data"
    );
    assert_eq!(again.to_json().as_slice(), written.as_slice());
    let _ = (
        parsed.self_index(),
        parsed.public_share(),
        parsed.group_public_key(),
    );
}

/// First byte even: `rest` is a sealed archive, opened with a fixed share
/// and ids on both curves. Odd: `rest` is an archive plaintext, sealed and
/// opened (so the fuzzer reaches the parser behind the AEAD).
///
/// # Panics
/// When a round trip breaks.
pub fn archive_open(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let Some(id) = fuzz_id() else { return };
    if mode & 1 == 0 {
        if let Ok(archive) = SealedArchive::from_bytes(rest.to_vec()) {
            assert_eq!(archive.as_bytes(), rest);
            open_both::<Secp256k1>(&archive, &id);
            open_both::<Ed25519>(&archive, &id);
        }
    } else {
        seal_and_open::<Secp256k1>(rest, &id);
        seal_and_open::<Ed25519>(rest, &id);
    }
}

fn open_both<C: Curve>(archive: &SealedArchive, id: &NodeVersion) {
    if let Some(xi) = fuzz_xi::<C>()
        && let Ok(data) = open_save_data(&xi, archive, id)
    {
        check_round_trip(&data);
    }
}

fn seal_and_open<C: Curve>(plaintext: &[u8], id: &NodeVersion) {
    let Some(xi) = fuzz_xi::<C>() else { return };
    let Ok(archive) = seal(&xi, id, [7; 32], plaintext) else {
        return;
    };
    let reparsed =
        SealedArchive::from_bytes(archive.as_bytes().to_vec()).expect("sealed archive parses");
    if let Ok(data) = open_save_data(&xi, &reparsed, id) {
        check_round_trip(&data);
        // What opened seals again to the same bytes when nothing changed.
        if let Ok(resealed) = data.seal_archive_with_salt(id, [7; 32]) {
            let back = open_save_data(&xi, &resealed, id).expect("resealed archive opens");
            assert!(bool::from(back.ct_eq(&data)));
        }
    }
}

/// First byte even: `rest` is a keystore file, decoded with a fixed KEK and
/// ids. Odd: `rest` is the JSON inside, encoded, decoded and parsed.
///
/// # Panics
/// When a round trip breaks.
pub fn keystore_load(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let (Some(id), Ok(kek_id)) = (fuzz_id(), KekId::new("fuzz-kek")) else {
        return;
    };
    let kek = InMemoryKek::from_bytes(kek_id, &[5; 32]);
    let codec = KekKeystoreCodec::new(kek);
    if mode & 1 == 0 {
        if let Ok(json) = codec.decode(&id, rest) {
            json_load(&json);
        }
    } else {
        let data_key = DataKey::from_bytes(&[6; 32]);
        let Ok(wrapped) =
            InMemoryKek::from_bytes(KekId::new("fuzz-kek").expect("valid name"), &[5; 32])
                .wrap(&data_key)
        else {
            return;
        };
        if let Ok(file) = codec.encode_with(&id, rest, &data_key, &wrapped, [8; 12]) {
            let json = codec.decode(&id, &file).expect("encoded keystore decodes");
            assert_eq!(json.as_slice(), rest);
            json_load(&json);
        }
    }
}

//! Every vector under `tests/data/{pass,fail}/` gives exactly its stored
//! outcome. One file per case, named for the defect; the header's `expect:`
//! line is the outcome (`ok` or an error class, see `classify`). The
//! vectors are written (and kept from drifting) by the unit test
//! `golden::golden_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::fmt::Debug;

use common::{compact, group_threshold, peers_of, vectors_dir};
use shardkeep_keydata::{
    CommitRequest, Error, KekKeystoreCodec, KeystoreCodec, LocalPartySaveData, NonceCommitments,
    SealedArchive, SignRequest, SignatureShares, regenerate,
};
use shardkeep_sss_core::{CurveId, Ed25519, Secp256k1};
use shardkeep_test_support::{Vector, read_dir};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, NodeId, NodeVersion};
use subtle::ConstantTimeEq;

fn ids(vector: &Vector) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new(vector.get("key-id").unwrap()).unwrap(),
        node_id: NodeId::new(vector.get("node-id").unwrap()).unwrap(),
        version: KeyVersion::new(vector.value("version").unwrap()),
    }
}

/// The stored vectors of `kind` (`pass` or `fail`) whose names start with
/// `prefix`.
fn vectors(kind: &str, prefix: &str) -> Vec<Vector> {
    let found: Vec<Vector> = read_dir(&vectors_dir().join(kind))
        .unwrap()
        .into_iter()
        .filter(|v| v.name().starts_with(prefix))
        .collect();
    assert!(!found.is_empty(), "no {prefix} vectors in {kind}");
    found
}

fn fixture_at(relative: &str) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&std::fs::read(vectors_dir().join(relative)).unwrap()).unwrap()
}

/// A stable name for an error: the variant, its nested variant, and for
/// field errors the field path.
fn classify(error: &Error) -> String {
    match error {
        Error::Field { field, problem } => format!("field {field}: {}", variant(problem)),
        Error::Json(e) => format!("json: {}", variant(e)),
        Error::Archive(e) => format!("archive: {}", variant(e)),
        Error::Keystore(e) => format!("keystore: {}", variant(e)),
        Error::PeerMessage(e) => format!("peer: {}", variant(e)),
        other => variant(other),
    }
}

fn variant(value: &dyn Debug) -> String {
    let text = format!("{value:?}");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let head = ident(&text);
    match text[head.len()..].strip_prefix('(').map(ident) {
        // A nested variant, not a number.
        Some(inner) if inner.starts_with(|c: char| c.is_ascii_uppercase()) => {
            format!("{head}({inner})")
        }
        _ => head,
    }
}

fn check<T>(vector: &Vector, result: Result<T, Error>) -> Option<T> {
    let expect = vector.expect();
    match result {
        Ok(value) => {
            assert_eq!(expect, "ok", "{} loaded but should fail", vector.file());
            Some(value)
        }
        Err(e) => {
            assert_eq!(classify(&e), expect, "{}: {e}", vector.file());
            None
        }
    }
}

fn self_test_passes(data: &LocalPartySaveData) {
    let protocol = match data.curve() {
        CurveId::Secp256k1 => common::Protocol::Ecdsa,
        CurveId::Ed25519 => common::Protocol::Eddsa,
    };
    let parties: Vec<_> = (0..common::PARTIES)
        .map(|i| fixture_at(&shardkeep_test_support::tss_lib::fixture_name(protocol, i)))
        .collect();
    let me = data.self_index().unwrap();
    let mut peers = peers_of(&parties, me);
    let report = data.self_test(group_threshold(), &mut peers).unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn golden_json_vectors() {
    for vector in vectors("pass", "json_")
        .into_iter()
        .chain(vectors("fail", "json_"))
    {
        let Some(data) = check(&vector, LocalPartySaveData::from_json(vector.body_bytes())) else {
            continue;
        };
        let written = data.to_json();
        match vector.get("writes").unwrap() {
            "same" => assert_eq!(written.as_slice(), vector.body_bytes(), "{}", vector.file()),
            other => assert_eq!(
                written.as_slice(),
                compact(&std::fs::read(vectors_dir().join(other)).unwrap()).as_slice(),
                "{}",
                vector.file()
            ),
        }
        if vector.get("self-test").unwrap() == "pass" {
            self_test_passes(&data);
        }
    }
}

#[test]
fn golden_archive_vectors() {
    for vector in vectors("pass", "archive_")
        .into_iter()
        .chain(vectors("fail", "archive_"))
    {
        let xi_from = fixture_at(vector.get("xi-from").unwrap());
        let binding_from = fixture_at(
            vector
                .optional("binding-from")
                .unwrap()
                .unwrap_or(vector.get("xi-from").unwrap()),
        );
        let id = ids(&vector);
        let result = SealedArchive::from_bytes(vector.body_bytes().to_vec()).and_then(|archive| {
            let binding = binding_from.binding(&archive)?;
            match xi_from.curve() {
                CurveId::Secp256k1 => regenerate(
                    &xi_from.secret_share::<Secp256k1>()?,
                    &archive,
                    &binding,
                    &id,
                ),
                CurveId::Ed25519 => {
                    regenerate(&xi_from.secret_share::<Ed25519>()?, &archive, &binding, &id)
                }
            }
        });
        if let Some(data) = check(&vector, result) {
            assert!(bool::from(data.ct_eq(&xi_from)), "{}", vector.file());
        }
    }
}

#[test]
fn golden_keystore_vectors() {
    for vector in vectors("pass", "keystore_")
        .into_iter()
        .chain(vectors("fail", "keystore_"))
    {
        let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new(vector.get("kek-id").unwrap()).unwrap(),
            &vector.hex_array("kek-key").unwrap(),
        ));
        let result = codec
            .decode(&ids(&vector), vector.body_bytes())
            .and_then(|json| LocalPartySaveData::from_json(&json));
        if let Some(data) = check(&vector, result) {
            assert!(
                bool::from(data.ct_eq(&fixture_at(vector.get("party").unwrap()))),
                "{}",
                vector.file()
            );
        }
    }
}

/// Decodes `bytes` as the message `kind` names and encodes it again.
fn peer_message_round_trip(kind: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    match kind {
        "commit-request" => CommitRequest::decode(bytes)?.encode(),
        "nonce-commitments" => NonceCommitments::decode(bytes)?.encode(),
        "sign-request" => SignRequest::decode(bytes)?.encode(),
        "signature-shares" => SignatureShares::decode(bytes)?.encode(),
        other => panic!("unknown peer message kind {other}"),
    }
}

#[test]
fn golden_peer_message_vectors() {
    for vector in vectors("pass", "peer_")
        .into_iter()
        .chain(vectors("fail", "peer_"))
    {
        let result = peer_message_round_trip(vector.get("message").unwrap(), vector.body_bytes());
        if let Some(encoded) = check(&vector, result) {
            // One encoding per message: what decodes encodes to the same bytes.
            assert_eq!(encoded, vector.body_bytes(), "{}", vector.file());
        }
    }
}

//! Every vector under `test-vectors/keydata/{pass,fail}/` gives exactly its
//! stored outcome. One file per case, named for the defect; the header's
//! `expect:` line is the outcome (`ok` or an error class, see `classify`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use common::{compact, group_threshold, peers_of, vectors_dir};
use shardkeep_keydata::{
    Error, KekKeystoreCodec, KeystoreCodec, LocalPartySaveData, SealedArchive, regenerate,
};
use shardkeep_sss_core::{CurveId, Ed25519, Secp256k1};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, NodeId, NodeVersion};
use subtle::ConstantTimeEq;

struct Vector {
    name: String,
    header: BTreeMap<String, String>,
    payload: Vec<u8>,
}

impl Vector {
    fn get(&self, key: &str) -> &str {
        self.header
            .get(key)
            .unwrap_or_else(|| panic!("{}: no {key}", self.name))
    }

    fn ids(&self) -> NodeVersion {
        NodeVersion {
            key_id: KeyId::new(self.get("key-id")).unwrap(),
            node_id: NodeId::new(self.get("node-id")).unwrap(),
            version: KeyVersion::new(self.get("version").parse().unwrap()),
        }
    }
}

fn vectors(kind: &str, prefix: &str) -> Vec<Vector> {
    let dir = vectors_dir().join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no {prefix} vectors in {}",
        dir.display()
    );
    paths.iter().map(|p| read(p)).collect()
}

fn read(path: &Path) -> Vector {
    let bytes = std::fs::read(path).unwrap();
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
    let header = std::str::from_utf8(&bytes[..split])
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Vector {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        header,
        payload: bytes[split + 2..].to_vec(),
    }
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
    let expect = vector.get("expect");
    match result {
        Ok(value) => {
            assert_eq!(expect, "ok", "{} loaded but should fail", vector.name);
            Some(value)
        }
        Err(e) => {
            assert_eq!(classify(&e), expect, "{}: {e}", vector.name);
            None
        }
    }
}

fn self_test_passes(data: &LocalPartySaveData) {
    let protocol = match data.curve() {
        CurveId::Secp256k1 => "ecdsa",
        CurveId::Ed25519 => "eddsa",
    };
    let parties: Vec<_> = (0..common::PARTIES)
        .map(|i| fixture_at(&format!("tss-lib/{protocol}/keygen_data_{i}.json")))
        .collect();
    let me = data.self_index().unwrap();
    let mut peers = peers_of(&parties, me);
    let report = data.self_test(group_threshold(), &mut peers).unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn json_vectors() {
    for vector in vectors("pass", "json_")
        .into_iter()
        .chain(vectors("fail", "json_"))
    {
        let Some(data) = check(&vector, LocalPartySaveData::from_json(&vector.payload)) else {
            continue;
        };
        let written = data.to_json();
        match vector.get("writes") {
            "same" => assert_eq!(written.as_slice(), vector.payload, "{}", vector.name),
            other => assert_eq!(
                written.as_slice(),
                compact(&std::fs::read(vectors_dir().join(other)).unwrap()),
                "{}",
                vector.name
            ),
        }
        if vector.get("self-test") == "pass" {
            self_test_passes(&data);
        }
    }
}

#[test]
fn archive_vectors() {
    for vector in vectors("pass", "archive_")
        .into_iter()
        .chain(vectors("fail", "archive_"))
    {
        let xi_from = fixture_at(vector.get("xi-from"));
        let binding_from = vector
            .header
            .get("binding-from")
            .map_or_else(|| fixture_at(vector.get("xi-from")), |p| fixture_at(p));
        let id = vector.ids();
        let result = SealedArchive::from_bytes(vector.payload.clone()).and_then(|archive| {
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
            assert!(bool::from(data.ct_eq(&xi_from)), "{}", vector.name);
        }
    }
}

#[test]
fn keystore_vectors() {
    for vector in vectors("pass", "keystore_")
        .into_iter()
        .chain(vectors("fail", "keystore_"))
    {
        let key: [u8; 32] = hex::decode(vector.get("kek-key"))
            .unwrap()
            .try_into()
            .unwrap();
        let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new(vector.get("kek-id")).unwrap(),
            &key,
        ));
        let result = codec
            .decode(&vector.ids(), &vector.payload)
            .and_then(|json| LocalPartySaveData::from_json(&json));
        if let Some(data) = check(&vector, result) {
            assert!(
                bool::from(data.ct_eq(&fixture_at(vector.get("party")))),
                "{}",
                vector.name
            );
        }
    }
}

//! Golden vectors of the two binary formats: drift tests (re-encoding the
//! stored inputs gives the stored bytes) and, behind `--ignored`, the
//! generator that wrote them.
//!
//! The pass/fail expectations of every vector are checked by the
//! integration test `tests/vectors.rs` through the public API.

use std::collections::BTreeMap;
use std::path::Path;

use shardkeep_sss_core::Secp256k1;
use shardkeep_types::{DataKey, InMemoryKek, KekId, KeyEncryptionKey, NodeVersion};

use crate::archive::SealedArchive;
use crate::keystore::{KekKeystoreCodec, parse_keystore};
use crate::save_data::LocalPartySaveData;
use crate::test_support::{fixture, id, vectors_dir};

const SALT: [u8; 32] = *b"shardkeep archive golden salt 01";
const KEK_KEY: [u8; 32] = [0x4b; 32];
const DATA_KEY: [u8; 32] = [0x44; 32];
const NONCE: [u8; 12] = [0x4e; 12];

struct Vector {
    header: BTreeMap<String, String>,
    payload: Vec<u8>,
}

fn read_vector(path: &Path) -> Vector {
    let bytes = std::fs::read(path).unwrap();
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
    let header = std::str::from_utf8(&bytes[..split])
        .unwrap()
        .lines()
        .map(|line| {
            let (k, v) = line.split_once(": ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Vector {
        header,
        payload: bytes[split + 2..].to_vec(),
    }
}

fn write_vector(kind: &str, name: &str, header: &[(&str, String)], payload: &[u8]) {
    let mut out = Vec::new();
    for (k, v) in header {
        out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload);
    std::fs::write(vectors_dir().join(kind).join(format!("{name}.vec")), out).unwrap();
}

fn kek(kek_id: &str) -> InMemoryKek {
    InMemoryKek::from_bytes(KekId::new(kek_id).unwrap(), &KEK_KEY)
}

fn seal_fixed(data: &LocalPartySaveData, node: &str) -> SealedArchive {
    data.seal_archive_with_salt(&id(node), SALT).unwrap()
}

#[test]
fn archive_vectors_have_not_drifted() {
    for (name, protocol, party) in [
        ("archive_ecdsa_party0", "ecdsa", 0),
        ("archive_eddsa_party1", "eddsa", 1),
    ] {
        let vector = read_vector(&vectors_dir().join("pass").join(format!("{name}.vec")));
        let data = fixture(protocol, party);
        let resealed = seal_fixed(&data, &vector.header["node-id"]);
        assert_eq!(
            resealed.as_bytes(),
            vector.payload,
            "{name}: the archive format drifted"
        );
    }
}

#[test]
fn keystore_vectors_have_not_drifted() {
    for (name, protocol, party) in [
        ("keystore_ecdsa_party0", "ecdsa", 0),
        ("keystore_eddsa_party1", "eddsa", 1),
    ] {
        let vector = read_vector(&vectors_dir().join("pass").join(format!("{name}.vec")));
        let parsed = parse_keystore(&vector.payload).unwrap();
        let codec = KekKeystoreCodec::new(kek(&vector.header["kek-id"]));
        let data = fixture(protocol, party);
        let again = codec
            .encode_with(
                &parsed.id,
                &data.to_json(),
                &DataKey::from_bytes(&DATA_KEY),
                &parsed.wrapped,
                parsed.nonce,
            )
            .unwrap();
        assert_eq!(again, vector.payload, "{name}: the keystore format drifted");
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

fn set(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + value.len()].copy_from_slice(value);
    out
}

/// Writes every binary vector. Run after a deliberate format change:
/// `cargo test -p shardkeep-keydata --lib golden::generate -- --ignored`.
#[test]
#[ignore = "writes test-vectors/keydata; run by hand after a deliberate format change"]
fn generate() {
    generate_archives();
    generate_keystores();
}

fn archive_header(protocol: &str, party: usize, node: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "xi-from",
            format!("tss-lib/{protocol}/keygen_data_{party}.json"),
        ),
        ("key-id", "key-1".to_owned()),
        ("node-id", node.to_owned()),
        ("version", "1".to_owned()),
    ]
}

fn generate_archives() {
    let ecdsa = fixture("ecdsa", 0);
    let base = seal_fixed(&ecdsa, "node-0");
    let header = |expect: &str, comment: &str| {
        let mut h = archive_header("ecdsa", 0, "node-0");
        h.insert(0, ("expect", expect.to_owned()));
        h.push(("comment", comment.to_owned()));
        h
    };
    let mut pass = header(
        "ok",
        "ECDSA party 0, salt \"shardkeep archive golden salt 01\"",
    );
    write_vector("pass", "archive_ecdsa_party0", &pass, base.as_bytes());
    let eddsa = fixture("eddsa", 1);
    pass = archive_header("eddsa", 1, "node-1");
    pass.insert(0, ("expect", "ok".to_owned()));
    pass.push(("comment", "EdDSA party 1, same salt".to_owned()));
    write_vector(
        "pass",
        "archive_eddsa_party1",
        &pass,
        seal_fixed(&eddsa, "node-1").as_bytes(),
    );

    let b = base.as_bytes();
    let body_len_at = 43;
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad_magic",
            flip(b, 0),
            "archive: Framing(BadMagic)",
            "first magic byte altered",
        ),
        (
            "unsupported_version",
            set(b, 8, &[2]),
            "archive: Framing(UnsupportedVersion)",
            "format version 2",
        ),
        (
            "unsupported_kdf",
            set(b, 9, &[2]),
            "archive: UnsupportedKdf",
            "KDF id 2",
        ),
        (
            "unknown_curve",
            set(b, 10, &[3]),
            "archive: UnknownCurve",
            "curve byte 3",
        ),
        (
            "other_curve",
            set(b, 10, &[2]),
            "CurveMismatch",
            "an ECDSA archive labelled ed25519",
        ),
        (
            "truncated_header",
            b[..20].to_vec(),
            "archive: Framing(Truncated)",
            "cut inside the salt",
        ),
        (
            "truncated_body",
            b[..b.len() - 1].to_vec(),
            "archive: Framing(Truncated)",
            "one body byte missing",
        ),
        (
            "trailing_byte",
            [b, &[0]].concat(),
            "archive: Framing(TrailingBytes)",
            "one byte after the body",
        ),
        (
            "body_length_zero",
            set(b, body_len_at, &0u32.to_be_bytes()),
            "archive: Framing(LengthOutOfRange)",
            "body length 0",
        ),
        (
            "body_length_over_cap",
            set(b, body_len_at, &u32::MAX.to_be_bytes()),
            "archive: Framing(LengthOutOfRange)",
            "body length 2^32 - 1, refused before allocating",
        ),
        (
            "salt_altered",
            flip(b, 11),
            "ArchiveOpenFailed",
            "one salt bit: another key",
        ),
        (
            "ciphertext_altered",
            flip(b, 47),
            "ArchiveOpenFailed",
            "one ciphertext bit",
        ),
        (
            "tag_altered",
            flip(b, b.len() - 1),
            "ArchiveOpenFailed",
            "one tag bit",
        ),
    ];
    for (name, payload, expect, comment) in cases {
        write_vector(
            "fail",
            &format!("archive_{name}"),
            &header(expect, comment),
            &payload,
        );
    }
    let mut other_node = header(
        "ArchiveOpenFailed",
        "opened with node-9's ids: the key derivation differs",
    );
    other_node
        .iter_mut()
        .find(|(k, _)| *k == "node-id")
        .unwrap()
        .1 = "node-9".to_owned();
    write_vector("fail", "archive_other_node_id", &other_node, b);
    let mut other_version = header("ArchiveOpenFailed", "opened as key version 2");
    other_version
        .iter_mut()
        .find(|(k, _)| *k == "version")
        .unwrap()
        .1 = "2".to_owned();
    write_vector("fail", "archive_other_key_version", &other_version, b);
    let mut other_share = header(
        "NotThisNodesShare",
        "party 1's recovered share against party 0's binding",
    );
    other_share
        .iter_mut()
        .find(|(k, _)| *k == "xi-from")
        .unwrap()
        .1 = "tss-lib/ecdsa/keygen_data_1.json".to_owned();
    other_share.push((
        "binding-from",
        "tss-lib/ecdsa/keygen_data_0.json".to_owned(),
    ));
    write_vector("fail", "archive_share_of_another_node", &other_share, b);

    // Well-sealed archives whose plaintext is wrong.
    let xi = ecdsa.secret_share::<Secp256k1>().unwrap();
    let seal_plain =
        |plaintext: &[u8]| crate::archive::seal(&xi, &id("node-0"), SALT, plaintext).unwrap();
    let full = ecdsa.to_json();
    write_vector(
        "fail",
        "archive_contains_xi",
        &header(
            "field Xi: Unknown",
            "the plaintext still holds Xi: not written by shardkeep",
        ),
        seal_plain(&full).as_bytes(),
    );
    write_vector(
        "fail",
        "archive_plaintext_not_json",
        &header(
            "json: Unexpected",
            "sealed correctly, but the plaintext is not JSON",
        ),
        seal_plain(b"not json").as_bytes(),
    );
    let other_group_key = crate::test_support::edited(&ecdsa, |v| {
        use crate::test_support::{Step, at, copy};
        let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(1)]));
        *at(v, &[Step::Key("ECDSAPub")]) = other;
    })
    .unwrap();
    write_vector(
        "fail",
        "archive_group_key_differs_from_binding",
        &header(
            "BindingMismatch(GroupKey)",
            "sealed with party 0's Xi but another ECDSAPub than the binding signs",
        ),
        seal_fixed(&other_group_key, "node-0").as_bytes(),
    );
}

fn keystore_header(protocol: &str, party: usize, node: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "party",
            format!("tss-lib/{protocol}/keygen_data_{party}.json"),
        ),
        ("key-id", "key-1".to_owned()),
        ("node-id", node.to_owned()),
        ("version", "1".to_owned()),
        ("kek-id", "kek-1".to_owned()),
        ("kek-key", hex::encode(KEK_KEY)),
    ]
}

fn encode_fixed(data_json: &[u8], id: &NodeVersion) -> Vec<u8> {
    let codec = KekKeystoreCodec::new(kek("kek-1"));
    let data_key = DataKey::from_bytes(&DATA_KEY);
    let wrapped = kek("kek-1").wrap(&data_key).unwrap();
    codec
        .encode_with(id, data_json, &data_key, &wrapped, NONCE)
        .unwrap()
}

fn generate_keystores() {
    let ecdsa = fixture("ecdsa", 0);
    let base = encode_fixed(&ecdsa.to_json(), &id("node-0"));
    let header = |expect: &str, comment: &str| {
        let mut h = keystore_header("ecdsa", 0, "node-0");
        h.insert(0, ("expect", expect.to_owned()));
        h.push(("comment", comment.to_owned()));
        h
    };
    write_vector(
        "pass",
        "keystore_ecdsa_party0",
        &header("ok", "ECDSA party 0; data key 0x44.., nonce 0x4e.."),
        &base,
    );
    let eddsa = fixture("eddsa", 1);
    let mut pass = keystore_header("eddsa", 1, "node-1");
    pass.insert(0, ("expect", "ok".to_owned()));
    pass.push(("comment", "EdDSA party 1".to_owned()));
    write_vector(
        "pass",
        "keystore_eddsa_party1",
        &pass,
        &encode_fixed(&eddsa.to_json(), &id("node-1")),
    );

    // Offsets in the base file: magic 8, version 1, key_id 1+5, node_id 1+6,
    // version 4, kek_id 1+5, wrapped length 2, wrapped key, nonce 12, body length 4.
    let key_id_at = 9;
    let kek_id_end = key_id_at + 6 + 7 + 4 + 6;
    let wrapped_len_at = kek_id_end;
    let wrapped_len = usize::from(u16::from_be_bytes([
        base[wrapped_len_at],
        base[wrapped_len_at + 1],
    ]));
    let nonce_at = wrapped_len_at + 2 + wrapped_len;
    let body_len_at = nonce_at + 12;
    let body_at = body_len_at + 4;
    let b = &base[..];
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad_magic",
            flip(b, 0),
            "keystore: Framing(BadMagic)",
            "first magic byte altered",
        ),
        (
            "unsupported_version",
            set(b, 8, &[2]),
            "keystore: Framing(UnsupportedVersion)",
            "format version 2",
        ),
        (
            "invalid_key_id",
            set(b, key_id_at + 1, b"/"),
            "keystore: InvalidName",
            "a '/' in the key id",
        ),
        (
            "empty_key_id",
            set(b, key_id_at, &[0]),
            "keystore: Framing(LengthOutOfRange)",
            "key id length 0",
        ),
        (
            "wrapped_key_too_long",
            set(b, wrapped_len_at, &513u16.to_be_bytes()),
            "keystore: Framing(LengthOutOfRange)",
            "wrapped key length 513",
        ),
        (
            "wrapped_key_altered",
            flip(b, wrapped_len_at + 2),
            "Custody(UnwrapFailed)",
            "one wrapped-key bit",
        ),
        (
            "nonce_altered",
            flip(b, nonce_at),
            "KeystoreDecryptFailed",
            "one nonce bit",
        ),
        (
            "body_altered",
            flip(b, body_at + 10),
            "KeystoreDecryptFailed",
            "one ciphertext bit",
        ),
        (
            "body_length_too_small",
            set(b, body_len_at, &16u32.to_be_bytes()),
            "keystore: Framing(LengthOutOfRange)",
            "a body of just a tag",
        ),
        (
            "truncated",
            b[..b.len() - 1].to_vec(),
            "keystore: Framing(Truncated)",
            "one byte missing",
        ),
        (
            "trailing_byte",
            [b, &[0]].concat(),
            "keystore: Framing(TrailingBytes)",
            "one byte after the body",
        ),
    ];
    for (name, payload, expect, comment) in cases {
        write_vector(
            "fail",
            &format!("keystore_{name}"),
            &header(expect, comment),
            &payload,
        );
    }
    let mut other_node = header("KeystoreIdMismatch", "loaded as node-7's keystore");
    other_node
        .iter_mut()
        .find(|(k, _)| *k == "node-id")
        .unwrap()
        .1 = "node-7".to_owned();
    write_vector("fail", "keystore_other_node_id", &other_node, b);
    let mut other_version = header("KeystoreIdMismatch", "loaded as key version 2");
    other_version
        .iter_mut()
        .find(|(k, _)| *k == "version")
        .unwrap()
        .1 = "2".to_owned();
    write_vector("fail", "keystore_other_key_version", &other_version, b);
    let mut other_kek = header("KekMismatch", "the codec holds kek-2");
    other_kek
        .iter_mut()
        .find(|(k, _)| *k == "kek-id")
        .unwrap()
        .1 = "kek-2".to_owned();
    write_vector("fail", "keystore_other_kek", &other_kek, b);
    let mut wrong_key = header("Custody(UnwrapFailed)", "same KEK id, other key bytes");
    wrong_key
        .iter_mut()
        .find(|(k, _)| *k == "kek-key")
        .unwrap()
        .1 = hex::encode([0x4c; 32]);
    write_vector("fail", "keystore_wrong_kek_key", &wrong_key, b);
    write_vector(
        "fail",
        "keystore_plaintext_not_save_data",
        &header("UnknownProtocol", "decrypts, but the JSON is no save data"),
        &encode_fixed(b"{}", &id("node-0")),
    );
}

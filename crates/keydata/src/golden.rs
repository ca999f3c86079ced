//! Golden vectors of keydata's formats, in `tests/data/{pass,fail}/`: the
//! sealed protocol archive (`archive_*`), the `.keydata.enc` keystore
//! (`keystore_*`), tss-lib's save-data JSON (`json_*`, in
//! `golden/json_vectors.rs`) and the self-test's peer messages (`peer_*`, in
//! `golden/peer_vectors.rs`), each built here from the tss-lib fixtures with
//! fixed salts, keys and nonces (the KEK's wrap nonces from a seeded
//! `ChaCha20Rng`), and compared byte for byte with the stored files; with
//! `SHARDKEEP_REGENERATE_VECTORS=1` they are rewritten instead.
//!
//! The pass/fail expectation of every vector is checked by the integration
//! test `tests/vectors.rs` through the public API.

mod json_vectors;
mod peer_vectors;

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand_core::Rng;
use shardkeep_sss_core::Secp256k1;
use shardkeep_test_support::tss_lib::{Protocol, fixture_name};
use shardkeep_test_support::{GoldenDir, Vector, data_dir};
use shardkeep_types::{DataKey, InMemoryKek, KekId, NodeVersion};

use crate::archive::SealedArchive;
use crate::keystore::KekKeystoreCodec;
use crate::save_data::LocalPartySaveData;
use crate::test_support::{fixture, id};

const SALT: [u8; 32] = *b"shardkeep archive golden salt 01";
const KEK_KEY: [u8; 32] = [0x4b; 32];
const DATA_KEY: [u8; 32] = [0x44; 32];
const NONCE: [u8; 12] = [0x4e; 12];
/// The seed of the `ChaCha20Rng` the KEK draws its wrap nonces from.
const WRAP_NONCE_SEED: [u8; 32] = [0x57; 32];
/// The magics of the development builds, before `shkp-arc` and `shkp-kst`.
const FORMER_ARCHIVE_MAGIC: &[u8; 8] = b"SKARCHIV";
const FORMER_KEYSTORE_MAGIC: &[u8; 8] = b"SKKEYDAT";

fn vectors_dir() -> PathBuf {
    data_dir(env!("CARGO_MANIFEST_DIR"), "")
}

/// A vector from header lines (`expect` first, in file order) and a body.
fn vector(header: &[(&str, String)], body: &[u8]) -> Vector {
    let (expect, rest) = header.split_first().unwrap();
    assert_eq!(expect.0, "expect");
    rest.iter()
        .fold(Vector::new(&expect.1), |v, (key, value)| {
            v.header(key, value)
        })
        .body(body.to_vec())
}

/// Every vector of the crate: generated, then compared with the stored
/// files (or written over them).
#[test]
fn golden_vectors() {
    let mut dir = GoldenDir::new(vectors_dir());
    generate_archives(&mut dir);
    generate_keystores(&mut dir);
    json_vectors::generate(&mut dir);
    peer_vectors::generate(&mut dir);
    dir.finish().unwrap();
}

fn kek(kek_id: &str) -> InMemoryKek {
    InMemoryKek::from_bytes(KekId::new(kek_id).unwrap(), &KEK_KEY)
}

fn seal_fixed(data: &LocalPartySaveData, node: &str) -> SealedArchive {
    data.seal_archive_with_salt(&id(node), SALT).unwrap()
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

fn archive_header(protocol: Protocol, party: usize, node: &str) -> Vec<(&'static str, String)> {
    vec![
        ("xi-from", fixture_name(protocol, party)),
        ("key-id", "key-1".to_owned()),
        ("node-id", node.to_owned()),
        ("version", "1".to_owned()),
    ]
}

fn generate_archives(dir: &mut GoldenDir) {
    let ecdsa = fixture("ecdsa", 0);
    let base = seal_fixed(&ecdsa, "node-0");
    let header = |expect: &str, comment: &str| {
        let mut h = archive_header(Protocol::Ecdsa, 0, "node-0");
        h.insert(0, ("expect", expect.to_owned()));
        h.push(("comment", comment.to_owned()));
        h
    };
    let mut pass = header(
        "ok",
        "ECDSA party 0, salt \"shardkeep archive golden salt 01\"",
    );
    dir.add("pass/archive_ecdsa_party0", &vector(&pass, base.as_bytes()));
    let eddsa = fixture("eddsa", 1);
    pass = archive_header(Protocol::Eddsa, 1, "node-1");
    pass.insert(0, ("expect", "ok".to_owned()));
    pass.push(("comment", "EdDSA party 1, same salt".to_owned()));
    dir.add(
        "pass/archive_eddsa_party1",
        &vector(&pass, seal_fixed(&eddsa, "node-1").as_bytes()),
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
            "former_magic",
            set(b, 0, FORMER_ARCHIVE_MAGIC),
            "archive: Framing(BadMagic)",
            "the magic of the development builds, SKARCHIV, before shkp-arc",
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
        dir.add(
            &format!("fail/archive_{name}"),
            &vector(&header(expect, comment), &payload),
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
    dir.add("fail/archive_other_node_id", &vector(&other_node, b));
    let mut other_version = header("ArchiveOpenFailed", "opened as key version 2");
    other_version
        .iter_mut()
        .find(|(k, _)| *k == "version")
        .unwrap()
        .1 = "2".to_owned();
    dir.add("fail/archive_other_key_version", &vector(&other_version, b));
    let mut other_share = header(
        "NotThisNodesShare",
        "party 1's recovered share against party 0's binding",
    );
    other_share
        .iter_mut()
        .find(|(k, _)| *k == "xi-from")
        .unwrap()
        .1 = fixture_name(Protocol::Ecdsa, 1);
    other_share.push(("binding-from", fixture_name(Protocol::Ecdsa, 0)));
    dir.add(
        "fail/archive_share_of_another_node",
        &vector(&other_share, b),
    );

    // Well-sealed archives whose plaintext is wrong.
    let xi = ecdsa.secret_share::<Secp256k1>().unwrap();
    let seal_plain =
        |plaintext: &[u8]| crate::archive::seal(&xi, &id("node-0"), SALT, plaintext).unwrap();
    let full = ecdsa.to_json();
    dir.add(
        "fail/archive_contains_xi",
        &vector(
            &header(
                "field Xi: Unknown",
                "the plaintext still holds Xi: not written by shardkeep",
            ),
            seal_plain(&full).as_bytes(),
        ),
    );
    dir.add(
        "fail/archive_plaintext_not_json",
        &vector(
            &header(
                "json: Unexpected",
                "sealed correctly, but the plaintext is not JSON",
            ),
            seal_plain(b"not json").as_bytes(),
        ),
    );
    let other_group_key = crate::test_support::edited(&ecdsa, |v| {
        use crate::test_support::{Step, at, copy};
        let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(1)]));
        *at(v, &[Step::Key("ECDSAPub")]) = other;
    })
    .unwrap();
    dir.add(
        "fail/archive_group_key_differs_from_binding",
        &vector(
            &header(
                "BindingMismatch(GroupKey)",
                "sealed with party 0's Xi but another ECDSAPub than the binding signs",
            ),
            seal_fixed(&other_group_key, "node-0").as_bytes(),
        ),
    );
}

fn keystore_header(protocol: Protocol, party: usize, node: &str) -> Vec<(&'static str, String)> {
    vec![
        ("party", fixture_name(protocol, party)),
        ("key-id", "key-1".to_owned()),
        ("node-id", node.to_owned()),
        ("version", "1".to_owned()),
        ("kek-id", "kek-1".to_owned()),
        ("kek-key", hex::encode(KEK_KEY)),
    ]
}

/// A keystore file of `data_json` under the fixed data key and nonce, the
/// data key wrapped under the next nonce of `wrap_nonces`.
fn encode_fixed(data_json: &[u8], id: &NodeVersion, wrap_nonces: &mut ChaCha20Rng) -> Vec<u8> {
    let codec = KekKeystoreCodec::new(kek("kek-1"));
    let data_key = DataKey::from_bytes(&DATA_KEY);
    let mut wrap_nonce = [0u8; 12];
    wrap_nonces.fill_bytes(&mut wrap_nonce);
    let wrapped = kek("kek-1").wrap_with_nonce(&data_key, wrap_nonce).unwrap();
    codec
        .encode_with(id, data_json, &data_key, &wrapped, NONCE)
        .unwrap()
}

fn generate_keystores(dir: &mut GoldenDir) {
    let mut wrap_nonces = ChaCha20Rng::from_seed(WRAP_NONCE_SEED);
    let ecdsa = fixture("ecdsa", 0);
    let base = encode_fixed(&ecdsa.to_json(), &id("node-0"), &mut wrap_nonces);
    let header = |expect: &str, comment: &str| {
        let mut h = keystore_header(Protocol::Ecdsa, 0, "node-0");
        h.insert(0, ("expect", expect.to_owned()));
        h.push(("comment", comment.to_owned()));
        h
    };
    dir.add(
        "pass/keystore_ecdsa_party0",
        &vector(
            &header(
                "ok",
                "ECDSA party 0; data key 0x44.., nonce 0x4e.., wrap nonce from ChaCha20Rng seed 0x57..",
            ),
            &base,
        ),
    );
    let eddsa = fixture("eddsa", 1);
    let mut pass = keystore_header(Protocol::Eddsa, 1, "node-1");
    pass.insert(0, ("expect", "ok".to_owned()));
    pass.push(("comment", "EdDSA party 1".to_owned()));
    dir.add(
        "pass/keystore_eddsa_party1",
        &vector(
            &pass,
            &encode_fixed(&eddsa.to_json(), &id("node-1"), &mut wrap_nonces),
        ),
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
            "former_magic",
            set(b, 0, FORMER_KEYSTORE_MAGIC),
            "keystore: Framing(BadMagic)",
            "the magic of the development builds, SKKEYDAT, before shkp-kst",
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
        dir.add(
            &format!("fail/keystore_{name}"),
            &vector(&header(expect, comment), &payload),
        );
    }
    let mut other_node = header("KeystoreIdMismatch", "loaded as node-7's keystore");
    other_node
        .iter_mut()
        .find(|(k, _)| *k == "node-id")
        .unwrap()
        .1 = "node-7".to_owned();
    dir.add("fail/keystore_other_node_id", &vector(&other_node, b));
    let mut other_version = header("KeystoreIdMismatch", "loaded as key version 2");
    other_version
        .iter_mut()
        .find(|(k, _)| *k == "version")
        .unwrap()
        .1 = "2".to_owned();
    dir.add(
        "fail/keystore_other_key_version",
        &vector(&other_version, b),
    );
    let mut other_kek = header("KekMismatch", "the codec holds kek-2");
    other_kek
        .iter_mut()
        .find(|(k, _)| *k == "kek-id")
        .unwrap()
        .1 = "kek-2".to_owned();
    dir.add("fail/keystore_other_kek", &vector(&other_kek, b));
    let mut wrong_key = header("Custody(UnwrapFailed)", "same KEK id, other key bytes");
    wrong_key
        .iter_mut()
        .find(|(k, _)| *k == "kek-key")
        .unwrap()
        .1 = hex::encode([0x4c; 32]);
    dir.add("fail/keystore_wrong_kek_key", &vector(&wrong_key, b));
    dir.add(
        "fail/keystore_plaintext_not_save_data",
        &vector(
            &header("UnknownProtocol", "decrypts, but the JSON is no save data"),
            &encode_fixed(b"{}", &id("node-0"), &mut wrap_nonces),
        ),
    );
}

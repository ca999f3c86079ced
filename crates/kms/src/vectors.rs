//! Golden vectors for the key-file format and the local wrapped-key format,
//! in `tests/data/{pass,fail}/`: one `.vec` file per case, the key file (or
//! wrapped key) as the body, the inputs and the expected outcome (`expect:`)
//! as headers. The format drifting fails this test.
//!
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features --
//! golden` rewrites the files (of every crate) from the fixed inputs below
//! (review the diff!).

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};
use shardkeep_types::{
    CustodyError, DataKey, FramingError, KekId, ShareSlot, SignerId, WrappedKey,
};
use zeroize::Zeroizing;

use crate::error::KeyFileError;
use crate::keyfile::{KeyFile, MAX_KEY_FILE_LEN, SlotRecord};
use crate::local::{record_aad, unwrap_with, wrap_aad, wrap_with};
use crate::slot::slot_kek_id;
use crate::slot::tests::slot;

/// A vector: `expect`, a comment, then the other headers, and the body.
fn vector(comment: &str, headers: &[(&str, String)], body: &[u8]) -> Vector {
    let (expect, rest) = headers.split_first().unwrap();
    assert_eq!(expect.0, "expect");
    rest.iter()
        .fold(
            Vector::new(&expect.1).comment(comment),
            |v, (key, value)| v.header(key, value),
        )
        .body(body.to_vec())
}

fn error_code(error: &KeyFileError) -> &'static str {
    match error {
        KeyFileError::Framing(framing) => match framing {
            FramingError::TooLarge { .. } => "framing/too-large",
            FramingError::Truncated { .. } => "framing/truncated",
            FramingError::TrailingBytes { .. } => "framing/trailing-bytes",
            FramingError::BadMagic { .. } => "framing/bad-magic",
            FramingError::UnsupportedVersion { .. } => "framing/unsupported-version",
            FramingError::LengthOutOfRange { .. } => "framing/length-out-of-range",
            _ => "framing/other",
        },
        KeyFileError::UnknownKind(_) => "unknown-kind",
        KeyFileError::WrongKind { .. } => "wrong-kind",
        KeyFileError::InvalidName(_) => "invalid-name",
        KeyFileError::ZeroShareIndex => "zero-share-index",
        KeyFileError::ChecksumMismatch => "checksum-mismatch",
    }
}

// Fixed inputs of the generated vectors.
const MASTER_SECRET: [u8; 32] = [0x11; 32];
const SLOT_KEK_SECRET: [u8; 32] = [0x22; 32];
const SEED: [u8; 32] = [0x33; 32];
const DATA_KEY: [u8; 32] = [0x44; 32];
const NONCE: [u8; 12] = [0x55; 12];

fn vector_slot() -> ShareSlot {
    slot("wallet-7", "node-a", 1, 4)
}

fn slot_record() -> SlotRecord {
    let master_id = KekId::new("master-1").unwrap();
    let slot = vector_slot();
    let id = slot_kek_id("file-slot-", &slot);
    let sealed = Aes256GcmSiv::new((&MASTER_SECRET).into())
        .encrypt(
            &Nonce::from(NONCE),
            Payload {
                msg: &SLOT_KEK_SECRET,
                aad: &record_aad(&master_id, &id, &slot),
            },
        )
        .unwrap();
    SlotRecord {
        id,
        master_id,
        slot,
        nonce: NONCE,
        sealed: sealed.try_into().unwrap(),
    }
}

fn master_file() -> KeyFile {
    KeyFile::MasterKek {
        id: KekId::new("master-1").unwrap(),
        key: Zeroizing::new(MASTER_SECRET),
    }
}

/// Rewrites the checksum so that a deliberately broken body still reaches
/// the check it is meant to fail.
fn with_checksum(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = body.to_vec();
    out.extend_from_slice(
        &Sha256::new()
            .chain_update(b"shardkeep/kms-keyfile/v1")
            .chain_update(body)
            .finalize(),
    );
    out
}

/// The magic of the development builds, before `shkp-key`.
const FORMER_MAGIC: &[u8; 8] = b"shardkey";

fn generate(dir: &mut GoldenDir) {
    let master = master_file().encode();
    dir.add(
        "pass/keyfile_master_kek",
        &vector(
            "A master KEK key file.",
            &[
                ("expect", "ok".into()),
                ("kind", "master-kek".into()),
                ("id", "master-1".into()),
                ("secret", hex::encode(MASTER_SECRET)),
            ],
            &master,
        ),
    );
    let seed = KeyFile::Ed25519Seed {
        id: SignerId::new("audit-1").unwrap(),
        seed: Zeroizing::new(SEED),
    }
    .encode();
    dir.add(
        "pass/keyfile_ed25519_seed",
        &vector(
            "An ed25519 signer key file.",
            &[
                ("expect", "ok".into()),
                ("kind", "ed25519-seed".into()),
                ("id", "audit-1".into()),
                ("secret", hex::encode(SEED)),
                (
                    "public-key",
                    hex::encode(
                        ed25519_dalek::SigningKey::from_bytes(&SEED)
                            .verifying_key()
                            .as_bytes(),
                    ),
                ),
            ],
            &seed,
        ),
    );
    let record = slot_record();
    let slot_file = KeyFile::SlotKek(record.clone()).encode();
    dir.add(
        "pass/keyfile_slot_kek",
        &vector(
            "A slot KEK record, sealed under the master KEK of keyfile_master_kek.",
            &[
                ("expect", "ok".into()),
                ("kind", "slot-kek".into()),
                ("id", record.id.to_string()),
                ("master-id", "master-1".into()),
                ("master-secret", hex::encode(MASTER_SECRET)),
                ("key-id", "wallet-7".into()),
                ("node-id", "node-a".into()),
                ("version", "1".into()),
                ("index", "4".into()),
                ("nonce", hex::encode(NONCE)),
                ("slot-kek-secret", hex::encode(SLOT_KEK_SECRET)),
            ],
            &slot_file,
        ),
    );
    let wrapped = wrap_with(
        &SLOT_KEK_SECRET,
        NONCE,
        &DataKey::from_bytes(&DATA_KEY),
        &wrap_aad(&record.id, &record.slot),
    )
    .unwrap();
    let mut wrapped_vector =
        |name: &str, comment: &str, expect: &str, index: &str, bytes: &[u8]| {
            let kind = if expect == "ok" { "pass" } else { "fail" };
            dir.add(
                &format!("{kind}/{name}"),
                &vector(
                    comment,
                    &[
                        ("expect", expect.to_owned()),
                        ("kek-id", record.id.to_string()),
                        ("slot-kek-secret", hex::encode(SLOT_KEK_SECRET)),
                        ("key-id", "wallet-7".into()),
                        ("node-id", "node-a".into()),
                        ("version", "1".into()),
                        ("index", index.to_owned()),
                        ("nonce", hex::encode(NONCE)),
                        ("data-key", hex::encode(DATA_KEY)),
                    ],
                    bytes,
                ),
            );
        };
    wrapped_vector(
        "wrapped_data_key_local",
        "A data key wrapped by the local provider under the slot KEK of keyfile_slot_kek.",
        "ok",
        "4",
        wrapped.as_bytes(),
    );
    let mut flipped_tag = wrapped.as_bytes().to_vec();
    *flipped_tag.last_mut().unwrap() ^= 1;
    wrapped_vector(
        "wrapped_data_key_tag_flipped",
        "The last tag bit flipped.",
        "unwrap-failed",
        "4",
        &flipped_tag,
    );
    let mut wrong_version = wrapped.as_bytes().to_vec();
    wrong_version[0] = 2;
    wrapped_vector(
        "wrapped_data_key_unknown_version",
        "Format byte 2 (only 1 exists).",
        "unwrap-failed",
        "4",
        &wrong_version,
    );
    wrapped_vector(
        "wrapped_data_key_other_slot",
        "Valid for share index 4, presented for share index 5 (AAD mismatch).",
        "unwrap-failed",
        "5",
        wrapped.as_bytes(),
    );
    wrapped_vector(
        "wrapped_data_key_truncated",
        "Last byte missing.",
        "unwrap-failed",
        "4",
        &wrapped.as_bytes()[..wrapped.as_bytes().len() - 1],
    );

    let body = &master[..master.len() - 32];
    let mut fail = |name: &str, comment: &str, expect: &str, file: &[u8]| {
        dir.add(
            &format!("fail/{name}"),
            &vector(comment, &[("expect", expect.into())], file),
        );
    };
    fail(
        "keyfile_empty",
        "No bytes at all.",
        "framing/truncated",
        &[],
    );
    fail(
        "keyfile_truncated_checksum",
        "The last checksum byte missing.",
        "framing/truncated",
        &master[..master.len() - 1],
    );
    fail(
        "keyfile_truncated_secret",
        "Cut inside the secret.",
        "framing/truncated",
        &master[..30],
    );
    fail(
        "keyfile_trailing_byte",
        "One byte after the checksum.",
        "framing/trailing-bytes",
        &[&master[..], &[0]].concat(),
    );
    fail(
        "keyfile_bad_magic",
        "Magic `shkp-kez`: one letter off.",
        "framing/bad-magic",
        &with_checksum(&[b"shkp-kez", &body[8..]].concat()),
    );
    fail(
        "keyfile_former_magic",
        "The magic of the development builds, `shardkey`, before `shkp-key`.",
        "framing/bad-magic",
        &with_checksum(&[FORMER_MAGIC, &body[8..]].concat()),
    );
    fail(
        "keyfile_unsupported_version",
        "Format version 2.",
        "framing/unsupported-version",
        &with_checksum(&[&body[..8], &[2], &body[9..]].concat()),
    );
    fail(
        "keyfile_unknown_kind",
        "Key kind 9.",
        "unknown-kind",
        &with_checksum(&[&body[..9], &[9], &body[10..]].concat()),
    );
    fail(
        "keyfile_checksum_mismatch",
        "One secret bit flipped, checksum unchanged.",
        "checksum-mismatch",
        &{
            let mut file = master.to_vec();
            file[30] ^= 1;
            file
        },
    );
    fail(
        "keyfile_empty_id",
        "Id of length 0.",
        "invalid-name",
        &with_checksum(&[&body[..10], &[0], &MASTER_SECRET[..]].concat()),
    );
    fail(
        "keyfile_id_with_slash",
        "Id `master/1`: `/` is outside the name alphabet.",
        "invalid-name",
        &with_checksum(&[&body[..10], &[8], b"master/1", &MASTER_SECRET[..]].concat()),
    );
    fail(
        "keyfile_id_too_long",
        "Id of 65 bytes.",
        "invalid-name",
        &with_checksum(&[&body[..10], &[65], &[b'a'; 65][..], &MASTER_SECRET[..]].concat()),
    );
    let slot_body = &slot_file[..slot_file.len() - 32];
    // The share index is the byte before the 12-byte nonce and 48-byte seal.
    let index_at = slot_body.len() - 12 - 48 - 1;
    fail(
        "keyfile_zero_share_index",
        "Slot record with share index 0.",
        "zero-share-index",
        &with_checksum(&[&slot_body[..index_at], &[0], &slot_body[index_at + 1..]].concat()),
    );
    fail(
        "keyfile_too_large",
        "One byte over the cap.",
        "framing/too-large",
        &vec![0u8; MAX_KEY_FILE_LEN + 1],
    );
}

#[test]
fn golden_vectors() {
    let dir_path = data_dir(env!("CARGO_MANIFEST_DIR"), "");
    let mut dir = GoldenDir::new(&dir_path);
    generate(&mut dir);
    dir.finish().unwrap();
    check_pass(&read_dir(&dir_path.join("pass")).unwrap());
    check_fail(&read_dir(&dir_path.join("fail")).unwrap());
}

fn slot_of(v: &Vector) -> ShareSlot {
    slot(
        v.get("key-id").unwrap(),
        v.get("node-id").unwrap(),
        v.value("version").unwrap(),
        v.value("index").unwrap(),
    )
}

fn check_pass(pass: &[Vector]) {
    assert_eq!(
        pass.len(),
        4,
        "pass vectors: {:?}",
        pass.iter().map(Vector::name).collect::<Vec<_>>()
    );
    for v in pass {
        let name = v.file();
        assert_eq!(v.expect(), "ok", "{name}");
        if v.name().starts_with("wrapped") {
            let slot = slot_of(v);
            let kek_id = KekId::new(v.get("kek-id").unwrap()).unwrap();
            assert_eq!(kek_id, slot_kek_id("file-slot-", &slot), "{name}");
            let kek: [u8; 32] = v.hex_array("slot-kek-secret").unwrap();
            let aad = wrap_aad(&kek_id, &slot);
            let data_key = DataKey::from_bytes(&v.hex_array("data-key").unwrap());
            let wrapped = WrappedKey::new(v.body_bytes().to_vec()).unwrap();
            let again = wrap_with(&kek, v.hex_array("nonce").unwrap(), &data_key, &aad).unwrap();
            assert_eq!(again, wrapped, "{name}: wrapping drifted");
            let unwrapped = unwrap_with(&kek, &wrapped, &aad).unwrap();
            assert_eq!(unwrapped.expose(), data_key.expose(), "{name}");
            continue;
        }
        let file = v.body_bytes();
        let parsed = KeyFile::parse(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.encode().as_slice(), file, "{name}: encoding drifted");
        let id = v.get("id").unwrap();
        match (v.get("kind").unwrap(), parsed) {
            ("master-kek", KeyFile::MasterKek { id: parsed_id, key }) => {
                assert_eq!(parsed_id.as_str(), id);
                assert_eq!(hex::encode(key.as_slice()), v.get("secret").unwrap());
            }
            (
                "ed25519-seed",
                KeyFile::Ed25519Seed {
                    id: parsed_id,
                    seed,
                },
            ) => {
                assert_eq!(parsed_id.as_str(), id);
                assert_eq!(hex::encode(seed.as_slice()), v.get("secret").unwrap());
                let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
                assert_eq!(hex::encode(public.as_bytes()), v.get("public-key").unwrap());
            }
            ("slot-kek", KeyFile::SlotKek(record)) => {
                assert_eq!(record.id.as_str(), id);
                assert_eq!(record.master_id.as_str(), v.get("master-id").unwrap());
                assert_eq!(record.slot, slot_of(v));
                assert_eq!(record.id, slot_kek_id("file-slot-", &record.slot));
                let master: [u8; 32] = v.hex_array("master-secret").unwrap();
                let opened = Aes256GcmSiv::new((&master).into())
                    .decrypt(
                        &Nonce::from(record.nonce),
                        Payload {
                            msg: &record.sealed,
                            aad: &record_aad(&record.master_id, &record.id, &record.slot),
                        },
                    )
                    .unwrap();
                assert_eq!(hex::encode(opened), v.get("slot-kek-secret").unwrap());
            }
            (kind, parsed) => panic!("{name}: expected {kind}, parsed {parsed:?}"),
        }
    }
}

fn check_fail(fail: &[Vector]) {
    assert_eq!(
        fail.len(),
        18,
        "fail vectors: {:?}",
        fail.iter().map(Vector::name).collect::<Vec<_>>()
    );
    for v in fail {
        let name = v.file();
        if v.name().starts_with("wrapped") {
            assert_eq!(v.expect(), "unwrap-failed", "{name}");
            let slot = slot_of(v);
            let kek_id = KekId::new(v.get("kek-id").unwrap()).unwrap();
            let kek: [u8; 32] = v.hex_array("slot-kek-secret").unwrap();
            let wrapped = WrappedKey::new(v.body_bytes().to_vec()).unwrap();
            assert_eq!(
                unwrap_with(&kek, &wrapped, &wrap_aad(&kek_id, &slot)).unwrap_err(),
                CustodyError::UnwrapFailed,
                "{name}"
            );
            continue;
        }
        let error = KeyFile::parse(v.body_bytes())
            .err()
            .unwrap_or_else(|| panic!("{name}: parsed"));
        assert_eq!(error_code(&error), v.expect(), "{name}: {error}");
    }
}

//! Golden vectors for the key-file format and the local wrapped-key format,
//! in `test-vectors/kms/{pass,fail}/`: one text file per case, `key: value`
//! lines, the expected outcome stored as `expect:`. The format drifting
//! fails these tests.
//!
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test -p shardkeep-kms vectors`
//! rewrites the files from the fixed inputs below (review the diff!).

use std::collections::BTreeMap;
use std::path::PathBuf;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use shardkeep_types::{
    CustodyError, DataKey, FramingError, KekId, ShareSlot, SignerId, WrappedKey,
};
use zeroize::Zeroizing;

use crate::error::KeyFileError;
use crate::keyfile::{KeyFile, MAX_KEY_FILE_LEN, SlotRecord};
use crate::local::{record_aad, unwrap_with, wrap_aad, wrap_with};
use crate::slot::slot_kek_id;
use crate::slot::tests::slot;

type Fields = BTreeMap<String, String>;

fn dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-vectors/kms")
        .join(kind)
}

fn regenerate() -> bool {
    std::env::var_os("SHARDKEEP_REGENERATE_VECTORS").is_some()
}

fn parse_vector(text: &str) -> Fields {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.split_once(": ").expect("`key: value` line");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn write_vector(kind: &str, name: &str, comment: &str, fields: &[(&str, String)]) {
    let mut text = format!("# {comment}\n");
    for (key, value) in fields {
        text.push_str(&format!("{key}: {value}\n"));
    }
    std::fs::create_dir_all(dir(kind)).unwrap();
    std::fs::write(dir(kind).join(format!("{name}.txt")), text).unwrap();
}

fn vectors(kind: &str) -> Vec<(String, Fields)> {
    let mut out: Vec<_> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, parse_vector(&std::fs::read_to_string(&path).unwrap()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
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

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

fn array<const N: usize>(hex_text: &str) -> [u8; N] {
    bytes(hex_text).try_into().unwrap()
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

fn generate() {
    let master = master_file().encode();
    write_vector(
        "pass",
        "keyfile_master_kek",
        "A master KEK key file.",
        &[
            ("expect", "ok".into()),
            ("kind", "master-kek".into()),
            ("id", "master-1".into()),
            ("secret", hex::encode(MASTER_SECRET)),
            ("file", hex::encode(&master)),
        ],
    );
    let seed = KeyFile::Ed25519Seed {
        id: SignerId::new("audit-1").unwrap(),
        seed: Zeroizing::new(SEED),
    }
    .encode();
    write_vector(
        "pass",
        "keyfile_ed25519_seed",
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
            ("file", hex::encode(&seed)),
        ],
    );
    let record = slot_record();
    let slot_file = KeyFile::SlotKek(record.clone()).encode();
    write_vector(
        "pass",
        "keyfile_slot_kek",
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
            ("file", hex::encode(&slot_file)),
        ],
    );
    let wrapped = wrap_with(
        &SLOT_KEK_SECRET,
        NONCE,
        &DataKey::from_bytes(&DATA_KEY),
        &wrap_aad(&record.id, &record.slot),
    )
    .unwrap();
    let wrapped_fields = |expect: &str, index: &str, wrapped: &[u8]| {
        vec![
            ("expect", expect.to_owned()),
            ("kek-id", record.id.to_string()),
            ("slot-kek-secret", hex::encode(SLOT_KEK_SECRET)),
            ("key-id", "wallet-7".into()),
            ("node-id", "node-a".into()),
            ("version", "1".into()),
            ("index", index.to_owned()),
            ("nonce", hex::encode(NONCE)),
            ("data-key", hex::encode(DATA_KEY)),
            ("wrapped", hex::encode(wrapped)),
        ]
    };
    write_vector(
        "pass",
        "wrapped_data_key_local",
        "A data key wrapped by the local provider under the slot KEK of keyfile_slot_kek.",
        &wrapped_fields("ok", "4", wrapped.as_bytes()),
    );
    let mut flipped_tag = wrapped.as_bytes().to_vec();
    *flipped_tag.last_mut().unwrap() ^= 1;
    write_vector(
        "fail",
        "wrapped_data_key_tag_flipped",
        "The last tag bit flipped.",
        &wrapped_fields("unwrap-failed", "4", &flipped_tag),
    );
    let mut wrong_version = wrapped.as_bytes().to_vec();
    wrong_version[0] = 2;
    write_vector(
        "fail",
        "wrapped_data_key_unknown_version",
        "Format byte 2 (only 1 exists).",
        &wrapped_fields("unwrap-failed", "4", &wrong_version),
    );
    write_vector(
        "fail",
        "wrapped_data_key_other_slot",
        "Valid for share index 4, presented for share index 5 (AAD mismatch).",
        &wrapped_fields("unwrap-failed", "5", wrapped.as_bytes()),
    );
    write_vector(
        "fail",
        "wrapped_data_key_truncated",
        "Last byte missing.",
        &wrapped_fields(
            "unwrap-failed",
            "4",
            &wrapped.as_bytes()[..wrapped.as_bytes().len() - 1],
        ),
    );

    let body = &master[..master.len() - 32];
    let fail = |name: &str, comment: &str, expect: &str, file: &[u8]| {
        write_vector(
            "fail",
            name,
            comment,
            &[("expect", expect.into()), ("file", hex::encode(file))],
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
        "Magic `shardkay`.",
        "framing/bad-magic",
        &with_checksum(&[b"shardkay", &body[8..]].concat()),
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
    if regenerate() {
        generate();
    }
    check_pass();
    check_fail();
}

fn slot_of(fields: &Fields) -> ShareSlot {
    slot(
        &fields["key-id"],
        &fields["node-id"],
        fields["version"].parse().unwrap(),
        fields["index"].parse().unwrap(),
    )
}

fn check_pass() {
    let pass = vectors("pass");
    assert_eq!(
        pass.len(),
        4,
        "pass vectors: {:?}",
        pass.iter().map(|v| &v.0).collect::<Vec<_>>()
    );
    for (name, fields) in pass {
        assert_eq!(fields["expect"], "ok", "{name}");
        if name.starts_with("wrapped") {
            let slot = slot_of(&fields);
            let kek_id = KekId::new(fields["kek-id"].clone()).unwrap();
            assert_eq!(kek_id, slot_kek_id("file-slot-", &slot), "{name}");
            let kek: [u8; 32] = array(&fields["slot-kek-secret"]);
            let aad = wrap_aad(&kek_id, &slot);
            let data_key = DataKey::from_bytes(&array(&fields["data-key"]));
            let wrapped = WrappedKey::new(bytes(&fields["wrapped"])).unwrap();
            let again = wrap_with(&kek, array(&fields["nonce"]), &data_key, &aad).unwrap();
            assert_eq!(again, wrapped, "{name}: wrapping drifted");
            let unwrapped = unwrap_with(&kek, &wrapped, &aad).unwrap();
            assert_eq!(unwrapped.expose(), data_key.expose(), "{name}");
            continue;
        }
        let file = bytes(&fields["file"]);
        let parsed = KeyFile::parse(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            parsed.encode().as_slice(),
            &file[..],
            "{name}: encoding drifted"
        );
        match (&fields["kind"][..], parsed) {
            ("master-kek", KeyFile::MasterKek { id, key }) => {
                assert_eq!(id.as_str(), fields["id"]);
                assert_eq!(hex::encode(key.as_slice()), fields["secret"]);
            }
            ("ed25519-seed", KeyFile::Ed25519Seed { id, seed }) => {
                assert_eq!(id.as_str(), fields["id"]);
                assert_eq!(hex::encode(seed.as_slice()), fields["secret"]);
                let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
                assert_eq!(hex::encode(public.as_bytes()), fields["public-key"]);
            }
            ("slot-kek", KeyFile::SlotKek(record)) => {
                assert_eq!(record.id.as_str(), fields["id"]);
                assert_eq!(record.master_id.as_str(), fields["master-id"]);
                assert_eq!(record.slot, slot_of(&fields));
                assert_eq!(record.id, slot_kek_id("file-slot-", &record.slot));
                let master: [u8; 32] = array(&fields["master-secret"]);
                let opened = Aes256GcmSiv::new((&master).into())
                    .decrypt(
                        &Nonce::from(record.nonce),
                        Payload {
                            msg: &record.sealed,
                            aad: &record_aad(&record.master_id, &record.id, &record.slot),
                        },
                    )
                    .unwrap();
                assert_eq!(hex::encode(opened), fields["slot-kek-secret"]);
            }
            (kind, parsed) => panic!("{name}: expected {kind}, parsed {parsed:?}"),
        }
    }
}

fn check_fail() {
    let fail = vectors("fail");
    assert_eq!(
        fail.len(),
        17,
        "fail vectors: {:?}",
        fail.iter().map(|v| &v.0).collect::<Vec<_>>()
    );
    for (name, fields) in fail {
        if name.starts_with("wrapped") {
            assert_eq!(fields["expect"], "unwrap-failed", "{name}");
            let slot = slot_of(&fields);
            let kek_id = KekId::new(fields["kek-id"].clone()).unwrap();
            let kek: [u8; 32] = array(&fields["slot-kek-secret"]);
            let wrapped = WrappedKey::new(bytes(&fields["wrapped"])).unwrap();
            assert_eq!(
                unwrap_with(&kek, &wrapped, &wrap_aad(&kek_id, &slot)).unwrap_err(),
                CustodyError::UnwrapFailed,
                "{name}"
            );
            continue;
        }
        let error = KeyFile::parse(&bytes(&fields["file"]))
            .err()
            .unwrap_or_else(|| panic!("{name}: parsed"));
        assert_eq!(error_code(&error), fields["expect"], "{name}: {error}");
    }
}

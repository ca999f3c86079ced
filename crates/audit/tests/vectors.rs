//! Golden vectors in `tests/data/{pass,fail}/`: one `.vec` file per case,
//! named for what it shows, with its expected outcome (`expect`: `ok` or the
//! error's message). The body is the bytes under test: a record
//! (`record_*`), a witness file (`witness_*`), an export (`export_*`,
//! and `chain_*`, whose `witness` headers are the witness lines, one per
//! line, with the checkpoint `key` and, passing, the verified `head`), or
//! a signed review of a range (`review_*`, with the reviewer's `key`). A
//! format change that moves a byte fails here.
//!
//! Regenerate every vector of the workspace after a deliberate format
//! change (then bump the format version):
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::{
    AuditLogId, AuditRecord, AuditReview, Checkpoint, EXPORT_MAGIC, Error, EventType, Outcome,
    ReviewedRange, encode_export, parse_export, parse_witness, verify,
};
use shardkeep_storage::{AuditHead, AuditRow};
use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};
use shardkeep_types::{
    ActorId, FreeText, InMemorySigner, KeyId, KeyVersion, NodeId, Signer, SignerId, Timestamp,
};
use shardkeep_types::{ShareIndex, Threshold};

mod common;
use common::{chain_from, head_at};

fn dir() -> PathBuf {
    data_dir(env!("CARGO_MANIFEST_DIR"), "")
}

/// Where the rows of an export start: magic, version, log id.
const FIRST_ROW: usize = 8 + 1 + 16;

fn full_record() -> AuditRecord {
    let mut record = AuditRecord::new(
        EventType::Recover,
        Timestamp::from_unix_millis(1_790_000_000_000).unwrap(),
        ActorId::new("ops.alice").unwrap(),
    );
    record.approvers = ["biz.dave", "sec.bob"]
        .into_iter()
        .map(|a| ActorId::new(a).unwrap())
        .collect();
    record.key_id = Some(KeyId::new("wallet-1").unwrap());
    record.node_id = Some(NodeId::new("node-a").unwrap());
    record.version = Some(KeyVersion::new(2));
    record.share_index = ShareIndex::new(3);
    record.envelope_id = Some([0xe1; 32]);
    record.signature = Some([0x5e; 64]);
    record.target = Some(FreeText::new("custodian escrow-co").unwrap());
    record.threshold = Some(Threshold::new(3, 5).unwrap());
    record.outcome = Outcome::Failure {
        reason: FreeText::new("share 4 failed its Feldman check").unwrap(),
    };
    record.detail = Some(FreeText::new("ticket INC-1234; sources 1,3,5").unwrap());
    record
}

fn minimal_record() -> AuditRecord {
    AuditRecord::new(
        EventType::Inspect,
        Timestamp::EPOCH,
        ActorId::new("a").unwrap(),
    )
}

/// The log of the chain vectors.
const LOG: AuditLogId = AuditLogId(*b"shardkeep-vector");

/// A witness line of the retired format v1 (no log id), as version 1 of
/// this crate wrote it for the chain vector's checkpoint at 2.
const V1_LINE: &str = "shardkeep-checkpoint-v1 2 \
    a59cd8d52f727e841207ce3615b5bbc9ee94e864902d25fd1ececc89c55a0c19 1790000100000 \
    audit-checkpoints 66497655f0f005289defb93ba372b97434cb5837329d692ca0aa42cc439e7d87\
    eb543e316d5f188f4fe3175a6c62a5e956ba1a73a9221bdfece735b9f7f88c07";

fn signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[0x42; 32])
}

fn chain(records: &[AuditRecord]) -> Vec<AuditRow> {
    let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
    chain_from(AuditHead::GENESIS, &encoded)
}

fn chain_records() -> Vec<AuditRecord> {
    let mut second = minimal_record();
    second.event = EventType::Generate;
    second.timestamp = Timestamp::from_unix_millis(1_790_000_000_001).unwrap();
    vec![minimal_record(), second, full_record()]
}

fn witness_text(log: AuditLogId, rows: &[AuditRow], at: &[u64]) -> String {
    at.iter()
        .map(|sequence| {
            Checkpoint::sign(
                log,
                &head_at(rows, *sequence),
                Timestamp::from_unix_millis(1_790_000_100_000).unwrap(),
                &signer(),
            )
            .unwrap()
            .to_line()
                + "\n"
        })
        .collect()
}

/// A chain vector: the export as the body, the witness lines as headers.
fn chain_vector(expect: &str, comment: &str, key: &str, witness: &str, export: Vec<u8>) -> Vector {
    witness
        .lines()
        .fold(
            Vector::new(expect).comment(comment).header("key", key),
            |v, line| v.header("witness", line),
        )
        .body(export)
}

/// Every vector this file knows how to build, by path below `tests/data`.
#[allow(clippy::too_many_lines)] // One entry per case.
fn vectors() -> Vec<(String, Vector)> {
    let mut out = Vec::new();
    let record = |name: &str, comment: &str, record: &AuditRecord| {
        let bytes = record.encode().unwrap();
        (
            format!("pass/{name}"),
            Vector::new("ok")
                .comment(comment)
                .header("debug", format!("{record:?}"))
                .body(bytes),
        )
    };
    out.push(record(
        "record_every_field",
        "A recover event with every field set.",
        &full_record(),
    ));
    out.push(record(
        "record_minimal",
        "An inspect event with no optional field.",
        &minimal_record(),
    ));

    let full = full_record().encode().unwrap();
    let minimal = minimal_record().encode().unwrap();
    let edit = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = minimal.clone();
        edit(&mut bytes);
        bytes
    };
    // Offsets in the minimal record: 0 version, 1 event, 2..10 timestamp,
    // 10 operator length, 11 operator, 12 approver count, 13.. six
    // absent-flags (key, node, version, index, envelope id, signature),
    // 19 target flag, 20 threshold flag, 21 outcome, 22 detail flag.
    let failures: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "record_truncated",
            "The last byte is missing.",
            full[..full.len() - 1].to_vec(),
            "truncated input: detail needs 1 more bytes".into(),
        ),
        (
            "record_trailing_byte",
            "One byte after the last field.",
            edit(&|b| b.push(0)),
            "1 trailing bytes after the record".into(),
        ),
        (
            "record_unknown_version",
            "Format version 2 does not exist yet.",
            edit(&|b| b[0] = 2),
            "unsupported audit record format version 2".into(),
        ),
        (
            "record_unknown_event",
            "Event code 200 is not assigned.",
            edit(&|b| b[1] = 200),
            "unknown event type 200".into(),
        ),
        (
            "record_zero_event",
            "Event code 0 is never assigned.",
            edit(&|b| b[1] = 0),
            "unknown event type 0".into(),
        ),
        (
            "record_timestamp_out_of_range",
            "A timestamp above i64::MAX ms.",
            edit(&|b| b[2] = 0x80),
            "timestamp out of range".into(),
        ),
        (
            "record_bad_presence_flag",
            "A presence flag of 2.",
            edit(&|b| b[13] = 2),
            "flag byte 2 is neither 0 nor 1".into(),
        ),
        (
            "record_bad_outcome",
            "An outcome byte of 2.",
            edit(&|b| b[21] = 2),
            "flag byte 2 is neither 0 nor 1".into(),
        ),
        (
            "record_empty_operator",
            "An operator of zero bytes.",
            edit(&|b| {
                b[10] = 0;
                b.remove(11);
            }),
            "invalid operator".into(),
        ),
        (
            "record_operator_bad_byte",
            "An operator with a slash.",
            edit(&|b| b[11] = b'/'),
            "invalid operator".into(),
        ),
        (
            "record_too_many_approvers",
            "An approver count of 17.",
            edit(&|b| b[12] = 17),
            "too many approvers".into(),
        ),
        (
            "record_unordered_approvers",
            "Approvers b, a: not strictly increasing.",
            edit(&|b| {
                b[12] = 2;
                b.splice(13..13, [1, b'b', 1, b'a']);
            }),
            "approvers are not strictly increasing".into(),
        ),
        (
            "record_duplicate_approvers",
            "Approver a twice.",
            edit(&|b| {
                b[12] = 2;
                b.splice(13..13, [1, b'a', 1, b'a']);
            }),
            "approvers are not strictly increasing".into(),
        ),
        (
            "record_zero_share_index",
            "Share index 0.",
            edit(&|b| {
                b[16] = 1;
                b.insert(17, 0);
            }),
            "share index 0".into(),
        ),
        (
            "record_invalid_threshold",
            "Threshold 1-of-5.",
            edit(&|b| {
                b[20] = 1;
                b.insert(21, 5);
                b.insert(21, 1);
            }),
            "invalid threshold".into(),
        ),
        (
            "record_empty_detail",
            "A present detail of zero bytes.",
            edit(&|b| {
                b[22] = 1;
                b.extend_from_slice(&[0, 0]);
            }),
            "invalid detail".into(),
        ),
        (
            "record_control_character",
            "A detail holding an escape character.",
            edit(&|b| {
                b[22] = 1;
                b.extend_from_slice(&[0, 1, 0x1b]);
            }),
            "invalid detail".into(),
        ),
        (
            "record_invalid_utf8",
            "A detail that is not UTF-8.",
            edit(&|b| {
                b[22] = 1;
                b.extend_from_slice(&[0, 1, 0xff]);
            }),
            "invalid detail".into(),
        ),
        (
            "record_overlong_target",
            "A target of 257 bytes.",
            edit(&|b| {
                b[19] = 1;
                let tail = b.split_off(20);
                b.extend_from_slice(&257u16.to_be_bytes());
                b.extend(std::iter::repeat_n(b'x', 257));
                b.extend(tail);
            }),
            "invalid target".into(),
        ),
    ];
    for (name, comment, bytes, expect) in failures {
        out.push((
            format!("fail/{name}"),
            Vector::new(expect).comment(comment).body(bytes),
        ));
    }

    // A three-record chain with a checkpoint at 2 and 3.
    let rows = chain(&chain_records());
    let key = hex::encode(signer().verifying_key().to_bytes());
    let witness = witness_text(LOG, &rows, &[2, 3]);
    out.push((
        "pass/chain_three_records".into(),
        chain_vector(
            "ok",
            "Three records and a witness with checkpoints at 2 and 3: verifies to this head.",
            &key,
            &witness,
            encode_export(&LOG, &rows),
        )
        .hex("head", rows[2].hash),
    ));
    let mut tampered: Vec<(&str, &str, Vec<AuditRow>, String)> = Vec::new();
    let mut changed = rows.clone();
    changed[1].record[2] ^= 1;
    tampered.push((
        "chain_changed_record",
        "Record 2's timestamp was edited.",
        changed,
        "record 2 (row 1) was changed".into(),
    ));
    let mut removed = rows.clone();
    removed.remove(0);
    tampered.push((
        "chain_removed_record",
        "Record 1 was deleted.",
        removed,
        "record 1 was removed (found 2 at row 0)".into(),
    ));
    let mut swapped = rows.clone();
    swapped.swap(0, 1);
    tampered.push((
        "chain_reordered_records",
        "Records 1 and 2 were swapped.",
        swapped,
        "record 1 is out of order (found 2 at row 0)".into(),
    ));
    let mut inserted = rows.clone();
    inserted.insert(3, rows[0].clone());
    tampered.push((
        "chain_inserted_record",
        "A copy of record 1 was appended.",
        inserted,
        "row 3 (sequence 1) was inserted".into(),
    ));
    tampered.push((
        "chain_truncated",
        "Record 3 was cut off behind the checkpoint at 3.",
        rows[..2].to_vec(),
        "log truncated: it ends at 2, the witness saw 3".into(),
    ));
    let mut rewritten_records = chain_records();
    rewritten_records[0].operator = ActorId::new("b").unwrap();
    tampered.push((
        "chain_rewritten",
        "Record 1 changed and every hash recomputed.",
        chain(&rewritten_records),
        "records up to 2 were rewritten".into(),
    ));
    for (name, comment, rows, expect) in tampered {
        out.push((
            format!("fail/{name}"),
            chain_vector(
                &format!("audit log does not verify: {expect}"),
                comment,
                &key,
                &witness,
                encode_export(&LOG, &rows),
            ),
        ));
    }
    // The log untouched, but its anchor missing, forked or another log's.
    let other_log = AuditLogId(*b"another-log-0001");
    let forked = {
        let mut rewritten_records = chain_records();
        rewritten_records[2] = minimal_record();
        witness.clone() + &witness_text(LOG, &chain(&rewritten_records), &[3])
    };
    let witness_failures: Vec<(&str, &str, String, String)> = vec![
        (
            "chain_no_witness",
            "The log as it is, but no witnessed checkpoint: nothing anchors it.",
            String::new(),
            "no witnessed checkpoint: the log is not anchored".into(),
        ),
        (
            "chain_witness_of_another_log",
            "A witness of another log, signed by the same key, with heads that lie on this chain.",
            witness_text(other_log, &rows, &[2, 3]),
            format!(
                "witness line 1 is a checkpoint of log {other_log}, not of the exported log {LOG}"
            ),
        ),
        (
            "chain_witness_fork",
            "The witness holds two heads at 3: record 3 was rewritten after a checkpoint.",
            forked,
            "witness line 3 names another head at sequence 3: the log forked".into(),
        ),
    ];
    for (name, comment, witness, expect) in witness_failures {
        out.push((
            format!("fail/{name}"),
            chain_vector(
                &format!("audit log does not verify: {expect}"),
                comment,
                &key,
                &witness,
                encode_export(&LOG, &rows),
            ),
        ));
    }

    let line = witness.lines().next().unwrap().to_owned();
    let head_hash = line.split(' ').nth(3).unwrap();
    let witness_failures: Vec<(&str, &str, String, &str)> = vec![
        (
            "witness_incomplete_line",
            "The last line lacks its newline.",
            line.clone(),
            "witness line 1: incomplete last line",
        ),
        (
            "witness_leading_zero",
            "A sequence with a leading zero.",
            line.replacen(" 2 ", " 02 ", 1) + "\n",
            "witness line 1: non-canonical sequence",
        ),
        (
            "witness_uppercase_hex",
            "A head hash in uppercase hex.",
            line.replacen(head_hash, &head_hash.to_uppercase(), 1) + "\n",
            "witness line 1: non-canonical head hash",
        ),
        (
            "witness_short_log_id",
            "A log id of 15 bytes.",
            line.replacen(&LOG.to_string(), &LOG.to_string()[2..], 1) + "\n",
            "witness line 1: non-canonical log id",
        ),
        (
            "witness_double_space",
            "Two spaces between fields.",
            line.replacen(" 2 ", "  2 ", 1) + "\n",
            "witness line 1: expected 7 space-separated fields",
        ),
        (
            "witness_unknown_format",
            "A v3 line.",
            line.replacen("v2", "v3", 1) + "\n",
            "witness line 1: not a shardkeep checkpoint line: wrong magic bytes",
        ),
        (
            "witness_v1_line",
            "A line of the retired format v1, which names no log (the chain vector's checkpoint at 2 as version 1 wrote it).",
            V1_LINE.to_owned() + "\n",
            "witness line 1: a shardkeep-checkpoint-v1 line names no log and is refused; checkpoint again",
        ),
    ];
    for (name, comment, text, expect) in witness_failures {
        out.push((
            format!("fail/{name}"),
            Vector::new(expect).comment(comment).body(text),
        ));
    }
    let export = encode_export(&LOG, &rows);
    let with_header = |header: &[u8], from: usize| [header, &export[from..]].concat();
    let export_failures: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "export_bad_header",
            "Not an export: a text first line of an unknown version, as the development builds wrote.",
            b"shardkeep/audit-export/v3\n".to_vec(),
            "audit export, byte 0: not a shardkeep audit export: wrong magic bytes",
        ),
        (
            "export_bad_magic",
            "The magic with its last letter changed.",
            with_header(b"shkp-aey", EXPORT_MAGIC.len()),
            "audit export, byte 0: not a shardkeep audit export: wrong magic bytes",
        ),
        (
            "export_unsupported_version",
            "Format version 3 does not exist yet.",
            with_header(b"shkp-aex\x03", 9),
            "audit export, byte 0: unsupported audit export format version 3",
        ),
        (
            "export_former_text_v2",
            "An export of the development builds' v2: the text line shardkeep/audit-export/v2 instead of the magic, then the log id and rows.",
            with_header(b"shardkeep/audit-export/v2\n", 9),
            "audit export, byte 0: not a shardkeep audit export: wrong magic bytes",
        ),
        (
            "export_v1",
            "An export of the retired format v1, which names no log.",
            with_header(b"shardkeep/audit-export/v1\n", FIRST_ROW),
            "audit export, byte 0: an audit export of format v1, which names no log; export it again",
        ),
        (
            "export_truncated_header",
            "Cut inside the log id.",
            export[..12].to_vec(),
            "audit export, byte 9: truncated input: log id needs 13 more bytes",
        ),
        (
            "export_truncated_row",
            "The last row is cut short.",
            export[..export.len() - 3].to_vec(),
            "truncated input: record needs 3 more bytes",
        ),
        (
            "export_zero_length_record",
            "A row with an empty record.",
            {
                let mut e = encode_export(&LOG, &rows[..1]);
                let at = FIRST_ROW + 72;
                e[at..at + 4].copy_from_slice(&0u32.to_be_bytes());
                e.truncate(at + 4);
                e
            },
            "audit export, byte 25: record has length 0, outside 1..=65536",
        ),
    ];
    for (name, comment, bytes, expect) in export_failures {
        out.push((
            format!("fail/{name}"),
            Vector::new(expect).comment(comment).body(bytes),
        ));
    }
    out.extend(review_vectors(&rows));
    out
}

/// The reviewer of the review vectors.
fn reviewer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("reviewer").unwrap(), &[0x43; 32])
}

/// A review of records 2..=3 of the chain vector, and its failures. Offsets
/// in a review: 0 magic, 8 version, 9 log id, 25 first, 33 last, 41 head
/// hash, 73 reviewer length, then the reviewer, findings, time, signature.
fn review_vectors(rows: &[AuditRow]) -> Vec<(String, Vector)> {
    let review = AuditReview::sign(
        ReviewedRange {
            log_id: LOG,
            first: 2,
            last: 3,
            head_hash: rows[2].hash,
        },
        ActorId::new("comp.carol").unwrap(),
        FreeText::new("records 2 and 3 reviewed; no findings").unwrap(),
        Timestamp::from_unix_millis(1_790_000_200_000).unwrap(),
        &reviewer(),
    )
    .unwrap();
    let key = hex::encode(reviewer().verifying_key().to_bytes());
    let bytes = review.encode();
    let edit = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut edited = bytes.clone();
        edit(&mut edited);
        edited
    };
    let mut out = vec![(
        "pass/review_of_two_records".to_owned(),
        Vector::new("ok")
            .comment("A compliance reviewer's signed review of records 2..=3 of the chain vector.")
            .header("key", key.clone())
            .header("debug", format!("{review:?}"))
            .body(bytes.clone()),
    )];
    let failures: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "review_trailing_byte",
            "One byte after the signature.",
            edit(&|b| b.push(0)),
            "1 trailing bytes after the audit review",
        ),
        (
            "review_unknown_version",
            "Format version 2 does not exist yet.",
            edit(&|b| b[8] = 2),
            "unsupported audit review format version 2",
        ),
        (
            "review_range_backwards",
            "First sequence 4 after last sequence 3.",
            edit(&|b| b[25..33].copy_from_slice(&4u64.to_be_bytes())),
            "invalid reviewed range: it must satisfy 1 <= first <= last",
        ),
        (
            "review_range_from_zero",
            "First sequence 0: the genesis is no record.",
            edit(&|b| b[25..33].copy_from_slice(&0u64.to_be_bytes())),
            "invalid reviewed range: it must satisfy 1 <= first <= last",
        ),
        (
            "review_empty_findings",
            "Findings of zero bytes.",
            edit(&|b| {
                let at = 74 + usize::from(b[73]);
                let len = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
                b.drain(at + 2..at + 2 + len);
                b[at..at + 2].copy_from_slice(&0u16.to_be_bytes());
            }),
            "invalid findings",
        ),
        (
            "review_forged_head",
            "The head hash changed after signing: the signature no longer verifies.",
            edit(&|b| b[41] ^= 1),
            "signature does not verify",
        ),
    ];
    for (name, comment, body, expect) in failures {
        out.push((
            format!("fail/{name}"),
            Vector::new(expect)
                .comment(comment)
                .header("key", key.clone())
                .body(body),
        ));
    }
    out
}

/// Runs one vector; returns the outcome to compare with `expect`.
fn outcome(vector: &Vector) -> String {
    let name = vector.name();
    let body = vector.body_bytes();
    if name.starts_with("record_") {
        return match AuditRecord::decode(body) {
            Ok(record) => {
                assert_eq!(
                    format!("{record:?}"),
                    vector.get("debug").unwrap(),
                    "{name}: decoded fields"
                );
                assert_eq!(record.encode().unwrap(), body, "{name}: re-encoding");
                "ok".into()
            }
            Err(error) => error.to_string(),
        };
    }
    if name.starts_with("review_") {
        let key = VerifyingKey::from_bytes(&vector.hex_array("key").unwrap()).unwrap();
        return match AuditReview::decode(body) {
            Ok(review) if review.verifies(&key) => {
                if let Ok(debug) = vector.get("debug") {
                    assert_eq!(format!("{review:?}"), debug, "{name}: decoded fields");
                }
                assert_eq!(review.encode(), body, "{name}: re-encoding");
                "ok".into()
            }
            Ok(_) => "signature does not verify".into(),
            Err(error) => error.to_string(),
        };
    }
    if name.starts_with("witness_") {
        return match parse_witness(body) {
            Ok(_) => "ok".into(),
            Err(error) => error.to_string(),
        };
    }
    if name.starts_with("export_") {
        return match parse_export(body) {
            Ok(_) => "ok".into(),
            Err(Error::Export { error, offset }) if name == "export_truncated_row" => {
                assert_eq!(offset, FIRST_ROW + 2 * (72 + 4) + rows_len(2));
                error.to_string()
            }
            Err(error) => error.to_string(),
        };
    }
    let key = VerifyingKey::from_bytes(&vector.hex_array("key").unwrap()).unwrap();
    let export = parse_export(body).unwrap();
    let witness_file: String = vector
        .all("witness")
        .map(|line| format!("{line}\n"))
        .collect();
    let witness = parse_witness(witness_file.as_bytes()).unwrap();
    match verify(&export, &witness, &key) {
        Ok(verified) => {
            assert_eq!(
                hex::encode(verified.head.hash),
                vector.get("head").unwrap(),
                "{name}: head"
            );
            "ok".into()
        }
        Err(error) => error.to_string(),
    }
}

/// Bytes of the first `n` records of the chain vector.
fn rows_len(n: usize) -> usize {
    chain(&chain_records())[..n]
        .iter()
        .map(|row| row.record.len())
        .sum()
}

#[test]
fn golden_vectors() {
    let built = vectors();
    let mut golden = GoldenDir::new(dir());
    for (path, vector) in &built {
        golden.add(path, vector);
    }
    golden.finish().unwrap();
    let mut checked = 0;
    for sub in ["pass", "fail"] {
        for vector in read_dir(&dir().join(sub)).unwrap() {
            let found = outcome(&vector);
            assert_eq!(found, vector.expect(), "{}", vector.file());
            if sub == "pass" {
                assert_eq!(found, "ok");
            } else {
                assert_ne!(found, "ok", "{} must fail", vector.file());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, built.len());
}

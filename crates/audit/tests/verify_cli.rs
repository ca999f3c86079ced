//! The `shardkeep-audit-verify` binary: exit 0 for a log that verifies, 1
//! with the finding for a tampered one, 2 for unusable input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::process::Command;

use shardkeep_audit::{Checkpoint, EventType, encode_export};
use shardkeep_envelope::{InMemorySigner, Signer, SignerId, Timestamp};
use shardkeep_storage::AuditHead;

mod common;
use common::{chain_from, head_at, minimal_records};

fn run(export: &[u8], witness: &str, key: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("audit.export");
    let witness_path = dir.path().join("witness");
    std::fs::write(&export_path, export).unwrap();
    std::fs::write(&witness_path, witness).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shardkeep-audit-verify"))
        .arg(&export_path)
        .arg(&witness_path)
        .arg(key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

#[test]
fn verifies_reports_and_refuses() {
    let signer = InMemorySigner::from_seed(SignerId::new("audit").unwrap(), &[8; 32]);
    let key = hex::encode(signer.verifying_key().to_bytes());
    let rows = chain_from(AuditHead::GENESIS, &minimal_records(EventType::Confirm, 5));
    let witness = Checkpoint::sign(&head_at(&rows, 5), Timestamp::EPOCH, &signer)
        .unwrap()
        .to_line()
        + "\n";

    let (code, text) = run(&encode_export(&rows), &witness, &key);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("ok: 5 records"), "{text}");

    let (code, text) = run(&encode_export(&rows[..4]), &witness, &key);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("TAMPERED: log truncated: it ends at 4, the witness saw 5"),
        "{text}"
    );

    let mut changed = rows.clone();
    changed[2].record[3] ^= 1;
    let (code, text) = run(&encode_export(&changed), &witness, &key);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("record 3 (row 2) was changed"), "{text}");

    let other = hex::encode(
        InMemorySigner::from_seed(SignerId::new("x").unwrap(), &[1; 32])
            .verifying_key()
            .to_bytes(),
    );
    let (code, text) = run(&encode_export(&rows), &witness, &other);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature does not verify"), "{text}");

    let (code, text) = run(b"not an export", &witness, &key);
    assert_eq!(code, 2, "{text}");
    let (code, text) = run(&encode_export(&rows), "torn line", &key);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("incomplete last line"), "{text}");
    let (code, _) = run(&encode_export(&rows), &witness, "abc");
    assert_eq!(code, 2);
}

//! The `shardkeep-audit-verify` binary and its documented exit codes: 0 a
//! log that verifies, 1 a tampered one, 2 unusable input, 3 a log that is
//! not anchored (no witness, or shorter than a witnessed head).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;
use std::process::Command;

use shardkeep_audit::{AuditLogId, Checkpoint, EventType, encode_export};
use shardkeep_storage::{AuditHead, AuditRow};
use shardkeep_types::{InMemorySigner, Signer, SignerId, Timestamp};

mod common;
use common::{LOG, chain_from, head_at, minimal_records};

/// Runs the verifier with `args` (`{dir}` replaced by a directory holding
/// `files`); returns the exit code and everything it printed.
fn run(files: &[(&str, &[u8])], args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let args: Vec<String> = args
        .iter()
        .map(|arg| arg.replace("{dir}", &dir.path().display().to_string()))
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_shardkeep-audit-verify"))
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

struct Case {
    key: String,
    rows: Vec<AuditRow>,
    signer: InMemorySigner,
}

impl Case {
    fn new() -> Self {
        let signer = InMemorySigner::from_seed(SignerId::new("audit").unwrap(), &[8; 32]);
        Self {
            key: hex::encode(signer.verifying_key().to_bytes()),
            rows: chain_from(AuditHead::GENESIS, &minimal_records(EventType::Confirm, 5)),
            signer,
        }
    }

    fn line(&self, log: AuditLogId, head: AuditHead) -> String {
        Checkpoint::sign(log, &head, Timestamp::EPOCH, &self.signer)
            .unwrap()
            .to_line()
            + "\n"
    }

    fn witness(&self, at: &[u64]) -> String {
        at.iter()
            .map(|sequence| self.line(LOG, head_at(&self.rows, *sequence)))
            .collect()
    }

    /// Verifies `rows` against witness files holding `witnesses`.
    fn verify(&self, rows: &[AuditRow], witnesses: &[&str]) -> (i32, String) {
        let export = encode_export(&LOG, rows);
        let names: Vec<String> = (0..witnesses.len()).map(|i| format!("w{i}")).collect();
        let mut files: Vec<(&str, &[u8])> = vec![("export", &export)];
        let mut args = vec!["--key", &self.key];
        let paths: Vec<String> = names.iter().map(|name| format!("{{dir}}/{name}")).collect();
        for ((name, witness), path) in names.iter().zip(witnesses).zip(&paths) {
            files.push((name, witness.as_bytes()));
            args.extend(["--witness", path]);
        }
        args.push("{dir}/export");
        run(&files, &args)
    }
}

#[test]
fn exit_0_for_a_log_that_verifies() {
    let case = Case::new();
    let (code, text) = case.verify(&case.rows, &[&case.witness(&[2, 5])]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(&format!(
            "ok: log {LOG}, 5 records, head 5 {}, 2 witnessed checkpoints (highest 5), 0 records after it unwitnessed",
            hex::encode(case.rows[4].hash)
        )),
        "{text}"
    );
    // Several witnesses are merged, whatever order their lines are in.
    let (code, text) = case.verify(&case.rows, &[&case.witness(&[4]), &case.witness(&[1, 3])]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(highest 4), 1 records after it"), "{text}");
}

#[test]
fn exit_1_for_a_tampered_log() {
    let case = Case::new();
    let witness = case.witness(&[5]);
    let mut changed = case.rows.clone();
    changed[2].record[3] ^= 1;
    let (code, text) = case.verify(&changed, &[&witness]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("TAMPERED: record 3 (row 2) was changed"),
        "{text}"
    );

    let other = AuditLogId([0xee; 16]);
    let (code, text) = case.verify(&case.rows, &[&case.line(other, head_at(&case.rows, 5))]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "TAMPERED: witness line 1 is a checkpoint of log {other}"
        )),
        "{text}"
    );

    let fork = case.line(
        LOG,
        AuditHead {
            sequence: 5,
            hash: [9; 32],
        },
    );
    let (code, text) = case.verify(&case.rows, &[&witness, &fork]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("TAMPERED: witness line 2 names another head at sequence 5"),
        "{text}"
    );
    assert!(
        text.contains("witness lines 2..=2: "),
        "the finding's source is named: {text}"
    );

    let export = encode_export(&LOG, &case.rows);
    let stranger = hex::encode(
        InMemorySigner::from_seed(SignerId::new("x").unwrap(), &[1; 32])
            .verifying_key()
            .to_bytes(),
    );
    let (code, text) = run(
        &[("export", &export), ("w", witness.as_bytes())],
        &["--key", &stranger, "--witness", "{dir}/w", "{dir}/export"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature does not verify"), "{text}");
}

#[test]
fn exit_2_for_unusable_input() {
    let case = Case::new();
    let export = encode_export(&LOG, &case.rows);
    let witness = case.witness(&[5]);
    let files: [(&str, &[u8]); 3] = [
        ("export", &export),
        ("w", witness.as_bytes()),
        ("junk", b"not an export"),
    ];
    let v1 = "shardkeep-checkpoint-v1 5 ".to_owned()
        + &"ab".repeat(32)
        + " 0 audit "
        + &"cd".repeat(64)
        + "\n";
    let key = case.key.as_str();
    for (args, says) in [
        (
            vec!["--key", key, "--witness", "{dir}/w", "{dir}/junk"],
            "not a shardkeep audit export",
        ),
        (
            vec!["--key", key, "--witness", "{dir}/missing", "{dir}/export"],
            "I/O",
        ),
        (
            vec!["--key", "abc", "--witness", "{dir}/w", "{dir}/export"],
            "expected 64 hex digits",
        ),
        (
            vec!["--witness", "{dir}/w", "{dir}/export"],
            "--key is required",
        ),
        (
            vec!["--key", key, "--witness", "{dir}/w"],
            "no export given",
        ),
        (
            vec!["--key", key, "--frobnicate", "{dir}/export"],
            "unknown option --frobnicate",
        ),
        (vec!["--key", key, "--witness"], "--witness needs a value"),
    ] {
        let (code, text) = run(&files, &args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
    for (witness, says) in [
        ("torn line", "incomplete last line"),
        (
            v1.as_str(),
            "a shardkeep-checkpoint-v1 line names no log and is refused",
        ),
    ] {
        let (code, text) = case.verify(&case.rows, &[witness]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn exit_3_for_a_log_that_is_not_anchored() {
    let case = Case::new();
    // The truncation the witness exists to catch: records 4 and 5 cut off
    // behind the checkpoint at 5.
    let (code, text) = case.verify(&case.rows[..3], &[&case.witness(&[2, 5])]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("NOT ANCHORED: log truncated: it ends at 3, the witness saw 5"),
        "{text}"
    );
    // No witness given at all: the same log, cut or not, proves nothing.
    let (code, text) = case.verify(&case.rows[..3], &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("NOT ANCHORED: no witness given"), "{text}");
    // A witness holding no checkpoint.
    let (code, text) = case.verify(&case.rows, &[""]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("NOT ANCHORED: no witnessed checkpoint"),
        "{text}"
    );
}

#[test]
fn help_documents_every_exit_code() {
    for flag in ["--help", "-h"] {
        let (code, text) = run(&[], &[flag]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.starts_with("usage: shardkeep-audit-verify --key"),
            "{text}"
        );
        for status in ["  0  ", "  1  ", "  2  ", "  3  "] {
            assert!(
                text.contains(status),
                "exit status {status} undocumented: {text}"
            );
        }
    }
    // The README documents the same codes.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for status in ["| 0 |", "| 1 |", "| 2 |", "| 3 |"] {
        assert!(readme.contains(status), "README lacks exit status {status}");
    }
}

/// The default build reads files only: `--witness-db` is refused as bad
/// input with a pointer to the file route, and the help does not offer it.
#[cfg(not(feature = "postgres-witness"))]
#[test]
fn a_build_without_postgres_witness_reads_no_database() {
    let (code, text) = run(&[], &["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("--witness-db"), "{text}");
    assert!(text.contains("reads no database"), "{text}");
    let (code, text) = run(
        &[],
        &[
            "--key",
            &"00".repeat(32),
            "--witness-db",
            "postgres://x",
            "e",
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("export the witness lines to a file"),
        "{text}"
    );
    assert!(
        !text.contains("postgres://x"),
        "the URL is never printed: {text}"
    );
}

/// The PostgreSQL build offers `--witness-db`.
#[cfg(feature = "postgres-witness")]
#[test]
fn a_build_with_postgres_witness_offers_witness_db() {
    let (code, text) = run(&[], &["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("--witness-db URL"), "{text}");
}

/// The `review` subcommand on a review archive of records 2..=4: 0 when
/// it verifies; 1 for a changed record, a dropped record, a forged review;
/// 3 when no checkpoint names the reviewed head; 2 for unusable input.
#[test]
fn review_subcommand_exit_codes() {
    use shardkeep_audit::{AuditReview, Export, ReviewArchive, ReviewedRange};
    use shardkeep_types::{ActorId, FreeText};

    let case = Case::new();
    let reviewer = |seed: u8| InMemorySigner::from_seed(SignerId::new("r").unwrap(), &[seed; 32]);
    let range = ReviewedRange {
        log_id: LOG,
        first: 2,
        last: 4,
        head_hash: head_at(&case.rows, 4).hash,
    };
    let review = |name: &str, signer: &InMemorySigner| {
        AuditReview::sign(
            range,
            ActorId::new(name).unwrap(),
            FreeText::new("no findings").unwrap(),
            Timestamp::EPOCH,
            signer,
        )
        .unwrap()
    };
    let archive = |reviews: Vec<AuditReview>, rows: &[AuditRow]| {
        ReviewArchive {
            reviews,
            export: Export {
                log_id: LOG,
                rows: rows.to_vec(),
            },
        }
        .encode()
    };
    let honest = vec![review("carol", &reviewer(1)), review("dave", &reviewer(2))];
    let carol_key = format!(
        "carol={}",
        hex::encode(reviewer(1).verifying_key().to_bytes())
    );
    let dave_key = format!(
        "dave={}",
        hex::encode(reviewer(2).verifying_key().to_bytes())
    );
    let check = |archive: &[u8], witness: &str| {
        run(
            &[("archive", archive), ("w", witness.as_bytes())],
            &[
                "review",
                "--key",
                &case.key,
                "--witness",
                "{dir}/w",
                "--reviewer",
                &carol_key,
                "--reviewer",
                &dave_key,
                "{dir}/archive",
            ],
        )
    };
    let witness = case.witness(&[4, 5]);
    let (code, out) = check(&archive(honest.clone(), &case.rows[1..4]), &witness);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("records 2..=4 (3)") && out.contains("carol, dave"),
        "{out}"
    );

    let mut changed = case.rows[1..4].to_vec();
    changed[1].record[2] ^= 1;
    let (code, out) = check(&archive(honest.clone(), &changed), &witness);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 3 (row 1) was changed"), "{out}");

    let mut dropped = case.rows[1..4].to_vec();
    dropped.remove(1);
    let (code, out) = check(&archive(honest.clone(), &dropped), &witness);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 3 was removed"), "{out}");

    let forged = vec![review("carol", &reviewer(1)), review("dave", &reviewer(3))];
    let (code, out) = check(&archive(forged, &case.rows[1..4]), &witness);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the signature of dave does not verify"),
        "{out}"
    );

    let (code, out) = check(
        &archive(honest.clone(), &case.rows[1..4]),
        &case.witness(&[3, 5]),
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("no witnessed checkpoint at the reviewed head 4"),
        "{out}"
    );

    // --reviewer belongs to the subcommand; the subcommand needs reviewers.
    let good = archive(honest, &case.rows[1..4]);
    let files: [(&str, &[u8]); 2] = [("archive", &good), ("w", witness.as_bytes())];
    let (code, _) = run(
        &files,
        &[
            "--key",
            &case.key,
            "--reviewer",
            &carol_key,
            "{dir}/archive",
        ],
    );
    assert_eq!(code, 2);
    let (code, out) = run(&files, &["review", "--key", &case.key, "{dir}/archive"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(
        &files,
        &[
            "review",
            "--key",
            &case.key,
            "--reviewer",
            "carol",
            "{dir}/archive",
        ],
    );
    assert_eq!(code, 2, "{out}");
}

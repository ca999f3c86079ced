//! Writers as separate processes: a writer killed with SIGKILL in the middle
//! of a transaction leaves the database consistent and the chain verifying
//! (SQLite and PostgreSQL), and two writer processes appending to one
//! PostgreSQL database and checkpointing into one witness never fork the
//! chain nor leave a witness the verifier refuses.
//!
//! The writers are this test binary run again with the ignored test
//! `writer_process` selected and its orders in environment variables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.
#![allow(clippy::print_stdout)] // The writer process reports progress on stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shardkeep_audit::{
    AuditRecord, EventType, FileWitness, append, checkpoint, export, parse_export, read_witness,
    verify,
};
use shardkeep_storage::test_support::PostgresCluster;
use shardkeep_storage::{AuditStore, PostgresStorage, SqliteStorage, Storage, Transaction};
use shardkeep_test_support::runtime::{current_thread, multi_thread as runtime};
use shardkeep_types::{ActorId, FreeText, InMemorySigner, Signer, SignerId, Timestamp};

const BACKEND: &str = "SHARDKEEP_AUDIT_WRITER_BACKEND";
const TARGET: &str = "SHARDKEEP_AUDIT_WRITER_TARGET";
const MODE: &str = "SHARDKEEP_AUDIT_WRITER_MODE";
const NAME: &str = "SHARDKEEP_AUDIT_WRITER_NAME";
const WITNESS: &str = "SHARDKEEP_AUDIT_WRITER_WITNESS";

/// Records per committed group in the writer.
const GROUP: usize = 5;

fn signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[5; 32])
}

fn record(name: &str, i: usize) -> AuditRecord {
    let mut record = AuditRecord::new(
        EventType::ShareRead,
        Timestamp::now(),
        ActorId::new(name).unwrap(),
    );
    record.detail = Some(FreeText::new(format!("{name} record {i}")).unwrap());
    record
}

/// The writer process: `append:<groups>` commits that many groups, each
/// followed by a checkpoint into the witness file `witness`; `hang` commits
/// two groups, then opens a transaction, appends, says so and waits to be
/// killed.
async fn writer<S: Storage>(storage: S, mode: &str, name: &str, witness: &str) {
    let groups = match mode.strip_prefix("append:") {
        Some(groups) => groups.parse().unwrap(),
        None => 2,
    };
    let mut i = 0;
    for _ in 0..groups {
        let mut tx = storage.begin().await.unwrap();
        let mut last = 0;
        for _ in 0..GROUP {
            last = append(&mut tx, &record(name, i)).await.unwrap().sequence;
            i += 1;
        }
        tx.commit().await.unwrap();
        println!("WRITER committed {last}");
        if !witness.is_empty() {
            let mut witness = FileWitness::open(witness).unwrap();
            checkpoint(&storage, &signer(), &mut witness, Timestamp::now())
                .await
                .unwrap();
        }
    }
    if mode == "hang" {
        let mut tx = storage.begin().await.unwrap();
        for _ in 0..GROUP {
            append(&mut tx, &record(name, i)).await.unwrap();
            i += 1;
        }
        println!("WRITER in-transaction");
        tokio::time::sleep(Duration::from_secs(120)).await;
        panic!("the writer was not killed");
    }
}

#[test]
#[ignore = "runs only as the writer process of the other tests"]
fn writer_process() {
    let backend = std::env::var(BACKEND).expect("run by the process tests");
    let target = std::env::var(TARGET).unwrap();
    let mode = std::env::var(MODE).unwrap();
    let name = std::env::var(NAME).unwrap();
    let witness = std::env::var(WITNESS).unwrap();
    current_thread().block_on(async {
        match backend.as_str() {
            "sqlite" => {
                let storage = SqliteStorage::open(&target).await.unwrap();
                writer(storage, &mode, &name, &witness).await;
            }
            _ => {
                let storage = PostgresStorage::connect(&target).await.unwrap();
                writer(storage, &mode, &name, &witness).await;
            }
        }
    });
}

fn spawn_writer(backend: &str, target: &str, mode: &str, name: &str, witness: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writer_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(BACKEND, backend)
        .env(TARGET, target)
        .env(MODE, mode)
        .env(NAME, name)
        .env(WITNESS, witness)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the writer's progress until it is inside its last transaction;
/// returns the last committed sequence.
fn wait_until_in_transaction(child: &mut Child) -> u64 {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut committed = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(sequence) = line.strip_prefix("WRITER committed ") {
            committed = sequence.parse().unwrap();
        } else if line == "WRITER in-transaction" {
            return committed;
        }
    }
    panic!(
        "the writer ended before opening its transaction: {:?}",
        child.wait()
    );
}

/// Checkpoints into the witness file in `dir` (beside whatever is there),
/// exports and verifies the whole log; returns its length.
async fn verify_log<S: Storage>(storage: &S, dir: &Path) -> u64 {
    let signer = signer();
    let witness_path = dir.join("witness");
    let mut witness = FileWitness::open(&witness_path).unwrap();
    checkpoint(storage, &signer, &mut witness, Timestamp::now())
        .await
        .unwrap();
    let mut exported = Vec::new();
    export(storage, &mut exported).await.unwrap();
    let verified = verify(
        &parse_export(&exported).unwrap(),
        &read_witness(&witness_path).unwrap(),
        &signer.verifying_key(),
    )
    .unwrap();
    assert_eq!(verified.unwitnessed, 0);
    verified.records
}

/// Kills a writer inside a transaction, then checks what is left.
async fn killed_writer_leaves_a_consistent_log<S: Storage>(
    backend: &str,
    target: &str,
    reopen: impl AsyncFnOnce() -> S,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_writer(backend, target, "hang", "killed.writer", "");
    let committed = wait_until_in_transaction(&mut child);
    assert_eq!(committed, 2 * GROUP as u64);
    // Child::kill sends SIGKILL: no destructor, no rollback, no goodbye.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let storage = reopen().await;
    // Exactly the committed groups survive, and the chain verifies.
    assert_eq!(verify_log(&storage, dir.path()).await, committed);
    // The lock died with the writer: the log takes new appends.
    let mut tx = storage.begin().await.unwrap();
    let next = append(&mut tx, &record("survivor", 0)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(next.sequence, committed + 1);
    assert_eq!(verify_log(&storage, dir.path()).await, committed + 1);
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap().sequence, committed + 1);
}

#[test]
fn sqlite_writer_killed_mid_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let target = path.to_str().unwrap().to_owned();
    runtime().block_on(async {
        // Create the schema first so the writer only appends.
        SqliteStorage::open(&path).await.unwrap().close().await;
        killed_writer_leaves_a_consistent_log("sqlite", &target, async || {
            SqliteStorage::open(&path).await.unwrap()
        })
        .await;
    });
}

#[test]
fn postgres_writer_processes() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        // Two processes appending and checkpointing at once: one chain, no
        // fork, no gap, and a witness that verifies.
        let database = cluster.create_database("two_writers").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let witness = dir.path().join("witness");
        let groups: u64 = 20;
        let mut writers: Vec<Child> = ["writer.one", "writer.two"]
            .into_iter()
            .map(|name| {
                spawn_writer(
                    "postgres",
                    &database.service_url,
                    &format!("append:{groups}"),
                    name,
                    witness.to_str().unwrap(),
                )
            })
            .collect();
        for writer in &mut writers {
            assert!(writer.wait().unwrap().success());
        }
        assert_eq!(read_witness(&witness).unwrap().len() as u64, 2 * groups);
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        assert_eq!(
            verify_log(&storage, dir.path()).await,
            2 * groups * GROUP as u64
        );
        // Both writers' records are all in the one chain.
        let mut tx = storage.begin_read_only().await.unwrap();
        let rows = tx.read_audit(1, 10_000).await.unwrap();
        let authors: Vec<String> = rows
            .iter()
            .map(|row| {
                AuditRecord::decode(&row.record)
                    .unwrap()
                    .operator
                    .to_string()
            })
            .collect();
        assert_eq!(authors.iter().filter(|a| *a == "writer.one").count(), 100);
        assert_eq!(authors.iter().filter(|a| *a == "writer.two").count(), 100);
        // Closing waits for every connection, the snapshot's included.
        drop(tx);
        storage.close().await;

        let database = cluster.create_database("killed_writer").await.unwrap();
        let url = database.service_url.clone();
        killed_writer_leaves_a_consistent_log("postgres", &database.service_url, async || {
            PostgresStorage::connect(&url).await.unwrap()
        })
        .await;
    });
}

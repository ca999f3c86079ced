//! The conformance suite on SQLite (a fresh file per case), plus what only
//! SQLite can show: the file's settings and the triggers that refuse changes
//! to the audit table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

mod conformance;

use shardkeep_storage::{AuditStore, SqliteStorage, Storage, Transaction};
use sqlx::{Connection, Row, SqliteConnection};

async fn fresh() -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("shardkeep.db"))
        .await
        .unwrap();
    (dir, storage)
}

macro_rules! sqlite_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_dir, storage) = fresh().await;
                conformance::$case(storage).await;
            }
        )*
    };
}

for_each_case!(sqlite_cases);

async fn raw(dir: &tempfile::TempDir) -> SqliteConnection {
    let url = format!("sqlite://{}", dir.path().join("shardkeep.db").display());
    SqliteConnection::connect(&url).await.unwrap()
}

#[tokio::test]
async fn the_file_is_private_durable_and_migrated_once() {
    let (dir, storage) = fresh().await;
    let mut tx = storage.begin().await.unwrap();
    tx.append_audit(conformance::chained(b"first".to_vec()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    storage.close().await;

    let path = dir.path().join("shardkeep.db");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Reopening keeps the data and applies no migration twice.
    let storage = SqliteStorage::open(&path).await.unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap().sequence, 1);
    drop(tx);

    let mut conn = raw(&dir).await;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(usize::try_from(migrations).unwrap(), shipped);
}

#[tokio::test]
async fn the_database_refuses_changes_to_the_audit_table() {
    let (dir, storage) = fresh().await;
    conformance::with_three_audit_records(&storage).await;

    let mut conn = raw(&dir).await;
    for sql in [
        "UPDATE audit_log SET record = x'00' WHERE sequence = 2",
        "DELETE FROM audit_log WHERE sequence = 3",
        "DELETE FROM audit_log",
        "UPDATE audit_checkpoints SET checkpoint = x'00'",
        "DELETE FROM audit_checkpoints",
        // Inserting around the chain: a gap, a fork, a wrong link.
        "INSERT INTO audit_log VALUES (5, zeroblob(32), zeroblob(32), x'01')",
        "INSERT INTO audit_log VALUES (3, zeroblob(32), zeroblob(32), x'01')",
        "INSERT INTO audit_log VALUES (4, zeroblob(32), zeroblob(32), x'01')",
    ] {
        let error = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(
            error.to_string().contains("audit_log")
                || error.to_string().contains("audit_checkpoints")
                || error.to_string().contains("UNIQUE"),
            "{sql}: {error}"
        );
    }
    let rows = sqlx::query("SELECT sequence, record FROM audit_log ORDER BY sequence")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let records: Vec<(i64, Vec<u8>)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(records, [(1, vec![0]), (2, vec![1]), (3, vec![2])]);
}

#[tokio::test]
async fn the_database_keeps_slot_kek_evidence() {
    let (dir, storage) = fresh().await;
    conformance::with_destroyed_slot_kek(&storage).await;

    let mut conn = raw(&dir).await;
    for sql in [
        "DELETE FROM slot_keks",
        "UPDATE slot_keks SET destroyed_at = NULL",
        "UPDATE slot_keks SET destroyed_at = destroyed_at + 1",
        "UPDATE slot_keks SET fingerprint = zeroblob(32)",
        "UPDATE slot_keks SET kek_id = 'kek-b'",
    ] {
        let error = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("slot_keks"), "{sql}: {error}");
    }
    let row: (String, i64) = sqlx::query_as("SELECT kek_id, destroyed_at FROM slot_keks")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row, ("kek-a".to_owned(), 1_800_000_000_002));
}

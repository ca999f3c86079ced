//! The conformance suite on SQLite (a fresh file per case), plus what only
//! SQLite can show: the file's settings and the triggers that refuse changes
//! to the audit table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use rusqlite::Connection;
use shardkeep_storage::Error;
use shardkeep_storage::conformance;
use shardkeep_storage::{
    AccessControlStore, AnomalyRecord, AuditStore, SealedShareStore, SlotFilter, SqliteStorage,
    Storage, Transaction,
};
use shardkeep_types::FreeText;

async fn fresh() -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("shardkeep.db"))
        .await
        .unwrap();
    (dir, storage)
}

// One test per case, each on a fresh file.
shardkeep_storage::conformance_tests!(fresh);

/// The test's file, opened past the storage layer.
fn raw(dir: &tempfile::TempDir) -> Connection {
    Connection::open(dir.path().join("shardkeep.db")).unwrap()
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

    let conn = raw(&dir);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let migrations: i64 = conn
        .query_row("SELECT count(*) FROM _sqlx_migrations", [], |row| {
            row.get(0)
        })
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

    let conn = raw(&dir);
    for sql in [
        "UPDATE audit_log SET record = x'00' WHERE sequence = 2",
        "DELETE FROM audit_log WHERE sequence = 3",
        "DELETE FROM audit_log",
        "UPDATE audit_checkpoints_v2 SET checkpoint = x'00'",
        "DELETE FROM audit_checkpoints_v2",
        // Inserting around the chain: a gap, a fork, a wrong link.
        "INSERT INTO audit_log VALUES (5, zeroblob(32), zeroblob(32), x'01')",
        "INSERT INTO audit_log VALUES (3, zeroblob(32), zeroblob(32), x'01')",
        "INSERT INTO audit_log VALUES (4, zeroblob(32), zeroblob(32), x'01')",
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(
            error.to_string().contains("audit_log")
                || error.to_string().contains("audit_checkpoints")
                || error.to_string().contains("UNIQUE"),
            "{sql}: {error}"
        );
    }
    let records: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT sequence, record FROM audit_log ORDER BY sequence")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records, [(1, vec![0]), (2, vec![1]), (3, vec![2])]);
}

#[tokio::test]
async fn the_database_keeps_slot_kek_evidence() {
    let (dir, storage) = fresh().await;
    conformance::with_destroyed_slot_kek(&storage).await;

    let conn = raw(&dir);
    for sql in [
        "DELETE FROM slot_keks",
        "UPDATE slot_keks SET destroyed_at = NULL",
        "UPDATE slot_keks SET destroyed_at = destroyed_at + 1",
        "UPDATE slot_keks SET fingerprint = zeroblob(32)",
        "UPDATE slot_keks SET kek_id = 'kek-b'",
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains("slot_keks"), "{sql}: {error}");
    }
    let row: (String, i64) = conn
        .query_row("SELECT kek_id, destroyed_at FROM slot_keks", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(row, ("kek-a".to_owned(), 1_800_000_000_002));
}

/// Storage refuses a row whose columns and envelope disagree (changed
/// behind its back), rather than hand out a share the columns misdescribe.
#[tokio::test]
async fn load_refuses_a_row_whose_columns_and_envelope_disagree() {
    let (dir, storage) = fresh().await;
    conformance::with_shares(&storage).await;
    let conn = raw(&dir);
    for (tamper, restore, column) in [
        (
            "UPDATE share_slots SET kek_id = 'kek-other' WHERE share_index = 1",
            "UPDATE share_slots SET kek_id = 'kek-1' WHERE share_index = 1",
            "kek_id",
        ),
        (
            "UPDATE share_slots SET envelope_id = \
             (SELECT envelope_id FROM share_slots WHERE share_index = 2) WHERE share_index = 1",
            "UPDATE share_slots SET envelope_id = (SELECT envelope_id FROM share_slots_copy) \
             WHERE share_index = 1",
            "envelope_id",
        ),
        (
            "UPDATE share_slots SET envelope = \
             (SELECT envelope FROM share_slots WHERE share_index = 2) WHERE share_index = 1",
            "UPDATE share_slots SET envelope = (SELECT envelope FROM share_slots_copy) \
             WHERE share_index = 1",
            "envelope",
        ),
        (
            "UPDATE share_slots SET envelope = substr(envelope, 2) WHERE share_index = 1",
            "UPDATE share_slots SET envelope = (SELECT envelope FROM share_slots_copy) \
             WHERE share_index = 1",
            "envelope",
        ),
    ] {
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS share_slots_copy AS \
             SELECT * FROM share_slots WHERE share_index = 1",
            [],
        )
        .unwrap();
        conn.execute(tamper, []).unwrap();
        conformance::assert_load_refuses_row(&storage, column).await;
        conn.execute(restore, []).unwrap();
        let mut tx = storage.begin_read_only().await.unwrap();
        assert_eq!(
            tx.load_sealed_share(&conformance::slot("node-a", 1, 1))
                .await
                .unwrap(),
            conformance::sealed(&conformance::slot("node-a", 1, 1))
        );
    }
}

/// Upgrading a version 1 database (shares with a `wrapped_key` column)
/// keeps its shares and their access log, and refuses to run while a row
/// re-wrapped by a version 1 build holds the only copy of its wrapped key in
/// the column that goes away.
#[tokio::test]
async fn upgrade_keeps_shares_and_refuses_to_strand_a_wrapped_key() {
    for stranded in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shardkeep.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate_as_sqlx_did(&conn, 1);
        let (kek_id, wrapped_key, envelope, envelope_id) = conformance::version_1_row(stranded);
        for (sql, args) in [
            (
                "INSERT INTO key_versions VALUES ('wallet-1', 'node-a', 1, 3, 5, 0, 'active', \
                 NULL, NULL, NULL)",
                vec![],
            ),
            (
                "INSERT INTO share_slots (key_id, node_id, version, share_index, kek_id, \
                 wrapped_key, envelope, envelope_id, stored_at, state) \
                 VALUES ('wallet-1', 'node-a', 1, 1, ?, ?, ?, ?, 1800000000010, 'active')",
                vec![
                    kek_id.into_bytes(),
                    wrapped_key.clone(),
                    envelope,
                    envelope_id,
                ],
            ),
            (
                "INSERT INTO share_access_log (key_id, node_id, version, share_index, accessor, \
                 purpose, accessed_at) VALUES ('wallet-1', 'node-a', 1, 1, 'ops.alice', 'recover', 1)",
                vec![],
            ),
            (
                "INSERT INTO custody_map VALUES ('wallet-1', 'node-a', 1, 3, 'escrow-co', \
                 'Escrow <security@escrow-co.example>', x'01', 1800000000020, NULL)",
                vec![],
            ),
            (
                "INSERT INTO deliveries (key_id, node_id, version, share_index, custodian_id, \
                 envelope_id, outcome, failure_reason, recorded_at) VALUES ('wallet-1', \
                 'node-a', 1, 3, 'escrow-co', zeroblob(32), 'failed', 'courier lost it', \
                 1800000000030)",
                vec![],
            ),
        ] {
            let mut statement = conn.prepare(sql).unwrap();
            for (i, arg) in args.into_iter().enumerate() {
                // The KEK id is text; the rest are blobs.
                if i == 0 {
                    statement
                        .raw_bind_parameter(i + 1, String::from_utf8(arg).unwrap())
                        .unwrap();
                } else {
                    statement.raw_bind_parameter(i + 1, arg).unwrap();
                }
            }
            statement.raw_execute().unwrap();
        }
        drop(conn);

        let result = SqliteStorage::open(&path).await;
        let conn = raw(&dir);
        if stranded {
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::Migration(_))
                    && error
                        .to_string()
                        .contains("re-wrapped by a version 1 build"),
                "{error}"
            );
            // Nothing was lost: the column still holds the wrapped key.
            let kept: Vec<u8> = conn
                .query_row("SELECT wrapped_key FROM share_slots", [], |row| row.get(0))
                .unwrap();
            assert_eq!(kept, wrapped_key);
        } else {
            let storage = result.unwrap();
            conformance::assert_version_1_share_migrated(&storage).await;
            assert!(conn.prepare("SELECT wrapped_key FROM share_slots").is_err());
            let violations = conn
                .prepare("PRAGMA foreign_key_check")
                .unwrap()
                .query([])
                .unwrap()
                .next()
                .unwrap()
                .is_none();
            assert!(violations);
            // The rebuilt table still refuses deletes.
            let error = conn.execute("DELETE FROM share_slots", []).unwrap_err();
            assert!(error.to_string().contains("never deleted"), "{error}");
        }
    }
}

/// Rows written around storage: every checkpoint row must name a head on
/// the chain, and the log's identity never changes.
#[tokio::test]
async fn the_database_refuses_checkpoints_off_the_chain_and_a_new_identity() {
    let (dir, storage) = fresh().await;
    conformance::with_three_audit_records(&storage).await;
    let mut tx = storage.begin_read_only().await.unwrap();
    let log_id = tx.audit_log_id().await.unwrap();
    let latest = tx.latest_checkpoint().await.unwrap();
    drop(tx);

    let conn = raw(&dir);
    let count = "SELECT count(*) FROM audit_checkpoints_v2";
    let before: i64 = conn.query_row(count, [], |row| row.get(0)).unwrap();
    for (sql, refusal) in [
        (
            "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
             SELECT 9, hash, x'01' FROM audit_log WHERE sequence = 3",
            "beyond the audit head",
        ),
        (
            "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
             VALUES (2, zeroblob(32), x'01')",
            "not the audit hash",
        ),
        (
            "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
             SELECT 0, hash, x'01' FROM audit_log WHERE sequence = 1",
            "not the audit hash",
        ),
        (
            "INSERT INTO audit_checkpoints (sequence, checkpoint) VALUES (2, x'01')",
            "v1 checkpoints only",
        ),
        (
            "UPDATE audit_checkpoints_v2 SET checkpoint = x'00'",
            "append-only",
        ),
        ("DELETE FROM audit_checkpoints_v2", "append-only"),
        (
            "UPDATE audit_log_identity SET log_id = zeroblob(16)",
            "fixed when the log is created",
        ),
        (
            "DELETE FROM audit_log_identity",
            "fixed when the log is created",
        ),
        (
            "INSERT INTO audit_log_identity VALUES (2, zeroblob(16))",
            "CHECK constraint failed",
        ),
        (
            "INSERT INTO audit_log_identity VALUES (1, zeroblob(16))",
            "UNIQUE constraint failed",
        ),
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains(refusal), "{sql}: {error}");
    }
    let after: i64 = conn.query_row(count, [], |row| row.get(0)).unwrap();
    assert_eq!(after, before);
    // The guard is not a blanket refusal: a row naming a head on the chain
    // goes in, even beside another of the same sequence.
    conn.execute(
        "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
         SELECT 3, hash, x'02' FROM audit_log WHERE sequence = 3",
        [],
    )
    .unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_log_id().await.unwrap(), log_id);
    let newest = tx.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(newest.checkpoint, [2]);
    assert_eq!(newest.head_hash, latest.unwrap().head_hash);
}

/// The backup evidence (registry, policies, split references, custody,
/// inventory proofs, anomalies) is never changed or removed behind
/// storage's back; rate counters only count up.
#[tokio::test]
async fn the_database_keeps_backup_evidence() {
    let (dir, storage) = fresh().await;
    conformance::with_backup_evidence(&storage).await;
    let before = conformance::backup_evidence(&storage).await;
    let conn = raw(&dir);
    for (sql, refusal) in [
        ("DELETE FROM persons", "never deleted"),
        ("UPDATE persons SET display_name = 'x'", "never change"),
        ("UPDATE persons SET registered_by = 'x'", "never change"),
        ("UPDATE persons SET key_epoch = 1", "never change"),
        (
            "UPDATE persons SET state = 'active', revoked_at = NULL, revoked_by = NULL, \
             revoke_reason = NULL WHERE state = 'revoked'",
            "never change",
        ),
        ("DELETE FROM person_keys", "append-only"),
        (
            "UPDATE person_keys SET receipt_key = zeroblob(32)",
            "append-only",
        ),
        (
            "UPDATE person_keys SET valid_until = NULL WHERE valid_until IS NOT NULL",
            "append-only",
        ),
        (
            "UPDATE person_keys SET valid_until = valid_until + 1 WHERE valid_until IS NOT NULL",
            "append-only",
        ),
        ("DELETE FROM entities", "never deleted"),
        ("UPDATE entities SET contact = 'x'", "never change"),
        ("DELETE FROM entity_members", "append-only"),
        (
            "UPDATE entity_members SET person_id = person_id",
            "append-only",
        ),
        ("UPDATE groups SET parties = 9", "append-only"),
        ("DELETE FROM groups", "append-only"),
        ("UPDATE policies SET encoding = x'00'", "append-only"),
        ("DELETE FROM policies", "append-only"),
        (
            "UPDATE split_references SET server_shares = 0",
            "append-only",
        ),
        ("DELETE FROM split_references", "append-only"),
        ("UPDATE key_versions SET threshold = 2", "never change"),
        ("UPDATE key_versions SET created_by = 'x'", "never change"),
        ("DELETE FROM custody_map", "never deleted"),
        ("DELETE FROM inventory_challenges", "never deleted"),
        (
            "UPDATE inventory_challenges SET consumed_at = NULL",
            "consumed, once",
        ),
        (
            "UPDATE inventory_challenges SET consumed_at = consumed_at + 1",
            "consumed, once",
        ),
        ("UPDATE inventory_proofs SET proof = x'00'", "append-only"),
        ("DELETE FROM inventory_proofs", "append-only"),
        ("UPDATE anomalies SET detail = 'x'", "append-only"),
        ("DELETE FROM anomalies", "append-only"),
        (
            "UPDATE rate_counters SET count = count - 1",
            "only count up",
        ),
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains(refusal), "{sql}: {error}");
    }
    assert_eq!(conformance::backup_evidence(&storage).await, before);
}

/// Recovery sessions behind storage's back: never deleted, a closed one
/// never reopened or changed, an open one changes only its idle deadline
/// and closing; at most one open per version.
#[tokio::test]
async fn the_database_keeps_recovery_sessions() {
    let (dir, storage) = fresh().await;
    conformance::with_recovery_sessions(&storage).await;
    let before = conformance::recovery_sessions(&storage).await;
    let conn = raw(&dir);
    for (sql, refusal) in [
        ("DELETE FROM recovery_sessions", "never deleted"),
        (
            "UPDATE recovery_sessions SET closed_at = NULL, outcome = NULL \
             WHERE closed_at IS NOT NULL",
            "only an open session changes",
        ),
        (
            "UPDATE recovery_sessions SET idle_expires_at = idle_expires_at + 1 \
             WHERE closed_at IS NOT NULL",
            "only an open session changes",
        ),
        (
            "UPDATE recovery_sessions SET replica = 'r9' WHERE closed_at IS NULL",
            "only an open session changes",
        ),
        (
            "UPDATE recovery_sessions SET split_id = zeroblob(32) WHERE closed_at IS NULL",
            "only an open session changes",
        ),
        (
            "UPDATE recovery_sessions SET started_by = 'x' WHERE closed_at IS NULL",
            "only an open session changes",
        ),
        (
            "INSERT INTO recovery_sessions (id, key_id, node_id, version, split_id, operation, \
             request_hash, replica, started_by, started_at, expires_at, idle_expires_at) \
             SELECT zeroblob(16), key_id, node_id, version, split_id, operation, request_hash, \
             replica, started_by, started_at, expires_at, idle_expires_at \
             FROM recovery_sessions WHERE closed_at IS NULL",
            "UNIQUE",
        ),
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains(refusal), "{sql}: {error}");
    }
    assert_eq!(conformance::recovery_sessions(&storage).await, before);
}

/// A trigger's refusal reaches the service as `Error::PrivilegeViolation`
/// (so it can record an anomaly); a full rate counter as
/// `Error::CounterExhausted`.
#[tokio::test]
async fn trigger_refusals_are_privilege_violations() {
    let (dir, storage) = fresh().await;
    conformance::with_backup_evidence(&storage).await;
    let conn = raw(&dir);
    conn.execute_batch(
        "CREATE TRIGGER test_refuse_anomalies BEFORE INSERT ON anomalies \
         BEGIN SELECT RAISE(ABORT, 'refused by a guard'); END; \
         UPDATE rate_counters SET count = 4294967295",
    )
    .unwrap();
    let anomaly = AnomalyRecord {
        kind: conformance::label("probe"),
        person: None,
        slot: None,
        at: conformance::at(1),
        detail: FreeText::new("x").unwrap(),
    };
    let mut tx = storage.begin().await.unwrap();
    let error = tx.record_anomaly(&anomaly).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::PrivilegeViolation {
                operation: "anomalies",
                ..
            }
        ),
        "{error:?}"
    );
    // The refusal aborted the transaction.
    assert!(matches!(tx.commit().await, Err(Error::TransactionAborted)));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        tx.bump_rate_counter(
            &conformance::actor("ops.alice"),
            &conformance::label("share-read"),
            conformance::at(0)
        )
        .await,
        Err(Error::CounterExhausted { counter: "rate" })
    ));
}

/// Creates sqlx's migration table and applies `migrations/sqlite/` up to
/// `last` the way sqlx's migrator did before this crate ran its own: each
/// file's text in a transaction, a row with its version, description (the
/// name after the version, underscores read as spaces), success, the
/// SHA-384 of its text, then its execution time.
fn migrate_as_sqlx_did(conn: &Connection, last: usize) {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .unwrap();
    for (version, name, sql) in shipped_migrations().into_iter().take(last) {
        let description = name
            .split_once('_')
            .unwrap()
            .1
            .trim_end_matches(".sql")
            .replace('_', " ");
        conn.execute_batch("BEGIN").unwrap();
        conn.execute_batch(&sql).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?1, ?2, TRUE, ?3, -1)",
            (version, description, sha384(&sql)),
        )
        .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        // sqlx then records the time the migration took, in nanoseconds.
        conn.execute(
            "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
            (1_000_000_i64, version),
        )
        .unwrap();
    }
}

/// `(version, file name, text)` of every file of `migrations/sqlite/`.
fn shipped_migrations() -> Vec<(i64, String, String)> {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"));
    let mut files: Vec<(i64, String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let version = name.split_once('_').unwrap().0.parse().unwrap();
            let sql = std::fs::read_to_string(dir.join(&name)).unwrap();
            (version, name, sql)
        })
        .collect();
    files.sort();
    files
}

fn sha384(text: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha384::digest(text.as_bytes()).to_vec()
}

/// `(version, description, success, checksum, execution_time)` of every
/// row of the migration table.
fn migration_rows(conn: &Connection) -> Vec<(i64, String, bool, Vec<u8>, i64)> {
    conn.prepare(
        "SELECT version, description, success, checksum, execution_time \
         FROM _sqlx_migrations ORDER BY version",
    )
    .unwrap()
    .query_map([], |row| {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A copy of `test-vectors/sqlx-migrated.db`: a file that the sqlx-driven
/// build of this crate created, migrated (sqlx's migrator) and filled (the
/// `sqlite_default` example's steps: a version with two sealed shares, one
/// re-wrapped, one soft-deleted, three audit records).
fn golden_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardkeep.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors/sqlx-migrated.db"),
        &path,
    )
    .unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_file_migrated_by_sqlx_opens_with_its_data_and_bookkeeping() {
    let (_dir, path) = golden_copy();
    let before = migration_rows(&Connection::open(&path).unwrap());
    assert_eq!(before.len(), shipped_migrations().len());

    let storage = SqliteStorage::open(&path).await.unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap().sequence, 3);
    let slots = tx.list_slots(&SlotFilter::default()).await.unwrap();
    let states: Vec<(u8, &str)> = slots
        .iter()
        .map(|summary| (summary.slot.index.get(), summary.state.name()))
        .collect();
    assert_eq!(states, [(1, "active"), (2, "soft-deleted")]);
    assert_eq!(slots[0].kek_id.as_str(), "kek-node-a-1-g2");
    tx.rollback().await.unwrap();
    // It takes writes, chained on the stored head.
    let mut tx = storage.begin().await.unwrap();
    let row = tx
        .append_audit(conformance::chained(b"after the driver change".to_vec()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(row.sequence, 4);
    storage.close().await;

    // Nothing re-applied, nothing rewritten.
    assert_eq!(migration_rows(&Connection::open(&path).unwrap()), before);
}

/// A file whose migrations stopped short (here after 7, applied by sqlx)
/// gets the rest, recorded as sqlx records them: the checksum is the
/// SHA-384 of the text, so a sqlx-driven build opens the file too.
#[tokio::test]
async fn missing_migrations_are_applied_and_recorded_as_sqlx_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardkeep.db");
    let conn = Connection::open(&path).unwrap();
    migrate_as_sqlx_did(&conn, 7);
    let first_seven = migration_rows(&conn);
    drop(conn);

    let storage = SqliteStorage::open(&path).await.unwrap();
    storage.close().await;
    let rows = migration_rows(&Connection::open(&path).unwrap());
    assert_eq!(rows[..7], first_seven[..]);
    let shipped = shipped_migrations();
    assert_eq!(rows.len(), shipped.len());
    for (row, (version, name, sql)) in rows.iter().zip(&shipped) {
        assert_eq!(row.0, *version, "{name}");
        assert!(name.ends_with(&format!("{}.sql", row.1.replace(' ', "_"))));
        assert!(row.2, "{name} recorded as failed");
        assert_eq!(row.3, sha384(sql), "{name}");
        assert!(row.4 >= 0, "{name} has no execution time");
    }
}

/// A migration changed since it was applied, one recorded as failed, and
/// one this build does not know each refuse the file, as sqlx refused them,
/// and change nothing.
#[tokio::test]
async fn changed_dirty_and_unknown_migrations_refuse_the_file() {
    use sqlx::migrate::MigrateError;
    for (tamper, expected) in [
        (
            "UPDATE _sqlx_migrations SET checksum = zeroblob(48) WHERE version = 5",
            "VersionMismatch(5)",
        ),
        (
            "UPDATE _sqlx_migrations SET success = false WHERE version = 13",
            "Dirty(13)",
        ),
        (
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (99, 'from the future', TRUE, zeroblob(48), 1)",
            "VersionMissing(99)",
        ),
    ] {
        let (_dir, path) = golden_copy();
        let conn = Connection::open(&path).unwrap();
        conn.execute(tamper, []).unwrap();
        let before = migration_rows(&conn);
        drop(conn);
        let error = SqliteStorage::open(&path).await.unwrap_err();
        let Error::Migration(cause) = &error else {
            panic!("{tamper}: {error:?}");
        };
        assert!(
            matches!(
                cause,
                MigrateError::VersionMismatch(5)
                    | MigrateError::Dirty(13)
                    | MigrateError::VersionMissing(99)
            ) && format!("{cause:?}") == expected,
            "{tamper}: {cause:?}"
        );
        assert_eq!(migration_rows(&Connection::open(&path).unwrap()), before);
    }
}

/// A writer waiting for the write lock that another process holds waits on
/// a blocking thread: the runtime (one thread here) keeps running its other
/// tasks, and the writer goes on once the lock is released.
#[tokio::test]
async fn a_writer_waiting_for_another_process_leaves_the_runtime_running() {
    let (dir, storage) = fresh().await;
    let other = raw(&dir);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = tokio::spawn({
        let storage = storage.clone();
        async move {
            let mut tx = storage.begin().await?;
            let row = tx
                .append_audit(conformance::chained(b"after the wait".to_vec()))
                .await?;
            tx.commit().await?;
            Ok::<_, Error>(row.sequence)
        }
    });
    // Were the writer waiting on this thread, this sleep would end only
    // when the busy timeout does, and the lock would never be released in
    // time.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writer.is_finished());
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(writer.await.unwrap().unwrap(), 1);
}

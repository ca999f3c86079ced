//! The conformance suite on a real PostgreSQL server, run as the
//! least-privileged service role, plus the privilege and trigger checks only
//! PostgreSQL has. Each test starts its own throwaway cluster (feature
//! `test-support`) and stops it when it ends, also on panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.
#![allow(clippy::print_stderr)] // Per-case progress, like libtest's own lines.

mod conformance;

use shardkeep_storage::test_support::{OWNER_ROLE, PostgresCluster, SERVICE_ROLE};
use shardkeep_storage::{AuditStore, Error, PostgresStorage, Storage};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn conformance_on_postgres() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let failures = runtime().block_on(async {
        let mut failures = Vec::new();
        macro_rules! postgres_cases {
            ($($case:ident),* $(,)?) => {
                $(
                    let database = cluster.create_database(stringify!($case)).await.unwrap();
                    let storage = PostgresStorage::connect(&database.service_url).await.unwrap();
                    // A panicking case fails its task, not the whole run.
                    let outcome = tokio::spawn(conformance::$case(storage.clone())).await;
                    storage.close().await;
                    if outcome.is_ok() {
                        eprintln!("postgres conformance {} ... ok", stringify!($case));
                    } else {
                        eprintln!("postgres conformance {} ... FAILED", stringify!($case));
                        failures.push(stringify!($case));
                    }
                )*
            };
        }
        for_each_case!(postgres_cases);
        failures
    });
    assert!(
        failures.is_empty(),
        "conformance cases failed on PostgreSQL: {failures:?}"
    );
}

#[test]
fn postgres_refuses_changes_and_unmigrated_schemas() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        // The service never migrates: an empty database is refused.
        cluster
            .psql(
                "postgres",
                &format!("CREATE DATABASE empty OWNER {OWNER_ROLE}"),
            )
            .unwrap();
        assert!(matches!(
            PostgresStorage::connect(&cluster.url(SERVICE_ROLE, "empty")).await,
            Err(Error::SchemaOutdated { found: None, .. })
        ));
        // ...and the service role cannot migrate it either.
        assert!(matches!(
            PostgresStorage::migrate(&cluster.url(SERVICE_ROLE, "empty")).await,
            Err(Error::Migration(_))
        ));

        let database = cluster.create_database("evidence").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        conformance::with_three_audit_records(&storage).await;
        storage.close().await;
    });
    let db = "evidence";
    let snapshot = || {
        cluster
            .psql(db, "SELECT string_agg(sequence || ':' || encode(record, 'hex'), ',' ORDER BY sequence) FROM audit_log")
            .unwrap()
    };
    let before = snapshot();
    assert_eq!(before, "1:00,2:01,3:02");

    // The service role: no UPDATE, DELETE or TRUNCATE at all.
    for sql in [
        "UPDATE audit_log SET record = '\\x00' WHERE sequence = 2",
        "DELETE FROM audit_log WHERE sequence = 3",
        "TRUNCATE audit_log",
        "UPDATE audit_checkpoints_v2 SET checkpoint = '\\x00'",
        "DELETE FROM audit_checkpoints_v2",
        "TRUNCATE audit_checkpoints_v2",
        "UPDATE audit_log_identity SET log_id = '\\x00'",
        "DELETE FROM audit_log_identity",
        "INSERT INTO audit_log_identity VALUES (false, '\\x00')",
        "INSERT INTO audit_checkpoints_v2 (id, sequence, head_hash, checkpoint) \
         OVERRIDING SYSTEM VALUE SELECT 100, 3, hash, '\\x01' FROM audit_log WHERE sequence = 3",
        "SELECT shardkeep_grant_audit_checkpoints('shardkeep_service')",
        "DELETE FROM share_slots",
        "DELETE FROM key_versions",
        "UPDATE share_slots SET envelope_id = '\\x00'",
        "SELECT shardkeep_grant_service('shardkeep_service')",
    ] {
        let error = cluster
            .psql_as(SERVICE_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("permission denied"), "{sql}: {error}");
    }
    // The owner holds the privileges, but the triggers refuse.
    for sql in [
        "UPDATE audit_log SET record = '\\x00' WHERE sequence = 2",
        "DELETE FROM audit_log WHERE sequence = 3",
        "TRUNCATE audit_log",
        "TRUNCATE audit_checkpoints",
        "UPDATE audit_checkpoints_v2 SET checkpoint = '\\x00'",
        "DELETE FROM audit_checkpoints_v2",
        "TRUNCATE audit_checkpoints_v2",
        "UPDATE audit_log_identity SET log_id = '\\x00'",
        "DELETE FROM audit_log_identity",
        "TRUNCATE audit_log_identity",
    ] {
        let error = cluster
            .psql_as(OWNER_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    // Nobody inserts around the chain: a gap, a fork, a wrong link.
    for sql in [
        "INSERT INTO audit_log VALUES (5, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), '\\x01')",
        "INSERT INTO audit_log VALUES (3, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), '\\x01')",
        "INSERT INTO audit_log VALUES (4, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), '\\x01')",
    ] {
        for role in [SERVICE_ROLE, OWNER_ROLE] {
            let error = cluster.psql_as(role, db, sql).unwrap_err().to_string();
            assert!(
                error.contains("does not extend head"),
                "{role} {sql}: {error}"
            );
        }
    }
    assert_eq!(snapshot(), before);
}

#[test]
fn postgres_refuses_checkpoints_off_the_chain() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let db = "anchored";
    let log_id = runtime().block_on(async {
        let database = cluster.create_database(db).await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        conformance::with_three_audit_records(&storage).await;
        let mut tx = storage.begin_read_only().await.unwrap();
        let log_id = tx.audit_log_id().await.unwrap();
        drop(tx);
        storage.close().await;
        log_id
    });
    let count = || {
        cluster
            .psql(db, "SELECT count(*) FROM audit_checkpoints_v2")
            .unwrap()
    };
    assert_eq!(count(), "1");
    // Both roles may insert checkpoint rows; the trigger takes only rows
    // naming a head on the chain, and the v1 table takes none.
    for role in [SERVICE_ROLE, OWNER_ROLE] {
        for (sql, refusal) in [
            (
                "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
                 SELECT 9, hash, '\\x01' FROM audit_log WHERE sequence = 3",
                "beyond the audit head",
            ),
            (
                "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
                 VALUES (2, decode(repeat('00', 32), 'hex'), '\\x01')",
                "not the audit hash",
            ),
            (
                "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
                 SELECT 0, hash, '\\x01' FROM audit_log WHERE sequence = 1",
                "not the audit hash",
            ),
            (
                "INSERT INTO audit_checkpoints VALUES (2, '\\x01')",
                "v1 checkpoints only",
            ),
        ] {
            let error = cluster.psql_as(role, db, sql).unwrap_err().to_string();
            assert!(error.contains(refusal), "{role} {sql}: {error}");
        }
    }
    assert_eq!(count(), "1");
    // A row on the chain goes in, beside another of the same sequence.
    cluster
        .psql_as(
            SERVICE_ROLE,
            db,
            "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) \
             SELECT 3, hash, '\\x02' FROM audit_log WHERE sequence = 3",
        )
        .unwrap();
    assert_eq!(count(), "2");
    assert_eq!(
        cluster
            .psql(db, "SELECT encode(log_id, 'hex') FROM audit_log_identity")
            .unwrap(),
        log_id.to_string()
    );
}

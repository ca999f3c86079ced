//! The conformance suite on a real PostgreSQL server, run as the
//! least-privileged service role, plus the privilege and trigger checks only
//! PostgreSQL has. Each test starts its own throwaway cluster (feature
//! `test-support`) and stops it when it ends, also on panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.
#![allow(clippy::print_stderr)] // Per-case progress, like libtest's own lines.

use shardkeep_storage::conformance;
use shardkeep_storage::test_support::{OWNER_ROLE, PostgresCluster, SERVICE_ROLE};
use std::sync::Mutex;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::time::{Duration, Instant};

use shardkeep_storage::{
    AccessControlStore, AnomalyRecord, AuditStore, DEFAULT_ACQUIRE_TIMEOUT, DurabilityPolicy,
    Error, GroupStore, PostgresOptions, PostgresStorage, SealedShareStore, Storage, Transaction,
};
use shardkeep_test_support::runtime::multi_thread as runtime;
use shardkeep_types::FreeText;

/// The number of the newest migration file: the version `connect` needs.
fn latest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().parse::<i64>().unwrap()
        })
        .max()
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
        shardkeep_storage::for_each_conformance_case!(postgres_cases);
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
            Err(Error::SchemaOutdated {
                found: None,
                expected,
            }) if expected == latest_migration()
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
        conformance::with_destroyed_slot_kek(&storage).await;
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
        "DELETE FROM slot_keks",
        "TRUNCATE slot_keks",
        "UPDATE slot_keks SET kek_id = 'kek-b'",
        "UPDATE slot_keks SET fingerprint = '\\x00'",
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
    // A destroyed KEK stays destroyed, and its record stays.
    for sql in [
        "UPDATE slot_keks SET destroyed_at = NULL",
        "UPDATE slot_keks SET destroyed_at = destroyed_at + 1",
    ] {
        for role in [SERVICE_ROLE, OWNER_ROLE] {
            let error = cluster.psql_as(role, db, sql).unwrap_err().to_string();
            assert!(
                error.contains("only a live KEK may be marked destroyed"),
                "{role} {sql}: {error}"
            );
        }
    }
    for sql in ["DELETE FROM slot_keks", "TRUNCATE slot_keks"] {
        let error = cluster
            .psql_as(OWNER_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is refused"), "{sql}: {error}");
    }
    assert_eq!(
        cluster
            .psql(db, "SELECT kek_id || ':' || destroyed_at FROM slot_keks")
            .unwrap(),
        "kek-a:1800000000002"
    );
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

/// With the database down, `begin` fails within the acquire timeout with a
/// typed error (the driver's default made it hang for 30 s), and so does a
/// new connection.
#[test]
fn begin_fails_fast_while_the_database_is_down() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        let database = cluster.create_database("down").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        storage.begin().await.unwrap().commit().await.unwrap();
        cluster.stop().unwrap();

        let deadline = DEFAULT_ACQUIRE_TIMEOUT + Duration::from_secs(3);
        for read_only in [false, true] {
            let started = Instant::now();
            let result = if read_only {
                storage.begin_read_only().await
            } else {
                storage.begin().await
            };
            let waited = started.elapsed();
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::DatabaseUnavailable { .. }),
                "{error:?}"
            );
            assert!(waited < deadline, "waited {waited:?} before {error:?}");
        }

        let mut options = PostgresOptions::default();
        options.acquire_timeout = Duration::from_millis(500);
        let started = Instant::now();
        let error = PostgresStorage::connect_with(&database.service_url, &options)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::DatabaseUnavailable { .. }),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

/// A server with `fsync` or `synchronous_commit` off can lose committed
/// transactions in a crash: the service refuses it, or only warns when
/// configured to.
#[test]
fn connect_refuses_a_server_that_may_lose_commits() {
    static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    fn warn(error: &Error) {
        WARNINGS.lock().unwrap().push(error.to_string());
    }

    let cluster = PostgresCluster::start_with_settings(&[("fsync", "off")])
        .expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        let database = cluster.create_database("fsync_off").await.unwrap();
        let error = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::NotDurable { setting: "fsync", value } if value == "off"),
            "{error:?}"
        );

        // synchronous_commit, set for the service role alone.
        cluster
            .psql(
                "postgres",
                &format!("ALTER ROLE {SERVICE_ROLE} SET synchronous_commit = off"),
            )
            .unwrap();
        let mut options = PostgresOptions::default();
        options.durability = DurabilityPolicy::Warn(warn);
        let storage = PostgresStorage::connect_with(&database.service_url, &options)
            .await
            .unwrap();
        storage.begin().await.unwrap().commit().await.unwrap();
        storage.close().await;
        assert_eq!(
            *WARNINGS.lock().unwrap(),
            [
                "PostgreSQL setting fsync = off can lose committed transactions",
                "PostgreSQL setting synchronous_commit = off can lose committed transactions"
            ]
        );
    });

    // The test cluster itself runs durable, as production must.
    let durable = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let settings = durable
        .psql(
            "postgres",
            "SELECT current_setting('fsync') || ',' || current_setting('synchronous_commit') \
             || ',' || current_setting('full_page_writes')",
        )
        .unwrap();
    assert_eq!(settings, "on,on,on");
}

/// Storage refuses a row whose columns and envelope disagree (changed by
/// the owner behind its back), rather than hand out a share the columns
/// misdescribe.
#[test]
fn load_refuses_a_row_whose_columns_and_envelope_disagree() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        let database = cluster.create_database("tampered").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        conformance::with_shares(&storage).await;
        cluster
            .psql_as(
                OWNER_ROLE,
                "tampered",
                "CREATE TABLE share_slots_copy AS SELECT * FROM share_slots WHERE share_index = 1",
            )
            .unwrap();
        for (tamper, column) in [
            (
                "UPDATE share_slots SET kek_id = 'kek-other' WHERE share_index = 1",
                "kek_id",
            ),
            (
                "UPDATE share_slots SET envelope_id = \
                 (SELECT envelope_id FROM share_slots WHERE share_index = 2) WHERE share_index = 1",
                "envelope_id",
            ),
            (
                "UPDATE share_slots SET envelope = \
                 (SELECT envelope FROM share_slots WHERE share_index = 2) WHERE share_index = 1",
                "envelope",
            ),
            (
                "UPDATE share_slots SET envelope = substring(envelope FROM 2) \
                 WHERE share_index = 1",
                "envelope",
            ),
        ] {
            cluster.psql_as(OWNER_ROLE, "tampered", tamper).unwrap();
            conformance::assert_load_refuses_row(&storage, column).await;
            cluster
                .psql_as(
                    OWNER_ROLE,
                    "tampered",
                    "UPDATE share_slots SET (kek_id, envelope, envelope_id) = \
                     (SELECT kek_id, envelope, envelope_id FROM share_slots_copy) \
                     WHERE share_index = 1",
                )
                .unwrap();
            let mut tx = storage.begin_read_only().await.unwrap();
            assert_eq!(
                tx.load_sealed_share(&conformance::slot("node-a", 1, 1))
                    .await
                    .unwrap(),
                conformance::sealed(&conformance::slot("node-a", 1, 1))
            );
        }
        storage.close().await;
    });
}

/// Upgrading a version 1 database (shares with a `wrapped_key` column)
/// keeps its shares and their access log, and refuses to run while a row
/// re-wrapped by a version 1 build holds the only copy of its wrapped key in
/// the column that goes away.
#[test]
fn upgrade_keeps_shares_and_refuses_to_strand_a_wrapped_key() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    runtime().block_on(async {
        for stranded in [false, true] {
            let name = if stranded { "stranded" } else { "intact" };
            cluster
                .psql(
                    "postgres",
                    &format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"),
                )
                .unwrap();
            let owner_url = cluster.url(OWNER_ROLE, name);
            let pool = PgPool::connect(&owner_url).await.unwrap();
            let version_1 = tempfile::tempdir().unwrap();
            std::fs::copy(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/migrations/postgres/0001_initial.sql"
                ),
                version_1.path().join("0001_initial.sql"),
            )
            .unwrap();
            Migrator::new(version_1.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            let (kek_id, wrapped_key, envelope, envelope_id) = conformance::version_1_row(stranded);
            sqlx::query(
                "INSERT INTO key_versions VALUES ('wallet-1', 'node-a', 1, 3, 5, 0, 'active', \
                 NULL, NULL, NULL)",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO share_slots (key_id, node_id, version, share_index, kek_id, \
                 wrapped_key, envelope, envelope_id, stored_at, state) \
                 VALUES ('wallet-1', 'node-a', 1, 1, $1, $2, $3, $4, 1800000000010, 'active')",
            )
            .bind(kek_id)
            .bind(wrapped_key.clone())
            .bind(envelope)
            .bind(envelope_id)
            .execute(&pool)
            .await
            .unwrap();
            for sql in [
                "INSERT INTO share_access_log (key_id, node_id, version, share_index, accessor, \
                 purpose, accessed_at) VALUES ('wallet-1', 'node-a', 1, 1, 'ops.alice', \
                 'recover', 1)",
                "INSERT INTO custody_map VALUES ('wallet-1', 'node-a', 1, 3, 'escrow-co', \
                 'Escrow <security@escrow-co.example>', '\\x01', 1800000000020, NULL)",
                "INSERT INTO deliveries (key_id, node_id, version, share_index, custodian_id, \
                 envelope_id, outcome, failure_reason, recorded_at) VALUES ('wallet-1', \
                 'node-a', 1, 3, 'escrow-co', decode(repeat('00', 32), 'hex'), 'failed', \
                 'courier lost it', 1800000000030)",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;

            let result = PostgresStorage::migrate(&owner_url).await;
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
                assert_eq!(
                    cluster
                        .psql(name, "SELECT encode(wrapped_key, 'hex') FROM share_slots")
                        .unwrap(),
                    hex::encode(&wrapped_key)
                );
            } else {
                result.unwrap();
                PostgresStorage::grant_service_role(&owner_url, SERVICE_ROLE)
                    .await
                    .unwrap();
                let storage = PostgresStorage::connect(&cluster.url(SERVICE_ROLE, name))
                    .await
                    .unwrap();
                conformance::assert_version_1_share_migrated(&storage).await;
                storage.close().await;
                assert!(
                    cluster
                        .psql(name, "SELECT wrapped_key FROM share_slots")
                        .is_err()
                );
            }
        }
    });
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

/// The backup evidence (registry, policies, split references, custody,
/// inventory proofs, anomalies): the service role may not delete or
/// truncate it, nor update anything but state columns, and the guard
/// triggers hold the owner to the same; rate counters only count up.
#[test]
fn postgres_keeps_backup_evidence() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let db = "backup_evidence";
    let database = runtime().block_on(cluster.create_database(db)).unwrap();
    let storage = || async {
        PostgresStorage::connect(&database.service_url)
            .await
            .unwrap()
    };
    let before = runtime().block_on(async {
        let storage = storage().await;
        conformance::with_backup_evidence(&storage).await;
        let before = conformance::backup_evidence(&storage).await;
        storage.close().await;
        before
    });
    // The service role: no DELETE, TRUNCATE, or UPDATE outside the state
    // columns, no identity columns, no grant function.
    for sql in [
        "DELETE FROM persons",
        "TRUNCATE persons",
        "UPDATE persons SET display_name = 'x'",
        "UPDATE persons SET registered_by = 'x'",
        "DELETE FROM person_keys",
        "UPDATE person_keys SET receipt_key = NULL",
        "UPDATE entities SET contact = 'x'",
        "DELETE FROM entities",
        "DELETE FROM entity_members",
        "UPDATE entity_members SET person_id = person_id",
        "UPDATE groups SET parties = 9",
        "DELETE FROM groups",
        "UPDATE policies SET encoding = '\\x00'",
        "DELETE FROM policies",
        "INSERT INTO policies (id, hash, encoding, set_at, set_by) OVERRIDING SYSTEM VALUE \
         SELECT 99, hash, encoding, set_at, set_by FROM policies LIMIT 1",
        "UPDATE split_references SET server_shares = 0",
        "DELETE FROM split_references",
        "UPDATE key_versions SET threshold = 2",
        "UPDATE key_versions SET created_by = 'x'",
        "DELETE FROM custody_map",
        "DELETE FROM inventory_challenges",
        "UPDATE inventory_challenges SET expires_at = 0",
        "UPDATE inventory_proofs SET proof = '\\x00'",
        "DELETE FROM inventory_proofs",
        "UPDATE anomalies SET detail = 'x'",
        "DELETE FROM anomalies",
        "TRUNCATE anomalies",
        "DELETE FROM rate_counters",
        "SELECT shardkeep_grant_backup('shardkeep_service')",
    ] {
        let error = cluster
            .psql_as(SERVICE_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("permission denied"), "{sql}: {error}");
    }
    // What the service role may update, the triggers still hold to the
    // rules: an ended key epoch stays ended, the key epoch only grows, a
    // challenge is consumed once, a counter only counts up.
    for (sql, refusal) in [
        (
            "UPDATE person_keys SET valid_until = NULL WHERE valid_until IS NOT NULL",
            "append-only",
        ),
        ("UPDATE persons SET key_epoch = 1", "never change"),
        (
            "UPDATE persons SET state = 'active', revoked_at = NULL, revoked_by = NULL, \
             revoke_reason = NULL WHERE state = 'revoked'",
            "never change",
        ),
        (
            "UPDATE inventory_challenges SET consumed_at = NULL",
            "consumed, once",
        ),
        (
            "UPDATE rate_counters SET count = count - 1",
            "only count up",
        ),
    ] {
        for role in [SERVICE_ROLE, OWNER_ROLE] {
            let error = cluster.psql_as(role, db, sql).unwrap_err().to_string();
            assert!(error.contains(refusal), "{role} {sql}: {error}");
        }
    }
    // The owner holds the privileges, but the triggers refuse.
    for (sql, refusal) in [
        ("DELETE FROM persons", "is refused"),
        ("TRUNCATE persons CASCADE", "is refused"),
        ("UPDATE persons SET display_name = 'x'", "never change"),
        ("DELETE FROM person_keys", "is refused"),
        ("UPDATE person_keys SET receipt_key = NULL", "append-only"),
        ("DELETE FROM entities", "is refused"),
        ("UPDATE entities SET contact = 'x'", "never change"),
        ("DELETE FROM entity_members", "is refused"),
        ("UPDATE groups SET parties = 9", "is refused"),
        ("TRUNCATE groups", "is refused"),
        ("UPDATE policies SET encoding = '\\x00'", "is refused"),
        ("DELETE FROM policies", "is refused"),
        (
            "UPDATE split_references SET server_shares = 0",
            "is refused",
        ),
        ("UPDATE key_versions SET threshold = 2", "never change"),
        ("DELETE FROM custody_map", "is refused"),
        ("TRUNCATE inventory_challenges CASCADE", "is refused"),
        ("UPDATE inventory_proofs SET proof = '\\x00'", "is refused"),
        ("DELETE FROM anomalies", "is refused"),
        ("TRUNCATE anomalies", "is refused"),
    ] {
        let error = cluster
            .psql_as(OWNER_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains(refusal), "{sql}: {error}");
    }
    let after = runtime().block_on(async {
        let storage = storage().await;
        let after = conformance::backup_evidence(&storage).await;
        storage.close().await;
        after
    });
    assert_eq!(after, before);
}

/// Recovery sessions behind storage's back: the service role may not
/// delete or change a session's identity columns; what it may update, the
/// trigger holds to the rules; the owner cannot delete either; at most one
/// open session per version.
#[test]
fn postgres_keeps_recovery_sessions() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let db = "recovery_sessions";
    let database = runtime().block_on(cluster.create_database(db)).unwrap();
    let storage = || async {
        PostgresStorage::connect(&database.service_url)
            .await
            .unwrap()
    };
    let before = runtime().block_on(async {
        let storage = storage().await;
        conformance::with_recovery_sessions(&storage).await;
        let before = conformance::recovery_sessions(&storage).await;
        storage.close().await;
        before
    });
    for sql in [
        "DELETE FROM recovery_sessions",
        "TRUNCATE recovery_sessions",
        "UPDATE recovery_sessions SET replica = 'r9'",
        "UPDATE recovery_sessions SET split_id = '\\x00'",
        "SELECT shardkeep_grant_recovery_sessions('shardkeep_service')",
    ] {
        let error = cluster
            .psql_as(SERVICE_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("permission denied"), "{sql}: {error}");
    }
    for sql in [
        "UPDATE recovery_sessions SET closed_at = NULL, outcome = NULL \
         WHERE closed_at IS NOT NULL",
        "UPDATE recovery_sessions SET idle_expires_at = idle_expires_at + 1 \
         WHERE closed_at IS NOT NULL",
    ] {
        for role in [SERVICE_ROLE, OWNER_ROLE] {
            let error = cluster.psql_as(role, db, sql).unwrap_err().to_string();
            assert!(
                error.contains("only an open session changes"),
                "{role} {sql}: {error}"
            );
        }
    }
    for (sql, refusal) in [
        ("DELETE FROM recovery_sessions", "is refused"),
        ("TRUNCATE recovery_sessions", "is refused"),
        (
            "UPDATE recovery_sessions SET started_by = 'x' WHERE closed_at IS NULL",
            "only an open session changes",
        ),
        (
            "INSERT INTO recovery_sessions (id, key_id, node_id, version, split_id, operation, \
             request_hash, replica, started_by, started_at, expires_at, idle_expires_at) \
             SELECT decode(repeat('00', 16), 'hex'), key_id, node_id, version, split_id, \
             operation, request_hash, replica, started_by, started_at, expires_at, \
             idle_expires_at FROM recovery_sessions WHERE closed_at IS NULL",
            "recovery_sessions_one_open",
        ),
    ] {
        let error = cluster
            .psql_as(OWNER_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains(refusal), "{sql}: {error}");
    }
    let after = runtime().block_on(async {
        let storage = storage().await;
        let after = conformance::recovery_sessions(&storage).await;
        storage.close().await;
        after
    });
    assert_eq!(after, before);
}

/// A missing privilege (SQLSTATE 42501) and a guard trigger's refusal
/// reach the service as `Error::PrivilegeViolation` (so it can record an
/// anomaly); a full rate counter as `Error::CounterExhausted`.
#[test]
fn privilege_violations_are_typed() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let db = "privileges";
    let database = runtime().block_on(cluster.create_database(db)).unwrap();
    for sql in [
        // A grant the service lost...
        format!("REVOKE INSERT ON anomalies FROM {SERVICE_ROLE}"),
        // ...and a guard trigger on a table it may write.
        "CREATE TRIGGER test_refuse_policies BEFORE INSERT ON policies \
         FOR EACH ROW EXECUTE FUNCTION shardkeep_refuse_change()"
            .to_owned(),
    ] {
        cluster.psql_as(OWNER_ROLE, db, &sql).unwrap();
    }
    runtime().block_on(async {
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let mut tx = storage.begin().await.unwrap();
        let error = tx
            .record_anomaly(&AnomalyRecord {
                kind: conformance::label("probe"),
                person: None,
                slot: None,
                at: conformance::at(1),
                detail: FreeText::new("x").unwrap(),
            })
            .await
            .unwrap_err();
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
        assert!(matches!(tx.commit().await, Err(Error::TransactionAborted)));
        let mut tx = storage.begin().await.unwrap();
        let error = tx.set_policy(&conformance::policy()).await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::PrivilegeViolation {
                    operation: "policies",
                    ..
                }
            ),
            "{error:?}"
        );
        drop(tx);

        let alice = conformance::actor("ops.alice");
        let reads = conformance::label("share-read");
        let mut tx = storage.begin().await.unwrap();
        tx.bump_rate_counter(&alice, &reads, conformance::at(0))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        cluster
            .psql_as(
                OWNER_ROLE,
                db,
                "UPDATE rate_counters SET count = 4294967295",
            )
            .unwrap();
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            tx.bump_rate_counter(&alice, &reads, conformance::at(0))
                .await,
            Err(Error::CounterExhausted { counter: "rate" })
        ));
        drop(tx);
        storage.close().await;
    });
}

/// Audit reviews behind storage's back: the service role may only add and
/// read them; the owner cannot change or delete them either.
#[test]
fn postgres_keeps_audit_reviews() {
    use shardkeep_storage::AuditReviewStore as _;
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let db = "audit_reviews";
    let database = runtime().block_on(cluster.create_database(db)).unwrap();
    let review = conformance::audit_review(2, 5, 0xaa, "comp.carol", 1);
    let reviews = || async {
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let mut tx = storage.begin_read_only().await.unwrap();
        let stored = tx.audit_reviews(&review.range).await.unwrap();
        tx.rollback().await.unwrap();
        storage.close().await;
        stored
    };
    runtime().block_on(async {
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let mut tx = storage.begin().await.unwrap();
        tx.insert_audit_review(&review).await.unwrap();
        tx.commit().await.unwrap();
        storage.close().await;
    });
    for sql in [
        "DELETE FROM audit_reviews",
        "TRUNCATE audit_reviews",
        "UPDATE audit_reviews SET reviewer = 'comp.mallory'",
        "SELECT shardkeep_grant_audit_reviews('shardkeep_service')",
    ] {
        let error = cluster
            .psql_as(SERVICE_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("permission denied"), "{sql}: {error}");
    }
    for sql in ["DELETE FROM audit_reviews", "TRUNCATE audit_reviews"] {
        let error = cluster
            .psql_as(OWNER_ROLE, db, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is refused"), "{sql}: {error}");
    }
    let error = cluster
        .psql_as(
            OWNER_ROLE,
            db,
            "UPDATE audit_reviews SET reviewer = 'comp.mallory'",
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("is refused"), "{error}");
    assert_eq!(runtime().block_on(reviews()), std::slice::from_ref(&review));
}

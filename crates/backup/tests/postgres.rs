//! The backup service on a real, throwaway PostgreSQL cluster, connected as
//! the least-privileged service role: the end-to-end scenario, the inspect
//! scenarios of `tests/inspect.rs` (the same code, `common/inspect.rs`), and
//! a privilege violation recorded as an anomaly. Each test starts its own
//! cluster; a scenario run per tss-lib group gets a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Protocol;
use common::inspect::{Backed, anomalies, assert_anomaly_audited, backed};
use shardkeep_backup::{AnomalyKind, Error};
use shardkeep_storage::PostgresStorage;
use shardkeep_storage::test_support::{OWNER_ROLE, PostgresCluster, SERVICE_ROLE};

/// Runs `scenario` on fresh databases of one throwaway cluster, one per
/// name in `databases`, each with the service role's storage and a
/// temporary directory.
fn on_postgres(
    databases: &[&str],
    scenario: &impl AsyncFn(&PostgresCluster, &str, PostgresStorage, tempfile::TempDir),
) {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    for name in databases {
        runtime.block_on(async {
            let database = cluster.create_database(name).await.unwrap();
            let storage = PostgresStorage::connect(&database.service_url)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            scenario(&cluster, name, storage.clone(), dir).await;
            storage.close().await;
        });
    }
}

#[test]
fn end_to_end_on_postgres() {
    on_postgres(&["backup_ops"], &async |_, _, storage, dir| {
        common::scenario::end_to_end(storage, dir).await;
    });
}

/// One test per scenario that runs once.
macro_rules! once {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            on_postgres(&["inspect"], &async |_, _, storage, dir| {
                common::inspect::$name(storage, dir).await;
            });
        }
    )*};
}

/// One test per scenario that runs for each tss-lib group, each on a
/// database of its own.
macro_rules! per_protocol {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            on_postgres(&["ecdsa", "eddsa"], &async |_, database, storage, dir| {
                let protocol = match database {
                    "ecdsa" => Protocol::Ecdsa,
                    _ => Protocol::Eddsa,
                };
                common::inspect::$name(storage, dir, protocol).await;
            });
        }
    )*};
}

once!(
    status_and_listing,
    status_pages_are_capped,
    inventory_round_trip,
    inspect_calls_over_the_limit_are_refused_and_recorded,
);

per_protocol!(
    a_proof_for_another_nonce_never_verifies,
    a_proof_for_another_envelope_never_verifies,
    a_proof_from_another_container_is_refused,
    a_proof_for_another_index_never_verifies,
    a_proof_by_another_custodian_never_verifies,
    a_proof_naming_another_custodian_than_challenged_is_refused,
    a_proof_signed_with_another_key_never_verifies,
    a_reused_nonce_is_refused,
    an_expired_challenge_is_refused,
    two_proofs_for_two_nonces_have_different_nonce_points,
    repeated_bad_proofs_record_an_anomaly,
);

/// The database refuses a statement the service role may not run (its
/// INSERT grant on the inventory proofs was revoked): the operation fails
/// with the storage's privilege violation, which the service records as an
/// anomaly (an anomaly row and an audit record) in a transaction of its
/// own. The refused operation changed nothing: its challenge is still open,
/// and answers once the grant is back.
#[test]
fn a_privilege_violation_is_recorded_as_an_anomaly() {
    on_postgres(&["privileges"], &async |cluster, database, storage, dir| {
        let b: Backed<PostgresStorage> = backed(storage, dir, Protocol::Ecdsa).await;
        let challenge = b.challenge(0).await;
        let proof = b.prove(0, &challenge, 1).encode().unwrap();
        let grant = format!("INSERT ON inventory_proofs TO {SERVICE_ROLE}");
        let revoke = format!("REVOKE INSERT ON inventory_proofs FROM {SERVICE_ROLE}");
        cluster.psql_as(OWNER_ROLE, database, &revoke).unwrap();
        let records = b.h.audit_records().await.len();

        let error = b.submit(0, &proof).await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Storage(shardkeep_storage::Error::PrivilegeViolation {
                    operation: "inventory_proofs",
                    ..
                })
            ),
            "{error:?}"
        );
        assert_eq!(b.confirmed_at(0).await, None);
        let found = anomalies(&b.h).await;
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].kind.as_str(),
            AnomalyKind::PrivilegeViolation.name()
        );
        assert_eq!(found[0].person.as_ref(), Some(&b.custodians[0].person));
        assert!(
            found[0].detail.as_str().contains("inventory_proofs"),
            "{}",
            found[0].detail.as_str()
        );
        let after = b.h.audit_records().await;
        assert_eq!(after.len(), records + 1);
        assert_anomaly_audited(after.last().unwrap(), AnomalyKind::PrivilegeViolation);
        assert_eq!(after.last().unwrap().operator, b.custodians[0].person);

        cluster
            .psql_as(OWNER_ROLE, database, &format!("GRANT {grant}"))
            .unwrap();
        b.submit(0, &proof).await.unwrap();
        assert_eq!(b.confirmed_at(0).await, Some(b.h.clock_now()));
        assert_eq!(anomalies(&b.h).await.len(), 1);
    });
}

/// Every approval case on PostgreSQL, each in a fresh database.
#[test]
fn approvals_on_postgres() {
    use common::approvals::{self, Fixture};

    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    macro_rules! run {
        ($($case:ident),* $(,)?) => {
            $(
                runtime.block_on(async {
                    let database = cluster.create_database(stringify!($case)).await.unwrap();
                    let storage = PostgresStorage::connect(&database.service_url)
                        .await
                        .unwrap();
                    let dir = tempfile::tempdir().unwrap();
                    approvals::$case(Fixture::new(storage.clone(), dir).await).await;
                    storage.close().await;
                });
            )*
        };
    }
    run!(
        policy_change_with_approvals,
        missing_approval_is_refused,
        expired_approval_is_refused,
        replayed_approval_is_refused,
        self_approval_is_refused,
        same_approver_twice_is_refused,
        wrong_role_is_refused,
        revoked_approver_is_refused,
        bad_signature_is_refused,
        approval_for_other_parameters_is_refused,
        requests_are_checked_and_authorized,
    );
}

/// Recovery from four custodians (one server share) of whom one forges its
/// share, on PostgreSQL, both tss-lib groups.
#[test]
fn recovery_from_four_custodians_one_forged_on_postgres() {
    on_postgres(&["ecdsa", "eddsa"], &async |_, database, storage, dir| {
        let protocol = match database {
            "ecdsa" => Protocol::Ecdsa,
            _ => Protocol::Eddsa,
        };
        let fixture = common::approvals::Fixture::new(storage, dir).await;
        let recovery = common::recovery::Recovery::with_server_shares(fixture, protocol, 1).await;
        common::recovery::recovery_from_four_custodians_one_forged(recovery).await;
    });
}

/// Every recovery session case on PostgreSQL, both tss-lib groups, each in
/// a fresh database.
#[test]
fn recovery_sessions_on_postgres() {
    use common::approvals::Fixture;
    use common::recovery::{self, Recovery};

    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    macro_rules! run {
        ($($case:ident),* $(,)?) => {
            $(
                for (protocol, curve) in [(Protocol::Ecdsa, "ecdsa"), (Protocol::Eddsa, "eddsa")] {
                    runtime.block_on(async {
                        let name = format!("{}_{curve}", stringify!($case));
                        let database = cluster.create_database(&name).await.unwrap();
                        let storage = PostgresStorage::connect(&database.service_url)
                            .await
                            .unwrap();
                        let dir = tempfile::tempdir().unwrap();
                        let fixture = Fixture::new(storage.clone(), dir).await;
                        recovery::$case(Recovery::new(fixture, protocol).await).await;
                        storage.close().await;
                    });
                }
            )*
        };
    }
    run!(
        a_submission_with_many_stanzas_is_refused,
        a_missing_target_is_refused_before_approvals_are_used,
        drill_from_external_shares_only,
        a_drill_with_two_parties_secrets_loaded_is_refused,
        drills_under_a_pre_approved_schedule,
        a_server_share_in_a_drill_is_refused,
        recovery_with_server_shares,
        shares_of_anything_else_are_refused,
        a_session_starts_on_consumed_approvals,
        a_second_active_session_is_refused,
        an_expired_session_is_refused,
        a_session_on_another_replica_is_refused,
        the_custodian_checks_the_descriptor,
        recovery_attempts_are_rate_limited,
        a_call_during_the_finish_is_refused,
    );
}

/// A database of the throwaway cluster, changed as its superuser with the
/// append-only guards (triggers, foreign keys) off for the statement.
struct PostgresDatabase<'a> {
    cluster: &'a PostgresCluster,
    database: String,
}

impl common::checklist::Tamper for PostgresDatabase<'_> {
    async fn run(&self, _table: &str, sql: &str) {
        self.cluster
            .psql(
                &self.database,
                &format!("SET session_replication_role = replica; {sql}"),
            )
            .unwrap();
    }

    fn blob(&self, bytes: &[u8]) -> String {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    }
}

/// The checklist cases of `tests/checklist.rs` on PostgreSQL (ECDSA): the
/// complete version passes, then each removal of evidence, each on a
/// complete version of its own database, fails its item.
#[test]
fn checklists_on_postgres() {
    use common::approvals::Fixture;
    use common::checklist::{Removal, a_complete_version_passes, complete};
    let names: Vec<String> = std::iter::once("checklist".to_owned())
        .chain((0..Removal::ALL.len()).map(|i| format!("removal_{i}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    on_postgres(&names, &async |cluster, database, storage, dir| {
        let c = complete(Fixture::new(storage, dir).await, Protocol::Ecdsa).await;
        match database.strip_prefix("removal_") {
            None => a_complete_version_passes(&c).await,
            Some(i) => {
                let removal = Removal::ALL[i.parse::<usize>().unwrap()];
                let db = PostgresDatabase {
                    cluster,
                    database: database.to_owned(),
                };
                common::checklist::removal_fails_its_item(&c.r.f.h, &db, removal).await;
            }
        }
    });
}

/// Deletion and zero retention on PostgreSQL with the local key store,
/// each case in a fresh database.
#[test]
fn deletion_on_postgres() {
    use std::sync::Arc;

    use common::Harness;
    use common::deletion;
    use shardkeep_backup::ShredMethod;
    use shardkeep_kms::SlotKekProvider;

    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let harness = async |name: &str| {
        let database = cluster.create_database(name).await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        (Harness::build(storage.clone(), dir, |keks| keks), storage)
    };
    runtime.block_on(async {
        let (h, storage) = harness("zero_retention_end_to_end").await;
        let keks: Arc<dyn SlotKekProvider> = h.keks.clone();
        deletion::zero_retention_end_to_end(h, keks, ShredMethod::FileDelete).await;
        storage.close().await;
    });
    runtime.block_on(async {
        let database = cluster.create_database("after_a_real_drill").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        deletion::zero_retention_after_a_real_drill(storage.clone(), dir).await;
        storage.close().await;
    });
    macro_rules! run {
        ($($case:ident),* $(,)?) => {
            $(
                runtime.block_on(async {
                    let (h, storage) = harness(stringify!($case)).await;
                    deletion::$case(h).await;
                    storage.close().await;
                });
            )*
        };
    }
    run!(
        hard_delete_before_the_cooldown_is_refused,
        a_retired_versions_server_shares_are_hard_deleted,
        zero_retention_without_a_passed_drill_is_refused,
        zero_retention_with_fewer_than_t_receipts_is_refused,
        zero_retention_with_a_revoked_custodian_is_refused,
        zero_retention_with_an_open_session_is_refused,
        deletion_of_other_slots_is_refused,
        an_exposed_version_is_hard_deleted_at_once,
        a_hard_delete_whose_witness_failed_completes_when_run_again,
    );
}

/// Every audit review case on PostgreSQL, each in a fresh database; the
/// whole log verifies against its witness after each.
#[test]
fn audit_review_on_postgres() {
    use common::audit_review::{self, Fixture};

    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    macro_rules! run {
        ($($case:ident),* $(,)?) => {
            $(
                runtime.block_on(async {
                    let database = cluster.create_database(stringify!($case)).await.unwrap();
                    let storage = PostgresStorage::connect(&database.service_url)
                        .await
                        .unwrap();
                    let dir = tempfile::tempdir().unwrap();
                    audit_review::$case(Fixture::new(storage.clone(), dir).await).await;
                    storage.close().await;
                });
            )*
        };
    }
    run!(
        two_person_review_and_archive,
        second_reviewer_cannot_be_the_first,
        replayed_review_is_refused,
        revoked_reviewer_is_refused,
        range_not_on_the_log_is_refused,
        forged_or_misplaced_review_is_refused,
        archive_attacks_are_refused_offline,
    );
}

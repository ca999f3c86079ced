//! The backup service on a real, throwaway PostgreSQL cluster, connected as
//! the least-privileged service role: the end-to-end scenario and the
//! inspect scenarios of `tests/inspect.rs` (the same code,
//! `common/inspect.rs`). Each test starts its own cluster; a scenario run per
//! tss-lib group gets a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Protocol;
use shardkeep_storage::PostgresStorage;
use shardkeep_storage::test_support::PostgresCluster;

/// Runs `scenario` on fresh databases of one throwaway cluster, one per
/// name in `databases`, each with the service role's storage and a
/// temporary directory.
fn on_postgres(
    databases: &[&str],
    scenario: &impl AsyncFn(&PostgresCluster, &str, PostgresStorage, tempfile::TempDir),
) {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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

//! The end-to-end scenario on a real, throwaway PostgreSQL cluster, the
//! service connected as the least-privileged service role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use shardkeep_storage::PostgresStorage;
use shardkeep_storage::test_support::PostgresCluster;

#[test]
fn end_to_end_on_postgres() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let database = cluster.create_database("backup_ops").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        common::scenario::end_to_end(storage.clone(), dir).await;
        storage.close().await;
    });
}

/// Every approval case on PostgreSQL, each in a fresh database.
#[test]
fn approvals_on_postgres() {
    use common::approvals::{self, Fixture};

    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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

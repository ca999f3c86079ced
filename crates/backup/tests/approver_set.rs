//! Approver-set changes on SQLite and on a throwaway PostgreSQL cluster:
//! each refusal in its own test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::approvals::Fixture;
use common::approver_set;
use shardkeep_storage::test_support::PostgresCluster;
use shardkeep_storage::{PostgresStorage, SqliteStorage};

async fn on_sqlite() -> Fixture<SqliteStorage> {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    Fixture::new(storage, dir).await
}

fn on_postgres(case: &impl AsyncFn(Fixture<PostgresStorage>)) {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    runtime.block_on(async {
        let database = cluster.create_database("approvers").await.unwrap();
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        case(Fixture::new(storage.clone(), dir).await).await;
        storage.close().await;
    });
}

macro_rules! cases {
    ($($case:ident / $postgres:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                approver_set::$case(on_sqlite().await).await;
            }

            #[test]
            fn $postgres() {
                on_postgres(&async |fixture| approver_set::$case(fixture).await);
            }
        )*
    };
}

cases!(
    approver_set_change_without_quorum_is_refused
        / approver_set_change_without_quorum_is_refused_on_postgres,
    revoked_approvers_approval_is_refused / revoked_approvers_approval_is_refused_on_postgres,
);

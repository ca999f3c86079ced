//! Rotation on SQLite and on a throwaway PostgreSQL cluster, both tss-lib
//! groups, with a fixed clock: a reshare and a re-split each retired after
//! the cooldown, and each refusal in its own test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Protocol;
use common::approvals::Fixture;
use common::recovery::Recovery;
use common::rotation;
use shardkeep_storage::test_support::PostgresCluster;
use shardkeep_storage::{PostgresStorage, SqliteStorage};

async fn on_sqlite(protocol: Protocol) -> Recovery<SqliteStorage> {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    Recovery::new(Fixture::new(storage, dir).await, protocol).await
}

/// Runs `case` for both groups on fresh databases of one throwaway
/// PostgreSQL cluster.
fn on_postgres(case: &impl AsyncFn(Recovery<PostgresStorage>)) {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    for (protocol, name) in [(Protocol::Ecdsa, "ecdsa"), (Protocol::Eddsa, "eddsa")] {
        runtime.block_on(async {
            let database = cluster.create_database(name).await.unwrap();
            let storage = PostgresStorage::connect(&database.service_url)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let fixture = Fixture::new(storage.clone(), dir).await;
            case(Recovery::new(fixture, protocol).await).await;
            storage.close().await;
        });
    }
}

macro_rules! cases {
    ($($case:ident / $postgres:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
                    rotation::$case(on_sqlite(protocol).await).await;
                }
            }

            #[test]
            fn $postgres() {
                on_postgres(&async |recovery| rotation::$case(recovery).await);
            }
        )*
    };
}

cases!(
    reshare_rotation_retires_after_cooldown / reshare_rotation_retires_after_cooldown_on_postgres,
    resplit_rotation_retires_after_cooldown / resplit_rotation_retires_after_cooldown_on_postgres,
    a_rotation_during_a_rotation_is_refused / a_rotation_during_a_rotation_is_refused_on_postgres,
    recovery_of_a_retired_version_is_refused / recovery_of_a_retired_version_is_refused_on_postgres,
    drill_of_a_retired_version_is_refused / drill_of_a_retired_version_is_refused_on_postgres,
    shares_of_a_version_retired_mid_session_are_refused
        / shares_of_a_version_retired_mid_session_are_refused_on_postgres,
    destruction_statements_after_a_resplit / destruction_statements_after_a_resplit_on_postgres,
    no_destruction_statement_after_a_reshare / no_destruction_statement_after_a_reshare_on_postgres,
);

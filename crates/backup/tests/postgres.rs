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

//! The inspect operations of the backup service on SQLite, through the
//! service, with the tss-lib ECDSA and EdDSA fixtures: status and listing
//! and the inventory round trip. The scenarios are in `common/inspect.rs`;
//! `tests/postgres.rs` runs the same ones on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use shardkeep_storage::SqliteStorage;

async fn sqlite() -> (SqliteStorage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    (storage, dir)
}

/// One test per scenario that runs once.
macro_rules! once {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (storage, dir) = sqlite().await;
            common::inspect::$name(storage, dir).await;
        }
    )*};
}

once!(
    status_and_listing,
    status_pages_are_capped,
    inventory_round_trip,
);

//! Approvals on SQLite: the policy change under approvals, then every
//! refusal in its own test with its own error. `tests/postgres.rs` runs
//! the same cases on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::approvals::{self, Fixture};
use shardkeep_storage::SqliteStorage;

async fn fixture() -> Fixture<SqliteStorage> {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    Fixture::new(storage, dir).await
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                approvals::$case(fixture().await).await;
            }
        )*
    };
}

cases!(
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

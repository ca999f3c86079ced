//! Two-person review of the audit log on SQLite: the review and archive end
//! to end, every refusal with its own error, and the attacks on an archive
//! refused offline; the whole log verifies after each case.
//! `tests/postgres.rs` runs the same cases on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::audit_review::{self, Fixture};
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
                audit_review::$case(fixture().await).await;
            }
        )*
    };
}

cases!(
    two_person_review_and_archive,
    second_reviewer_cannot_be_the_first,
    replayed_review_is_refused,
    revoked_reviewer_is_refused,
    range_not_on_the_log_is_refused,
    forged_or_misplaced_review_is_refused,
    archive_attacks_are_refused_offline,
);

//! Recovery sessions on SQLite, both tss-lib groups: each case in its own
//! test with its own error. `tests/postgres.rs` runs the same cases on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Protocol;
use common::approvals::Fixture;
use common::recovery::{self, Recovery};
use shardkeep_storage::SqliteStorage;

async fn recovery(protocol: Protocol) -> Recovery<SqliteStorage> {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    Recovery::new(Fixture::new(storage, dir).await, protocol).await
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
                    recovery::$case(recovery(protocol).await).await;
                }
            }
        )*
    };
}

/// The recovery cases that need four custodians (one server share).
macro_rules! four_custodian_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
                    let dir = tempfile::tempdir().unwrap();
                    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
                        .await
                        .unwrap();
                    let fixture = Fixture::new(storage, dir).await;
                    recovery::$case(Recovery::with_server_shares(fixture, protocol, 1).await).await;
                }
            }
        )*
    };
}

four_custodian_cases!(recovery_from_four_custodians_one_forged);

cases!(
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

//! Deletion and zero retention on SQLite with the local key store (whose
//! certificate names its method as a file delete, not a crypto-shred), and
//! on a SoftHSM2 token (hsm-destroy). `tests/postgres.rs` runs the same
//! cases on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::Harness;
use common::deletion;
use shardkeep_backup::ShredMethod;
use shardkeep_kms::{Pin, Pkcs11Config, Pkcs11Token, SlotKekProvider};
use shardkeep_storage::SqliteStorage;
use shardkeep_test_support::softhsm;

async fn sqlite() -> (SqliteStorage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    (storage, dir)
}

async fn harness() -> Harness<SqliteStorage> {
    let (storage, dir) = sqlite().await;
    Harness::build(storage, dir, |keks| keks)
}

#[tokio::test]
async fn zero_retention_end_to_end_with_the_local_key_store() {
    let h = harness().await;
    let keks: Arc<dyn SlotKekProvider> = h.keks.clone();
    deletion::zero_retention_end_to_end(h, keks, ShredMethod::FileDelete).await;
}

/// The same on a SoftHSM2 token, in a child process with a token of its
/// own (see shardkeep-test-support's `softhsm`).
#[test]
fn zero_retention_end_to_end_with_softhsm() {
    softhsm::run_test(
        concat!(module_path!(), "::zero_retention_end_to_end_with_softhsm"),
        || {
            shardkeep_test_support::runtime::multi_thread().block_on(async {
                let token: Arc<dyn SlotKekProvider> = Arc::new(
                    Pkcs11Token::open(Pkcs11Config::new(
                        softhsm::module(),
                        softhsm::TOKEN_LABEL,
                        Pin::new(softhsm::USER_PIN.to_owned()),
                    ))
                    .expect("open the test token"),
                );
                let (storage, dir) = sqlite().await;
                let provider = token.clone();
                let h = Harness::build(storage, dir, move |_| provider);
                deletion::zero_retention_end_to_end(h, token, ShredMethod::HsmDestroy).await;
            });
        },
    );
}

#[tokio::test]
async fn zero_retention_after_a_real_drill() {
    let (storage, dir) = sqlite().await;
    deletion::zero_retention_after_a_real_drill(storage, dir).await;
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                deletion::$case(harness().await).await;
            }
        )*
    };
}

cases!(
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

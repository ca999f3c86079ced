//! The inspect operations of the backup service on SQLite, through the
//! service, with the tss-lib ECDSA and EdDSA fixtures: status and listing,
//! the inventory round trip, and every refusal in its own test with its own
//! error and the state after. The scenarios are in `common/inspect.rs`;
//! `tests/postgres.rs` runs the same ones on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Protocol;
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

/// One test per scenario that runs for each tss-lib group (ECDSA on
/// secp256k1, EdDSA on ed25519), each on a database of its own.
macro_rules! per_protocol {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for protocol in Protocol::ALL {
                let (storage, dir) = sqlite().await;
                common::inspect::$name(storage, dir, protocol).await;
            }
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

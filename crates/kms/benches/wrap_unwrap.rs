//! Wrap + unwrap of one data key, and one signature, with the local
//! key-file provider and (feature `pkcs11`) a SoftHSM2 token.
//!
//! With `pkcs11`, the bench re-runs itself against a fresh temporary token
//! (SoftHSM2 reads `SOFTHSM2_CONF` once per process; see
//! shardkeep-test-support's `softhsm`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the bench

#[cfg(feature = "pkcs11")]
#[path = "../tests/support/softhsm.rs"]
mod softhsm;

use std::hint::black_box;

use criterion::Criterion;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_types::ShareIndex;
use shardkeep_types::{
    DataKey, KekId, KeyEncryptionKey, KeyId, KeyVersion, NodeId, ShareSlot, Signer, SignerId,
};

fn slot() -> ShareSlot {
    ShareSlot {
        key_id: KeyId::new("bench-key").unwrap(),
        node_id: NodeId::new("bench-node").unwrap(),
        version: KeyVersion::new(1),
        index: ShareIndex::new(1).unwrap(),
    }
}

fn wrap_unwrap(kek: &dyn KeyEncryptionKey, data_key: &DataKey) -> DataKey {
    let wrapped = kek.wrap(data_key).unwrap();
    kek.unwrap(&wrapped).unwrap()
}

fn local(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        LocalKeyStore::create(dir.path().join("kms"), KekId::new("bench").unwrap()).unwrap();
    let kek = store.create_slot_kek(&slot()).unwrap();
    let signer =
        KeyFileSigner::create(dir.path().join("signer.key"), SignerId::new("s").unwrap()).unwrap();
    let data_key = DataKey::generate(&mut ChaCha20Rng::from_seed([1; 32]));
    c.benchmark_group("wrap_unwrap")
        .bench_function("local_key_file", |b| {
            b.iter(|| wrap_unwrap(&kek, black_box(&data_key)));
        });
    c.benchmark_group("sign_64_bytes")
        .bench_function("local_key_file", |b| {
            b.iter(|| signer.sign(black_box(&[7; 64])).unwrap());
        });
}

#[cfg(feature = "pkcs11")]
fn softhsm2(c: &mut Criterion) {
    let token = softhsm::open_token();
    let kek = token.create_slot_kek(&slot()).unwrap();
    let signer = token.generate_signer(SignerId::new("s").unwrap()).unwrap();
    let data_key = DataKey::generate(&mut ChaCha20Rng::from_seed([1; 32]));
    c.benchmark_group("wrap_unwrap")
        .bench_function("softhsm2", |b| {
            b.iter(|| wrap_unwrap(&kek, black_box(&data_key)));
        });
    c.benchmark_group("sign_64_bytes")
        .bench_function("softhsm2", |b| {
            b.iter(|| signer.sign(black_box(&[7; 64])).unwrap());
        });
}

fn main() {
    #[cfg(feature = "pkcs11")]
    if !softhsm::in_child() {
        let token = softhsm::TokenDir::create();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let status = token.command(&args).status().expect("re-run the bench");
        std::process::exit(status.code().unwrap_or(1));
    }
    let mut c = Criterion::default().configure_from_args();
    local(&mut c);
    #[cfg(feature = "pkcs11")]
    softhsm2(&mut c);
    c.final_summary();
}

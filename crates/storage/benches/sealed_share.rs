//! Store and load of a sealed share on the embedded SQLite default
//! (WAL, `synchronous=FULL`: every commit waits for fsync).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed bench setup should stop loudly.

use criterion::{Criterion, criterion_group, criterion_main};
use shardkeep_envelope::{
    ActorId, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion, Timestamp, WrappedKey,
};
use shardkeep_sss_core::{ShareIndex, Threshold};
use shardkeep_storage::{
    KeyVersionStore, SealedShare, SealedShareStore, ShareAccess, ShareAccessLog, SqliteStorage,
    Storage, Transaction,
};

fn version(node: u64) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet-1").unwrap(),
        node_id: NodeId::new(format!("node-{node}")).unwrap(),
        version: KeyVersion::new(1),
    }
}

fn share(node: u64) -> SealedShare {
    SealedShare {
        slot: version(node).slot(ShareIndex::new(1).unwrap()),
        kek_id: KekId::new("kek-1").unwrap(),
        wrapped_key: WrappedKey::new(vec![0xa5; 60]).unwrap(),
        // About the size of a signed, sealed 3-of-5 secp256k1 envelope.
        envelope: vec![0x42; 700],
        envelope_id: [7; 32],
        stored_at: Timestamp::now(),
    }
}

fn sealed_share(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = runtime
        .block_on(SqliteStorage::open(dir.path().join("bench.db")))
        .unwrap();
    let mut next = 0u64;
    let mut group = c.benchmark_group("sealed_share");

    group.bench_function("store (new version + share, one commit)", |b| {
        b.iter(|| {
            next += 1;
            runtime.block_on(async {
                let mut tx = storage.begin().await.unwrap();
                tx.create_key_version(
                    &version(next),
                    Threshold::new(3, 5).unwrap(),
                    Timestamp::now(),
                )
                .await
                .unwrap();
                tx.store_sealed_share(&share(next)).await.unwrap();
                tx.commit().await.unwrap();
            });
        });
    });

    let stored = next;
    let slot = share(stored).slot;
    group.bench_function("load (read-only)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tx = storage.begin_read_only().await.unwrap();
                let loaded = tx.load_sealed_share(&slot).await.unwrap();
                tx.rollback().await.unwrap();
                loaded
            })
        });
    });

    let accessor = ActorId::new("ops.alice").unwrap();
    let purpose = Label::new("recover").unwrap();
    group.bench_function("load + access log (one commit)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tx = storage.begin().await.unwrap();
                let loaded = tx.load_sealed_share(&slot).await.unwrap();
                tx.record_share_access(&ShareAccess {
                    slot: slot.clone(),
                    accessor: accessor.clone(),
                    purpose: purpose.clone(),
                    at: Timestamp::now(),
                })
                .await
                .unwrap();
                tx.commit().await.unwrap();
                loaded
            })
        });
    });
    group.finish();
}

criterion_group!(benches, sealed_share);
criterion_main!(benches);

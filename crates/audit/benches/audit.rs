//! Audit append on SQLite with `synchronous=FULL` (one record per commit,
//! and grouped commits of at most 64 records or 10 ms), and verification.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed bench setup should stop loudly.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardkeep_audit::{
    AuditRecord, Checkpoint, EventType, GroupCommitPolicy, GroupCommitter, append, verify,
};
use shardkeep_storage::{AuditHead, SqliteStorage, Storage, Transaction};
use shardkeep_types::{
    ActorId, FreeText, InMemorySigner, KeyId, NodeId, Signer, SignerId, Timestamp,
};

use common::{LOG, chain_from, export_of};

/// A typical record: a share read with key, node, index, envelope id.
fn record(i: u64) -> AuditRecord {
    let mut record = AuditRecord::new(
        EventType::ShareRead,
        Timestamp::from_unix_millis(1_800_000_000_000 + i).unwrap(),
        ActorId::new("ops.alice").unwrap(),
    );
    record.key_id = Some(KeyId::new("wallet-1").unwrap());
    record.node_id = Some(NodeId::new("node-a").unwrap());
    record.share_index = shardkeep_types::ShareIndex::new(2);
    record.envelope_id = Some([0xee; 32]);
    record.detail = Some(FreeText::new(format!("purpose recover, ticket INC-{i}")).unwrap());
    record
}

fn append_benches(c: &mut Criterion) {
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let dir = tempfile::tempdir().unwrap();
    let storage = runtime
        .block_on(SqliteStorage::open(dir.path().join("bench.db")))
        .unwrap();
    let mut group = c.benchmark_group("audit_append_sqlite_full");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);

    // One record per commit: the latency is one fsync'ed commit.
    let mut i = 0;
    group.bench_function("one record per commit", |b| {
        b.iter(|| {
            i += 1;
            runtime.block_on(async {
                let mut tx = storage.begin().await.unwrap();
                append(&mut tx, &record(i)).await.unwrap();
                tx.commit().await.unwrap();
            });
        });
    });

    // Grouped commits: 256 concurrent producers, at most 64 records or
    // 10 ms per commit.
    let committer =
        Arc::new(runtime.block_on(async {
            GroupCommitter::spawn(storage.clone(), GroupCommitPolicy::default())
        }));
    group.bench_function("grouped commits (<= 64 records or 10 ms)", |b| {
        b.iter_custom(|iters| {
            let committer = Arc::clone(&committer);
            runtime.block_on(async move {
                let producers = 256u64;
                let start = Instant::now();
                let tasks: Vec<_> = (0..producers)
                    .map(|p| {
                        let committer = Arc::clone(&committer);
                        tokio::spawn(async move {
                            let mut n = p;
                            while n < iters {
                                committer.append(&record(n)).await.unwrap();
                                n += producers;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn verify_bench(c: &mut Criterion) {
    const RECORDS: u64 = 10_000;
    let records: Vec<Vec<u8>> = (0..RECORDS).map(|i| record(i).encode().unwrap()).collect();
    let rows = chain_from(AuditHead::GENESIS, &records);
    let signer = InMemorySigner::from_seed(SignerId::new("audit").unwrap(), &[1; 32]);
    let witness: Vec<Checkpoint> = rows
        .iter()
        .filter(|row| row.sequence % 1000 == 0)
        .map(|row| {
            Checkpoint::sign(
                LOG,
                &AuditHead {
                    sequence: row.sequence,
                    hash: row.hash,
                },
                Timestamp::EPOCH,
                &signer,
            )
            .unwrap()
        })
        .collect();
    let key = signer.verifying_key();
    let export = export_of(&rows);
    let mut group = c.benchmark_group("audit_verify");
    group.throughput(Throughput::Elements(RECORDS));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("10k records, 10 checkpoints", |b| {
        b.iter(|| verify(&export, &witness, &key).unwrap());
    });
    group.finish();
}

criterion_group!(benches, append_benches, verify_bench);
criterion_main!(benches);

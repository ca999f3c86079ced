//! Store and load of a sealed share on the embedded SQLite default
//! (WAL, `synchronous=FULL`: every commit waits for fsync).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed bench setup should stop loudly.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{Binding, EnvelopeParams, archive_hash};
use shardkeep_sss_core::{Commitments, Curve, CurveId, Secp256k1, Secret, Share, Threshold, split};
use shardkeep_storage::{
    GroupRecord, GroupStore, KeyVersionStore, PolicyRecord, SealedShare, SealedShareStore,
    ShareAccess, ShareAccessLog, SplitReference, SqliteStorage, Storage, Transaction,
};
use shardkeep_types::{
    ActorId, InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion,
    SignerId, Timestamp,
};

/// The hash of the policy every version of the bench is made under.
const POLICY_HASH: [u8; 32] = [0x70; 32];

fn version(node: u64) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet-1").unwrap(),
        node_id: NodeId::new(format!("node-{node}")).unwrap(),
        version: KeyVersion::new(1),
    }
}

/// Seals share 1 of one 3-of-5 secp256k1 split for any node: a real
/// signed, sealed envelope, as storage checks it.
struct Sealer {
    commitments: Commitments<Secp256k1>,
    share: Share<Secp256k1>,
    signer: InMemorySigner,
    rng: ChaCha20Rng,
}

impl Sealer {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let secret = Secret::<Secp256k1>::random(&mut rng);
        let (commitments, mut shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
        Self {
            commitments,
            share: shares.swap_remove(0),
            signer: InMemorySigner::from_seed(SignerId::new("server-signer").unwrap(), &[3; 32]),
            rng,
        }
    }

    /// The group every node of the bench belongs to.
    fn group(&self) -> GroupRecord {
        let mut group_public_key = Vec::new();
        Secp256k1::encode_point(self.commitments.public_key(), &mut group_public_key);
        GroupRecord {
            key_id: KeyId::new("wallet-1").unwrap(),
            curve: CurveId::Secp256k1.to_u8(),
            group_public_key,
            tss_degree: 2,
            parties: 5,
            registered_at: Timestamp::now(),
        }
    }

    /// The split reference every version of the bench is created with.
    fn reference(&self) -> SplitReference {
        SplitReference {
            curve: CurveId::Secp256k1.to_u8(),
            split_id: *self.commitments.split_id().as_bytes(),
            commitments: self.commitments.to_bytes(),
            binding: b"binding".to_vec(),
            policy_hash: POLICY_HASH,
            server_shares: 2,
        }
    }

    fn share(&mut self, node: u64) -> SealedShare {
        let slot = version(node).slot(self.share.index());
        let mut group_key = Vec::new();
        Secp256k1::encode_point(self.commitments.public_key(), &mut group_key);
        let params = EnvelopeParams {
            node_version: version(node),
            created_at: Timestamp::now(),
            binding: Binding::new(
                CurveId::Secp256k1,
                group_key,
                vec![1],
                self.commitments.to_bytes()[..Secp256k1::POINT_LEN].to_vec(),
                archive_hash(b"archive"),
            )
            .unwrap(),
        };
        let kek =
            InMemoryKek::from_bytes_for_slot(KekId::new("kek-1").unwrap(), slot.clone(), &[5; 32]);
        let envelope = params
            .seal(
                &self.commitments,
                &self.share,
                &self.signer,
                &kek,
                &mut self.rng,
            )
            .unwrap();
        SealedShare {
            slot,
            envelope: envelope.as_bytes().to_vec(),
            stored_at: Timestamp::now(),
        }
    }
}

fn sealed_share(c: &mut Criterion) {
    let runtime = shardkeep_test_support::runtime::current_thread();
    let dir = tempfile::tempdir().unwrap();
    let storage = runtime
        .block_on(SqliteStorage::open(dir.path().join("bench.db")))
        .unwrap();
    let mut sealer = Sealer::new();
    let creator = ActorId::new("ops.alice").unwrap();
    runtime.block_on(async {
        let mut tx = storage.begin().await.unwrap();
        tx.register_group(&sealer.group()).await.unwrap();
        tx.set_policy(&PolicyRecord {
            hash: POLICY_HASH,
            encoding: b"3-of-5, 2 on the server".to_vec(),
            set_at: Timestamp::now(),
            set_by: creator.clone(),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    });
    let reference = sealer.reference();
    let mut next = 0u64;
    let mut group = c.benchmark_group("sealed_share");

    // Sealing is set-up, not measured: storage's work is the checks of the
    // envelope's frame and the commit.
    group.bench_function("store (new version + share, one commit)", |b| {
        b.iter_batched(
            || {
                next += 1;
                sealer.share(next)
            },
            |share| {
                runtime.block_on(async {
                    let mut tx = storage.begin().await.unwrap();
                    let threshold = Threshold::new(3, 5).unwrap();
                    tx.create_key_version(
                        &share.slot.node_version(),
                        threshold,
                        &reference,
                        &creator,
                        Timestamp::now(),
                    )
                    .await
                    .unwrap();
                    tx.store_sealed_share(&share).await.unwrap();
                    tx.commit().await.unwrap();
                });
            },
            BatchSize::SmallInput,
        );
    });

    let slot = version(next).slot(sealer.share.index());
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

//! Generate for one node (tss-lib ECDSA and EdDSA fixtures), on SQLite with
//! the local key store, and the parts it spends its time in, each timed
//! alone on the same inputs:
//!
//! - `generate`: the whole operation (authorization, checks, everything
//!   below, one write transaction, commit), save data already loaded;
//! - `keystore-load`: reading the node's `.keydata.enc` through its codec
//!   (when generate is given the keystore instead of loaded save data);
//! - `split`: Shamir 3-of-5 with Feldman commitments;
//! - `archive-seal`: sealing the protocol archive;
//! - `envelope-seal`: one server envelope (AES-256-GCM-SIV, data key
//!   wrapped by a slot KEK, Ed25519 signature);
//! - `envelope-plain`: one custodian envelope (Ed25519 signature);
//! - `envelope-self-check`: reading one envelope back (signature, share
//!   rules, binding), which generate does for every envelope it makes;
//! - `age-container`: one X25519 age container around a plain envelope and
//!   the archive;
//! - `kek-create`: one slot KEK in the local key store (a key file written
//!   and synced);
//! - `storage-commit`: the transaction generate writes (group, key version
//!   with its split reference, two KEK pins, two sealed shares, three
//!   custody entries, five audit records) and its commit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{Custodian, actor, deployment};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_audit::{AuditRecord, EventType, append};
use shardkeep_backup::{Armor, GenerateRequest, SaveDataSource, TssGroup, container_hash};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    ContainerRecipients, EnvelopeParams, TrustedSigners, VerifiedEnvelope, seal_container,
};
use shardkeep_keydata::{
    KekKeystoreCodec, LocalPartySaveData, WriteMode, load_keystore, write_keystore,
};
use shardkeep_kms::{LocalKeyStore, SlotKekProvider};
use shardkeep_sss_core::{Curve, Ed25519, Secp256k1, split};
use shardkeep_storage::{
    CustodyEntry, CustodyStore, GroupRecord, GroupStore, KeyVersionStore, SealedShare,
    SealedShareStore, SlotKekRecord, SlotKekStore, SplitReference, Storage, Transaction,
};
use shardkeep_test_support::tss_lib::{Protocol, fixture_bytes};
use shardkeep_types::{
    CustodianId, InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, NodeId, NodeVersion,
    ShareIndex, Signer, SignerId, Threshold, Timestamp,
};

/// Party 0's save data, through the workspace's one fixture loader.
fn fixture(protocol: Protocol) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&fixture_bytes(protocol, 0).unwrap()).unwrap()
}

fn node_version(key: &str, version: u32) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new(key).unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(version),
    }
}

fn whole_generate(c: &mut Criterion) {
    let setup = deployment(|_| {});
    let custodians: Vec<_> = setup.custodians.iter().map(Custodian::external).collect();
    let mut group = c.benchmark_group("generate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let mut counter = 0u32;
    for protocol in Protocol::ALL {
        let data = fixture(protocol);
        let name = protocol.dir();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A new group key each time: one node is generated once.
                    counter += 1;
                    let request = GenerateRequest {
                        key_id: KeyId::new(format!("{name}-{counter}")).unwrap(),
                        node_id: NodeId::new("node-0").unwrap(),
                        save_data: SaveDataSource::Loaded(&data),
                        group: TssGroup {
                            tss_degree: 2,
                            parties: 5,
                        },
                        custodians: custodians.clone(),
                        armor: Armor::Binary,
                    };
                    let start = Instant::now();
                    setup
                        .runtime
                        .block_on(setup.service.generate(&setup.operator, request))
                        .unwrap();
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate-parts");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let signer = InMemorySigner::from_seed(SignerId::new("backup-server").unwrap(), &[3; 32]);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer).unwrap();
    let recipient = age::x25519::Identity::generate().to_public();
    let recipients = ContainerRecipients::x25519(vec![recipient]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keks =
        LocalKeyStore::create(dir.path().join("kms"), KekId::new("master").unwrap()).unwrap();
    let threshold = Threshold::new(3, 5).unwrap();
    let id = node_version("parts", 1);
    let mut rng = ChaCha20Rng::from_seed([2; 32]);

    for protocol in Protocol::ALL {
        let data = fixture(protocol);
        let name = protocol.dir();
        let keystore_dir = tempfile::tempdir().unwrap();
        let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new("node").unwrap(),
            &[7; 32],
        ));
        let path = write_keystore(
            keystore_dir.path(),
            &id,
            &data,
            &codec,
            WriteMode::CreateNew,
        )
        .unwrap();
        group.bench_function(format!("keystore-load/{name}"), |b| {
            b.iter(|| load_keystore(&path, &id, &codec).unwrap());
        });
        let archive = data.seal_archive(&id).unwrap();
        group.bench_function(format!("archive-seal/{name}"), |b| {
            b.iter(|| data.seal_archive(&id).unwrap());
        });
        let binding = data.binding(&archive).unwrap();
        let params = EnvelopeParams {
            node_version: id.clone(),
            created_at: Timestamp::from_unix_seconds(1_767_225_600).unwrap(),
            binding: binding.clone(),
        };
        macro_rules! on_curve {
            ($curve:ty) => {{
                let xi = data.secret_share::<$curve>().unwrap();
                group.bench_function(format!("split/{name}"), |b| {
                    b.iter(|| split(&xi, threshold, &mut rng).unwrap());
                });
                let (commitments, shares) = split(&xi, threshold, &mut rng).unwrap().into_parts();
                let server_slot = id.slot(shares[0].index());
                let kek = InMemoryKek::for_slot(
                    KekId::new("slot").unwrap(),
                    server_slot.clone(),
                    &mut rng,
                );
                group.bench_function(format!("envelope-seal/{name}"), |b| {
                    b.iter(|| {
                        params
                            .seal(&commitments, &shares[0], &signer, &kek, &mut rng)
                            .unwrap()
                    });
                });
                group.bench_function(format!("envelope-plain/{name}"), |b| {
                    b.iter(|| params.plain(&commitments, &shares[2], &signer).unwrap());
                });
                let sealed = params
                    .seal(&commitments, &shares[0], &signer, &kek, &mut rng)
                    .unwrap();
                let plain = params.plain(&commitments, &shares[2], &signer).unwrap();
                let external_slot = id.slot(shares[2].index());
                group.bench_function(format!("envelope-self-check/sealed/{name}"), |b| {
                    b.iter(|| {
                        VerifiedEnvelope::decode_verify_bound(
                            sealed.as_bytes(),
                            &trusted,
                            &server_slot,
                            &binding,
                        )
                        .unwrap()
                    });
                });
                group.bench_function(format!("envelope-self-check/plain/{name}"), |b| {
                    b.iter(|| {
                        VerifiedEnvelope::decode_verify_bound(
                            plain.as_bytes(),
                            &trusted,
                            &external_slot,
                            &binding,
                        )
                        .unwrap()
                    });
                });
                group.bench_function(format!("age-container/{name}"), |b| {
                    b.iter(|| {
                        let container =
                            seal_container(&plain, archive.as_bytes(), &recipients, Armor::Binary)
                                .unwrap();
                        container_hash(&container)
                    });
                });
                let _ = <$curve as Curve>::ID;
            }};
        }
        match protocol {
            Protocol::Ecdsa => on_curve!(Secp256k1),
            Protocol::Eddsa => on_curve!(Ed25519),
        }
    }

    let mut version = 0u32;
    group.bench_function("kek-create", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                version += 1;
                let slot = node_version("kek-bench", version).slot(ShareIndex::new(1).unwrap());
                let start = Instant::now();
                SlotKekProvider::create_slot_kek(&keks, &slot).unwrap();
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

/// What generate writes for one node, made outside the timed part.
struct Writes {
    group: GroupRecord,
    version: NodeVersion,
    reference: SplitReference,
    keks: Vec<SlotKekRecord>,
    sealed: Vec<SealedShare>,
    custody: Vec<CustodyEntry>,
    records: Vec<AuditRecord>,
}

fn writes(
    key: &str,
    data: &LocalPartySaveData,
    signer: &dyn Signer,
    rng: &mut ChaCha20Rng,
) -> Writes {
    let version = node_version(key, 1);
    let now = Timestamp::from_unix_seconds(1_767_225_600).unwrap();
    let archive = data.seal_archive(&version).unwrap();
    let binding = data.binding(&archive).unwrap();
    let params = EnvelopeParams {
        node_version: version.clone(),
        created_at: now,
        binding,
    };
    let xi = data.secret_share::<Ed25519>().unwrap();
    let threshold = Threshold::new(3, 5).unwrap();
    let (commitments, shares) = split(&xi, threshold, rng).unwrap().into_parts();
    let mut keks = Vec::new();
    let mut sealed = Vec::new();
    let mut custody = Vec::new();
    let mut records = Vec::new();
    for share in &shares {
        let slot = version.slot(share.index());
        let mut record = AuditRecord::new(EventType::Generate, now, actor("ops"));
        record.key_id = Some(version.key_id.clone());
        record.node_id = Some(version.node_id.clone());
        record.version = Some(version.version);
        record.share_index = Some(share.index());
        record.threshold = Some(threshold);
        if share.index().get() <= 2 {
            let kek_id = KekId::new(format!("{key}-{}", share.index())).unwrap();
            let kek = InMemoryKek::for_slot(kek_id.clone(), slot.clone(), rng);
            let envelope = params.seal(&commitments, share, signer, &kek, rng).unwrap();
            record.envelope_id = Some(*envelope.id().as_bytes());
            keks.push(SlotKekRecord {
                slot: slot.clone(),
                kek_id,
                fingerprint: [share.index().get(); 32],
                created_at: now,
                destroyed_at: None,
            });
            sealed.push(SealedShare {
                slot,
                envelope: envelope.as_bytes().to_vec(),
                stored_at: now,
            });
        } else {
            let envelope = params.plain(&commitments, share, signer).unwrap();
            let i = share.index().get() - 3;
            record.envelope_id = Some(*envelope.id().as_bytes());
            custody.push(CustodyEntry {
                slot,
                custodian: CustodianId::new(format!("entity-{i}")).unwrap(),
                person: actor(&format!("custodian-{i}")),
                recipient: String::new(),
                envelope_id: envelope.id(),
                container_hash: [i; 32],
                updated_at: now,
                confirmed_at: None,
            });
        }
        records.push(record);
    }
    Writes {
        group: GroupRecord {
            key_id: version.key_id.clone(),
            curve: Ed25519::ID.to_u8(),
            group_public_key: data.group_public_key(),
            tss_degree: 2,
            parties: 5,
            registered_at: now,
        },
        version,
        reference: SplitReference {
            curve: Ed25519::ID.to_u8(),
            split_id: *commitments.split_id().as_bytes(),
            commitments: commitments.to_bytes(),
            // Opaque to storage; as long as a signed split binding.
            binding: vec![0x5a; 300],
            policy_hash: [0; 32],
            server_shares: 2,
        },
        keks,
        sealed,
        custody,
        records,
    }
}

fn storage_commit(c: &mut Criterion) {
    // The registry, policy and custodians generate's checks need.
    let setup = deployment(|_| {});
    let data = fixture(Protocol::Eddsa);
    let signer = InMemorySigner::from_seed(SignerId::new("backup-server").unwrap(), &[3; 32]);
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut policy_hash = [0; 32];
    setup.runtime.block_on(async {
        let mut tx = setup.service.storage().begin_read_only().await.unwrap();
        policy_hash = tx.current_policy().await.unwrap().unwrap().hash;
        tx.rollback().await.unwrap();
    });
    let mut group = c.benchmark_group("generate-parts");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(6));
    let mut counter = 0u32;
    group.bench_function("storage-commit/eddsa", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                counter += 1;
                let mut w = writes(&format!("commit-{counter}"), &data, &signer, &mut rng);
                w.reference.policy_hash = policy_hash;
                for entry in &mut w.custody {
                    // The recipient registered to the person.
                    entry.recipient = setup.runtime.block_on(async {
                        let mut tx = setup.service.storage().begin_read_only().await.unwrap();
                        let person =
                            shardkeep_storage::RegistryStore::person(&mut tx, &entry.person)
                                .await
                                .unwrap();
                        tx.rollback().await.unwrap();
                        person.keys.age_recipient.unwrap()
                    });
                }
                let start = Instant::now();
                setup.runtime.block_on(async {
                    let storage = setup.service.storage();
                    let mut tx = storage.begin().await.unwrap();
                    tx.register_group(&w.group).await.unwrap();
                    tx.create_key_version(
                        &w.version,
                        Threshold::new(3, 5).unwrap(),
                        &w.reference,
                        &actor("ops"),
                        w.group.registered_at,
                    )
                    .await
                    .unwrap();
                    for (kek, sealed) in w.keks.iter().zip(&w.sealed) {
                        tx.record_slot_kek(kek).await.unwrap();
                        tx.store_sealed_share(sealed).await.unwrap();
                    }
                    for entry in &w.custody {
                        tx.assign_custodian(entry).await.unwrap();
                    }
                    for record in &w.records {
                        append(&mut tx, record).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, whole_generate, parts, storage_commit);
criterion_main!(benches);

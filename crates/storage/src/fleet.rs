//! A fleet of key versions for benchmarks of what reads many of them (status
//! pages and summaries, here and in the crates above): 2,000 group keys of
//! 5 nodes, each node with one active version (10,000 versions), seeded
//! through the public storage API in five transactions of 2,000 versions.
//!
//! Every version is a 3-of-5 split with 2 server shares (real signed,
//! sealed envelopes) and 3 external slots mapped to three of six custodian
//! entities, with receipts and failed deliveries (4.75 per version) and one
//! drill (one in seven failed); one version in ten has its server share 2
//! hard-deleted. The values are fixed, so every run seeds the same fleet.
#![allow(clippy::unwrap_used)] // A benchmark fixture: a failed seeding should stop loudly.

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{Binding, EnvelopeParams, archive_hash};
use shardkeep_sss_core::{Commitments, Curve, CurveId, Secp256k1, Secret, Share, Threshold, split};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, InMemoryKek, InMemorySigner, KekId, KeyId,
    KeyVersion, NodeId, NodeVersion, ShareIndex, ShareSlot, SignerId, Timestamp,
};

use crate::{
    CustodyEntry, DeliveryOutcome, DeliveryRecord, DrillOutcome, DrillReport, EntityRecord,
    EntityState, GroupRecord, GroupStore, KeyVersionStore, PersonKeys, PersonRecord, PersonState,
    PolicyRecord, RegistryStore, Role, SealedShare, SlotDeletionStore, SplitReference, Storage,
    Transaction,
};

/// Group keys seeded.
pub const KEYS: u32 = 2_000;
/// Nodes of each group key, each with one active version.
pub const NODES: u32 = 5;
/// Every version seeded.
pub const VERSIONS: u32 = KEYS * NODES;
/// Versions per seeding transaction.
pub const VERSIONS_PER_TRANSACTION: u32 = 2_000;
/// Custodian entities; a version's three external slots go to three
/// different ones.
const CUSTODIANS: [&str; 6] = [
    "escrow-co",
    "cold-backup",
    "customer-sec",
    "vault-one",
    "notary-two",
    "bank-three",
];
/// The hash of the policy the versions are made under when the storage has
/// none yet (its encoding is a placeholder no service decodes).
const PLACEHOLDER_POLICY_HASH: [u8; 32] = [0x70; 32];

/// The bench's time `millis` milliseconds after 2027-01-15 08:00 UTC.
fn at(millis: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap()
}

fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

fn key_id(key: u32) -> KeyId {
    KeyId::new(format!("wallet-{key:04}")).unwrap()
}

/// Node `node`'s version `version` of group key `key` (`wallet-0042`,
/// `node-3`).
///
/// # Panics
/// Never: the names are short ASCII ids for any `u32`.
#[must_use]
pub fn node_version(key: u32, node: u32, version: u32) -> NodeVersion {
    NodeVersion {
        key_id: key_id(key),
        node_id: NodeId::new(format!("node-{node}")).unwrap(),
        version: KeyVersion::new(version),
    }
}

fn index(i: u8) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

/// A 32-byte value that differs with every input.
fn tagged(tag: &str, n: u64) -> [u8; 32] {
    let mut bytes = [0; 32];
    bytes[..tag.len()].copy_from_slice(tag.as_bytes());
    bytes[24..].copy_from_slice(&n.to_be_bytes());
    bytes
}

/// The one member of custodian entity `c`.
fn agent(c: usize) -> ActorId {
    actor(&format!("{}.agent", CUSTODIANS[c]))
}

fn agent_recipient(c: usize) -> String {
    format!("age1bench{c:02}{}", "q".repeat(50))
}

/// Seals the server shares (1 and 2) of one 3-of-5 secp256k1 split for any
/// version: real signed, sealed envelopes, as storage checks them.
struct Sealer {
    commitments: Commitments<Secp256k1>,
    shares: Vec<Share<Secp256k1>>,
    signer: InMemorySigner,
    rng: ChaCha20Rng,
}

impl Sealer {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let secret = Secret::<Secp256k1>::random(&mut rng);
        let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
        Self {
            commitments,
            shares,
            signer: InMemorySigner::from_seed(SignerId::new("server-signer").unwrap(), &[3; 32]),
            rng,
        }
    }

    fn group_public_key(&self) -> Vec<u8> {
        let mut key = Vec::new();
        Secp256k1::encode_point(self.commitments.public_key(), &mut key);
        key
    }

    fn group(&self, key: u32) -> GroupRecord {
        GroupRecord {
            key_id: key_id(key),
            curve: CurveId::Secp256k1.to_u8(),
            group_public_key: self.group_public_key(),
            tss_degree: 2,
            parties: 5,
            registered_at: at(0),
        }
    }

    fn reference(&self, policy_hash: [u8; 32]) -> SplitReference {
        SplitReference {
            curve: CurveId::Secp256k1.to_u8(),
            split_id: *self.commitments.split_id().as_bytes(),
            commitments: self.commitments.to_bytes(),
            binding: b"binding".to_vec(),
            policy_hash,
            server_shares: 2,
        }
    }

    /// Share `i` (1 or 2) of `version`, sealed under a KEK of its slot.
    fn share(&mut self, version: &NodeVersion, i: u8) -> SealedShare {
        let slot = version.slot(index(i));
        let params = EnvelopeParams {
            node_version: version.clone(),
            created_at: at(10),
            binding: Binding::new(
                CurveId::Secp256k1,
                self.group_public_key(),
                vec![i],
                self.commitments.to_bytes()[..Secp256k1::POINT_LEN].to_vec(),
                archive_hash(b"archive"),
            )
            .unwrap(),
        };
        let kek = InMemoryKek::from_bytes_for_slot(
            KekId::new(format!("kek-{i}")).unwrap(),
            slot.clone(),
            &[5; 32],
        );
        let envelope = params
            .seal(
                &self.commitments,
                &self.shares[usize::from(i) - 1],
                &self.signer,
                &kek,
                &mut self.rng,
            )
            .unwrap();
        SealedShare {
            slot,
            envelope: envelope.as_bytes().to_vec(),
            stored_at: at(10),
        }
    }
}

/// The registry: one person per custodian entity, the group keys and, unless
/// one is set, a placeholder policy. Returns the hash of the policy the
/// versions are made under.
async fn seed_registry<S: Storage>(storage: &S, sealer: &Sealer) -> [u8; 32] {
    let mut tx = storage.begin().await.unwrap();
    for (c, name) in CUSTODIANS.iter().enumerate() {
        let n = u64::try_from(c).unwrap();
        let person = agent(c);
        tx.register_person(&PersonRecord {
            id: person.clone(),
            display_name: FreeText::new(format!("{name} agent")).unwrap(),
            roles: [Role::Custodian].into_iter().collect(),
            keys: PersonKeys {
                receipt_key: Some(tagged("receipt", n)),
                approval_key: Some(tagged("approval", n)),
                age_recipient: Some(agent_recipient(c)),
                tls_fingerprint: Some(tagged("tls", n)),
            },
            key_epoch: 1,
            state: PersonState::Active,
            registered_at: at(1),
            registered_by: actor("admin.root"),
        })
        .await
        .unwrap();
        tx.register_entity(&EntityRecord {
            id: CustodianId::new(*name).unwrap(),
            display_name: FreeText::new(format!("{name} Ltd")).unwrap(),
            contact: FreeText::new(format!("security@{name}.example")).unwrap(),
            members: vec![person],
            state: EntityState::Active,
            registered_at: at(2),
        })
        .await
        .unwrap();
    }
    let policy_hash = match tx.current_policy().await.unwrap() {
        Some(policy) => policy.hash,
        None => {
            tx.set_policy(&PolicyRecord {
                hash: PLACEHOLDER_POLICY_HASH,
                encoding: b"3-of-5, 2 on the server".to_vec(),
                set_at: at(0),
                set_by: actor("sec.bob"),
            })
            .await
            .unwrap();
            PLACEHOLDER_POLICY_HASH
        }
    };
    for key in 0..KEYS {
        tx.register_group(&sealer.group(key)).await.unwrap();
    }
    tx.commit().await.unwrap();
    policy_hash
}

/// One version with its shares, custody entries, deliveries and drill;
/// `n` numbers the version among all of them.
async fn seed_version<T: Transaction>(
    tx: &mut T,
    sealer: &mut Sealer,
    reference: &SplitReference,
    version: &NodeVersion,
    n: u32,
) {
    let creator = actor("ops.alice");
    let base = u64::from(n) * 1_000;
    tx.create_key_version(
        version,
        Threshold::new(3, 5).unwrap(),
        reference,
        &creator,
        at(base),
    )
    .await
    .unwrap();
    for i in [1, 2] {
        tx.store_sealed_share(&sealer.share(version, i))
            .await
            .unwrap();
    }
    // Slots 3, 4 and 5 at three different entities.
    let first = usize::try_from(n).unwrap() % CUSTODIANS.len();
    let mut entries = Vec::new();
    for (offset, i) in (3..=5u8).enumerate() {
        let c = (first + offset * 2) % CUSTODIANS.len();
        let slot: ShareSlot = version.slot(index(i));
        let entry = CustodyEntry {
            custodian: CustodianId::new(CUSTODIANS[c]).unwrap(),
            person: agent(c),
            recipient: agent_recipient(c),
            envelope_id: EnvelopeId::from_bytes(tagged(&format!("env{i}"), u64::from(n))),
            container_hash: tagged(&format!("box{i}"), u64::from(n)),
            updated_at: at(base + 20),
            confirmed_at: None,
            slot,
        };
        tx.assign_custodian(&entry).await.unwrap();
        entries.push(entry);
    }
    // Receipts for slots 3 and 4 (4 after a failure); slot 5 fails, and
    // three versions in four then get its receipt.
    let delivery = |entry: &CustodyEntry, millis: u64, receipt: bool| DeliveryRecord {
        slot: entry.slot.clone(),
        custodian: entry.custodian.clone(),
        envelope_id: *entry.envelope_id.as_bytes(),
        outcome: if receipt {
            DeliveryOutcome::Delivered {
                receipt: b"signed receipt".to_vec(),
            }
        } else {
            DeliveryOutcome::Failed {
                reason: FreeText::new("courier lost it").unwrap(),
            }
        },
        recorded_at: at(base + millis),
    };
    let mut deliveries = vec![
        delivery(&entries[0], 100, true),
        delivery(&entries[1], 110, false),
        delivery(&entries[1], 120, true),
        delivery(&entries[2], 130, false),
    ];
    if !n.is_multiple_of(4) {
        deliveries.push(delivery(&entries[2], 140, true));
    }
    for record in &deliveries {
        tx.record_delivery(record).await.unwrap();
    }
    tx.record_drill(&DrillReport {
        target: version.clone(),
        started_at: at(base + 200),
        finished_at: at(base + 260),
        operator: creator,
        shares_used: vec![index(3), index(4), index(5)],
        outcome: if n.is_multiple_of(7) {
            DrillOutcome::Failed {
                reason: FreeText::new("the sign test failed").unwrap(),
            }
        } else {
            DrillOutcome::Passed
        },
        report: b"report".to_vec(),
    })
    .await
    .unwrap();
}

/// Every version, [`VERSIONS_PER_TRANSACTION`] per transaction, made under
/// the storage's current policy (a service's, set before) or, if none is
/// set, a placeholder policy. The persons and entities seeded are
/// custodians only, so a service can bootstrap its registry before.
///
/// # Panics
/// When a storage call fails: a fixture for benchmarks, it stops loudly.
pub async fn seed<S: Storage>(storage: &S) {
    let mut sealer = Sealer::new();
    let policy_hash = seed_registry(storage, &sealer).await;
    let reference = sealer.reference(policy_hash);
    let versions: Vec<NodeVersion> = (0..KEYS)
        .flat_map(|key| (1..=NODES).map(move |node| node_version(key, node, 1)))
        .collect();
    let mut n = 0;
    for batch in versions.chunks(usize::try_from(VERSIONS_PER_TRANSACTION).unwrap()) {
        let mut tx = storage.begin().await.unwrap();
        for version in batch {
            seed_version(&mut tx, &mut sealer, &reference, version, n).await;
            if n.is_multiple_of(10) {
                // One version in ten has lost server share 2 (deleted
                // after its cooldown).
                let base = u64::from(n) * 1_000;
                let slot = version.slot(index(2));
                tx.soft_delete_slot(&slot, &actor("ops.alice"), at(base + 300), at(base + 310))
                    .await
                    .unwrap();
                tx.hard_delete_slot(&slot, at(base + 310), b"hard-delete evidence")
                    .await
                    .unwrap();
            }
            n += 1;
        }
        tx.commit().await.unwrap();
    }
}

/// Retires every other version of `all`, [`VERSIONS_PER_TRANSACTION`] per
/// transaction.
///
/// # Panics
/// When a storage call fails.
pub async fn retire_every_other<S: Storage>(storage: &S, all: &[NodeVersion]) {
    let since = at(u64::from(VERSIONS) * 1_000);
    let until = at(u64::from(VERSIONS) * 1_000 + 10);
    for batch in all.chunks(usize::try_from(VERSIONS_PER_TRANSACTION).unwrap()) {
        let mut tx = storage.begin().await.unwrap();
        for version in batch.iter().step_by(2) {
            tx.begin_key_retirement(version, since, until)
                .await
                .unwrap();
            tx.retire_key_version(version, until).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

//! The conformance suite (feature `conformance`): written once against the
//! storage traits, with real signed, sealed envelopes, and run by every
//! backend on a real database. Each case receives a fresh, empty, migrated
//! storage and checks one area: every operation, the error of every
//! refusal, rollback and abort semantics, read-only snapshots, concurrent
//! writers.
//!
//! # Running it on a backend
//!
//! A backend (this crate's or a third party's) enables the feature in its
//! dev-dependencies and, in an integration test, hands
//! [`conformance_tests!`](crate::conformance_tests) an async function that
//! makes a fresh storage. The function returns a guard kept alive until the
//! case ends (a temporary directory, a throwaway server...) and the
//! storage; the macro writes one `#[test]` per case:
//!
//! ```ignore
//! // Cargo.toml: [dev-dependencies]
//! // shardkeep-storage = { version = "...", features = ["conformance"] }
//!
//! async fn fresh() -> (tempfile::TempDir, MyStorage) {
//!     let dir = tempfile::tempdir().unwrap();
//!     let storage = MyStorage::open(dir.path()).await.unwrap();
//!     (dir, storage)
//! }
//!
//! shardkeep_storage::conformance_tests!(fresh);
//! ```
//!
//! To run the cases some other way (one server for all of them, say),
//! [`for_each_conformance_case!`](crate::for_each_conformance_case) calls
//! a macro of yours with every case name; each case is a function of this
//! module, `async fn case<S: Store>(storage: S)`. The helpers below build
//! the records the cases use, for a backend's own tests (say of its
//! triggers or privileges).
//!
//! Add a case: write `pub async fn name<S: Store>(storage: S)` here and
//! list it in [`for_each_conformance_case!`](crate::for_each_conformance_case).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    clippy::missing_errors_doc,
    reason = "a conformance suite fails by panicking: its assertions are its purpose"
)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::{
    AUDIT_LOG_ID_LEN, ApprovalOperation, ApprovalRecord, ApprovalRequestHash,
    ApprovalRequestRecord, ApprovalStore, AuditEntry, AuditHead, AuditLogId, AuditRow, AuditStore,
    CustodyEntry, CustodyStore, DeliveryOutcome, DeliveryRecord, DestructionStore, DrillOutcome,
    DrillReport, DrillStore, Error, KeyVersionState, KeyVersionStore,
    MAX_AUDIT_APPENDS_PER_TRANSACTION, MAX_AUDIT_RECORD_LEN, MAX_CONTACT_LEN, MAX_ENVELOPE_LEN,
    MAX_REASON_LEN, ReceiptStore, SealedShare, SealedShareStore, ShareAccess, ShareAccessLog,
    SlotDeletionStore, SlotFilter, SlotKekRecord, SlotKekStore, SlotState, Storage,
    StoredCheckpoint, Transaction,
};
use crate::{
    AccessControlStore, AnomalyRecord, InventoryChallenge, InventoryProofRecord, InventoryStore,
    MAX_APPROVAL_REQUEST_LEN, MAX_INVENTORY_PROOF_LEN,
};
use crate::{
    DeliveryStats, DrillStats, DrillSummary, ExposureRow, RecentDrill, SplitSummary, StatusFilter,
    StatusStore, StatusSummary, VersionStatusRow,
};
use crate::{
    EntityRecord, EntityState, MAX_ENTITY_MEMBERS, PersonKeyEpoch, PersonKeys, PersonRecord,
    PersonState, RegistryStore, Role, RoleSet,
};
use crate::{
    GroupRecord, GroupStore, MAX_BINDING_LEN, MAX_COMMITMENTS_LEN, MAX_GROUP_KEY_LEN,
    MAX_POLICY_LEN, PolicyRecord, SplitReference,
};
use crate::{
    RecoverySessionId, RecoverySessionOutcome, RecoverySessionRecord, RecoverySessionStore,
};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use sha2::{Digest, Sha256};
use shardkeep_envelope::Error as EnvelopeError;
use shardkeep_envelope::{
    Binding, CurveShare, EnvelopeParams, SealedEnvelopeFrame, TrustedSigners, VerifiedEnvelope,
    archive_hash,
};
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Secp256k1, Secret, Share, ShareIndex, Threshold, split,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, InMemoryKek, InMemorySigner, KekId,
    KeyEncryptionKey, KeyId, KeyVersion, Label, NodeId, NodeVersion, ShareSlot, SignerId,
    Timestamp,
};

/// What the suite needs of a backend: a storage that can be shared with
/// concurrent tasks.
pub trait Store: Storage + Clone + Send + Sync + 'static {}

impl<S> Store for S where S: Storage + Clone + Send + Sync + 'static {}

/// Calls a macro with the name of every conformance case (each a function
/// of [`conformance`](crate::conformance)), comma-separated; with
/// `path::to_macro(tokens)`, the tokens in parentheses come first.
///
/// ```ignore
/// macro_rules! my_cases {
///     ($($case:ident),* $(,)?) => { /* one test per case */ };
/// }
/// shardkeep_storage::for_each_conformance_case!(my_cases);
/// ```
#[macro_export]
macro_rules! for_each_conformance_case {
    ($($callback:ident)::+ $(($($extra:tt)*))?) => {
        $($callback)::+! {
            $(($($extra)*))?
            key_version_lifecycle,
            key_version_conflicts,
            sealed_share_round_trip,
            sealed_share_conflicts,
            rewrap_checks_the_current_kek,
            rewrapped_share_opens_after_the_old_kek_is_destroyed,
            store_refuses_an_envelope_of_another_slot,
            slot_deletion_lifecycle,
            slot_deletion_conflicts,
            slot_keks_keep_one_live_kek_per_slot,
            slot_kek_conflicts,
            custody_map_round_trip,
            custody_map_conflicts,
            deliveries_keep_one_receipt_per_slot,
            approvals_are_consumed_once,
            audit_reviews_are_append_only_once_per_reviewer,
            approval_conflicts,
            recovery_sessions_keep_one_open,
            drill_reports,
            destruction_statements_one_per_slot,
            share_access_log,
            audit_chain_links_rows,
            audit_grouped_commit_is_capped,
            audit_record_length_is_capped,
            checkpoints_follow_the_log,
            the_log_id_is_fixed,
            rollback_leaves_nothing,
            errors_abort_the_transaction,
            refused_reads_keep_the_transaction,
            dropped_transaction_rolls_back,
            operation_approval_and_audit_commit_together,
            read_only_transactions_refuse_writes,
            read_only_transactions_see_a_snapshot,
            concurrent_consumers_never_double_spend,
            concurrent_writers_never_lose_updates,
            concurrent_audit_appends_never_fork,
            registry_person_lifecycle,
            registry_persons_named,
            registry_person_refusals,
            registry_keys_belong_to_one_person,
            registry_retired_keys_never_come_back,
            registry_entities,
            registry_entity_refusals,
            groups_are_registered_once,
            policies_append_and_the_latest_is_current,
            versions_keep_their_split_reference,
            version_creation_checks_the_reference,
            version_changes_and_numbers,
            inventory_challenges_are_single_use,
            inventory_proofs_are_checked,
            rate_counters_count_per_person_kind_and_window,
            concurrent_rate_counters_never_lose_a_count,
            anomalies_are_kept_and_counted,
            status_pages_follow_the_filter,
            status_rows_aggregate_each_version,
            status_summary_and_metrics,
        }
    };
}

/// Writes one `#[test]` per conformance case, each running the case on the
/// storage that `$fresh().await` returns as `(guard, storage)`; the guard
/// is dropped when the case ends. See [`conformance`](crate::conformance).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::for_each_conformance_case!($crate::__conformance_test($fresh));
    };
}

/// Implementation of [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    (($fresh:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run(async {
                    let (guard, storage) = ($fresh)().await;
                    $crate::conformance::$case(storage).await;
                    drop(guard);
                });
            }
        )*
    };
}

/// Runs a case (or any future) to completion on a runtime of its own, with
/// two worker threads so that the concurrency cases really run in
/// parallel.
pub fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance suite")
        .block_on(future)
}

// ----- fixtures -----

/// The fixture time `millis` milliseconds after 2027-01-15 08:00 UTC
/// (1 800 000 000 000 ms since the epoch).
pub fn at(millis: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap()
}

/// Version `number` of node `node` of group key `wallet-1`.
pub fn version(node: &str, number: u32) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(number),
    }
}

/// Share index `i` (1 to 255).
pub fn index(i: u8) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

/// Slot `i` of version `number` of node `node`.
pub fn slot(node: &str, number: u32, i: u8) -> ShareSlot {
    version(node, number).slot(index(i))
}

/// The actor id `name`.
pub fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

/// The label `name`.
pub fn label(name: &str) -> Label {
    Label::new(name).unwrap()
}

/// The signer of every fixture envelope.
fn envelope_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("server-signer").unwrap(), &[3; 32])
}

/// The signers a reader of the fixture envelopes trusts.
pub fn trusted() -> TrustedSigners {
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&envelope_signer()).unwrap();
    trusted
}

/// KEK `name` of `slot` (id `<name>-<index>`, bound to the slot), the same
/// key on every call.
pub fn kek(slot: &ShareSlot, name: &str) -> InMemoryKek {
    let key: [u8; 32] = Sha256::digest(format!("{name} {slot}")).into();
    InMemoryKek::from_bytes_for_slot(
        KekId::new(format!("{name}-{}", slot.index)).unwrap(),
        slot.clone(),
        &key,
    )
}

/// The KEK the fixture shares are sealed under.
pub fn fixture_kek(slot: &ShareSlot) -> InMemoryKek {
    kek(slot, "kek")
}

/// Split `generation` of `slot`'s share: secp256k1, 3-of-max(5, index),
/// drawn from a generator seeded by both, so every call returns the same
/// split.
fn fixture_split(
    slot: &ShareSlot,
    generation: u8,
) -> (Commitments<Secp256k1>, Vec<Share<Secp256k1>>, ChaCha20Rng) {
    let seed = Sha256::digest(format!("{slot} {generation}"));
    let mut rng = ChaCha20Rng::from_seed(seed.into());
    let secret = Secret::<Secp256k1>::random(&mut rng);
    let threshold = Threshold::new(3, usize::from(slot.index.get().max(5))).unwrap();
    let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
    (commitments, shares, rng)
}

/// The share value of `slot`'s fixture envelope, to compare with what an
/// envelope opens to.
pub fn fixture_share_bytes(slot: &ShareSlot) -> Vec<u8> {
    let (_, shares, _) = fixture_split(slot, 0);
    shares[usize::from(slot.index.get()) - 1]
        .to_bytes()
        .to_vec()
}

/// A real, signed envelope of `slot`'s share, sealed under `kek`; the same
/// bytes on every call with the same KEK (the KEK wraps with a fresh nonce,
/// so the first envelope is kept).
pub fn seal(slot: &ShareSlot, kek: &InMemoryKek) -> Vec<u8> {
    seal_generation(slot, kek, 0)
}

/// As [`seal`], of split `generation`: another generation is another
/// envelope of the same slot (another envelope id).
pub fn seal_generation(slot: &ShareSlot, kek: &InMemoryKek, generation: u8) -> Vec<u8> {
    static SEALED: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());
    // A case that panics while sealing must not fail the others.
    SEALED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(format!("{slot} {} {generation}", kek.kek_id()))
        .or_insert_with(|| {
            let (commitments, share, mut rng) = fixture_parts(slot, generation);
            fixture_params(slot, &commitments)
                .seal(&commitments, &share, &envelope_signer(), kek, &mut rng)
                .unwrap()
                .as_bytes()
                .to_vec()
        })
        .clone()
}

/// A plain (custodian) envelope of `slot`'s share: never a sealed share.
pub fn plain_envelope(slot: &ShareSlot) -> Vec<u8> {
    let (commitments, share, _) = fixture_parts(slot, 0);
    fixture_params(slot, &commitments)
        .plain(&commitments, &share, &envelope_signer())
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// The commitments and `slot`'s share of split `generation`, and the
/// generator to seal with.
fn fixture_parts(
    slot: &ShareSlot,
    generation: u8,
) -> (Commitments<Secp256k1>, Share<Secp256k1>, ChaCha20Rng) {
    let (commitments, mut shares, rng) = fixture_split(slot, generation);
    let share = shares.swap_remove(usize::from(slot.index.get()) - 1);
    (commitments, share, rng)
}

fn fixture_params(slot: &ShareSlot, commitments: &Commitments<Secp256k1>) -> EnvelopeParams {
    let mut group_key = Vec::new();
    Secp256k1::encode_point(commitments.public_key(), &mut group_key);
    EnvelopeParams {
        node_version: slot.node_version(),
        created_at: Timestamp::from_unix_seconds(1_800_000_000).unwrap(),
        binding: Binding::new(
            CurveId::Secp256k1,
            group_key,
            vec![slot.index.get()],
            commitments.to_bytes()[..Secp256k1::POINT_LEN].to_vec(),
            archive_hash(b"archive"),
        )
        .unwrap(),
    }
}

/// Opens a stored envelope the way a reader does: verify, then unseal with
/// `kek`; returns the share's bytes.
pub fn open(envelope: &[u8], kek: &InMemoryKek) -> Result<Vec<u8>, EnvelopeError> {
    match VerifiedEnvelope::decode_verify(envelope, &trusted())?.open(kek)? {
        CurveShare::Secp256k1(share) => Ok(share.to_bytes().to_vec()),
        CurveShare::Ed25519(share) => Ok(share.to_bytes().to_vec()),
    }
}

/// The fixture share of `slot`, sealed under [`fixture_kek`], stored at
/// `at(10)`.
pub fn sealed(slot: &ShareSlot) -> SealedShare {
    sealed_under(slot, &fixture_kek(slot))
}

/// The fixture share of `slot`, sealed under `kek`, stored at `at(10)`.
pub fn sealed_under(slot: &ShareSlot, kek: &InMemoryKek) -> SealedShare {
    SealedShare {
        slot: slot.clone(),
        envelope: seal(slot, kek),
        stored_at: at(10),
    }
}

/// The envelope id of a fixture share.
pub fn envelope_id(share: &SealedShare) -> [u8; 32] {
    *share.frame().unwrap().id().as_bytes()
}

/// A live KEK record for `slot`, created at `at(created)`.
pub fn slot_kek(slot: &ShareSlot, kek_id: &str, created: u64) -> SlotKekRecord {
    SlotKekRecord {
        slot: slot.clone(),
        kek_id: KekId::new(kek_id).unwrap(),
        fingerprint: Sha256::digest(kek_id).into(),
        created_at: at(created),
        destroyed_at: None,
    }
}

/// The person acting for custodian entity `custodian` in the fixtures.
pub fn agent(custodian: &str) -> ActorId {
    actor(&format!("{custodian}.agent"))
}

/// The custody entry of `slot` at entity `custodian`: sealed to the
/// entity's agent's registered recipient, updated at `at(20)`.
pub fn custody(slot: &ShareSlot, custodian: &str) -> CustodyEntry {
    let person = agent(custodian);
    CustodyEntry {
        slot: slot.clone(),
        custodian: CustodianId::new(custodian).unwrap(),
        recipient: person_keys(person.as_str(), 0).age_recipient.unwrap(),
        person,
        envelope_id: EnvelopeId::from_bytes(derived(&slot.to_string(), "envelope")),
        container_hash: derived(&slot.to_string(), "container"),
        updated_at: at(20),
        confirmed_at: None,
    }
}

/// Changes one field of a custody entry.
type CustodyEdit = fn(&mut CustodyEntry);

/// The approval request hash of 32 `byte`s.
pub fn request_hash(byte: u8) -> ApprovalRequestHash {
    ApprovalRequestHash([byte; 32])
}

/// An open delete request for `node-a` v1, by `ops.carol`, created at
/// `at(100)`, lapsing at `at(10_000)`.
pub fn request(hash_byte: u8) -> ApprovalRequestRecord {
    ApprovalRequestRecord {
        hash: request_hash(hash_byte),
        encoding: vec![hash_byte; 120],
        operation: ApprovalOperation::Delete,
        subject: Some(version("node-a", 1)),
        requester: actor("ops.carol"),
        created_at: at(100),
        expires_at: at(10_000),
        consumed_at: None,
        consumed_by: None,
    }
}

/// `approver`'s approval of `request` in `role`, recorded at `at(200)`.
pub fn approval(request: &ApprovalRequestRecord, approver: &str, role: Role) -> ApprovalRecord {
    ApprovalRecord {
        request_hash: request.hash,
        approver: actor(approver),
        role,
        signature: [0x5a; 64],
        approved_at: at(200),
    }
}

// ----- groups, policies and split references -----

/// The hash of the fixture policy.
pub const POLICY_HASH: [u8; 32] = [0x70; 32];

/// The fixture policy, set at `at(0)`.
pub fn policy() -> PolicyRecord {
    PolicyRecord {
        hash: POLICY_HASH,
        encoding: b"3-of-5, 2 on the server".to_vec(),
        set_at: at(0),
        set_by: actor("sec.bob"),
    }
}

/// Group `key_id`: secp256k1, 3 of 5 parties sign.
pub fn group(key_id: &KeyId) -> GroupRecord {
    GroupRecord {
        key_id: key_id.clone(),
        curve: CurveId::Secp256k1.to_u8(),
        group_public_key: [&[2][..], &derived(key_id.as_str(), "group")].concat(),
        tss_degree: 2,
        parties: 5,
        registered_at: at(0),
    }
}

/// A split reference of `version`: secp256k1, under [`POLICY_HASH`], with
/// as many server shares as `threshold` allows.
pub fn reference(version: &NodeVersion, threshold: Threshold) -> SplitReference {
    SplitReference {
        curve: CurveId::Secp256k1.to_u8(),
        split_id: derived(&version.to_string(), "split"),
        commitments: derived(&version.to_string(), "commitments").repeat(3),
        binding: derived(&version.to_string(), "binding").to_vec(),
        policy_hash: POLICY_HASH,
        server_shares: (threshold.t() - 1).min(threshold.n() - threshold.t()),
    }
}

/// Creates `version` by `ops.alice` at `at(created)`, registering its
/// group and setting the fixture policy first when needed.
pub async fn create_version<T: Transaction>(
    tx: &mut T,
    version: &NodeVersion,
    threshold: Threshold,
    created: u64,
) -> Result<(), Error> {
    tx.register_group(&group(&version.key_id)).await?;
    if tx.current_policy().await?.is_none() {
        tx.set_policy(&policy()).await?;
    }
    tx.create_key_version(
        version,
        threshold,
        &reference(version, threshold),
        &actor("ops.alice"),
        at(created),
    )
    .await
}

// ----- registry fixtures -----

/// A 32-byte public value derived from a name and a purpose.
pub fn derived(name: &str, purpose: &str) -> [u8; 32] {
    Sha256::digest(format!("{name} {purpose}")).into()
}

/// Keys of `name` in key generation `generation`.
pub fn person_keys(name: &str, generation: u8) -> PersonKeys {
    let tag = format!("{name}#{generation}");
    PersonKeys {
        receipt_key: Some(derived(&tag, "receipt")),
        approval_key: Some(derived(&tag, "approval")),
        age_recipient: Some(format!("age1{}", hex::encode(&derived(&tag, "age")[..20]))),
        tls_fingerprint: Some(derived(&tag, "tls")),
    }
}

/// A new, active person `name` with `roles`, registered at `at(1)`.
pub fn person(name: &str, roles: &[Role]) -> PersonRecord {
    PersonRecord {
        id: actor(name),
        display_name: FreeText::new(format!("{name} (test)")).unwrap(),
        roles: roles.iter().copied().collect(),
        keys: person_keys(name, 0),
        key_epoch: 1,
        state: PersonState::Active,
        registered_at: at(1),
        registered_by: actor("admin.root"),
    }
}

/// A new, active custodian entity with `members`, registered at `at(2)`.
pub fn entity(name: &str, members: &[&str]) -> EntityRecord {
    EntityRecord {
        id: CustodianId::new(name).unwrap(),
        display_name: FreeText::new(format!("{name} Ltd")).unwrap(),
        contact: FreeText::new(format!("{name} <security@{name}.example>")).unwrap(),
        members: members.iter().map(|member| actor(member)).collect(),
        state: EntityState::Active,
        registered_at: at(2),
    }
}

/// Registers, for each name, the entity and its one member, its
/// [`agent`]; committed.
pub async fn with_custodians<S: Storage>(storage: &S, names: &[&str]) {
    let mut tx = storage.begin().await.unwrap();
    for name in names {
        let member = agent(name);
        tx.register_person(&person(member.as_str(), &[Role::Custodian]))
            .await
            .unwrap();
        tx.register_entity(&entity(name, &[member.as_str()]))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Registers persons `names` as custodians, committed.
pub async fn with_persons<S: Storage>(storage: &S, names: &[&str]) {
    let mut tx = storage.begin().await.unwrap();
    for name in names {
        tx.register_person(&person(name, &[Role::Custodian]))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A stand-in for the audit crate's builder: SHA-256 over the sequence,
/// the previous hash and the record.
pub fn chained(record: Vec<u8>) -> impl FnOnce(&AuditHead) -> AuditEntry + Send {
    move |head: &AuditHead| {
        let mut hasher = Sha256::new();
        hasher.update((head.sequence + 1).to_be_bytes());
        hasher.update(head.hash);
        hasher.update(&record);
        AuditEntry {
            hash: hasher.finalize().into(),
            record,
        }
    }
}

/// Checks that rows form one unbroken chain from the genesis.
pub fn assert_chain(rows: &[AuditRow]) {
    let mut head = AuditHead::GENESIS;
    for row in rows {
        assert_eq!(row.sequence, head.sequence + 1, "sequence gap or fork");
        assert_eq!(row.prev_hash, head.hash, "broken link at {}", row.sequence);
        let rebuilt = chained(row.record.clone())(&head);
        assert_eq!(rebuilt.hash, row.hash, "hash of {}", row.sequence);
        head = AuditHead {
            sequence: row.sequence,
            hash: row.hash,
        };
    }
}

/// Expects a refusal.
#[track_caller]
pub fn refused<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected a refusal, got Ok({value:?})"),
        Err(error) => error,
    }
}

/// Creates key version `number` of `node` (3-of-5) and commits.
pub async fn with_version<S: Storage>(storage: &S, node: &str, number: u32) {
    let mut tx = storage.begin().await.unwrap();
    create_version(
        &mut tx,
        &version(node, number),
        Threshold::new(3, 5).unwrap(),
        0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Creates version 1 of `node-a` holding sealed shares 1 and 2.
pub async fn with_shares<S: Storage>(storage: &S) {
    with_version(storage, "node-a", 1).await;
    let mut tx = storage.begin().await.unwrap();
    for i in [1, 2] {
        tx.store_sealed_share(&sealed(&slot("node-a", 1, i)))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Appends the records `[0]`, `[1]`, `[2]` and a checkpoint at 3, committed:
/// the audit tables the backend tests then try to change behind storage's
/// back.
pub async fn with_three_audit_records<S: Storage>(storage: &S) {
    let mut tx = storage.begin().await.unwrap();
    for i in 0..3u8 {
        tx.append_audit(chained(vec![i])).await.unwrap();
    }
    let head = tx.audit_head().await.unwrap();
    tx.store_checkpoint(&StoredCheckpoint {
        sequence: 3,
        head_hash: head.hash,
        checkpoint: b"signed".to_vec(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The columns a version 1 (`0001_initial`) row of share `node-a/1/1`
/// held: KEK id, wrapped key, envelope, envelope id. `stranded`: as a
/// version 1 re-wrap to another KEK left them, with the new KEK and wrapped
/// key in the columns and the old ones still in the envelope.
pub fn version_1_row(stranded: bool) -> (String, Vec<u8>, Vec<u8>, Vec<u8>) {
    let target = slot("node-a", 1, 1);
    let kek_a = fixture_kek(&target);
    let envelope = seal(&target, &kek_a);
    let frame = SealedEnvelopeFrame::parse(&envelope).unwrap();
    let (kek_id, wrapped) = if stranded {
        let rewrapped = VerifiedEnvelope::decode_verify(&envelope, &trusted())
            .unwrap()
            .rewrap(&kek_a, &kek(&target, "kek-migrated"))
            .unwrap();
        let frame = SealedEnvelopeFrame::parse(rewrapped.as_bytes()).unwrap();
        (frame.kek_id().clone(), frame.wrapped_key().clone())
    } else {
        (frame.kek_id().clone(), frame.wrapped_key().clone())
    };
    (
        kek_id.as_str().to_owned(),
        wrapped.as_bytes().to_vec(),
        envelope,
        frame.id().as_bytes().to_vec(),
    )
}

/// After the migration of a version 1 database holding [`version_1_row`]
/// (not stranded) and one read of it: the share is intact, opens with its
/// KEK, and its access log survived.
pub async fn assert_version_1_share_migrated<S: Storage>(storage: &S) {
    let target = slot("node-a", 1, 1);
    let mut tx = storage.begin_read_only().await.unwrap();
    let share = tx.load_sealed_share(&target).await.unwrap();
    assert_eq!(share, sealed(&target));
    assert_eq!(
        open(&share.envelope, &fixture_kek(&target)).unwrap(),
        fixture_share_bytes(&target)
    );
    assert_eq!(tx.share_accesses(&target).await.unwrap().len(), 1);
    let listed = tx.list_slots(&SlotFilter::default()).await.unwrap();
    assert_eq!(&listed[0].kek_id, fixture_kek(&target).kek_id());
    // The version predates split references and creators: it says so,
    // and its last change is its creation.
    let old = target.node_version();
    assert!(matches!(
        refused(tx.split_reference(&old).await),
        Error::SplitReferenceNotFound(v) if v == old
    ));
    let record = tx.key_version(&old).await.unwrap();
    assert_eq!(record.created_by, None);
    assert_eq!(
        (record.last_change.as_str(), record.last_change_at),
        ("created", record.created_at)
    );
    // Its custody entry predates the registry: reported as legacy, with
    // its delivery record kept, until the slot is reassigned.
    let external = slot("node-a", 1, 3);
    assert!(matches!(
        refused(tx.custody_entry(&external).await),
        Error::LegacyCustodyEntry(s) if s == external
    ));
    assert!(matches!(
        refused(tx.custody_map(&old).await),
        Error::LegacyCustodyEntry(_)
    ));
    assert_eq!(tx.deliveries(&old).await.unwrap().len(), 1);
    // Its status row says it has no split reference.
    let row = tx
        .status_page(&StatusFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].split, None);
    assert_eq!(
        (
            row[0].server_active,
            row[0].external_assigned,
            row[0].deliveries_failed
        ),
        (1, 1, 1)
    );
    drop(tx);
    with_custodians(storage, &["escrow-co"]).await;
    let mut tx = storage.begin().await.unwrap();
    tx.update_custodian(&custody(&external, "escrow-co"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.custody_map(&old).await.unwrap(),
        [custody(&external, "escrow-co")]
    );
}

/// Expects the load of share `node-a/1/1` to be refused as a corrupt row,
/// naming `column`: the backend tests change the row behind storage's back
/// so that its columns and its envelope disagree.
pub async fn assert_load_refuses_row<S: Storage>(storage: &S, column: &str) {
    let mut tx = storage.begin_read_only().await.unwrap();
    let error = refused(tx.load_sealed_share(&slot("node-a", 1, 1)).await);
    assert!(
        matches!(&error, Error::CorruptRow { table: "share_slots", column: c } if *c == column),
        "{column}: {error:?}"
    );
}

/// Records KEK `kek-a` of slot `node-a/1/1` and its destruction, committed:
/// the evidence the backend tests then try to change behind storage's back.
pub async fn with_destroyed_slot_kek<S: Storage>(storage: &S) {
    let mut tx = storage.begin().await.unwrap();
    create_version(
        &mut tx,
        &version("node-a", 1),
        Threshold::new(3, 5).unwrap(),
        0,
    )
    .await
    .unwrap();
    tx.record_slot_kek(&slot_kek(&slot("node-a", 1, 1), "kek-a", 1))
        .await
        .unwrap();
    tx.mark_slot_kek_destroyed(&slot("node-a", 1, 1), at(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn read_all_audit<S: Store>(storage: &S) -> Vec<AuditRow> {
    let mut tx = storage.begin_read_only().await.unwrap();
    let mut rows = Vec::new();
    loop {
        let page = tx.read_audit(rows.len() as u64 + 1, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        rows.extend(page);
    }
    rows
}

// ----- groups, policies, split references -----

/// Changes one field of a group.
type GroupEdit = fn(&mut GroupRecord);

/// Conformance case: groups are registered once.
pub async fn groups_are_registered_once<S: Store>(storage: S) {
    let wallet = group(&KeyId::new("wallet-1").unwrap());
    let mut tx = storage.begin().await.unwrap();
    tx.register_group(&wallet).await.unwrap();
    // Repeating it with the same values changes nothing, whenever.
    let mut again = wallet.clone();
    again.registered_at = at(99);
    tx.register_group(&again).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.group(&wallet.key_id).await.unwrap(), wallet);
    drop(tx);
    let changes: [GroupEdit; 4] = [
        |g| g.curve = CurveId::Ed25519.to_u8(),
        |g| g.group_public_key[1] ^= 1,
        |g| g.tss_degree = 3,
        |g| g.parties = 6,
    ];
    for change in changes {
        let mut other = wallet.clone();
        change(&mut other);
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.register_group(&other).await),
            Error::GroupExists(id) if id == wallet.key_id
        ));
    }
    let fresh = group(&KeyId::new("wallet-2").unwrap());
    for (degree, parties) in [(0, 5), (5, 5), (6, 5), (1, 1)] {
        let mut bad = fresh.clone();
        bad.tss_degree = degree;
        bad.parties = parties;
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.register_group(&bad).await),
            Error::InvalidGroupParameters { tss_degree, parties: p }
                if tss_degree == degree && p == parties
        ));
    }
    for len in [0, MAX_GROUP_KEY_LEN + 1] {
        let mut bad = fresh.clone();
        bad.group_public_key = vec![2; len];
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.register_group(&bad).await),
            Error::BlobLength {
                field: "group public key",
                ..
            }
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.group(&fresh.key_id).await),
        Error::GroupNotFound(id) if id == fresh.key_id
    ));
    // A refused read leaves the transaction usable.
    // The degree and party count may be anything tss-lib accepts.
    let mut widest = fresh.clone();
    (widest.tss_degree, widest.parties) = (u16::MAX - 1, u16::MAX);
    tx.register_group(&widest).await.unwrap();
    assert_eq!(tx.group(&fresh.key_id).await.unwrap(), widest);

    // Several at once: the registered ones among any number of keys (more
    // than one statement's worth, out of order, repeated), in key order,
    // each once.
    let mut keys: Vec<KeyId> = (0..crate::KEYS_PER_QUERY + 5)
        .map(|i| KeyId::new(format!("absent-{i:02}")).unwrap())
        .collect();
    keys.insert(2, fresh.key_id.clone());
    keys.push(wallet.key_id.clone());
    keys.push(fresh.key_id.clone());
    assert_eq!(tx.groups_of(&keys).await.unwrap(), [wallet, widest]);
    assert!(tx.groups_of(&[]).await.unwrap().is_empty());
}

/// Conformance case: policies append and the latest is current.
pub async fn policies_append_and_the_latest_is_current<S: Store>(storage: S) {
    let first = policy();
    let second = PolicyRecord {
        hash: [0x71; 32],
        encoding: b"4-of-7, 3 on the server".to_vec(),
        set_at: at(10),
        set_by: actor("sec.erin"),
    };
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.current_policy().await.unwrap(), None);
    tx.set_policy(&first).await.unwrap();
    assert_eq!(tx.current_policy().await.unwrap(), Some(first.clone()));
    tx.set_policy(&second).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.current_policy().await.unwrap(), Some(second.clone()));
    assert_eq!(tx.policy(&first.hash).await.unwrap(), first);
    // Going back to an earlier policy makes it current again; looked up
    // by hash it is the policy as first set.
    let mut back = first.clone();
    back.set_at = at(20);
    tx.set_policy(&back).await.unwrap();
    assert_eq!(tx.current_policy().await.unwrap(), Some(back));
    assert_eq!(tx.policy(&first.hash).await.unwrap(), first);
    tx.commit().await.unwrap();

    let mut conflicting = first.clone();
    conflicting.encoding = b"something else".to_vec();
    conflicting.set_at = at(30);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.set_policy(&conflicting).await),
        Error::PolicyConflict(hash) if hash == first.hash
    ));
    let mut early = second.clone();
    early.hash = [0x72; 32];
    early.set_at = at(19);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.set_policy(&early).await),
        Error::TimesOutOfOrder { field: "set_at" }
    ));
    for len in [0, MAX_POLICY_LEN + 1] {
        let mut bad = second.clone();
        bad.hash = [0x73; 32];
        bad.set_at = at(40);
        bad.encoding = vec![1; len];
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.set_policy(&bad).await),
            Error::BlobLength {
                field: "policy",
                ..
            }
        ));
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.policy(&[0x74; 32]).await),
        Error::PolicyNotFound(hash) if hash == [0x74; 32]
    ));
    assert_eq!(tx.current_policy().await.unwrap().unwrap().set_at, at(20));
}

/// Conformance case: versions keep their split reference.
pub async fn versions_keep_their_split_reference<S: Store>(storage: S) {
    let v1 = version("node-a", 1);
    let t = Threshold::new(3, 5).unwrap();
    with_version(&storage, "node-a", 1).await;

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.split_reference(&v1).await.unwrap(), reference(&v1, t));
    let record = tx.key_version(&v1).await.unwrap();
    assert_eq!(record.created_by, Some(actor("ops.alice")));
    assert_eq!(record.last_change.as_str(), "created");
    assert_eq!(record.last_change_at, at(0));
    let missing = version("node-z", 1);
    assert!(matches!(
        refused(tx.split_reference(&missing).await),
        Error::KeyVersionNotFound(v) if v == missing
    ));
    // A 2-of-2 split keeps nothing on the server; a 2-of-3 one share.
    drop(tx);
    let mut tx = storage.begin().await.unwrap();
    for (node, t, n, server) in [
        ("node-b", 2, 2, 0),
        ("node-c", 2, 3, 1),
        ("node-d", 5, 9, 4),
    ] {
        let target = version(node, 1);
        let threshold = Threshold::new(t, n).unwrap();
        let mut split = reference(&target, threshold);
        split.server_shares = server;
        tx.create_key_version(&target, threshold, &split, &actor("ops.bob"), at(5))
            .await
            .unwrap();
        assert_eq!(tx.split_reference(&target).await.unwrap(), split);
    }
}

/// Conformance case: version creation checks the reference.
pub async fn version_creation_checks_the_reference<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    let target = version("node-b", 1);
    let t = Threshold::new(3, 5).unwrap();
    let ops = actor("ops.alice");
    let create = |split: SplitReference, version: NodeVersion| {
        let storage = storage.clone();
        let ops = ops.clone();
        async move {
            let mut tx = storage.begin().await.unwrap();
            refused(
                tx.create_key_version(&version, t, &split, &ops, at(5))
                    .await,
            )
        }
    };
    // The server alone never recovers; the custodians alone always can.
    for server in [3, 4, 5, 6, 255] {
        let mut split = reference(&target, t);
        split.server_shares = server;
        assert!(matches!(
            create(split, target.clone()).await,
            Error::ServerSharesOutOfRange { server_shares, threshold }
                if server_shares == server && threshold == t
        ));
    }
    let mut split = reference(&target, t);
    split.curve = CurveId::Ed25519.to_u8();
    assert!(matches!(
        create(split, target.clone()).await,
        Error::CurveMismatch {
            group: 1,
            reference: 2
        }
    ));
    let mut split = reference(&target, t);
    split.policy_hash = [0x55; 32];
    assert!(matches!(
        create(split, target.clone()).await,
        Error::PolicyNotFound(hash) if hash == [0x55; 32]
    ));
    let unregistered = NodeVersion {
        key_id: KeyId::new("wallet-9").unwrap(),
        ..target.clone()
    };
    assert!(matches!(
        create(reference(&unregistered, t), unregistered.clone()).await,
        Error::GroupNotFound(id) if id == unregistered.key_id
    ));
    for (field, len) in [
        ("commitments", 0),
        ("commitments", MAX_COMMITMENTS_LEN + 1),
        ("binding", 0),
        ("binding", MAX_BINDING_LEN + 1),
    ] {
        let mut split = reference(&target, t);
        if field == "commitments" {
            split.commitments = vec![1; len];
        } else {
            split.binding = vec![1; len];
        }
        assert!(matches!(
            create(split, target.clone()).await,
            Error::BlobLength { field: f, .. } if f == field
        ));
    }
    // Nothing refused was stored.
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.key_version(&target).await),
        Error::KeyVersionNotFound(_)
    ));
    // The largest blobs fit.
    drop(tx);
    let mut split = reference(&target, t);
    split.commitments = vec![1; MAX_COMMITMENTS_LEN];
    split.binding = vec![1; MAX_BINDING_LEN];
    let mut tx = storage.begin().await.unwrap();
    tx.create_key_version(&target, t, &split, &ops, at(5))
        .await
        .unwrap();
    assert_eq!(tx.split_reference(&target).await.unwrap(), split);
}

/// Conformance case: version changes and numbers.
pub async fn version_changes_and_numbers<S: Store>(storage: S) {
    let key = KeyId::new("wallet-1").unwrap();
    let node = NodeId::new("node-a").unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.next_key_version(&key, &node).await.unwrap(),
        KeyVersion::new(1)
    );
    create_version(
        &mut tx,
        &version("node-a", 1),
        Threshold::new(3, 5).unwrap(),
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        tx.next_key_version(&key, &node).await.unwrap(),
        KeyVersion::new(2)
    );
    // Max + 1, not count + 1; other nodes and keys are separate.
    tx.begin_key_retirement(&version("node-a", 1), at(1), at(2))
        .await
        .unwrap();
    create_version(
        &mut tx,
        &version("node-a", 7),
        Threshold::new(3, 5).unwrap(),
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        tx.next_key_version(&key, &node).await.unwrap(),
        KeyVersion::new(8)
    );
    assert_eq!(
        tx.next_key_version(&key, &NodeId::new("node-b").unwrap())
            .await
            .unwrap(),
        KeyVersion::new(1)
    );
    assert_eq!(
        tx.next_key_version(&KeyId::new("wallet-2").unwrap(), &node)
            .await
            .unwrap(),
        KeyVersion::new(1)
    );
    let v7 = version("node-a", 7);
    tx.record_version_change(&v7, &label("custodian-change"), at(50))
        .await
        .unwrap();
    // A retiring version may still change.
    tx.record_version_change(&version("node-a", 1), &label("kek-migration"), at(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    let record = tx.key_version(&v7).await.unwrap();
    assert_eq!(
        (record.last_change.as_str(), record.last_change_at),
        ("custodian-change", at(50))
    );
    assert!(matches!(
        refused(
            tx.record_version_change(&v7, &label("kek-migration"), at(49))
                .await
        ),
        Error::TimesOutOfOrder { field: "at" }
    ));
    let mut tx = storage.begin().await.unwrap();
    let missing = version("node-z", 1);
    assert!(matches!(
        refused(tx.record_version_change(&missing, &label("x"), at(60)).await),
        Error::KeyVersionNotFound(v) if v == missing
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.retire_key_version(&version("node-a", 1), at(2))
        .await
        .unwrap();
    assert!(matches!(
        refused(
            tx.record_version_change(&version("node-a", 1), &label("x"), at(60))
                .await
        ),
        Error::KeyVersionState {
            expected: "active or retiring",
            found: "retired",
            ..
        }
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.key_version(&version("node-a", 1))
            .await
            .unwrap()
            .last_change_at,
        at(1)
    );
}

// ----- registry -----

/// Conformance case: registry person lifecycle.
pub async fn registry_person_lifecycle<S: Store>(storage: S) {
    let alice = person("ops.alice", &[Role::Operator]);
    let bob = person("sec.bob", &[Role::Security, Role::Compliance]);
    let mut tx = storage.begin().await.unwrap();
    tx.register_person(&bob).await.unwrap();
    tx.register_person(&alice).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.person(&alice.id).await.unwrap(), alice);
    let fingerprint = alice.keys.tls_fingerprint.unwrap();
    assert_eq!(
        tx.person_by_tls_fingerprint(&fingerprint).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(tx.person_by_tls_fingerprint(&[0; 32]).await.unwrap(), None);
    // Listed by id, a page at a time.
    assert_eq!(
        tx.persons(None, 10).await.unwrap(),
        [alice.clone(), bob.clone()]
    );
    assert_eq!(
        tx.persons(None, 1).await.unwrap(),
        std::slice::from_ref(&alice)
    );
    assert_eq!(
        tx.persons(Some(&alice.id), 10).await.unwrap(),
        std::slice::from_ref(&bob)
    );
    assert!(tx.persons(Some(&bob.id), 10).await.unwrap().is_empty());

    // Roles change; keys rotate into a new epoch.
    let roles = RoleSet::EMPTY.with(Role::Operator).with(Role::Auditor);
    tx.set_person_roles(&alice.id, roles, at(5)).await.unwrap();
    let rotated = person_keys("ops.alice", 1);
    assert_eq!(
        tx.rotate_person_keys(&alice.id, &rotated, at(10))
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    let current = tx.person(&alice.id).await.unwrap();
    assert_eq!(current.roles, roles);
    assert!(current.roles.contains(Role::Auditor) && !current.roles.contains(Role::Security));
    assert_eq!(current.key_epoch, 2);
    assert_eq!(current.keys, rotated);
    // The fingerprint lookup follows the current keys only.
    assert_eq!(
        tx.person_by_tls_fingerprint(&fingerprint).await.unwrap(),
        None
    );
    assert_eq!(
        tx.person_by_tls_fingerprint(&rotated.tls_fingerprint.unwrap())
            .await
            .unwrap(),
        Some(current.clone())
    );
    // A person may keep some of their current keys and drop some (never
    // take back an earlier one: `registry_retired_keys_never_come_back`).
    let mut partial = rotated.clone();
    partial.tls_fingerprint = person_keys("ops.alice", 2).tls_fingerprint;
    partial.approval_key = None;
    assert_eq!(
        tx.rotate_person_keys(&alice.id, &partial, at(20))
            .await
            .unwrap(),
        3
    );
    let reason = FreeText::new("left the company").unwrap();
    tx.revoke_person(&alice.id, &bob.id, &reason, at(30))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let revoked = tx.person(&alice.id).await.unwrap();
    assert_eq!(
        revoked.state,
        PersonState::Revoked {
            at: at(30),
            by: bob.id.clone(),
            reason
        }
    );
    assert_eq!(revoked.keys, partial);
    // A revoked person is still found by their certificate: the caller
    // sees the state and refuses.
    assert_eq!(
        tx.person_by_tls_fingerprint(&partial.tls_fingerprint.unwrap())
            .await
            .unwrap(),
        Some(revoked.clone())
    );
    let epoch = |epoch, keys: &PersonKeys, from, until: Option<u64>| PersonKeyEpoch {
        person: alice.id.clone(),
        epoch,
        keys: keys.clone(),
        valid_from: at(from),
        valid_until: until.map(at),
    };
    assert_eq!(
        tx.person_key_history(&alice.id).await.unwrap(),
        [
            epoch(1, &alice.keys, 1, Some(10)),
            epoch(2, &rotated, 10, Some(20)),
            epoch(3, &partial, 20, Some(30)),
        ]
    );
    assert_eq!(
        tx.person_key_history(&bob.id).await.unwrap(),
        [PersonKeyEpoch {
            person: bob.id.clone(),
            epoch: 1,
            keys: bob.keys.clone(),
            valid_from: at(1),
            valid_until: None,
        }]
    );
}

/// Conformance case: `persons_named` finds exactly the named persons that exist, revoked
/// ones included, across more ids than one query holds, once each.
pub async fn registry_persons_named<S: Store>(storage: S) {
    let names: Vec<String> = (0..11).map(|i| format!("ops.p{i:02}")).collect();
    let mut tx = storage.begin().await.unwrap();
    for name in &names {
        tx.register_person(&person(name, &[Role::Operator]))
            .await
            .unwrap();
    }
    let reason = FreeText::new("left").unwrap();
    tx.revoke_person(&actor("ops.p03"), &actor("admin.root"), &reason, at(5))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(tx.persons_named(&[]).await.unwrap().is_empty());
    // Ten existing ids (two queries' worth), one twice, one unknown.
    let mut wanted: Vec<ActorId> = names[1..].iter().map(|name| actor(name)).collect();
    wanted.push(actor("ops.p05"));
    wanted.push(actor("ops.nobody"));
    let mut found = tx.persons_named(&wanted).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = Vec::new();
    for name in &names[1..] {
        expected.push(tx.person(&actor(name)).await.unwrap());
    }
    assert_eq!(found, expected);
    assert!(matches!(
        found
            .iter()
            .find(|p| p.id == actor("ops.p03"))
            .unwrap()
            .state,
        PersonState::Revoked { .. }
    ));
}

/// Conformance case: registry person refusals.
pub async fn registry_person_refusals<S: Store>(storage: S) {
    let alice = person("ops.alice", &[Role::Operator]);
    let mut tx = storage.begin().await.unwrap();
    tx.register_person(&alice).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_person(&alice).await),
        Error::PersonExists(id) if id == alice.id
    ));
    let mut later_epoch = person("ops.carol", &[]);
    later_epoch.key_epoch = 2;
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_person(&later_epoch).await),
        Error::InvalidRegistration { field: "key_epoch" }
    ));
    let mut revoked = person("ops.carol", &[]);
    revoked.state = PersonState::Revoked {
        at: at(1),
        by: actor("admin.root"),
        reason: FreeText::new("never").unwrap(),
    };
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_person(&revoked).await),
        Error::InvalidRegistration { field: "state" }
    ));
    for recipient in [
        String::new(),
        "age1 space".into(),
        "age1é".into(),
        "a".repeat(129),
    ] {
        let mut bad = person("ops.carol", &[]);
        bad.keys.age_recipient = Some(recipient.clone());
        let mut tx = storage.begin().await.unwrap();
        assert!(
            matches!(
                refused(tx.register_person(&bad).await),
                Error::InvalidAgeRecipient
            ),
            "{recipient:?}"
        );
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.rotate_person_keys(&alice.id, &bad.keys, at(5)).await),
            Error::InvalidAgeRecipient
        ));
    }
    // The longest recipient and a person without any key are fine.
    let mut longest = person("ops.carol", &[]);
    longest.keys.age_recipient = Some("a".repeat(128));
    let keyless = PersonRecord {
        keys: PersonKeys::default(),
        ..person("ops.dave", &[])
    };
    let mut tx = storage.begin().await.unwrap();
    tx.register_person(&longest).await.unwrap();
    tx.register_person(&keyless).await.unwrap();
    assert_eq!(tx.person(&keyless.id).await.unwrap(), keyless);
    tx.commit().await.unwrap();

    let missing = actor("nobody");
    for case in 0..5 {
        let mut tx = storage.begin().await.unwrap();
        let reason = FreeText::new("x").unwrap();
        let result = match case {
            0 => tx.person(&missing).await.map(drop),
            1 => tx
                .rotate_person_keys(&missing, &person_keys("nobody", 1), at(5))
                .await
                .map(drop),
            2 => tx.set_person_roles(&missing, RoleSet::EMPTY, at(5)).await,
            3 => tx.revoke_person(&missing, &alice.id, &reason, at(5)).await,
            _ => tx.person_key_history(&missing).await.map(drop),
        };
        assert!(
            matches!(refused(result), Error::PersonNotFound(id) if id == missing),
            "case {case}"
        );
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.rotate_person_keys(&alice.id, &person_keys("ops.alice", 1), at(0))
                .await
        ),
        Error::TimesOutOfOrder { field: "at" }
    ));
    let mut tx = storage.begin().await.unwrap();
    let reason = FreeText::new("left").unwrap();
    assert!(matches!(
        refused(
            tx.revoke_person(&alice.id, &keyless.id, &reason, at(0))
                .await
        ),
        Error::TimesOutOfOrder { field: "at" }
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.revoke_person(&alice.id, &keyless.id, &reason, at(3))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for case in 0..3 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx
                .rotate_person_keys(&alice.id, &person_keys("ops.alice", 1), at(5))
                .await
                .map(drop),
            1 => tx.set_person_roles(&alice.id, RoleSet::EMPTY, at(5)).await,
            _ => {
                tx.revoke_person(&alice.id, &keyless.id, &reason, at(5))
                    .await
            }
        };
        assert!(
            matches!(refused(result), Error::PersonRevoked(id) if id == alice.id),
            "case {case}"
        );
    }
    // Nothing refused changed anything.
    let mut tx = storage.begin_read_only().await.unwrap();
    let stored = tx.person(&alice.id).await.unwrap();
    assert_eq!((stored.key_epoch, stored.roles), (1, alice.roles));
    assert_eq!(tx.person_key_history(&alice.id).await.unwrap().len(), 1);
    assert_eq!(tx.persons(None, 10).await.unwrap().len(), 3);
}

/// Gives keys one key of another person's.
type KeysEdit = fn(&mut PersonKeys, &PersonKeys);

/// Conformance case: registry keys belong to one person.
pub async fn registry_keys_belong_to_one_person<S: Store>(storage: S) {
    let alice = person("ops.alice", &[Role::Operator]);
    let mut tx = storage.begin().await.unwrap();
    tx.register_person(&alice).await.unwrap();
    // Alice's first keys go to history.
    tx.rotate_person_keys(&alice.id, &person_keys("ops.alice", 1), at(10))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let old = person_keys("ops.alice", 0);
    let current = person_keys("ops.alice", 1);
    let fresh = person_keys("ops.carol", 0);
    let cases: [(&str, &str, KeysEdit); 7] = [
        ("current receipt key", "receipt key", |k, a| {
            k.receipt_key = a.receipt_key;
        }),
        ("old receipt key", "receipt key", |k, a| {
            k.receipt_key = a.receipt_key;
        }),
        // Receipt and approval keys are both signing keys: never crossed.
        ("approval key as receipt key", "receipt key", |k, a| {
            k.receipt_key = a.approval_key;
        }),
        ("receipt key as approval key", "approval key", |k, a| {
            k.approval_key = a.receipt_key;
        }),
        ("old age recipient", "age recipient", |k, a| {
            k.age_recipient.clone_from(&a.age_recipient);
        }),
        ("old TLS fingerprint", "TLS fingerprint", |k, a| {
            k.tls_fingerprint = a.tls_fingerprint;
        }),
        ("current TLS fingerprint", "TLS fingerprint", |k, a| {
            k.tls_fingerprint = a.tls_fingerprint;
        }),
    ];
    for (case, expected, edit) in cases {
        let source = if case.starts_with("old") {
            &old
        } else {
            &current
        };
        let mut keys = fresh.clone();
        edit(&mut keys, source);
        let mut carol = person("ops.carol", &[]);
        carol.keys = keys.clone();
        let mut tx = storage.begin().await.unwrap();
        assert!(
            matches!(refused(tx.register_person(&carol).await), Error::KeyInUse { kind } if kind == expected),
            "{case}"
        );
        // Rotation checks the same.
        let mut tx = storage.begin().await.unwrap();
        tx.register_person(&person("ops.carol", &[])).await.unwrap();
        assert!(
            matches!(
                refused(tx.rotate_person_keys(&carol.id, &keys, at(20)).await),
                Error::KeyInUse { kind } if kind == expected
            ),
            "rotate: {case}"
        );
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    let stored = tx.person(&alice.id).await.unwrap();
    assert_eq!(tx.persons(None, 10).await.unwrap(), [stored]);
}

/// Conformance case: a key rotated out of a person's keys is never
/// theirs again (a leaked certificate or signing key stays retired), while
/// a key of the current epoch may be kept across a rotation.
pub async fn registry_retired_keys_never_come_back<S: Store>(storage: S) {
    let alice = person("ops.alice", &[Role::Operator]);
    let first = alice.keys.clone();
    let second = person_keys("ops.alice", 1);
    let mut tx = storage.begin().await.unwrap();
    tx.register_person(&alice).await.unwrap();
    tx.rotate_person_keys(&alice.id, &second, at(10))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let cases: [(&str, &str, KeysEdit); 5] = [
        ("first TLS fingerprint", "TLS fingerprint", |k, a| {
            k.tls_fingerprint = a.tls_fingerprint;
        }),
        ("first approval key", "approval key", |k, a| {
            k.approval_key = a.approval_key;
        }),
        ("first receipt key", "receipt key", |k, a| {
            k.receipt_key = a.receipt_key;
        }),
        (
            "first approval key as receipt key",
            "receipt key",
            |k, a| {
                k.receipt_key = a.approval_key;
            },
        ),
        ("first age recipient", "age recipient", |k, a| {
            k.age_recipient.clone_from(&a.age_recipient);
        }),
    ];
    for (case, expected, edit) in cases {
        let mut keys = person_keys("ops.alice", 2);
        edit(&mut keys, &first);
        let mut tx = storage.begin().await.unwrap();
        assert!(
            matches!(
                refused(tx.rotate_person_keys(&alice.id, &keys, at(20)).await),
                Error::KeyRetired { kind } if kind == expected
            ),
            "{case}"
        );
    }
    // Nothing refused changed anything.
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.person(&alice.id).await.unwrap().key_epoch, 2);
    drop(tx);

    // The current keys may be kept: a new TLS certificate, the same
    // signing keys; then those signing keys stay current, still allowed.
    let mut third = second.clone();
    third.tls_fingerprint = person_keys("ops.alice", 2).tls_fingerprint;
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.rotate_person_keys(&alice.id, &third, at(30))
            .await
            .unwrap(),
        3
    );
    let mut fourth = third.clone();
    fourth.tls_fingerprint = person_keys("ops.alice", 3).tls_fingerprint;
    assert_eq!(
        tx.rotate_person_keys(&alice.id, &fourth, at(40))
            .await
            .unwrap(),
        4
    );
    // The second certificate, current in epoch 2, is retired now.
    let mut back = fourth.clone();
    back.tls_fingerprint = second.tls_fingerprint;
    assert!(matches!(
        refused(tx.rotate_person_keys(&alice.id, &back, at(50)).await),
        Error::KeyRetired {
            kind: "TLS fingerprint"
        }
    ));
}

/// Conformance case: registry entities.
pub async fn registry_entities<S: Store>(storage: S) {
    with_persons(&storage, &["cust.anna", "cust.ben", "cust.cleo"]).await;
    let escrow = entity("escrow-co", &["cust.anna", "cust.ben"]);
    let cold = entity("cold-backup", &["cust.cleo"]);
    let mut tx = storage.begin().await.unwrap();
    tx.register_entity(&escrow).await.unwrap();
    tx.register_entity(&cold).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.entity(&escrow.id).await.unwrap(), escrow);
    assert_eq!(tx.entities().await.unwrap(), [cold.clone(), escrow.clone()]);
    tx.revoke_entity(&escrow.id, &actor("sec.bob"), at(50))
        .await
        .unwrap();
    // Its members are free to act for another entity now.
    let successor = entity("escrow-two", &["cust.ben"]);
    tx.register_entity(&successor).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let revoked = tx.entity(&escrow.id).await.unwrap();
    assert_eq!(
        revoked.state,
        EntityState::Revoked {
            at: at(50),
            by: actor("sec.bob")
        }
    );
    assert_eq!(revoked.members, escrow.members);
    assert_eq!(tx.entities().await.unwrap(), [cold, revoked, successor]);
}

/// Conformance case: registry entity refusals.
pub async fn registry_entity_refusals<S: Store>(storage: S) {
    with_persons(&storage, &["cust.anna", "cust.ben", "cust.cleo"]).await;
    let escrow = entity("escrow-co", &["cust.anna"]);
    let mut tx = storage.begin().await.unwrap();
    tx.register_entity(&escrow).await.unwrap();
    tx.revoke_person(
        &actor("cust.cleo"),
        &actor("sec.bob"),
        &FreeText::new("left").unwrap(),
        at(5),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_entity(&entity("escrow-co", &["cust.ben"])).await),
        Error::EntityExists(id) if id == escrow.id
    ));
    let mut revoked = entity("other", &["cust.ben"]);
    revoked.state = EntityState::Revoked {
        at: at(1),
        by: actor("sec.bob"),
    };
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_entity(&revoked).await),
        Error::InvalidRegistration { field: "state" }
    ));
    let too_many: Vec<String> = (0..=MAX_ENTITY_MEMBERS)
        .map(|i| format!("p{i:03}"))
        .collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for members in [
        &[][..],
        &["cust.ben", "cust.anna"][..],
        &["cust.ben", "cust.ben"][..],
        &too_many[..],
    ] {
        let mut tx = storage.begin().await.unwrap();
        assert!(
            matches!(
                refused(tx.register_entity(&entity("other", members)).await),
                Error::InvalidMembers
            ),
            "{members:?}"
        );
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_entity(&entity("other", &["cust.ben", "nobody"])).await),
        Error::PersonNotFound(id) if id.as_str() == "nobody"
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_entity(&entity("other", &["cust.ben", "cust.cleo"])).await),
        Error::PersonRevoked(id) if id.as_str() == "cust.cleo"
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.register_entity(&entity("other", &["cust.anna", "cust.ben"])).await),
        Error::PersonInOtherEntity { person, entity }
            if person.as_str() == "cust.anna" && entity == escrow.id
    ));
    let missing = CustodianId::new("nowhere").unwrap();
    for case in 0..2 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx.entity(&missing).await.map(drop),
            _ => tx.revoke_entity(&missing, &actor("sec.bob"), at(9)).await,
        };
        assert!(matches!(refused(result), Error::EntityNotFound(id) if id == missing));
    }
    let mut tx = storage.begin().await.unwrap();
    tx.revoke_entity(&escrow.id, &actor("sec.bob"), at(9))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.revoke_entity(&escrow.id, &actor("sec.bob"), at(10)).await),
        Error::EntityRevoked(id) if id == escrow.id
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.entities().await.unwrap().len(), 1);
}

// ----- inventory -----

/// Challenge `byte` of `slot` for the fixture custodian `escrow-co`,
/// issued at `at(issued)`, expiring at `at(expires)`.
pub fn challenge(byte: u8, slot: &ShareSlot, issued: u64, expires: u64) -> InventoryChallenge {
    InventoryChallenge {
        nonce: [byte; 32],
        slot: slot.clone(),
        custodian: CustodianId::new("escrow-co").unwrap(),
        issued_at: at(issued),
        expires_at: at(expires),
    }
}

/// The proof of challenge `byte` by the agent of `escrow-co`, verified at
/// `at(verified)`.
pub fn inventory_proof(byte: u8, slot: &ShareSlot, verified: u64) -> InventoryProofRecord {
    InventoryProofRecord {
        nonce: [byte; 32],
        slot: slot.clone(),
        person: agent("escrow-co"),
        proof: derived(&format!("proof {byte}"), "schnorr").repeat(3),
        verified_at: at(verified),
    }
}

/// Version 1 of `node-a` with slot 3 at `escrow-co` and slot 4 at
/// `cold-backup`, committed.
pub async fn with_external_slots<S: Storage>(storage: &S) {
    with_version(storage, "node-a", 1).await;
    with_custodians(storage, &["escrow-co", "cold-backup"]).await;
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&custody(&slot("node-a", 1, 3), "escrow-co"))
        .await
        .unwrap();
    tx.assign_custodian(&custody(&slot("node-a", 1, 4), "cold-backup"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Records one of every kind of backup evidence, committed, for the
/// backend tests to try to change behind storage's back: a person with two
/// key epochs, a revoked person, an entity, a group, two policies, a
/// version with its split reference, a custody entry, a consumed challenge
/// with its proof, a rate counter at 2 and an anomaly.
pub async fn with_backup_evidence<S: Storage>(storage: &S) {
    with_external_slots(storage).await;
    let mut tx = storage.begin().await.unwrap();
    let alice = person("ops.alice", &[Role::Operator]);
    tx.register_person(&alice).await.unwrap();
    tx.rotate_person_keys(&alice.id, &person_keys("ops.alice", 1), at(10))
        .await
        .unwrap();
    tx.register_person(&person("ops.gone", &[])).await.unwrap();
    tx.revoke_person(
        &actor("ops.gone"),
        &alice.id,
        &FreeText::new("left").unwrap(),
        at(11),
    )
    .await
    .unwrap();
    let mut second = policy();
    second.hash = [0x71; 32];
    second.set_at = at(12);
    tx.set_policy(&second).await.unwrap();
    let target = slot("node-a", 1, 3);
    tx.issue_inventory_challenge(&challenge(1, &target, 100, 200))
        .await
        .unwrap();
    tx.consume_inventory_challenge(&[1; 32], at(150))
        .await
        .unwrap();
    tx.record_inventory_proof(&inventory_proof(1, &target, 160))
        .await
        .unwrap();
    for _ in 0..2 {
        tx.bump_rate_counter(&alice.id, &label("share-read"), at(0))
            .await
            .unwrap();
    }
    tx.record_anomaly(&AnomalyRecord {
        kind: label("rate-limited"),
        person: Some(alice.id.clone()),
        slot: None,
        at: at(170),
        detail: FreeText::new("3 reads in a minute").unwrap(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// What [`with_backup_evidence`] stored, read back through storage: the
/// backend tests compare it before and after their attempts.
pub async fn backup_evidence<S: Storage>(storage: &S) -> String {
    let mut tx = storage.begin_read_only().await.unwrap();
    let v1 = version("node-a", 1);
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        tx.persons(None, 100).await.unwrap(),
        tx.person_key_history(&actor("ops.alice")).await.unwrap(),
        tx.entities().await.unwrap(),
        tx.group(&v1.key_id).await.unwrap(),
        (
            tx.policy(&POLICY_HASH).await.unwrap(),
            tx.current_policy().await.unwrap()
        ),
        (
            tx.key_version(&v1).await.unwrap(),
            tx.split_reference(&v1).await.unwrap()
        ),
        tx.custody_map(&v1).await.unwrap(),
        tx.anomalies_since(at(0), 100).await.unwrap(),
        tx.anomaly_counts().await.unwrap(),
        tx.deliveries(&v1).await.unwrap(),
    )
}

/// Whether an error is the one a case expects.
type Expected = fn(&Error) -> bool;

/// Conformance case: inventory challenges are single use.
pub async fn inventory_challenges_are_single_use<S: Store>(storage: S) {
    with_external_slots(&storage).await;
    let target = slot("node-a", 1, 3);
    let first = challenge(1, &target, 100, 200);
    let mut tx = storage.begin().await.unwrap();
    tx.issue_inventory_challenge(&first).await.unwrap();
    tx.issue_inventory_challenge(&challenge(2, &target, 100, 300))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.consume_inventory_challenge(&first.nonce, at(150))
            .await
            .unwrap(),
        first
    );
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.consume_inventory_challenge(&first.nonce, at(160)).await),
        Error::ChallengeConsumed(nonce) if nonce == first.nonce
    ));
    // Expired at its expiry time; the refusal consumes nothing.
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.consume_inventory_challenge(&[2; 32], at(300)).await),
        Error::ChallengeExpired { nonce, expired_at } if nonce == [2; 32] && expired_at == at(300)
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.consume_inventory_challenge(&[2; 32], at(299))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.consume_inventory_challenge(&[9; 32], at(150)).await),
        Error::ChallengeNotFound(nonce) if nonce == [9; 32]
    ));

    // Issue refusals.
    let mut wrong_custodian = challenge(3, &target, 100, 200);
    wrong_custodian.custodian = CustodianId::new("cold-backup").unwrap();
    let cases: [(InventoryChallenge, Expected); 5] = [
        (
            first.clone(),
            |e| matches!(e, Error::ChallengeExists(nonce) if *nonce == [1; 32]),
        ),
        (challenge(3, &slot("node-a", 1, 5), 100, 200), |e| {
            matches!(e, Error::CustodyEntryNotFound(_))
        }),
        (
            wrong_custodian,
            |e| matches!(e, Error::CustodianMismatch { mapped, .. } if mapped.as_str() == "escrow-co"),
        ),
        (challenge(3, &target, 100, 100), |e| {
            matches!(
                e,
                Error::TimesOutOfOrder {
                    field: "expires_at"
                }
            )
        }),
        (challenge(3, &target, 100, 99), |e| {
            matches!(
                e,
                Error::TimesOutOfOrder {
                    field: "expires_at"
                }
            )
        }),
    ];
    for (bad, expected) in cases {
        let mut tx = storage.begin().await.unwrap();
        let error = refused(tx.issue_inventory_challenge(&bad).await);
        assert!(expected(&error), "{bad:?}: {error:?}");
    }
    // The other custodian's slot takes its own challenges.
    let mut other = challenge(4, &slot("node-a", 1, 4), 100, 200);
    other.custodian = CustodianId::new("cold-backup").unwrap();
    let mut tx = storage.begin().await.unwrap();
    tx.issue_inventory_challenge(&other).await.unwrap();
    assert_eq!(
        tx.consume_inventory_challenge(&other.nonce, at(100))
            .await
            .unwrap(),
        other
    );
}

/// Conformance case: inventory proofs are checked.
pub async fn inventory_proofs_are_checked<S: Store>(storage: S) {
    with_external_slots(&storage).await;
    let target = slot("node-a", 1, 3);
    let mut tx = storage.begin().await.unwrap();
    for byte in [1, 2] {
        tx.issue_inventory_challenge(&challenge(byte, &target, 100, 200))
            .await
            .unwrap();
    }
    tx.consume_inventory_challenge(&[1; 32], at(150))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut other_slot = inventory_proof(1, &target, 160);
    other_slot.slot = slot("node-a", 1, 4);
    let mut other_person = inventory_proof(1, &target, 160);
    other_person.person = agent("cold-backup");
    let mut empty = inventory_proof(1, &target, 160);
    empty.proof.clear();
    let mut long = inventory_proof(1, &target, 160);
    long.proof = vec![1; MAX_INVENTORY_PROOF_LEN + 1];
    let cases: [(InventoryProofRecord, Expected); 7] = [
        (
            inventory_proof(9, &target, 160),
            |e| matches!(e, Error::ChallengeNotFound(nonce) if *nonce == [9; 32]),
        ),
        (
            inventory_proof(2, &target, 160),
            |e| matches!(e, Error::ChallengeNotConsumed(nonce) if *nonce == [2; 32]),
        ),
        (
            other_slot,
            |e| matches!(e, Error::ChallengeSlotMismatch(nonce) if *nonce == [1; 32]),
        ),
        (other_person, |e| {
            matches!(e, Error::CustodyPersonMismatch { expected, .. }
                if *expected == agent("escrow-co"))
        }),
        (inventory_proof(1, &target, 99), |e| {
            matches!(
                e,
                Error::TimesOutOfOrder {
                    field: "verified_at"
                }
            )
        }),
        (empty, |e| {
            matches!(
                e,
                Error::BlobLength {
                    field: "inventory proof",
                    ..
                }
            )
        }),
        (long, |e| {
            matches!(
                e,
                Error::BlobLength {
                    field: "inventory proof",
                    ..
                }
            )
        }),
    ];
    for (bad, expected) in cases {
        let mut tx = storage.begin().await.unwrap();
        let error = refused(tx.record_inventory_proof(&bad).await);
        assert!(expected(&error), "{bad:?}: {error:?}");
    }

    // The proof confirms the slot; one proof per challenge.
    let proof = inventory_proof(1, &target, 160);
    let mut tx = storage.begin().await.unwrap();
    tx.record_inventory_proof(&proof).await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap().confirmed_at,
        Some(at(160))
    );
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_inventory_proof(&proof).await),
        Error::InventoryProofExists(nonce) if nonce == [1; 32]
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.custody_entry(&slot("node-a", 1, 4))
            .await
            .unwrap()
            .confirmed_at,
        None
    );
}

// ----- rate counters and anomalies -----

/// Conformance case: rate counters count per person kind and window.
pub async fn rate_counters_count_per_person_kind_and_window<S: Store>(storage: S) {
    let alice = actor("ops.alice");
    let reads = label("share-read");
    let mut tx = storage.begin().await.unwrap();
    for expected in 1..=3 {
        assert_eq!(
            tx.bump_rate_counter(&alice, &reads, at(0)).await.unwrap(),
            expected
        );
    }
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.bump_rate_counter(&alice, &reads, at(0)).await.unwrap(),
        4
    );
    // Each person, kind and window counts on its own.
    assert_eq!(
        tx.bump_rate_counter(&alice, &label("recovery"), at(0))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.bump_rate_counter(&alice, &reads, at(60_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.bump_rate_counter(&actor("ops.bob"), &reads, at(0))
            .await
            .unwrap(),
        1
    );
    // Rolled back: the counts go with the transaction.
    tx.rollback().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.bump_rate_counter(&alice, &reads, at(0)).await.unwrap(),
        4
    );
    assert_eq!(
        tx.bump_rate_counter(&actor("ops.bob"), &reads, at(0))
            .await
            .unwrap(),
        1
    );
    let mut read_only = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(read_only.bump_rate_counter(&alice, &reads, at(0)).await),
        Error::ReadOnlyTransaction
    ));
}

/// Conformance case: concurrent rate counters never lose a count.
pub async fn concurrent_rate_counters_never_lose_a_count<S: Store>(storage: S) {
    // Replicas share the counter: every bump is counted once.
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..STEPS {
                    let mut tx = storage.begin().await?;
                    seen.push(
                        tx.bump_rate_counter(&actor("ops.alice"), &label("share-read"), at(0))
                            .await?,
                    );
                    tx.commit().await?;
                }
                Ok::<_, Error>(seen)
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap().unwrap());
    }
    seen.sort_unstable();
    let total = u32::try_from(TASKS * STEPS).unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

/// Conformance case: anomalies are kept and counted.
pub async fn anomalies_are_kept_and_counted<S: Store>(storage: S) {
    let anomaly =
        |kind: &str, person: Option<&str>, slot: Option<ShareSlot>, millis| AnomalyRecord {
            kind: label(kind),
            person: person.map(actor),
            slot,
            at: at(millis),
            detail: FreeText::new(format!("{kind} at {millis}")).unwrap(),
        };
    // The person and slot need not exist: an unregistered actor reading a
    // slot that is not there is an anomaly too.
    let recorded = [
        anomaly("rate-limited", Some("ops.alice"), None, 30),
        anomaly("privilege-violation", None, None, 10),
        anomaly(
            "read-outside-session",
            Some("ghost"),
            Some(slot("node-z", 9, 7)),
            20,
        ),
        anomaly("rate-limited", Some("ops.bob"), None, 20),
    ];
    let mut tx = storage.begin().await.unwrap();
    for record in &recorded {
        tx.record_anomaly(record).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    // Oldest first; equal times in recording order.
    assert_eq!(
        tx.anomalies_since(at(0), 10).await.unwrap(),
        [
            recorded[1].clone(),
            recorded[2].clone(),
            recorded[3].clone(),
            recorded[0].clone()
        ]
    );
    assert_eq!(
        tx.anomalies_since(at(20), 2).await.unwrap(),
        [recorded[2].clone(), recorded[3].clone()]
    );
    assert!(tx.anomalies_since(at(31), 10).await.unwrap().is_empty());
    assert_eq!(
        tx.anomaly_counts().await.unwrap(),
        [
            (label("privilege-violation"), 1),
            (label("rate-limited"), 2),
            (label("read-outside-session"), 1)
        ]
    );
    let mut read_only = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(read_only.record_anomaly(&recorded[0]).await),
        Error::ReadOnlyTransaction
    ));
}

// ----- status -----

/// A drill of `target` from `at(started)` to `at(finished)`.
pub fn drill(target: &NodeVersion, started: u64, finished: u64, passed: bool) -> DrillReport {
    DrillReport {
        target: target.clone(),
        started_at: at(started),
        finished_at: at(finished),
        operator: actor("ops.alice"),
        shares_used: vec![index(3), index(4), index(5)],
        outcome: if passed {
            DrillOutcome::Passed
        } else {
            DrillOutcome::Failed {
                reason: FreeText::new("the sign test failed").unwrap(),
            }
        },
        report: b"report".to_vec(),
    }
}

/// A delivery of `entry`'s envelope at `at(millis)`: a receipt, or a
/// failure with `reason`.
pub fn delivery(entry: &CustodyEntry, millis: u64, failure: Option<&str>) -> DeliveryRecord {
    DeliveryRecord {
        slot: entry.slot.clone(),
        custodian: entry.custodian.clone(),
        envelope_id: *entry.envelope_id.as_bytes(),
        outcome: match failure {
            None => DeliveryOutcome::Delivered {
                receipt: b"signed receipt".to_vec(),
            },
            Some(reason) => DeliveryOutcome::Failed {
                reason: FreeText::new(reason).unwrap(),
            },
        },
        recorded_at: at(millis),
    }
}

/// Four versions, committed:
/// - `wallet-1/node-a/v1`: server slots 1 (active) and 2 (hard-deleted),
///   external slots 3-5 at `escrow-co`, `cold-backup`, `customer-sec`;
///   receipts for 3 and 4, three failed deliveries (two of 5, one of 4), a
///   failed then a passed drill;
/// - `wallet-1/node-b/v1`: nothing but the version;
/// - `wallet-1/node-c/v1`: retired;
/// - `wallet-2/node-a/v1`: slot 3 at `escrow-co`, with a receipt.
pub async fn with_status_fixture<S: Storage>(storage: &S) {
    with_shares(storage).await;
    with_custodians(storage, &["cold-backup", "customer-sec", "escrow-co"]).await;
    let v1 = version("node-a", 1);
    let other_key = NodeVersion {
        key_id: KeyId::new("wallet-2").unwrap(),
        ..v1.clone()
    };
    let t = Threshold::new(3, 5).unwrap();
    let mut tx = storage.begin().await.unwrap();
    create_version(&mut tx, &version("node-b", 1), t, 5)
        .await
        .unwrap();
    create_version(&mut tx, &version("node-c", 1), t, 5)
        .await
        .unwrap();
    tx.begin_key_retirement(&version("node-c", 1), at(6), at(7))
        .await
        .unwrap();
    tx.retire_key_version(&version("node-c", 1), at(7))
        .await
        .unwrap();
    create_version(&mut tx, &other_key, t, 5).await.unwrap();
    let mut entries = Vec::new();
    for (i, custodian) in [(3, "escrow-co"), (4, "cold-backup"), (5, "customer-sec")] {
        let entry = custody(&v1.slot(index(i)), custodian);
        tx.assign_custodian(&entry).await.unwrap();
        entries.push(entry);
    }
    let elsewhere = custody(&other_key.slot(index(3)), "escrow-co");
    tx.assign_custodian(&elsewhere).await.unwrap();
    for record in [
        delivery(&entries[0], 300, None),
        delivery(&entries[1], 350, Some("wrong address")),
        delivery(&entries[1], 400, None),
        delivery(&entries[2], 410, Some("courier lost it")),
        delivery(&entries[2], 420, Some("courier lost it")),
        delivery(&elsewhere, 430, None),
    ] {
        tx.record_delivery(&record).await.unwrap();
    }
    tx.record_drill(&drill(&v1, 500, 510, false)).await.unwrap();
    tx.record_drill(&drill(&v1, 600, 650, true)).await.unwrap();
    let slot_2 = v1.slot(index(2));
    tx.soft_delete_slot(&slot_2, &actor("ops.alice"), at(700), at(800))
        .await
        .unwrap();
    tx.hard_delete_slot(&slot_2, at(800), b"destroyed")
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Every row of `filter`, fetched `page` rows at a time.
async fn all_status_rows<T: Transaction>(
    tx: &mut T,
    filter: &StatusFilter,
    page: u32,
) -> Vec<VersionStatusRow> {
    let mut rows: Vec<VersionStatusRow> = Vec::new();
    loop {
        let after = rows.last().map(|row| row.version.clone());
        let next = tx.status_page(filter, after.as_ref(), page).await.unwrap();
        assert!(next.len() <= usize::try_from(page).unwrap());
        if next.is_empty() {
            return rows;
        }
        rows.extend(next);
    }
}

/// Conformance case: status pages follow the filter and page by keyset.
pub async fn status_pages_follow_the_filter<S: Store>(storage: S) {
    with_status_fixture(&storage).await;
    let mut tx = storage.begin_read_only().await.unwrap();
    let listed = |rows: &[VersionStatusRow]| -> Vec<String> {
        rows.iter().map(|row| row.version.to_string()).collect()
    };
    let filter = StatusFilter::default();
    let rows = tx.status_page(&filter, None, 10).await.unwrap();
    assert_eq!(
        listed(&rows),
        [
            "wallet-1/node-a/v1",
            "wallet-1/node-b/v1",
            "wallet-2/node-a/v1"
        ]
    );
    // Page by page, the same rows: keyset pagination.
    for page in [1, 2] {
        assert_eq!(all_status_rows(&mut tx, &filter, page).await, rows);
    }
    let with_retired = StatusFilter {
        include_retired: true,
        ..StatusFilter::default()
    };
    assert_eq!(
        listed(&all_status_rows(&mut tx, &with_retired, 1).await),
        [
            "wallet-1/node-a/v1",
            "wallet-1/node-b/v1",
            "wallet-1/node-c/v1",
            "wallet-2/node-a/v1"
        ]
    );
    let of_key = StatusFilter {
        key_id: Some(KeyId::new("wallet-2").unwrap()),
        ..StatusFilter::default()
    };
    assert_eq!(
        listed(&tx.status_page(&of_key, None, 10).await.unwrap()),
        ["wallet-2/node-a/v1"]
    );
    let of_node = StatusFilter {
        node_id: Some(NodeId::new("node-a").unwrap()),
        ..StatusFilter::default()
    };
    assert_eq!(
        listed(&all_status_rows(&mut tx, &of_node, 1).await),
        ["wallet-1/node-a/v1", "wallet-2/node-a/v1"]
    );
    let of_both = StatusFilter {
        key_id: Some(KeyId::new("wallet-1").unwrap()),
        node_id: Some(NodeId::new("node-c").unwrap()),
        include_retired: true,
    };
    assert_eq!(
        listed(&tx.status_page(&of_both, None, 10).await.unwrap()),
        ["wallet-1/node-c/v1"]
    );
    assert!(
        tx.status_page(
            &StatusFilter {
                include_retired: false,
                ..of_both
            },
            None,
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
    // After the last row, and with a zero limit, nothing.
    let last = rows.last().unwrap().version.clone();
    assert!(
        tx.status_page(&filter, Some(&last), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(tx.status_page(&filter, None, 0).await.unwrap().is_empty());
    // A page may start after a version that does not exist.
    let between = version("node-az", 1);
    assert_eq!(
        listed(&tx.status_page(&filter, Some(&between), 10).await.unwrap()),
        ["wallet-1/node-b/v1", "wallet-2/node-a/v1"]
    );
}

/// Conformance case: a status row aggregates its version's slots, custody,
/// deliveries and drills.
pub async fn status_rows_aggregate_each_version<S: Store>(storage: S) {
    with_status_fixture(&storage).await;
    let v1 = version("node-a", 1);
    let t = Threshold::new(3, 5).unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    let filter = StatusFilter {
        include_retired: true,
        ..StatusFilter::default()
    };
    let rows = tx.status_page(&filter, None, 10).await.unwrap();
    let split = SplitSummary {
        curve: CurveId::Secp256k1.to_u8(),
        policy_hash: POLICY_HASH,
        server_shares: 2,
    };
    let bare = |version: NodeVersion, state| VersionStatusRow {
        version,
        threshold: t,
        state,
        created_at: at(5),
        split: Some(split),
        server_active: 0,
        server_soft_deleted: 0,
        server_hard_deleted: 0,
        external_assigned: 0,
        external_confirmed: 0,
        deliveries_failed: 0,
        last_inventory_at: None,
        last_drill: None,
        last_passed_drill_at: None,
        last_change_at: at(5),
    };
    let expected_v1 = VersionStatusRow {
        created_at: at(0),
        last_change_at: at(0),
        server_active: 1,
        server_hard_deleted: 1,
        external_assigned: 3,
        external_confirmed: 2,
        deliveries_failed: 3,
        // Slot 5 was never confirmed.
        last_inventory_at: None,
        last_drill: Some(DrillSummary {
            started_at: at(600),
            finished_at: at(650),
            passed: true,
        }),
        last_passed_drill_at: Some(at(650)),
        ..bare(v1.clone(), KeyVersionState::Active)
    };
    let other_key = NodeVersion {
        key_id: KeyId::new("wallet-2").unwrap(),
        ..v1.clone()
    };
    assert_eq!(
        rows,
        [
            expected_v1.clone(),
            bare(version("node-b", 1), KeyVersionState::Active),
            bare(
                version("node-c", 1),
                KeyVersionState::Retired {
                    since: at(6),
                    at: at(7)
                }
            ),
            VersionStatusRow {
                external_assigned: 1,
                external_confirmed: 1,
                last_inventory_at: Some(at(430)),
                ..bare(other_key, KeyVersionState::Active)
            },
        ]
    );
    drop(tx);

    // Once every slot is confirmed, the oldest confirmation shows; a later
    // failed drill is the last drill, the passed one stays the last passed;
    // a recorded change moves the last change.
    let mut tx = storage.begin().await.unwrap();
    tx.confirm_custody(&v1.slot(index(5)), at(900))
        .await
        .unwrap();
    tx.record_drill(&drill(&v1, 950, 960, false)).await.unwrap();
    tx.record_version_change(&v1, &label("custodian-change"), at(970))
        .await
        .unwrap();
    let row = tx
        .status_page(&StatusFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(
        row,
        [VersionStatusRow {
            last_inventory_at: Some(at(300)),
            last_drill: Some(DrillSummary {
                started_at: at(950),
                finished_at: at(960),
                passed: false,
            }),
            last_change_at: at(970),
            ..expected_v1
        }]
    );
}

/// Conformance case: the status summary, exposure rows and metrics.
pub async fn status_summary_and_metrics<S: Store>(storage: S) {
    with_status_fixture(&storage).await;
    let mut tx = storage.begin_read_only().await.unwrap();
    let current = StatusSummary {
        versions: 3,
        nodes: 3,
        keys: 2,
        server_shares_active: 1,
        external_confirmed: 3,
        external_assigned: 4,
        deliveries_failed: 3,
        drills: 2,
        drills_passed: 1,
    };
    assert_eq!(
        tx.status_summary(&StatusFilter::default()).await.unwrap(),
        current
    );
    assert_eq!(
        tx.status_summary(&StatusFilter {
            include_retired: true,
            ..StatusFilter::default()
        })
        .await
        .unwrap(),
        StatusSummary {
            versions: 4,
            nodes: 4,
            ..current
        }
    );
    assert_eq!(
        tx.status_summary(&StatusFilter {
            key_id: Some(KeyId::new("wallet-2").unwrap()),
            ..StatusFilter::default()
        })
        .await
        .unwrap(),
        StatusSummary {
            versions: 1,
            nodes: 1,
            keys: 1,
            external_confirmed: 1,
            external_assigned: 1,
            ..StatusSummary::default()
        }
    );
    assert_eq!(
        tx.status_summary(&StatusFilter {
            node_id: Some(NodeId::new("node-b").unwrap()),
            ..StatusFilter::default()
        })
        .await
        .unwrap(),
        StatusSummary {
            versions: 1,
            nodes: 1,
            keys: 1,
            ..StatusSummary::default()
        }
    );
    assert_eq!(
        tx.status_summary(&StatusFilter {
            key_id: Some(KeyId::new("wallet-9").unwrap()),
            node_id: Some(NodeId::new("node-a").unwrap()),
            include_retired: true,
        })
        .await
        .unwrap(),
        StatusSummary::default()
    );

    // Exposure: per active version and custodian entity, with the server's
    // active shares and t.
    let exposure = |node: &str, custodian: &str| ExposureRow {
        key_id: KeyId::new("wallet-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(1),
        custodian: CustodianId::new(custodian).unwrap(),
        shares: 1,
        server_active: 1,
        t: 3,
    };
    assert_eq!(
        tx.exposure_rows(&KeyId::new("wallet-1").unwrap())
            .await
            .unwrap(),
        [
            exposure("node-a", "cold-backup"),
            exposure("node-a", "customer-sec"),
            exposure("node-a", "escrow-co"),
        ]
    );
    assert!(
        tx.exposure_rows(&KeyId::new("wallet-9").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // Many keys at once (more than one statement's worth, out of order,
    // repeated, some unknown): each known key's rows once, in key order.
    let known = [
        KeyId::new("wallet-1").unwrap(),
        KeyId::new("wallet-2").unwrap(),
    ];
    let mut keys: Vec<KeyId> = (0..crate::KEYS_PER_QUERY + 5)
        .map(|i| KeyId::new(format!("absent-{i:02}")).unwrap())
        .collect();
    keys.insert(3, known[1].clone());
    keys.push(known[0].clone());
    keys.push(known[1].clone());
    let mut expected = Vec::new();
    for key in &known {
        expected.extend(tx.exposure_rows(key).await.unwrap());
    }
    assert!(!expected.is_empty());
    assert_eq!(tx.exposure_rows_of(&keys).await.unwrap(), expected);
    assert!(tx.exposure_rows_of(&[]).await.unwrap().is_empty());

    assert_eq!(
        tx.delivery_stats().await.unwrap(),
        DeliveryStats {
            assigned: 4,
            attempts: 6,
            confirmed: 3,
            failed: 3,
            failure_reasons: vec![
                (FreeText::new("courier lost it").unwrap(), 2),
                (FreeText::new("wrong address").unwrap(), 1),
            ],
        }
    );
    let recent = |started, finished, passed| RecentDrill {
        target: version("node-a", 1),
        summary: DrillSummary {
            started_at: at(started),
            finished_at: at(finished),
            passed,
        },
    };
    assert_eq!(
        tx.drill_stats(1).await.unwrap(),
        DrillStats {
            drills: 2,
            passed: 1,
            recent: vec![recent(600, 650, true)],
        }
    );
    assert_eq!(
        tx.drill_stats(10).await.unwrap().recent,
        [recent(600, 650, true), recent(500, 510, false)]
    );

    // The summary counts a version's rows either from the whole filter
    // less the versions left out, or from the selected versions alone,
    // whichever set is smaller: both give the same totals. Of wallet-1,
    // two versions are selected and one is left out...
    let wallet_1 = StatusFilter {
        key_id: Some(KeyId::new("wallet-1").unwrap()),
        ..StatusFilter::default()
    };
    let node_a = StatusSummary {
        versions: 1,
        nodes: 1,
        keys: 1,
        server_shares_active: 1,
        external_confirmed: 2,
        external_assigned: 3,
        deliveries_failed: 3,
        drills: 2,
        drills_passed: 1,
    };
    assert_eq!(
        tx.status_summary(&wallet_1).await.unwrap(),
        StatusSummary {
            versions: 2,
            nodes: 2,
            ..node_a
        }
    );
    drop(tx);
    // ...then one is selected and two are left out.
    let mut tx = storage.begin().await.unwrap();
    tx.begin_key_retirement(&version("node-b", 1), at(6), at(7))
        .await
        .unwrap();
    tx.retire_key_version(&version("node-b", 1), at(7))
        .await
        .unwrap();
    assert_eq!(tx.status_summary(&wallet_1).await.unwrap(), node_a);
    assert_eq!(
        tx.status_summary(&StatusFilter {
            include_retired: true,
            ..wallet_1.clone()
        })
        .await
        .unwrap(),
        StatusSummary {
            versions: 3,
            nodes: 3,
            ..node_a
        }
    );
    assert_eq!(
        tx.status_summary(&StatusFilter::default()).await.unwrap(),
        StatusSummary {
            versions: 2,
            nodes: 2,
            keys: 2,
            ..current
        }
    );
}

// ----- key versions -----

/// Conformance case: key version lifecycle.
pub async fn key_version_lifecycle<S: Store>(storage: S) {
    let v1 = version("node-a", 1);
    with_version(&storage, "node-a", 1).await;

    let mut tx = storage.begin().await.unwrap();
    let record = tx.key_version(&v1).await.unwrap();
    assert_eq!(record.version, v1);
    assert_eq!(record.threshold, Threshold::new(3, 5).unwrap());
    assert_eq!(record.created_at, at(0));
    assert_eq!(record.state, KeyVersionState::Active);

    tx.begin_key_retirement(&v1, at(100), at(700))
        .await
        .unwrap();
    assert_eq!(
        tx.key_version(&v1).await.unwrap().state,
        KeyVersionState::Retiring {
            since: at(100),
            cooldown_until: at(700)
        }
    );
    // Rotation: the new version becomes active while the old one cools down.
    create_version(
        &mut tx,
        &version("node-a", 2),
        Threshold::new(2, 3).unwrap(),
        100,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.retire_key_version(&v1, at(699)).await),
        Error::KeyVersionCooldown { until, .. } if until == at(700)
    ));
    drop(tx);

    let mut tx = storage.begin().await.unwrap();
    tx.retire_key_version(&v1, at(700)).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let versions = tx.key_versions(&v1.key_id, &v1.node_id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0].state,
        KeyVersionState::Retired {
            since: at(100),
            at: at(700)
        }
    );
    assert_eq!(versions[1].version, version("node-a", 2));
    assert_eq!(versions[1].state, KeyVersionState::Active);
    // Another node's versions are separate.
    assert!(
        tx.key_versions(&v1.key_id, &NodeId::new("node-b").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Conformance case: key version conflicts.
pub async fn key_version_conflicts<S: Store>(storage: S) {
    let v1 = version("node-a", 1);
    let v2 = version("node-a", 2);
    let missing = version("node-z", 9);
    with_version(&storage, "node-a", 1).await;
    let t = Threshold::new(3, 5).unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(
        matches!(refused(create_version(&mut tx, &v1, t, 1).await), Error::KeyVersionExists(v) if v == v1)
    );
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(create_version(&mut tx, &v2, t, 1).await),
        Error::ActiveVersionExists { active } if active == v1
    ));
    for case in 0..4 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx.key_version(&missing).await.map(drop),
            1 => tx.begin_key_retirement(&missing, at(1), at(2)).await,
            2 => tx.rollback_key_retirement(&missing).await,
            _ => tx.retire_key_version(&missing, at(1)).await,
        };
        assert!(matches!(refused(result), Error::KeyVersionNotFound(v) if v == missing));
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.begin_key_retirement(&v1, at(5), at(4)).await),
        Error::TimesOutOfOrder {
            field: "cooldown_until"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rollback_key_retirement(&v1).await),
        Error::KeyVersionState {
            expected: "retiring",
            found: "active",
            ..
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.retire_key_version(&v1, at(5)).await),
        Error::KeyVersionState {
            expected: "retiring",
            found: "active",
            ..
        }
    ));

    // Retiring v1, activating v2: v1 cannot come back while v2 is active.
    let mut tx = storage.begin().await.unwrap();
    tx.begin_key_retirement(&v1, at(10), at(20)).await.unwrap();
    create_version(&mut tx, &v2, t, 10).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.begin_key_retirement(&v1, at(11), at(20)).await),
        Error::KeyVersionState {
            expected: "active",
            found: "retiring",
            ..
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rollback_key_retirement(&v1).await),
        Error::ActiveVersionExists { active } if active == v2
    ));
    // Once v2 retires too, v1 may be rolled back.
    let mut tx = storage.begin().await.unwrap();
    tx.begin_key_retirement(&v2, at(12), at(13)).await.unwrap();
    tx.rollback_key_retirement(&v1).await.unwrap();
    assert_eq!(
        tx.key_version(&v1).await.unwrap().state,
        KeyVersionState::Active
    );
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    tx.retire_key_version(&v2, at(13)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.begin_key_retirement(&v2, at(14), at(15)).await),
        Error::KeyVersionState {
            expected: "active",
            found: "retired",
            ..
        }
    ));
}

// ----- sealed shares -----

/// Conformance case: sealed share round trip.
pub async fn sealed_share_round_trip<S: Store>(storage: S) {
    with_shares(&storage).await;
    with_version(&storage, "node-b", 1).await;
    let mut tx = storage.begin().await.unwrap();
    tx.store_sealed_share(&sealed(&slot("node-b", 1, 2)))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let share = sealed(&slot("node-a", 1, 2));
    assert_eq!(tx.load_sealed_share(&share.slot).await.unwrap(), share);

    let all = tx.list_slots(&SlotFilter::default()).await.unwrap();
    let slots: Vec<_> = all.iter().map(|summary| summary.slot.clone()).collect();
    assert_eq!(
        slots,
        [
            slot("node-a", 1, 1),
            slot("node-a", 1, 2),
            slot("node-b", 1, 2)
        ]
    );
    assert!(all.iter().all(|summary| summary.state == SlotState::Active));
    assert_eq!(&all[2].kek_id, fixture_kek(&slot("node-b", 1, 2)).kek_id());
    assert_eq!(
        all[2].envelope_id,
        envelope_id(&sealed(&slot("node-b", 1, 2)))
    );
    assert_eq!(all[2].stored_at, at(10));

    let node_a = SlotFilter {
        node_id: Some(NodeId::new("node-a").unwrap()),
        ..SlotFilter::default()
    };
    assert_eq!(tx.list_slots(&node_a).await.unwrap().len(), 2);
    let none = SlotFilter {
        version: Some(KeyVersion::new(2)),
        ..SlotFilter::default()
    };
    assert!(tx.list_slots(&none).await.unwrap().is_empty());
    let other_key = SlotFilter {
        key_id: Some(KeyId::new("wallet-2").unwrap()),
        ..SlotFilter::default()
    };
    assert!(tx.list_slots(&other_key).await.unwrap().is_empty());
}

/// Conformance case: sealed share conflicts.
pub async fn sealed_share_conflicts<S: Store>(storage: S) {
    with_shares(&storage).await;
    let mut tx = storage.begin().await.unwrap();
    let missing_version = sealed(&slot("node-z", 1, 1));
    assert!(matches!(
        refused(tx.store_sealed_share(&missing_version).await),
        Error::KeyVersionNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.store_sealed_share(&sealed(&slot("node-a", 1, 6))).await),
        Error::ShareIndexOutOfRange { total: 5, .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    let duplicate = sealed_under(
        &slot("node-a", 1, 1),
        &kek(&slot("node-a", 1, 1), "kek-2nd"),
    );
    assert!(matches!(
        refused(tx.store_sealed_share(&duplicate).await),
        Error::SealedShareExists(s) if s == slot("node-a", 1, 1)
    ));
    for bad_len in [0, MAX_ENVELOPE_LEN + 1] {
        let mut tx = storage.begin().await.unwrap();
        let mut bad = sealed(&slot("node-a", 1, 3));
        bad.envelope = vec![1; bad_len];
        assert!(matches!(
            refused(tx.store_sealed_share(&bad).await),
            Error::BlobLength {
                field: "envelope",
                ..
            }
        ));
    }
    // Only a well-formed sealed envelope is a sealed share: not a plain
    // (custodian) envelope, not a truncated or extended one, not one with a
    // flipped byte.
    let target = slot("node-a", 1, 3);
    let envelope = sealed(&target).envelope;
    let mut flipped = envelope.clone();
    flipped[40] ^= 1;
    for bad in [
        plain_envelope(&target),
        envelope[..envelope.len() - 1].to_vec(),
        [envelope.as_slice(), &[0]].concat(),
        flipped,
        b"envelope of node-a/1/3".to_vec(),
    ] {
        let mut tx = storage.begin().await.unwrap();
        let share = SealedShare {
            envelope: bad,
            ..sealed(&target)
        };
        assert!(matches!(
            refused(tx.store_sealed_share(&share).await),
            Error::InvalidEnvelope(_)
        ));
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.load_sealed_share(&slot("node-a", 1, 3)).await),
        Error::SealedShareNotFound(_)
    ));
    // A slot mapped to a custodian cannot be held by the server.
    with_custodians(&storage, &["custodian-x"]).await;
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&custody(&slot("node-a", 1, 3), "custodian-x"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.store_sealed_share(&sealed(&slot("node-a", 1, 3))).await),
        Error::SlotHeldByCustodian(_)
    ));
    // A retiring version takes no new shares.
    let mut tx = storage.begin().await.unwrap();
    tx.begin_key_retirement(&version("node-a", 1), at(1), at(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.store_sealed_share(&sealed(&slot("node-a", 1, 4))).await),
        Error::KeyVersionState {
            expected: "active",
            found: "retiring",
            ..
        }
    ));
    // Nothing above changed what is stored.
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.load_sealed_share(&slot("node-a", 1, 1)).await.unwrap(),
        sealed(&slot("node-a", 1, 1))
    );
    assert_eq!(
        tx.list_slots(&SlotFilter::default()).await.unwrap().len(),
        2
    );
}

/// Conformance case: rewrap checks the current kek.
pub async fn rewrap_checks_the_current_kek<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let old_kek = fixture_kek(&target);
    let new_kek = kek(&target, "kek-rotated");
    let rewrapped = seal(&target, &new_kek);

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rewrap_sealed_share(&target, new_kek.kek_id(), &rewrapped).await),
        Error::KekMismatch { stored, .. } if &stored == old_kek.kek_id()
    ));
    let missing = slot("node-a", 1, 5);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.rewrap_sealed_share(
                &missing,
                old_kek.kek_id(),
                &seal(&missing, &kek(&missing, "kek-rotated"))
            )
            .await
        ),
        Error::SealedShareNotFound(_)
    ));
    // The new envelope must be the stored one with a new trailer: not
    // another slot's, not another envelope of the slot, not garbage.
    let other = slot("node-a", 1, 2);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rewrap_sealed_share(&target, old_kek.kek_id(), &seal(&other, &kek(&other, "kek-rotated"))).await),
        Error::EnvelopeSlotMismatch { slot, envelope_slot } if slot == target && envelope_slot == other
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.rewrap_sealed_share(
                &target,
                old_kek.kek_id(),
                &seal_generation(&target, &new_kek, 1)
            )
            .await
        ),
        Error::EnvelopeIdMismatch(s) if s == target
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.rewrap_sealed_share(&target, old_kek.kek_id(), &rewrapped[1..])
                .await
        ),
        Error::InvalidEnvelope(_)
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.load_sealed_share(&target).await.unwrap(),
        sealed(&target)
    );
    drop(tx);

    let mut tx = storage.begin().await.unwrap();
    tx.rewrap_sealed_share(&target, old_kek.kek_id(), &rewrapped)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let share = tx.load_sealed_share(&target).await.unwrap();
    // The stored bytes are the re-wrapped envelope: same id, new KEK.
    assert_eq!(share.envelope, rewrapped);
    assert_eq!(share.frame().unwrap().kek_id(), new_kek.kek_id());
    assert_eq!(envelope_id(&share), envelope_id(&sealed(&target)));
    let listed = tx.list_slots(&SlotFilter::default()).await.unwrap();
    assert_eq!(&listed[0].kek_id, new_kek.kek_id());
    assert_eq!(listed[0].envelope_id, envelope_id(&sealed(&target)));
    drop(tx);
    // The old KEK no longer names the share.
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rewrap_sealed_share(&target, old_kek.kek_id(), &rewrapped).await),
        Error::KekMismatch { stored, .. } if &stored == new_kek.kek_id()
    ));
}

/// A KEK migration through storage: seal under A, re-wrap to B, destroy A;
/// the stored share must still open with B.
pub async fn rewrapped_share_opens_after_the_old_kek_is_destroyed<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let kek_a = fixture_kek(&target);
    let kek_b = kek(&target, "kek-migrated");
    let mut tx = storage.begin().await.unwrap();
    tx.record_slot_kek(&slot_kek(&target, kek_a.kek_id().as_str(), 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The migration, one unit of work: read, re-wrap A -> B with the
    // envelope crate, store; A is destroyed and B recorded as the slot's
    // KEK.
    let mut tx = storage.begin().await.unwrap();
    let stored = tx.load_sealed_share(&target).await.unwrap();
    let rewrapped = VerifiedEnvelope::decode_verify(&stored.envelope, &trusted())
        .unwrap()
        .rewrap(&kek_a, &kek_b)
        .unwrap();
    tx.rewrap_sealed_share(&target, kek_a.kek_id(), rewrapped.as_bytes())
        .await
        .unwrap();
    // Crypto-shredding of A: its key bytes are gone.
    drop(kek_a);
    tx.mark_slot_kek_destroyed(&target, at(20)).await.unwrap();
    tx.record_slot_kek(&slot_kek(&target, kek_b.kek_id().as_str(), 20))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let share = tx.load_sealed_share(&target).await.unwrap();
    assert_eq!(
        open(&share.envelope, &kek_b).expect("the re-wrapped share opens with the new KEK"),
        fixture_share_bytes(&target)
    );
    assert_eq!(
        tx.slot_kek(&target).await.unwrap().unwrap().kek_id,
        *kek_b.kek_id()
    );
}

/// A share whose envelope header names another slot is refused: filed under
/// the wrong slot it would be recovered, deleted and audited as another
/// node's (or version's, or index's) share.
pub async fn store_refuses_an_envelope_of_another_slot<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    with_version(&storage, "node-b", 1).await;
    let target = slot("node-a", 1, 1);
    let elsewhere = [
        slot("node-a", 1, 2),
        slot("node-b", 1, 1),
        version("node-a", 2).slot(index(1)),
        NodeVersion {
            key_id: KeyId::new("wallet-2").unwrap(),
            ..version("node-a", 1)
        }
        .slot(index(1)),
    ];
    for other in elsewhere {
        let mut misfiled = sealed(&other);
        misfiled.slot = target.clone();
        let mut tx = storage.begin().await.unwrap();
        let error = refused(tx.store_sealed_share(&misfiled).await);
        assert!(
            matches!(
                &error,
                Error::EnvelopeSlotMismatch { slot, envelope_slot }
                    if *slot == target && *envelope_slot == other
            ),
            "{other}: {error:?}"
        );
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(
        tx.list_slots(&SlotFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

// ----- slot KEKs -----

/// Conformance case: slot keks keep one live kek per slot.
pub async fn slot_keks_keep_one_live_kek_per_slot<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    let target = slot("node-a", 1, 1);
    let first = slot_kek(&target, "kek-a", 1);

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.slot_kek(&target).await.unwrap(), None);
    tx.record_slot_kek(&first).await.unwrap();
    tx.record_slot_kek(&slot_kek(&slot("node-a", 1, 2), "kek-other", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.slot_kek(&target).await.unwrap(), Some(first.clone()));
    drop(tx);

    // A KEK migration: A is destroyed (and recorded so), then B recorded.
    let mut tx = storage.begin().await.unwrap();
    tx.mark_slot_kek_destroyed(&target, at(50)).await.unwrap();
    let destroyed_a = SlotKekRecord {
        destroyed_at: Some(at(50)),
        ..first.clone()
    };
    // The record survives its key, as evidence.
    assert_eq!(
        tx.slot_kek(&target).await.unwrap(),
        Some(destroyed_a.clone())
    );
    let second = slot_kek(&target, "kek-b", 40);
    tx.record_slot_kek(&second).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.slot_kek(&target).await.unwrap(), Some(second.clone()));
    tx.mark_slot_kek_destroyed(&target, at(60)).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.slot_kek(&target).await.unwrap(),
        Some(SlotKekRecord {
            destroyed_at: Some(at(60)),
            ..second
        })
    );
    // The other slot's KEK never moved.
    assert_eq!(
        tx.slot_kek(&slot("node-a", 1, 2)).await.unwrap(),
        Some(slot_kek(&slot("node-a", 1, 2), "kek-other", 1))
    );
}

/// Conformance case: slot kek conflicts.
pub async fn slot_kek_conflicts<S: Store>(storage: S) {
    type Expected = fn(&Error) -> bool;
    with_version(&storage, "node-a", 1).await;
    with_custodians(&storage, &["escrow-co"]).await;
    let target = slot("node-a", 1, 1);
    let mut tx = storage.begin().await.unwrap();
    tx.record_slot_kek(&slot_kek(&target, "kek-a", 10))
        .await
        .unwrap();
    tx.assign_custodian(&custody(&slot("node-a", 1, 3), "escrow-co"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let refusals: [(SlotKekRecord, Expected); 6] = [
        // A second live KEK for the slot.
        (
            slot_kek(&target, "kek-b", 11),
            |error| matches!(error, Error::SlotKekExists(s) if *s == slot("node-a", 1, 1)),
        ),
        // The same KEK id for another slot (or again for this one).
        (
            slot_kek(&slot("node-a", 1, 2), "kek-a", 11),
            |error| matches!(error, Error::KekIdInUse(id) if id.as_str() == "kek-a"),
        ),
        (slot_kek(&slot("node-z", 1, 1), "kek-z", 11), |error| {
            matches!(error, Error::KeyVersionNotFound(_))
        }),
        (slot_kek(&slot("node-a", 1, 6), "kek-6", 11), |error| {
            matches!(error, Error::ShareIndexOutOfRange { total: 5, .. })
        }),
        (slot_kek(&slot("node-a", 1, 3), "kek-3", 11), |error| {
            matches!(error, Error::SlotHeldByCustodian(_))
        }),
        (
            SlotKekRecord {
                destroyed_at: Some(at(10)),
                ..slot_kek(&slot("node-a", 1, 2), "kek-2", 11)
            },
            |error| {
                matches!(
                    error,
                    Error::TimesOutOfOrder {
                        field: "destroyed_at"
                    }
                )
            },
        ),
    ];
    for (record, expected) in refusals {
        let mut tx = storage.begin().await.unwrap();
        let error = refused(tx.record_slot_kek(&record).await);
        assert!(expected(&error), "{record:?}: {error:?}");
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.mark_slot_kek_destroyed(&target, at(9)).await),
        Error::TimesOutOfOrder {
            field: "destroyed_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.mark_slot_kek_destroyed(&slot("node-a", 1, 2), at(20))
                .await
        ),
        Error::SlotKekNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.mark_slot_kek_destroyed(&target, at(20)).await.unwrap();
    tx.commit().await.unwrap();
    // Destroyed once; its id stays taken.
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.mark_slot_kek_destroyed(&target, at(30)).await),
        Error::SlotKekNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_slot_kek(&slot_kek(&target, "kek-a", 30)).await),
        Error::KekIdInUse(_)
    ));
    // Nothing above changed what is stored.
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.slot_kek(&target).await.unwrap(),
        Some(SlotKekRecord {
            destroyed_at: Some(at(20)),
            ..slot_kek(&target, "kek-a", 10)
        })
    );
    for other in [slot("node-a", 1, 2), slot("node-a", 1, 3)] {
        assert_eq!(tx.slot_kek(&other).await.unwrap(), None);
    }
}

// ----- deletion state -----

/// Conformance case: slot deletion lifecycle.
pub async fn slot_deletion_lifecycle<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let ops = actor("ops.alice");

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.slot_state(&target).await.unwrap(), SlotState::Active);
    tx.soft_delete_slot(&target, &ops, at(100), at(800))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.slot_state(&target).await.unwrap(),
        SlotState::SoftDeleted {
            at: at(100),
            by: ops.clone(),
            cooldown_until: at(800)
        }
    );
    assert!(matches!(
        refused(tx.load_sealed_share(&target).await),
        Error::SlotSoftDeleted { cooldown_until, .. } if cooldown_until == at(800)
    ));

    // Rollback restores the share exactly.
    let mut tx = storage.begin().await.unwrap();
    tx.rollback_slot_deletion(&target).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.load_sealed_share(&target).await.unwrap(),
        sealed(&target)
    );
    tx.soft_delete_slot(&target, &ops, at(200), at(900))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.hard_delete_slot(&target, at(899), b"evidence").await),
        Error::SlotCooldown { until, .. } if until == at(900)
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.hard_delete_slot(&target, at(900), b"kek destroyed in token")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.slot_state(&target).await.unwrap(),
        SlotState::HardDeleted {
            soft_deleted_at: at(200),
            at: at(900),
            evidence: b"kek destroyed in token".to_vec()
        }
    );
    assert!(matches!(
        refused(tx.load_sealed_share(&target).await),
        Error::SlotHardDeleted(_)
    ));
    // A hard-deleted slot is never refilled: a new version is.
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.store_sealed_share(&sealed(&target)).await),
        Error::SealedShareExists(_)
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    let listed = tx.list_slots(&SlotFilter::default()).await.unwrap();
    assert_eq!(listed[0].state.name(), "hard-deleted");
    assert_eq!(listed[1].state, SlotState::Active);
    // The other slot never moved.
    assert_eq!(
        tx.load_sealed_share(&slot("node-a", 1, 2)).await.unwrap(),
        sealed(&slot("node-a", 1, 2))
    );
}

/// Conformance case: slot deletion conflicts.
pub async fn slot_deletion_conflicts<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let missing = slot("node-a", 1, 4);
    let ops = actor("ops.alice");
    for case in 0..4 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx.slot_state(&missing).await.map(drop),
            1 => tx.soft_delete_slot(&missing, &ops, at(1), at(2)).await,
            2 => tx.rollback_slot_deletion(&missing).await,
            _ => tx.hard_delete_slot(&missing, at(1), b"e").await,
        };
        assert!(matches!(refused(result), Error::SealedShareNotFound(s) if s == missing));
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rollback_slot_deletion(&target).await),
        Error::SlotNotSoftDeleted(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.hard_delete_slot(&target, at(1), b"e").await),
        Error::SlotNotSoftDeleted(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.soft_delete_slot(&target, &ops, at(5), at(4)).await),
        Error::TimesOutOfOrder { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.soft_delete_slot(&target, &ops, at(5), at(6))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.soft_delete_slot(&target, &ops, at(7), at(8)).await),
        Error::SlotSoftDeleted { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.hard_delete_slot(&target, at(7), b"").await),
        Error::BlobLength {
            field: "evidence",
            ..
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.hard_delete_slot(&target, at(7), b"e").await.unwrap();
    tx.commit().await.unwrap();
    for case in 0..3 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx.soft_delete_slot(&target, &ops, at(9), at(10)).await,
            1 => tx.rollback_slot_deletion(&target).await,
            _ => tx.hard_delete_slot(&target, at(9), b"e").await,
        };
        assert!(matches!(refused(result), Error::SlotHardDeleted(_)));
    }
}

// ----- custody map and deliveries -----

/// Conformance case: custody map round trip.
pub async fn custody_map_round_trip<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    with_custodians(
        &storage,
        &["cold-backup", "customer-sec", "escrow-co", "escrow-two"],
    )
    .await;
    let mut tx = storage.begin().await.unwrap();
    for (i, custodian) in [(5, "cold-backup"), (3, "customer-sec"), (4, "escrow-co")] {
        tx.assign_custodian(&custody(&slot("node-a", 1, i), custodian))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let target = slot("node-a", 1, 4);
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap(),
        custody(&target, "escrow-co")
    );
    tx.confirm_custody(&target, at(500)).await.unwrap();
    // A custodian change: another entity, person, recipient and container.
    let mut changed = custody(&target, "escrow-two");
    changed.container_hash = derived("re-sealed", "container");
    changed.updated_at = at(600);
    tx.update_custodian(&changed).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let map = tx.custody_map(&version("node-a", 1)).await.unwrap();
    let indices: Vec<u8> = map.iter().map(|entry| entry.slot.index.get()).collect();
    assert_eq!(indices, [3, 4, 5]);
    assert_eq!(map[1], changed);
    assert_eq!(map[1].person.as_str(), "escrow-two.agent");
    assert_eq!(map[0].custodian.as_str(), "customer-sec");

    // The confirmation time is the latest confirmation.
    let mut tx = storage.begin().await.unwrap();
    tx.confirm_custody(&target, at(700)).await.unwrap();
    tx.confirm_custody(&target, at(650)).await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap().confirmed_at,
        Some(at(700))
    );
}

/// Conformance case: custody map conflicts.
pub async fn custody_map_conflicts<S: Store>(storage: S) {
    with_shares(&storage).await;
    with_custodians(&storage, &["escrow-co", "escrow-two", "gone-co"]).await;
    let external = slot("node-a", 1, 3);
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&custody(&external, "escrow-co"))
        .await
        .unwrap();
    tx.revoke_entity(
        &CustodianId::new("gone-co").unwrap(),
        &actor("sec.bob"),
        at(30),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.assign_custodian(&custody(&external, "escrow-two")).await),
        Error::CustodyEntryExists(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-a", 1, 1), "escrow-two"))
                .await
        ),
        Error::SlotHeldByServer(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-a", 1, 9), "escrow-two"))
                .await
        ),
        Error::ShareIndexOutOfRange { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-q", 1, 3), "escrow-two"))
                .await
        ),
        Error::KeyVersionNotFound(_)
    ));
    let missing = slot("node-a", 1, 4);
    for case in 0..3 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => tx.custody_entry(&missing).await.map(drop),
            1 => tx.confirm_custody(&missing, at(1)).await,
            _ => tx.update_custodian(&custody(&missing, "escrow-two")).await,
        };
        assert!(matches!(refused(result), Error::CustodyEntryNotFound(_)));
    }

    // The registry: an active entity, one of its active members, that
    // member's registered recipient, and one share of a version per entity.
    // Each check refuses assignment and update alike.
    let cases: [(&str, CustodyEdit); 5] = [
        ("unregistered entity", |e| {
            e.custodian = CustodianId::new("unknown-co").unwrap();
        }),
        ("revoked entity", |e| {
            e.custodian = CustodianId::new("gone-co").unwrap();
            e.person = actor("gone-co.agent");
        }),
        ("person of another entity", |e| {
            e.person = actor("escrow-co.agent");
        }),
        ("another recipient", |e| {
            e.recipient = person_keys("escrow-co.agent", 0).age_recipient.unwrap();
        }),
        ("a second share of the version", |e| {
            e.custodian = CustodianId::new("escrow-co").unwrap();
            e.person = actor("escrow-co.agent");
            e.recipient = person_keys("escrow-co.agent", 0).age_recipient.unwrap();
        }),
    ];
    for (case, edit) in cases {
        let mut entry = custody(&missing, "escrow-two");
        edit(&mut entry);
        for update in [false, true] {
            let mut tx = storage.begin().await.unwrap();
            let result = if update {
                tx.assign_custodian(&custody(&missing, "escrow-two"))
                    .await
                    .unwrap();
                tx.update_custodian(&entry).await
            } else {
                tx.assign_custodian(&entry).await
            };
            let error = refused(result);
            let expected = match case {
                "unregistered entity" => {
                    matches!(&error, Error::EntityNotFound(id) if id.as_str() == "unknown-co")
                }
                "revoked entity" => {
                    matches!(&error, Error::EntityRevoked(id) if id.as_str() == "gone-co")
                }
                "person of another entity" => matches!(
                    &error,
                    Error::PersonNotMember { person, entity }
                        if person.as_str() == "escrow-co.agent" && entity.as_str() == "escrow-two"
                ),
                "another recipient" => {
                    matches!(&error, Error::RecipientMismatch(s) if *s == missing)
                }
                _ => matches!(
                    &error,
                    Error::EntityHoldsShare { entity, slot }
                        if entity.as_str() == "escrow-co" && *slot == external
                ),
            };
            assert!(expected, "{case} (update: {update}): {error:?}");
        }
    }
    // A revoked person is refused even while their entity stays active.
    let mut tx = storage.begin().await.unwrap();
    tx.revoke_person(
        &actor("escrow-two.agent"),
        &actor("sec.bob"),
        &FreeText::new("left").unwrap(),
        at(40),
    )
    .await
    .unwrap();
    assert!(matches!(
        refused(tx.assign_custodian(&custody(&missing, "escrow-two")).await),
        Error::PersonRevoked(id) if id.as_str() == "escrow-two.agent"
    ));
    // Updating an entry to what it already names is fine: the entity holds
    // that very slot.
    let mut tx = storage.begin().await.unwrap();
    let mut same = custody(&external, "escrow-co");
    same.updated_at = at(50);
    tx.update_custodian(&same).await.unwrap();
    assert_eq!(tx.custody_entry(&external).await.unwrap(), same);
    // Entity contacts are `FreeText`: an empty one, or one with a line
    // break, cannot even be built, so it never reaches a table.
    for bad_contact in ["", "line\nbreak"] {
        assert!(FreeText::<MAX_CONTACT_LEN>::new(bad_contact).is_err());
    }
}

/// Conformance case: deliveries keep one receipt per slot.
pub async fn deliveries_keep_one_receipt_per_slot<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    with_custodians(&storage, &["escrow-co"]).await;
    let target = slot("node-a", 1, 3);
    let entry = custody(&target, "escrow-co");
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&entry).await.unwrap();
    tx.commit().await.unwrap();

    let delivery = |outcome, millis| DeliveryRecord {
        slot: target.clone(),
        custodian: CustodianId::new("escrow-co").unwrap(),
        envelope_id: *entry.envelope_id.as_bytes(),
        outcome,
        recorded_at: at(millis),
    };
    let failed = |reason: &str, millis| {
        delivery(
            DeliveryOutcome::Failed {
                reason: FreeText::new(reason).unwrap(),
            },
            millis,
        )
    };
    let delivered = delivery(
        DeliveryOutcome::Delivered {
            receipt: b"signed receipt".to_vec(),
        },
        300,
    );
    let mut tx = storage.begin().await.unwrap();
    tx.record_delivery(&failed("courier lost the package", 100))
        .await
        .unwrap();
    tx.record_delivery(&failed("courier lost the package", 200))
        .await
        .unwrap();
    // A failure confirms nothing; the receipt does.
    assert_eq!(tx.custody_entry(&target).await.unwrap().confirmed_at, None);
    tx.record_delivery(&delivered).await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap().confirmed_at,
        Some(at(300))
    );
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_delivery(&delivered).await),
        Error::ReceiptExists(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut wrong = failed("x", 400);
    wrong.custodian = CustodianId::new("impostor").unwrap();
    assert!(matches!(
        refused(tx.record_delivery(&wrong).await),
        Error::CustodianMismatch { mapped, .. } if mapped.as_str() == "escrow-co"
    ));
    // A receipt (or a failure) for another envelope than the one in the
    // slot's container is refused.
    for mut other in [failed("x", 400), delivered.clone()] {
        other.envelope_id[0] ^= 1;
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.record_delivery(&other).await),
            Error::DeliveryEnvelopeMismatch(s) if s == target
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    let mut unmapped = failed("x", 400);
    unmapped.slot = slot("node-a", 1, 4);
    assert!(matches!(
        refused(tx.record_delivery(&unmapped).await),
        Error::CustodyEntryNotFound(_)
    ));
    // Failure reasons are `FreeText`: one with a control character cannot
    // be built.
    assert!(FreeText::<MAX_REASON_LEN>::new("bell\u{7}").is_err());
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.record_delivery(&delivery(DeliveryOutcome::Delivered { receipt: vec![] }, 1))
                .await
        ),
        Error::BlobLength {
            field: "receipt",
            ..
        }
    ));

    let mut tx = storage.begin_read_only().await.unwrap();
    let records = tx.deliveries(&version("node-a", 1)).await.unwrap();
    assert_eq!(
        records,
        [
            failed("courier lost the package", 100),
            failed("courier lost the package", 200),
            delivered
        ]
    );
}

// ----- approvals -----

/// Conformance case: approvals are consumed once.
pub async fn approvals_are_consumed_once<S: Store>(storage: S) {
    let request = request(1);
    let policy = ApprovalRequestRecord {
        hash: request_hash(9),
        operation: ApprovalOperation::PolicyChange,
        subject: None,
        ..self::request(9)
    };
    let security = approval(&request, "sec.bob", Role::Security);
    let mut owner = approval(&request, "biz.dave", Role::BusinessOwner);
    owner.approved_at = at(150);

    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request).await.unwrap();
    tx.insert_approval_request(&policy).await.unwrap();
    tx.insert_approval(&security).await.unwrap();
    tx.insert_approval(&owner).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.approval_request(&request.hash).await.unwrap(), request);
    assert_eq!(tx.approval_request(&policy.hash).await.unwrap(), policy);
    assert_eq!(
        tx.approvals(&request.hash).await.unwrap(),
        [owner.clone(), security.clone()]
    );
    assert!(tx.approvals(&policy.hash).await.unwrap().is_empty());
    tx.consume_approval_request(&request.hash, at(600), &actor("ops.carol"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(&policy.hash, at(99), &actor("sec.bob"))
                .await
        ),
        Error::TimesOutOfOrder {
            field: "consumed_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(&request_hash(8), at(600), &actor("ops.carol"))
                .await
        ),
        Error::ApprovalRequestNotFound(h) if h == request_hash(8)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.approval_request(&policy.hash).await.unwrap(), policy);
    let consumed = tx.approval_request(&request.hash).await.unwrap();
    assert_eq!(consumed.consumed_at, Some(at(600)));
    assert_eq!(consumed.consumed_by, Some(actor("ops.carol")));
    assert!(matches!(
        refused(
            tx.consume_approval_request(&request.hash, at(700), &actor("ops.carol"))
                .await
        ),
        Error::ApprovalConsumed(h) if h == request.hash
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut late = approval(&request, "sec.frank", Role::Security);
    late.approved_at = at(700);
    assert!(matches!(
        refused(tx.insert_approval(&late).await),
        Error::ApprovalConsumed(_)
    ));
}

/// An open recovery session of `node-a` v1 named by 16 `byte`s, for
/// request `request(1)`, started at `at(1_000)` on replica `r1`.
pub fn recovery_session(byte: u8) -> RecoverySessionRecord {
    RecoverySessionRecord {
        id: RecoverySessionId([byte; 16]),
        version: version("node-a", 1),
        split_id: [7; 32],
        operation: ApprovalOperation::Recover,
        request_hash: request_hash(1),
        replica: label("r1"),
        started_by: actor("ops.carol"),
        started_at: at(1_000),
        expires_at: at(5_000),
        idle_expires_at: at(2_000),
        closed_at: None,
        outcome: None,
    }
}

/// Stores, committed: `node-a` v1, request 1, recovery session 1 (closed,
/// completed) and session 2 (open): what a backend's own tests then try to
/// change behind storage's back.
pub async fn with_recovery_sessions<S: Storage>(storage: &S) {
    with_version(storage, "node-a", 1).await;
    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request(1)).await.unwrap();
    tx.insert_recovery_session(&recovery_session(1))
        .await
        .unwrap();
    tx.close_recovery_session(
        &RecoverySessionId([1; 16]),
        at(1_500),
        RecoverySessionOutcome::Completed,
    )
    .await
    .unwrap();
    tx.insert_recovery_session(&recovery_session(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Sessions 1 and 2 of [`with_recovery_sessions`], as stored.
pub async fn recovery_sessions<S: Storage>(storage: &S) -> Vec<RecoverySessionRecord> {
    let mut tx = storage.begin_read_only().await.unwrap();
    let mut sessions = Vec::new();
    for byte in [1, 2] {
        sessions.push(
            tx.recovery_session(&RecoverySessionId([byte; 16]))
                .await
                .unwrap(),
        );
    }
    tx.rollback().await.unwrap();
    sessions
}

/// Conformance case: recovery sessions keep their metadata, at most one is
/// open per key version, an open one moves its idle deadline, each is
/// closed once, and the session started last under a request is found.
pub async fn recovery_sessions_keep_one_open<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request(1)).await.unwrap();
    let first = recovery_session(1);
    tx.insert_recovery_session(&first).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.recovery_session(&first.id).await.unwrap(), first);
    assert_eq!(
        tx.open_recovery_session(&first.version).await.unwrap(),
        Some(first.clone())
    );
    assert!(matches!(
        refused(tx.insert_recovery_session(&first).await),
        Error::RecoverySessionExists(id) if id == first.id
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.insert_recovery_session(&recovery_session(2)).await),
        Error::RecoverySessionOpen(v) if v == first.version
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut other = recovery_session(3);
    other.version = version("node-b", 1);
    assert!(matches!(
        refused(tx.insert_recovery_session(&other).await),
        Error::KeyVersionNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut unapproved = recovery_session(5);
    unapproved.request_hash = request_hash(8);
    assert!(matches!(
        refused(tx.insert_recovery_session(&unapproved).await),
        Error::ApprovalRequestNotFound(h) if h == request_hash(8)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.touch_recovery_session(&RecoverySessionId([9; 16]), at(3_000))
                .await
        ),
        Error::RecoverySessionNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.touch_recovery_session(&first.id, at(1_000)).await),
        Error::TimesOutOfOrder {
            field: "idle_expires_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.close_recovery_session(
                &RecoverySessionId([9; 16]),
                at(3_000),
                RecoverySessionOutcome::Failed
            )
            .await
        ),
        Error::RecoverySessionNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.close_recovery_session(&first.id, at(999), RecoverySessionOutcome::Failed)
                .await
        ),
        Error::TimesOutOfOrder { field: "closed_at" }
    ));
    // The refusals changed nothing.
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.recovery_session(&first.id).await.unwrap(), first);
    drop(tx);
    let mut tx = storage.begin().await.unwrap();
    let mut late = recovery_session(4);
    late.idle_expires_at = at(6_000);
    assert!(matches!(
        refused(tx.insert_recovery_session(&late).await),
        Error::TimesOutOfOrder {
            field: "idle_expires_at"
        }
    ));

    let mut tx = storage.begin().await.unwrap();
    tx.touch_recovery_session(&first.id, at(3_000))
        .await
        .unwrap();
    assert!(matches!(
        refused(tx.touch_recovery_session(&first.id, at(5_001)).await),
        Error::TimesOutOfOrder { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.touch_recovery_session(&first.id, at(3_000))
        .await
        .unwrap();
    tx.close_recovery_session(&first.id, at(2_500), RecoverySessionOutcome::Completed)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    let closed = tx.recovery_session(&first.id).await.unwrap();
    assert_eq!(closed.idle_expires_at, at(3_000));
    assert_eq!(closed.closed_at, Some(at(2_500)));
    assert_eq!(closed.outcome, Some(RecoverySessionOutcome::Completed));
    assert_eq!(
        tx.open_recovery_session(&first.version).await.unwrap(),
        None
    );
    assert!(matches!(
        refused(
            tx.close_recovery_session(&first.id, at(2_600), RecoverySessionOutcome::Failed)
                .await
        ),
        Error::RecoverySessionClosed(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.touch_recovery_session(&first.id, at(4_000)).await),
        Error::RecoverySessionClosed(_)
    ));
    // Closed: the version may open a new session.
    let mut tx = storage.begin().await.unwrap();
    tx.insert_recovery_session(&recovery_session(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.recovery_session(&RecoverySessionId([9; 16])).await),
        Error::RecoverySessionNotFound(_)
    ));

    drop(tx);

    // The session started last under a request, open or closed (a drill
    // schedule's cadence counts from it); none under another request.
    let mut tx = storage.begin().await.unwrap();
    tx.close_recovery_session(
        &RecoverySessionId([2; 16]),
        at(3_500),
        RecoverySessionOutcome::Expired,
    )
    .await
    .unwrap();
    let mut later = recovery_session(5);
    later.started_at = at(4_000);
    later.idle_expires_at = at(4_500);
    tx.insert_recovery_session(&later).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.latest_recovery_session_of_request(&request_hash(1))
            .await
            .unwrap(),
        Some(later.clone())
    );
    assert_eq!(
        tx.latest_recovery_session_of_request(&request_hash(2))
            .await
            .unwrap(),
        None
    );
    tx.rollback().await.unwrap();
    let mut tx = storage.begin().await.unwrap();
    tx.close_recovery_session(&later.id, at(4_100), RecoverySessionOutcome::Failed)
        .await
        .unwrap();
    let latest = tx
        .latest_recovery_session_of_request(&request_hash(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, later.id);
    assert_eq!(latest.outcome, Some(RecoverySessionOutcome::Failed));
    tx.commit().await.unwrap();
}

/// Conformance case: approval conflicts.
pub async fn approval_conflicts<S: Store>(storage: S) {
    let request = request(2);
    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request).await.unwrap();
    tx.insert_approval(&approval(&request, "sec.bob", Role::Security))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.insert_approval_request(&request).await),
        Error::ApprovalRequestExists(h) if h == request.hash
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut backwards = self::request(3);
    backwards.expires_at = backwards.created_at;
    assert!(matches!(
        refused(tx.insert_approval_request(&backwards).await),
        Error::TimesOutOfOrder {
            field: "expires_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut consumed = self::request(3);
    consumed.consumed_at = Some(at(200));
    consumed.consumed_by = Some(actor("ops.carol"));
    assert!(matches!(
        refused(tx.insert_approval_request(&consumed).await),
        Error::TimesOutOfOrder {
            field: "consumed_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut huge = self::request(3);
    huge.encoding = vec![0; MAX_APPROVAL_REQUEST_LEN + 1];
    assert!(matches!(
        refused(tx.insert_approval_request(&huge).await),
        Error::BlobLength { .. }
    ));
    let unknown = self::request(4);
    for case in 0..3 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => {
                tx.insert_approval(&approval(&unknown, "sec.bob", Role::Security))
                    .await
            }
            1 => tx.approval_request(&unknown.hash).await.map(drop),
            _ => {
                tx.consume_approval_request(&unknown.hash, at(300), &actor("ops.carol"))
                    .await
            }
        };
        assert!(matches!(refused(result), Error::ApprovalRequestNotFound(h) if h == unknown.hash));
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.insert_approval(&approval(&request, "sec.bob", Role::Security)).await),
        Error::ApprovalExists { approver, .. } if approver.as_str() == "sec.bob"
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.insert_approval(&approval(&request, "ops.carol", Role::Security)).await),
        Error::ApproverIsRequester(a) if a.as_str() == "ops.carol"
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(&request.hash, at(99), &actor("ops.carol"))
                .await
        ),
        Error::TimesOutOfOrder {
            field: "consumed_at"
        }
    ));
    // None of the refusals consumed the request or added an approval.
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.approvals(&request.hash).await.unwrap().len(), 1);
    tx.consume_approval_request(&request.hash, at(300), &actor("ops.carol"))
        .await
        .unwrap();
}

// ----- drills and share reads -----

/// Conformance case: drill reports.
pub async fn drill_reports<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    let passed = DrillReport {
        target: version("node-a", 1),
        started_at: at(1_000),
        finished_at: at(61_000),
        operator: actor("ops.alice"),
        shares_used: vec![index(3), index(4), index(5)],
        outcome: DrillOutcome::Passed,
        report: b"{\"sign_test\":\"ok\"}".to_vec(),
    };
    let failed = DrillReport {
        started_at: at(100),
        finished_at: at(200),
        shares_used: vec![index(3)],
        outcome: DrillOutcome::Failed {
            reason: FreeText::new("only one share arrived").unwrap(),
        },
        report: Vec::new(),
        ..passed.clone()
    };
    let mut tx = storage.begin().await.unwrap();
    tx.record_drill(&passed).await.unwrap();
    tx.record_drill(&failed).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_drill(&passed).await),
        Error::DrillReportExists { started_at, .. } if started_at == at(1_000)
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut unordered = passed.clone();
    unordered.started_at = at(5);
    unordered.shares_used = vec![index(4), index(3), index(5)];
    assert!(matches!(
        refused(tx.record_drill(&unordered).await),
        Error::UnorderedShareIndices
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut repeated = unordered.clone();
    repeated.shares_used = vec![index(3), index(3)];
    assert!(matches!(
        refused(tx.record_drill(&repeated).await),
        Error::UnorderedShareIndices
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut backwards = passed.clone();
    backwards.started_at = at(5);
    backwards.finished_at = at(4);
    assert!(matches!(
        refused(tx.record_drill(&backwards).await),
        Error::TimesOutOfOrder {
            field: "finished_at"
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut elsewhere = passed.clone();
    elsewhere.target = version("node-b", 1);
    assert!(matches!(
        refused(tx.record_drill(&elsewhere).await),
        Error::KeyVersionNotFound(_)
    ));

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.drill_reports(&version("node-a", 1)).await.unwrap(),
        [failed, passed]
    );
}

/// Conformance case: share access log.
pub async fn share_access_log<S: Store>(storage: S) {
    with_shares(&storage).await;
    let read = |i, who: &str, millis| ShareAccess {
        slot: slot("node-a", 1, i),
        accessor: actor(who),
        purpose: label("recover"),
        at: at(millis),
    };
    let mut tx = storage.begin().await.unwrap();
    tx.record_share_access(&read(1, "ops.alice", 30))
        .await
        .unwrap();
    tx.record_share_access(&read(2, "ops.alice", 10))
        .await
        .unwrap();
    tx.record_share_access(&read(1, "ops.bob", 20))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_share_access(&read(4, "ops.alice", 40)).await),
        Error::SealedShareNotFound(_)
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.share_accesses(&slot("node-a", 1, 1)).await.unwrap(),
        [read(1, "ops.alice", 30), read(1, "ops.bob", 20)]
    );
    assert_eq!(
        tx.share_accesses_since(at(15), 10).await.unwrap(),
        [read(1, "ops.bob", 20), read(1, "ops.alice", 30)]
    );
    assert_eq!(tx.share_accesses_since(at(0), 1).await.unwrap().len(), 1);
}

// ----- audit -----

/// Conformance case: audit chain links rows.
pub async fn audit_chain_links_rows<S: Store>(storage: S) {
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
    drop(tx);

    let mut heads = Vec::new();
    for batch in 0..3u8 {
        let mut tx = storage.begin().await.unwrap();
        for i in 0..4u8 {
            let record = vec![batch, i, 0xee];
            let builder = chained(record);
            let row = tx
                .append_audit(|head| {
                    heads.push(*head);
                    builder(head)
                })
                .await
                .unwrap();
            assert_eq!(tx.audit_head().await.unwrap().sequence, row.sequence);
        }
        tx.commit().await.unwrap();
    }
    let rows = read_all_audit(&storage).await;
    assert_eq!(rows.len(), 12);
    assert_chain(&rows);
    // The builder saw each head exactly once, in order.
    let sequences: Vec<u64> = heads.iter().map(|head| head.sequence).collect();
    assert_eq!(sequences, (0..12).collect::<Vec<_>>());
    assert_eq!(rows[5].record, [1, 1, 0xee]);

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.audit_head().await.unwrap(),
        AuditHead {
            sequence: 12,
            hash: rows[11].hash
        }
    );
    assert_eq!(tx.read_audit(5, 3).await.unwrap(), rows[4..7]);
    assert_eq!(tx.read_audit(11, 100).await.unwrap(), rows[10..]);
    assert!(tx.read_audit(13, 100).await.unwrap().is_empty());
    assert_eq!(tx.read_audit(0, 1).await.unwrap(), rows[..1]);
}

/// Conformance case: audit grouped commit is capped.
pub async fn audit_grouped_commit_is_capped<S: Store>(storage: S) {
    let mut tx = storage.begin().await.unwrap();
    for i in 0..MAX_AUDIT_APPENDS_PER_TRANSACTION {
        tx.append_audit(chained(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    for i in 0..MAX_AUDIT_APPENDS_PER_TRANSACTION {
        tx.append_audit(chained(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    assert!(matches!(
        refused(tx.append_audit(chained(vec![1])).await),
        Error::AuditBatchFull { max: 64 }
    ));
    assert!(matches!(
        refused(tx.commit().await),
        Error::TransactionAborted
    ));

    let rows = read_all_audit(&storage).await;
    assert_eq!(rows.len(), MAX_AUDIT_APPENDS_PER_TRANSACTION);
    assert_chain(&rows);
}

/// Conformance case: audit record length is capped.
pub async fn audit_record_length_is_capped<S: Store>(storage: S) {
    for len in [0, MAX_AUDIT_RECORD_LEN + 1] {
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(tx.append_audit(chained(vec![0; len])).await),
            Error::BlobLength {
                field: "audit record",
                ..
            }
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    tx.append_audit(chained(vec![0xab; MAX_AUDIT_RECORD_LEN]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = read_all_audit(&storage).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record.len(), MAX_AUDIT_RECORD_LEN);
}

/// A checkpoint row of the head `rows` reach at `sequence`.
fn stored_checkpoint(rows: &[AuditRow], sequence: u64, bytes: &str) -> StoredCheckpoint {
    let head_hash = match sequence {
        0 => AuditHead::GENESIS.hash,
        _ => rows[usize::try_from(sequence - 1).unwrap()].hash,
    };
    StoredCheckpoint {
        sequence,
        head_hash,
        checkpoint: bytes.as_bytes().to_vec(),
    }
}

/// Conformance case: checkpoints follow the log.
pub async fn checkpoints_follow_the_log<S: Store>(storage: S) {
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.latest_checkpoint().await.unwrap(), None);
    let mut tx = storage.begin().await.unwrap();
    let mut ahead = stored_checkpoint(&[], 0, "x");
    ahead.sequence = 1;
    assert!(matches!(
        refused(tx.store_checkpoint(&ahead).await),
        Error::CheckpointAhead {
            sequence: 1,
            head: 0
        }
    ));
    // The empty log's head can be checkpointed: sequence 0, all zeros.
    let mut tx = storage.begin().await.unwrap();
    tx.store_checkpoint(&stored_checkpoint(&[], 0, "genesis"))
        .await
        .unwrap();
    for i in 0..3u8 {
        tx.append_audit(chained(vec![i])).await.unwrap();
    }
    tx.commit().await.unwrap();
    let rows = read_all_audit(&storage).await;

    // Every checkpoint is kept, several of one sequence too: a row someone
    // else stored first never blocks the next checkpoint.
    let mut tx = storage.begin().await.unwrap();
    for (sequence, bytes) in [(2, "first at 2"), (3, "first at 3"), (3, "second at 3")] {
        tx.store_checkpoint(&stored_checkpoint(&rows, sequence, bytes))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.latest_checkpoint().await.unwrap(),
        Some(stored_checkpoint(&rows, 3, "second at 3"))
    );

    // A head beyond the log, and heads that are not on the chain.
    let mut tx = storage.begin().await.unwrap();
    let mut ahead = stored_checkpoint(&rows, 3, "ahead");
    ahead.sequence = 4;
    assert!(matches!(
        refused(tx.store_checkpoint(&ahead).await),
        Error::CheckpointAhead {
            sequence: 4,
            head: 3
        }
    ));
    for (sequence, hash) in [(2, rows[2].hash), (3, [0; 32]), (0, rows[0].hash)] {
        let mut tx = storage.begin().await.unwrap();
        let off_chain = StoredCheckpoint {
            sequence,
            head_hash: hash,
            checkpoint: b"off the chain".to_vec(),
        };
        assert!(
            matches!(
                refused(tx.store_checkpoint(&off_chain).await),
                Error::CheckpointOffChain(s) if s == sequence
            ),
            "sequence {sequence}"
        );
    }
    let mut tx = storage.begin().await.unwrap();
    let mut empty = stored_checkpoint(&rows, 1, "x");
    empty.checkpoint.clear();
    assert!(matches!(
        refused(tx.store_checkpoint(&empty).await),
        Error::BlobLength { .. }
    ));
    // Nothing refused was kept.
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.latest_checkpoint().await.unwrap(),
        Some(stored_checkpoint(&rows, 3, "second at 3"))
    );
}

/// Conformance case: the log id is fixed.
pub async fn the_log_id_is_fixed<S: Store>(storage: S) {
    let mut tx = storage.begin_read_only().await.unwrap();
    let id = tx.audit_log_id().await.unwrap();
    tx.rollback().await.unwrap();
    assert_ne!(id, AuditLogId([0; AUDIT_LOG_ID_LEN]), "a random identity");
    assert_eq!(id.to_string().len(), 2 * AUDIT_LOG_ID_LEN);
    // Appends and checkpoints leave it as it is; a write transaction reads
    // the same.
    with_three_audit_records(&storage).await;
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.audit_log_id().await.unwrap(), id);
}

// ----- transactions -----

/// Conformance case: rollback leaves nothing.
pub async fn rollback_leaves_nothing<S: Store>(storage: S) {
    let mut tx = storage.begin().await.unwrap();
    create_version(
        &mut tx,
        &version("node-a", 1),
        Threshold::new(3, 5).unwrap(),
        0,
    )
    .await
    .unwrap();
    tx.store_sealed_share(&sealed(&slot("node-a", 1, 1)))
        .await
        .unwrap();
    tx.insert_approval_request(&request(1)).await.unwrap();
    tx.append_audit(chained(b"generate".to_vec()))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.key_version(&version("node-a", 1)).await),
        Error::KeyVersionNotFound(_)
    ));
    assert!(
        tx.list_slots(&SlotFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.approval_request(&request_hash(1)).await),
        Error::ApprovalRequestNotFound(_)
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
}

/// Conformance case: errors abort the transaction.
pub async fn errors_abort_the_transaction<S: Store>(storage: S) {
    with_shares(&storage).await;
    let mut tx = storage.begin().await.unwrap();
    tx.soft_delete_slot(&slot("node-a", 1, 1), &actor("ops.alice"), at(1), at(2))
        .await
        .unwrap();
    tx.append_audit(chained(b"soft delete".to_vec()))
        .await
        .unwrap();
    // Fails: the half-done operation must not be committable.
    refused(tx.store_sealed_share(&sealed(&slot("node-a", 1, 2))).await);
    assert!(matches!(
        refused(tx.slot_state(&slot("node-a", 1, 2)).await),
        Error::TransactionAborted
    ));
    assert!(matches!(
        refused(tx.append_audit(chained(vec![1])).await),
        Error::TransactionAborted
    ));
    assert!(matches!(
        refused(tx.commit().await),
        Error::TransactionAborted
    ));

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.slot_state(&slot("node-a", 1, 1)).await.unwrap(),
        SlotState::Active
    );
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
}

/// Conformance case: refused reads keep the transaction.
pub async fn refused_reads_keep_the_transaction<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let mut tx = storage.begin().await.unwrap();
    tx.soft_delete_slot(&target, &actor("ops.alice"), at(1), at(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A refused share read is audited in the same unit of work.
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.load_sealed_share(&target).await),
        Error::SlotSoftDeleted { .. }
    ));
    assert!(matches!(
        refused(tx.key_version(&version("node-z", 1)).await),
        Error::KeyVersionNotFound(_)
    ));
    tx.append_audit(chained(b"access-denied".to_vec()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = read_all_audit(&storage).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record, b"access-denied");
}

/// Conformance case: dropped transaction rolls back.
pub async fn dropped_transaction_rolls_back<S: Store>(storage: S) {
    {
        let mut tx = storage.begin().await.unwrap();
        create_version(
            &mut tx,
            &version("node-a", 1),
            Threshold::new(3, 5).unwrap(),
            0,
        )
        .await
        .unwrap();
        tx.append_audit(chained(b"x".to_vec())).await.unwrap();
    }
    // The next writer gets the lock and sees nothing of the dropped one.
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
    create_version(
        &mut tx,
        &version("node-a", 1),
        Threshold::new(3, 5).unwrap(),
        0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Conformance case: operation approval and audit commit together.
pub async fn operation_approval_and_audit_commit_together<S: Store>(storage: S) {
    with_shares(&storage).await;
    let request = request(1);
    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request).await.unwrap();
    tx.insert_approval(&approval(&request, "sec.bob", Role::Security))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The operation fails after consuming the approval: nothing sticks.
    let mut tx = storage.begin().await.unwrap();
    tx.consume_approval_request(&request.hash, at(300), &actor("ops.carol"))
        .await
        .unwrap();
    tx.append_audit(chained(b"delete requested".to_vec()))
        .await
        .unwrap();
    refused(
        tx.hard_delete_slot(&slot("node-a", 1, 1), at(300), b"evidence")
            .await,
    );
    drop(tx);

    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
    // The request is still open, so the real operation can use it.
    tx.consume_approval_request(&request.hash, at(300), &actor("ops.carol"))
        .await
        .unwrap();
    assert_eq!(tx.approvals(&request.hash).await.unwrap().len(), 1);
    tx.soft_delete_slot(&slot("node-a", 1, 1), &actor("ops.carol"), at(300), at(300))
        .await
        .unwrap();
    tx.hard_delete_slot(&slot("node-a", 1, 1), at(300), b"evidence")
        .await
        .unwrap();
    tx.append_audit(chained(b"hard delete".to_vec()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap().sequence, 1);
    assert_eq!(
        tx.slot_state(&slot("node-a", 1, 1)).await.unwrap().name(),
        "hard-deleted"
    );
}

/// Conformance case: read only transactions refuse writes.
pub async fn read_only_transactions_refuse_writes<S: Store>(storage: S) {
    with_shares(&storage).await;
    for case in 0..10 {
        let mut tx = storage.begin_read_only().await.unwrap();
        let result = match case {
            0 => {
                create_version(
                    &mut tx,
                    &version("node-b", 1),
                    Threshold::new(2, 3).unwrap(),
                    0,
                )
                .await
            }
            1 => tx.store_sealed_share(&sealed(&slot("node-a", 1, 3))).await,
            2 => {
                tx.soft_delete_slot(&slot("node-a", 1, 1), &actor("a"), at(0), at(1))
                    .await
            }
            3 => {
                tx.assign_custodian(&custody(&slot("node-a", 1, 3), "c"))
                    .await
            }
            4 => tx.insert_approval_request(&request(1)).await,
            5 => tx.append_audit(chained(vec![1])).await.map(drop),
            6 => {
                tx.record_share_access(&ShareAccess {
                    slot: slot("node-a", 1, 1),
                    accessor: actor("a"),
                    purpose: label("p"),
                    at: at(0),
                })
                .await
            }
            7 => {
                tx.record_slot_kek(&slot_kek(&slot("node-a", 1, 3), "kek-3", 0))
                    .await
            }
            8 => {
                tx.mark_slot_kek_destroyed(&slot("node-a", 1, 1), at(5))
                    .await
            }
            _ => {
                tx.store_checkpoint(&StoredCheckpoint {
                    sequence: 0,
                    head_hash: AuditHead::GENESIS.hash,
                    checkpoint: vec![1],
                })
                .await
            }
        };
        assert!(
            matches!(refused(result), Error::ReadOnlyTransaction),
            "case {case}"
        );
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.list_slots(&SlotFilter::default()).await.unwrap().len(),
        2
    );
    tx.commit().await.unwrap();
}

/// Conformance case: read only transactions see a snapshot.
pub async fn read_only_transactions_see_a_snapshot<S: Store>(storage: S) {
    let mut reader = storage.begin_read_only().await.unwrap();
    assert_eq!(reader.audit_head().await.unwrap(), AuditHead::GENESIS);
    // A writer commits while the reader is open, without waiting for it.
    let mut writer = storage.begin().await.unwrap();
    writer.append_audit(chained(vec![1])).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(reader.audit_head().await.unwrap(), AuditHead::GENESIS);
    assert!(reader.read_audit(1, 10).await.unwrap().is_empty());
    reader.rollback().await.unwrap();

    let mut reader = storage.begin_read_only().await.unwrap();
    assert_eq!(reader.audit_head().await.unwrap().sequence, 1);
}

// ----- concurrency -----

const TASKS: usize = 8;
/// Read-modify-write steps per task in the lost-update check.
const STEPS: usize = 5;

/// Conformance case: concurrent consumers never double spend.
pub async fn concurrent_consumers_never_double_spend<S: Store>(storage: S) {
    with_shares(&storage).await;
    let request = request(1);
    let mut tx = storage.begin().await.unwrap();
    tx.insert_approval_request(&request).await.unwrap();
    tx.commit().await.unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let storage = storage.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let mut tx = storage.begin().await?;
                tx.consume_approval_request(&request.hash, at(300), &actor("ops.carol"))
                    .await?;
                // Hold the unit of work open a moment so others pile up.
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.soft_delete_slot(&slot("node-a", 1, 1), &actor("ops.alice"), at(300), at(400))
                    .await?;
                tx.append_audit(chained(vec![u8::try_from(task).unwrap()]))
                    .await?;
                tx.commit().await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::ApprovalConsumed(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one operation may use the approval");
    assert_eq!(read_all_audit(&storage).await.len(), 1);
}

/// Conformance case: concurrent writers never lose updates.
pub async fn concurrent_writers_never_lose_updates<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    with_custodians(&storage, &["escrow-co"]).await;
    // Each task reads the confirmation time and pushes it one step further:
    // a lost update would leave fewer steps than tasks ran.
    let target = slot("node-a", 1, 3);
    let mut tx = storage.begin().await.unwrap();
    let mut entry = custody(&target, "escrow-co");
    entry.confirmed_at = Some(at(0));
    tx.assign_custodian(&entry).await.unwrap();
    tx.commit().await.unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let storage = storage.clone();
            let target = target.clone();
            tokio::spawn(async move {
                for _ in 0..STEPS {
                    let mut tx = storage.begin().await?;
                    let current = tx.custody_entry(&target).await?.confirmed_at.unwrap();
                    tokio::task::yield_now().await;
                    let next = current.checked_add(Duration::from_millis(1)).unwrap();
                    tx.confirm_custody(&target, next).await?;
                    tx.commit().await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap().confirmed_at,
        Some(at((TASKS * STEPS) as u64))
    );
}

/// Conformance case: concurrent audit appends never fork.
pub async fn concurrent_audit_appends_never_fork<S: Store>(storage: S) {
    const APPENDS: usize = 12;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut appended = Vec::new();
                let mut i = 0;
                while i < APPENDS {
                    // Alternate single appends and grouped commits of 3.
                    let group = if i % 2 == 0 { 1 } else { 3 }.min(APPENDS - i);
                    let mut tx = storage.begin().await?;
                    for _ in 0..group {
                        let record = format!("task {task} record {i}").into_bytes();
                        appended.push(tx.append_audit(chained(record)).await?.sequence);
                        i += 1;
                    }
                    tx.commit().await?;
                }
                Ok::<_, Error>(appended)
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for task in tasks {
        sequences.extend(task.await.unwrap().unwrap());
    }
    sequences.sort_unstable();
    let expected: Vec<u64> = (1..=(TASKS * APPENDS) as u64).collect();
    assert_eq!(sequences, expected, "every append got its own sequence");
    let rows = read_all_audit(&storage).await;
    assert_eq!(rows.len(), TASKS * APPENDS);
    assert_chain(&rows);
}

/// Conformance case: destruction statements, one per external slot with a
/// custody entry, kept as given and listed by index.
pub async fn destruction_statements_one_per_slot<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    with_custodians(&storage, &["escrow-co", "cold-backup"]).await;
    let mut tx = storage.begin().await.unwrap();
    for (i, custodian) in [(4, "escrow-co"), (3, "cold-backup")] {
        tx.assign_custodian(&custody(&slot("node-a", 1, i), custodian))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let statement = |index: u8| {
        let custodian = if index == 4 {
            "escrow-co"
        } else {
            "cold-backup"
        };
        let entry = custody(&slot("node-a", 1, index), custodian);
        crate::DestructionStatementRecord {
            slot: entry.slot,
            envelope_id: entry.envelope_id,
            custodian: entry.custodian,
            person: entry.person,
            destroyed_at: at(800),
            recorded_at: at(810),
            statement: vec![index; 100],
        }
    };
    let mut tx = storage.begin().await.unwrap();
    tx.record_destruction_statement(&statement(4))
        .await
        .unwrap();
    tx.record_destruction_statement(&statement(3))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        tx.record_destruction_statement(&statement(4)).await,
        Err(Error::DestructionStatementExists(slot)) if slot == self::slot("node-a", 1, 4)
    ));
    drop(tx);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        tx.record_destruction_statement(&statement(5)).await,
        Err(Error::CustodyEntryNotFound(_))
    ));
    drop(tx);
    let mut early = statement(5);
    early.recorded_at = at(700);
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        tx.record_destruction_statement(&early).await,
        Err(Error::TimesOutOfOrder { .. })
    ));
    drop(tx);
    let mut empty = statement(5);
    empty.statement.clear();
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        tx.record_destruction_statement(&empty).await,
        Err(Error::BlobLength { .. })
    ));
    drop(tx);

    let mut tx = storage.begin_read_only().await.unwrap();
    let listed = tx
        .destruction_statements(&version("node-a", 1))
        .await
        .unwrap();
    assert_eq!(listed, vec![statement(3), statement(4)]);
    assert!(
        tx.destruction_statements(&version("node-a", 2))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A review of records `first..=last` (head hash `[head; 32]`) by
/// `reviewer`, whose signature is 64 `signature` bytes.
pub fn audit_review(
    first: u64,
    last: u64,
    head: u8,
    reviewer: &str,
    signature: u8,
) -> crate::AuditReviewRecord {
    crate::AuditReviewRecord {
        range: crate::AuditReviewRange {
            first,
            last,
            head_hash: [head; 32],
        },
        reviewer: actor(reviewer),
        encoding: vec![signature; 200],
        signature: [signature; 64],
        reviewed_at: at(10),
        recorded_at: at(u64::from(signature)),
    }
}

/// Reviews are stored per range, one per reviewer, each signature once;
/// a refused insert leaves what was stored as it was.
pub async fn audit_reviews_are_append_only_once_per_reviewer<S: Store>(storage: S) {
    use crate::AuditReviewStore as _;
    let carol = audit_review(2, 5, 0xaa, "comp.carol", 1);
    let dave = audit_review(2, 5, 0xaa, "comp.dave", 2);
    let other_range = audit_review(1, 5, 0xaa, "comp.carol", 3);
    let mut tx = storage.begin().await.unwrap();
    tx.insert_audit_review(&dave).await.unwrap();
    tx.insert_audit_review(&carol).await.unwrap();
    tx.insert_audit_review(&other_range).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    let replay = audit_review(2, 5, 0xaa, "comp.erin", 1);
    assert!(matches!(
        refused(tx.insert_audit_review(&replay).await),
        Error::AuditReviewSignatureExists
    ));
    let mut tx = storage.begin().await.unwrap();
    let again = audit_review(2, 5, 0xaa, "comp.carol", 4);
    assert!(matches!(
        refused(tx.insert_audit_review(&again).await),
        Error::AuditReviewExists(reviewer) if reviewer == actor("comp.carol")
    ));
    // A refused write aborts its transaction: one transaction each.
    for (first, last) in [(0, 5), (6, 5)] {
        let mut tx = storage.begin().await.unwrap();
        assert!(matches!(
            refused(
                tx.insert_audit_review(&audit_review(first, last, 0xaa, "comp.erin", 5))
                    .await
            ),
            Error::AuditReviewRangeInvalid
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    let mut oversized = audit_review(2, 5, 0xaa, "comp.erin", 6);
    oversized.encoding = vec![0; crate::MAX_AUDIT_REVIEW_LEN + 1];
    assert!(matches!(
        refused(tx.insert_audit_review(&oversized).await),
        Error::BlobLength { .. }
    ));

    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(
        tx.audit_reviews(&carol.range).await.unwrap(),
        [carol.clone(), dave]
    );
    assert_eq!(
        tx.audit_reviews(&other_range.range).await.unwrap(),
        [other_range]
    );
    let mut elsewhere = carol.range;
    elsewhere.head_hash[0] ^= 1;
    assert!(tx.audit_reviews(&elsewhere).await.unwrap().is_empty());
}

//! The conformance suite: written once against the storage traits, run by
//! every backend (`tests/sqlite.rs`, `tests/postgres.rs`) on a real
//! database. Each case receives a fresh, empty, migrated storage.
//!
//! Add a case: write `pub async fn name<S: Store>(storage: S)` and list it
//! in [`for_each_case`].

use std::fmt::Debug;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shardkeep_envelope::{
    ActorId, CustodianId, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion, ShareSlot,
    Timestamp, WrappedKey,
};
use shardkeep_sss_core::{ShareIndex, Threshold};
use shardkeep_storage::{
    AUDIT_LOG_ID_LEN, Approval, ApprovalNonce, ApprovalRequest, ApprovalStore, AuditEntry,
    AuditHead, AuditLogId, AuditRow, AuditStore, CustodyEntry, CustodyStore, DeliveryOutcome,
    DeliveryRecord, DrillOutcome, DrillReport, DrillStore, Error, KeyVersionState, KeyVersionStore,
    MAX_AUDIT_APPENDS_PER_TRANSACTION, MAX_AUDIT_RECORD_LEN, MAX_ENVELOPE_LEN, ReceiptStore,
    SealedShare, SealedShareStore, ShareAccess, ShareAccessLog, SlotDeletionStore, SlotFilter,
    SlotState, Storage, StoredCheckpoint, Transaction,
};

/// What the suite needs of a backend: a storage that can be shared with
/// concurrent tasks.
pub(crate) trait Store: Storage + Clone + Send + Sync + 'static {}

impl<S> Store for S where S: Storage + Clone + Send + Sync + 'static {}

/// Calls `$callback!` with the name of every case.
#[macro_export]
macro_rules! for_each_case {
    ($callback:ident) => {
        $callback! {
            key_version_lifecycle,
            key_version_conflicts,
            sealed_share_round_trip,
            sealed_share_conflicts,
            rewrap_checks_the_current_kek,
            slot_deletion_lifecycle,
            slot_deletion_conflicts,
            custody_map_round_trip,
            custody_map_conflicts,
            deliveries_keep_one_receipt_per_slot,
            approvals_are_consumed_once,
            approval_conflicts,
            drill_reports,
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
        }
    };
}

// ----- fixtures -----

pub(crate) fn at(millis: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap()
}

pub(crate) fn version(node: &str, number: u32) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(number),
    }
}

pub(crate) fn index(i: u8) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

pub(crate) fn slot(node: &str, number: u32, i: u8) -> ShareSlot {
    version(node, number).slot(index(i))
}

pub(crate) fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

pub(crate) fn label(name: &str) -> Label {
    Label::new(name).unwrap()
}

pub(crate) fn sealed(slot: &ShareSlot) -> SealedShare {
    SealedShare {
        slot: slot.clone(),
        kek_id: KekId::new(format!("kek-{}", slot.index)).unwrap(),
        wrapped_key: WrappedKey::new(vec![0xa5; 60]).unwrap(),
        envelope: format!("envelope of {slot}").into_bytes(),
        envelope_id: Sha256::digest(slot.to_string()).into(),
        stored_at: at(10),
    }
}

pub(crate) fn custody(slot: &ShareSlot, custodian: &str) -> CustodyEntry {
    CustodyEntry {
        slot: slot.clone(),
        custodian: CustodianId::new(custodian).unwrap(),
        contact: format!("{custodian} <security@{custodian}.example>"),
        public_key: b"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq".to_vec(),
        updated_at: at(20),
        confirmed_at: None,
    }
}

pub(crate) fn nonce(byte: u8) -> ApprovalNonce {
    ApprovalNonce([byte; 32])
}

pub(crate) fn request(nonce_byte: u8) -> ApprovalRequest {
    ApprovalRequest {
        nonce: nonce(nonce_byte),
        operation: label("hard-delete"),
        request_hash: [7; 32],
        requester: actor("ops.carol"),
        ticket: label("INC-1234"),
        target: version("node-a", 1),
        issued_at: at(100),
        expires_at: at(10_000),
    }
}

pub(crate) fn approval(request: &ApprovalRequest, approver: &str, role: &str) -> Approval {
    Approval {
        nonce: request.nonce,
        operation: request.operation.clone(),
        request_hash: request.request_hash,
        requester: request.requester.clone(),
        ticket: request.ticket.clone(),
        role: label(role),
        target: request.target.clone(),
        expires_at: at(9_000),
        approver: actor(approver),
        signature: [0x5a; 64],
        recorded_at: at(200),
    }
}

/// A stand-in for the audit crate's builder: SHA-256 over the sequence,
/// the previous hash and the record.
pub(crate) fn chained(record: Vec<u8>) -> impl FnOnce(&AuditHead) -> AuditEntry + Send {
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
pub(crate) fn assert_chain(rows: &[AuditRow]) {
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
pub(crate) fn refused<T: Debug>(result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("expected a refusal, got Ok({value:?})"),
        Err(error) => error,
    }
}

/// Creates key version `number` of `node` (3-of-5) and commits.
pub(crate) async fn with_version<S: Store>(storage: &S, node: &str, number: u32) {
    let mut tx = storage.begin().await.unwrap();
    tx.create_key_version(&version(node, number), Threshold::new(3, 5).unwrap(), at(0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Creates version 1 of `node-a` holding sealed shares 1 and 2.
pub(crate) async fn with_shares<S: Store>(storage: &S) {
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
pub(crate) async fn with_three_audit_records<S: Storage>(storage: &S) {
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

// ----- key versions -----

pub(crate) async fn key_version_lifecycle<S: Store>(storage: S) {
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
    tx.create_key_version(
        &version("node-a", 2),
        Threshold::new(2, 3).unwrap(),
        at(100),
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

pub(crate) async fn key_version_conflicts<S: Store>(storage: S) {
    let v1 = version("node-a", 1);
    let v2 = version("node-a", 2);
    let missing = version("node-z", 9);
    with_version(&storage, "node-a", 1).await;
    let t = Threshold::new(3, 5).unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(
        matches!(refused(tx.create_key_version(&v1, t, at(1)).await), Error::KeyVersionExists(v) if v == v1)
    );
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.create_key_version(&v2, t, at(1)).await),
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
    tx.create_key_version(&v2, t, at(10)).await.unwrap();
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

pub(crate) async fn sealed_share_round_trip<S: Store>(storage: S) {
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
    assert_eq!(all[2].kek_id, sealed(&slot("node-b", 1, 2)).kek_id);
    assert_eq!(
        all[2].envelope_id,
        sealed(&slot("node-b", 1, 2)).envelope_id
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

pub(crate) async fn sealed_share_conflicts<S: Store>(storage: S) {
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
    let mut duplicate = sealed(&slot("node-a", 1, 1));
    duplicate.envelope = b"another envelope".to_vec();
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
    let mut tx = storage.begin_read_only().await.unwrap();
    assert!(matches!(
        refused(tx.load_sealed_share(&slot("node-a", 1, 3)).await),
        Error::SealedShareNotFound(_)
    ));
    // A slot mapped to a custodian cannot be held by the server.
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

pub(crate) async fn rewrap_checks_the_current_kek<S: Store>(storage: S) {
    with_shares(&storage).await;
    let target = slot("node-a", 1, 1);
    let old_kek = sealed(&target).kek_id;
    let new_kek = KekId::new("kek-rotated").unwrap();
    let new_wrapped = WrappedKey::new(vec![0x3c; 40]).unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.rewrap_sealed_share(&target, &new_kek, &new_kek, &new_wrapped).await),
        Error::KekMismatch { stored, .. } if stored == old_kek
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.rewrap_sealed_share(&slot("node-a", 1, 5), &old_kek, &new_kek, &new_wrapped)
                .await
        ),
        Error::SealedShareNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    tx.rewrap_sealed_share(&target, &old_kek, &new_kek, &new_wrapped)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let share = tx.load_sealed_share(&target).await.unwrap();
    assert_eq!(share.kek_id, new_kek);
    assert_eq!(share.wrapped_key, new_wrapped);
    // The signed envelope is untouched by re-wrapping.
    assert_eq!(share.envelope, sealed(&target).envelope);
    assert_eq!(share.envelope_id, sealed(&target).envelope_id);
}

// ----- deletion state -----

pub(crate) async fn slot_deletion_lifecycle<S: Store>(storage: S) {
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

pub(crate) async fn slot_deletion_conflicts<S: Store>(storage: S) {
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

pub(crate) async fn custody_map_round_trip<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
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
    let mut changed = custody(&target, "escrow-two");
    changed.contact = "Escrow Two, +1 555 0100".into();
    changed.updated_at = at(600);
    tx.update_custodian(&changed).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin_read_only().await.unwrap();
    let map = tx.custody_map(&version("node-a", 1)).await.unwrap();
    let indices: Vec<u8> = map.iter().map(|entry| entry.slot.index.get()).collect();
    assert_eq!(indices, [3, 4, 5]);
    assert_eq!(map[1], changed);
    assert_eq!(map[0].custodian.as_str(), "customer-sec");

    let mut tx = storage.begin().await.unwrap();
    tx.confirm_custody(&target, at(700)).await.unwrap();
    assert_eq!(
        tx.custody_entry(&target).await.unwrap().confirmed_at,
        Some(at(700))
    );
}

pub(crate) async fn custody_map_conflicts<S: Store>(storage: S) {
    with_shares(&storage).await;
    let external = slot("node-a", 1, 3);
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&custody(&external, "escrow-co"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&external, "someone-else"))
                .await
        ),
        Error::CustodyEntryExists(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-a", 1, 1), "escrow-co"))
                .await
        ),
        Error::SlotHeldByServer(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-a", 1, 9), "escrow-co"))
                .await
        ),
        Error::ShareIndexOutOfRange { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.assign_custodian(&custody(&slot("node-q", 1, 3), "escrow-co"))
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
            _ => tx.update_custodian(&custody(&missing, "escrow-co")).await,
        };
        assert!(matches!(refused(result), Error::CustodyEntryNotFound(_)));
    }
    for bad_contact in ["", "line\nbreak"] {
        let mut tx = storage.begin().await.unwrap();
        let mut bad = custody(&missing, "escrow-co");
        bad.contact = bad_contact.into();
        assert!(matches!(
            refused(tx.assign_custodian(&bad).await),
            Error::InvalidText {
                field: "contact",
                ..
            }
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    let mut bad = custody(&missing, "escrow-co");
    bad.public_key.clear();
    assert!(matches!(
        refused(tx.assign_custodian(&bad).await),
        Error::BlobLength { .. }
    ));
}

pub(crate) async fn deliveries_keep_one_receipt_per_slot<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
    let target = slot("node-a", 1, 3);
    let mut tx = storage.begin().await.unwrap();
    tx.assign_custodian(&custody(&target, "escrow-co"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let delivery = |outcome, millis| DeliveryRecord {
        slot: target.clone(),
        custodian: CustodianId::new("escrow-co").unwrap(),
        envelope_id: [9; 32],
        outcome,
        recorded_at: at(millis),
    };
    let failed = |reason: &str, millis| {
        delivery(
            DeliveryOutcome::Failed {
                reason: reason.into(),
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
    tx.record_delivery(&delivered).await.unwrap();
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
    let mut tx = storage.begin().await.unwrap();
    let mut unmapped = failed("x", 400);
    unmapped.slot = slot("node-a", 1, 4);
    assert!(matches!(
        refused(tx.record_delivery(&unmapped).await),
        Error::CustodyEntryNotFound(_)
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_delivery(&failed("bell\u{7}", 400)).await),
        Error::InvalidText { .. }
    ));
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

/// Forges one signed field of an approval.
type ApprovalEdit = fn(&mut Approval);

pub(crate) async fn approvals_are_consumed_once<S: Store>(storage: S) {
    let request = request(1);
    let security = approval(&request, "sec.bob", "security");
    let mut owner = approval(&request, "biz.dave", "business-owner");
    owner.recorded_at = at(150);
    let mut lapsing = approval(&request, "sec.erin", "security");
    lapsing.expires_at = at(500);

    let mut tx = storage.begin().await.unwrap();
    tx.issue_approval_request(&request).await.unwrap();
    tx.record_approval(&security).await.unwrap();
    tx.record_approval(&owner).await.unwrap();
    tx.record_approval(&lapsing).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    let (stored, approvals) = tx.approval_request(&request.nonce).await.unwrap();
    assert_eq!(stored, request);
    assert_eq!(
        approvals,
        [owner.clone(), security.clone(), lapsing.clone()]
    );

    // Consumed at 600: the lapsed approval is left out.
    let valid = tx
        .consume_approval_request(
            &request.nonce,
            &request.operation,
            &request.request_hash,
            at(600),
        )
        .await
        .unwrap();
    assert_eq!(valid, [owner, security]);
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(
                &request.nonce,
                &request.operation,
                &request.request_hash,
                at(700)
            )
            .await
        ),
        Error::ApprovalRequestConsumed(n) if n == request.nonce
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut late = approval(&request, "sec.frank", "security");
    late.recorded_at = at(700);
    assert!(matches!(
        refused(tx.record_approval(&late).await),
        Error::ApprovalRequestConsumed(_)
    ));
}

pub(crate) async fn approval_conflicts<S: Store>(storage: S) {
    let request = request(2);
    let mut tx = storage.begin().await.unwrap();
    tx.issue_approval_request(&request).await.unwrap();
    tx.record_approval(&approval(&request, "sec.bob", "security"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.issue_approval_request(&request).await),
        Error::ApprovalRequestExists(n) if n == request.nonce
    ));
    let mut tx = storage.begin().await.unwrap();
    let mut backwards = self::request(3);
    backwards.expires_at = backwards.issued_at;
    assert!(matches!(
        refused(tx.issue_approval_request(&backwards).await),
        Error::TimesOutOfOrder {
            field: "expires_at"
        }
    ));
    let unknown = self::request(4);
    for case in 0..3 {
        let mut tx = storage.begin().await.unwrap();
        let result = match case {
            0 => {
                tx.record_approval(&approval(&unknown, "sec.bob", "security"))
                    .await
            }
            1 => tx.approval_request(&unknown.nonce).await.map(drop),
            _ => tx
                .consume_approval_request(&unknown.nonce, &unknown.operation, &[7; 32], at(300))
                .await
                .map(drop),
        };
        assert!(matches!(refused(result), Error::ApprovalRequestNotFound(n) if n == unknown.nonce));
    }
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_approval(&approval(&request, "sec.bob", "security")).await),
        Error::ApprovalExists { approver, .. } if approver.as_str() == "sec.bob"
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(tx.record_approval(&approval(&request, "ops.carol", "security")).await),
        Error::ApproverIsRequester(a) if a.as_str() == "ops.carol"
    ));
    let edits: [(&str, ApprovalEdit); 5] = [
        ("operation", |a| a.operation = label("recover")),
        ("request_hash", |a| a.request_hash = [8; 32]),
        ("requester", |a| a.requester = actor("ops.mallory")),
        ("ticket", |a| a.ticket = label("INC-9999")),
        ("target", |a| a.target = version("node-b", 1)),
    ];
    for (expected, edit) in edits {
        let mut tx = storage.begin().await.unwrap();
        let mut forged = approval(&request, "biz.dave", "business-owner");
        edit(&mut forged);
        assert!(matches!(
            refused(tx.record_approval(&forged).await),
            Error::ApprovalMismatch { field, .. } if field == expected
        ));
    }
    let mut tx = storage.begin().await.unwrap();
    let mut expired = approval(&request, "biz.dave", "business-owner");
    expired.recorded_at = request.expires_at;
    assert!(matches!(
        refused(tx.record_approval(&expired).await),
        Error::ApprovalRequestExpired { .. }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(
                &request.nonce,
                &label("recover"),
                &request.request_hash,
                at(300)
            )
            .await
        ),
        Error::ApprovalMismatch {
            field: "operation",
            ..
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(&request.nonce, &request.operation, &[0; 32], at(300))
                .await
        ),
        Error::ApprovalMismatch {
            field: "request_hash",
            ..
        }
    ));
    let mut tx = storage.begin().await.unwrap();
    assert!(matches!(
        refused(
            tx.consume_approval_request(
                &request.nonce,
                &request.operation,
                &request.request_hash,
                request.expires_at
            )
            .await
        ),
        Error::ApprovalRequestExpired { expired_at, .. } if expired_at == request.expires_at
    ));
    // None of the refusals consumed the request.
    let mut tx = storage.begin().await.unwrap();
    tx.consume_approval_request(
        &request.nonce,
        &request.operation,
        &request.request_hash,
        at(300),
    )
    .await
    .unwrap();
}

// ----- drills and share reads -----

pub(crate) async fn drill_reports<S: Store>(storage: S) {
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
            reason: "only one share arrived".into(),
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

pub(crate) async fn share_access_log<S: Store>(storage: S) {
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

pub(crate) async fn audit_chain_links_rows<S: Store>(storage: S) {
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

pub(crate) async fn audit_grouped_commit_is_capped<S: Store>(storage: S) {
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

pub(crate) async fn audit_record_length_is_capped<S: Store>(storage: S) {
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

pub(crate) async fn checkpoints_follow_the_log<S: Store>(storage: S) {
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

pub(crate) async fn the_log_id_is_fixed<S: Store>(storage: S) {
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

pub(crate) async fn rollback_leaves_nothing<S: Store>(storage: S) {
    let mut tx = storage.begin().await.unwrap();
    tx.create_key_version(&version("node-a", 1), Threshold::new(3, 5).unwrap(), at(0))
        .await
        .unwrap();
    tx.store_sealed_share(&sealed(&slot("node-a", 1, 1)))
        .await
        .unwrap();
    tx.issue_approval_request(&request(1)).await.unwrap();
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
        refused(tx.approval_request(&nonce(1)).await),
        Error::ApprovalRequestNotFound(_)
    ));
    let mut tx = storage.begin_read_only().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
}

pub(crate) async fn errors_abort_the_transaction<S: Store>(storage: S) {
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

pub(crate) async fn refused_reads_keep_the_transaction<S: Store>(storage: S) {
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

pub(crate) async fn dropped_transaction_rolls_back<S: Store>(storage: S) {
    {
        let mut tx = storage.begin().await.unwrap();
        tx.create_key_version(&version("node-a", 1), Threshold::new(3, 5).unwrap(), at(0))
            .await
            .unwrap();
        tx.append_audit(chained(b"x".to_vec())).await.unwrap();
    }
    // The next writer gets the lock and sees nothing of the dropped one.
    let mut tx = storage.begin().await.unwrap();
    assert_eq!(tx.audit_head().await.unwrap(), AuditHead::GENESIS);
    tx.create_key_version(&version("node-a", 1), Threshold::new(3, 5).unwrap(), at(0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub(crate) async fn operation_approval_and_audit_commit_together<S: Store>(storage: S) {
    with_shares(&storage).await;
    let request = request(1);
    let mut tx = storage.begin().await.unwrap();
    tx.issue_approval_request(&request).await.unwrap();
    tx.record_approval(&approval(&request, "sec.bob", "security"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The operation fails after consuming the approval: nothing sticks.
    let mut tx = storage.begin().await.unwrap();
    tx.consume_approval_request(
        &request.nonce,
        &request.operation,
        &request.request_hash,
        at(300),
    )
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
    // The approval is still open, so the real operation can use it.
    let approvals = tx
        .consume_approval_request(
            &request.nonce,
            &request.operation,
            &request.request_hash,
            at(300),
        )
        .await
        .unwrap();
    assert_eq!(approvals.len(), 1);
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

pub(crate) async fn read_only_transactions_refuse_writes<S: Store>(storage: S) {
    with_shares(&storage).await;
    for case in 0..8 {
        let mut tx = storage.begin_read_only().await.unwrap();
        let result = match case {
            0 => {
                tx.create_key_version(&version("node-b", 1), Threshold::new(2, 3).unwrap(), at(0))
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
            4 => tx.issue_approval_request(&request(1)).await,
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

pub(crate) async fn read_only_transactions_see_a_snapshot<S: Store>(storage: S) {
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

pub(crate) async fn concurrent_consumers_never_double_spend<S: Store>(storage: S) {
    with_shares(&storage).await;
    let request = request(1);
    let mut tx = storage.begin().await.unwrap();
    tx.issue_approval_request(&request).await.unwrap();
    tx.commit().await.unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let storage = storage.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let mut tx = storage.begin().await?;
                tx.consume_approval_request(
                    &request.nonce,
                    &request.operation,
                    &request.request_hash,
                    at(300),
                )
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
            Err(Error::ApprovalRequestConsumed(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one operation may use the approval");
    assert_eq!(read_all_audit(&storage).await.len(), 1);
}

pub(crate) async fn concurrent_writers_never_lose_updates<S: Store>(storage: S) {
    with_version(&storage, "node-a", 1).await;
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

pub(crate) async fn concurrent_audit_appends_never_fork<S: Store>(storage: S) {
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

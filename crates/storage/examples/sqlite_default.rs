//! The embedded default with no set-up: a SQLite file in a temporary
//! directory, one key version through backup, delivery, an approved soft
//! delete and its audit records, each step one unit of work.
//!
//! Run: `cargo run -p shardkeep-storage --example sqlite_default`
#![allow(clippy::print_stdout)] // An example shows its results.

use shardkeep_envelope::{
    ActorId, CustodianId, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion, Timestamp,
    WrappedKey,
};
use shardkeep_sss_core::Threshold;
use shardkeep_storage::{
    Approval, ApprovalNonce, ApprovalRequest, ApprovalStore, AuditEntry, AuditStore, CustodyEntry,
    CustodyStore, DeliveryOutcome, DeliveryRecord, KeyVersionStore, ReceiptStore, SealedShare,
    SealedShareStore, SlotDeletionStore, SlotFilter, SqliteStorage, Storage, Transaction,
};

/// Stands in for the audit crate's chained hash (this crate never hashes).
fn entry(record: &str) -> impl FnOnce(&shardkeep_storage::AuditHead) -> AuditEntry + Send {
    let record = record.as_bytes().to_vec();
    move |head| AuditEntry {
        record,
        hash: [u8::try_from(head.sequence % 251).unwrap_or(0) + 1; 32],
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shardkeep.db");
    let storage = SqliteStorage::open(&path).await?;
    println!(
        "opened {} (created, migrated, WAL, synchronous=FULL)",
        path.display()
    );

    let version = NodeVersion {
        key_id: KeyId::new("wallet-1")?,
        node_id: NodeId::new("node-a")?,
        version: KeyVersion::new(1),
    };
    let now = Timestamp::now();
    let slot = |i: u8| -> Result<shardkeep_envelope::ShareSlot, &'static str> {
        Ok(version.slot(shardkeep_sss_core::ShareIndex::new(i).ok_or("index 0")?))
    };

    // Generate: the version, two server shares, three custodians.
    let mut tx = storage.begin().await?;
    tx.create_key_version(&version, Threshold::new(3, 5)?, now)
        .await?;
    for i in 1..=2 {
        tx.store_sealed_share(&SealedShare {
            slot: slot(i)?,
            kek_id: KekId::new(format!("kek-wallet-1-node-a-v1-{i}"))?,
            wrapped_key: WrappedKey::new(vec![0xa5; 60])?,
            envelope: format!("sealed envelope {i}").into_bytes(),
            envelope_id: [i; 32],
            stored_at: now,
        })
        .await?;
    }
    for (i, custodian) in [
        (3, "customer-security"),
        (4, "escrow-co"),
        (5, "cold-backup"),
    ] {
        tx.assign_custodian(&CustodyEntry {
            slot: slot(i)?,
            custodian: CustodianId::new(custodian)?,
            contact: format!("security@{custodian}.example"),
            public_key: b"age1...".to_vec(),
            updated_at: now,
            confirmed_at: None,
        })
        .await?;
        tx.record_delivery(&DeliveryRecord {
            slot: slot(i)?,
            custodian: CustodianId::new(custodian)?,
            envelope_id: [i; 32],
            outcome: DeliveryOutcome::Delivered {
                receipt: b"signed receipt".to_vec(),
            },
            recorded_at: now,
        })
        .await?;
    }
    let row = tx
        .append_audit(entry("generate wallet-1/node-a/v1"))
        .await?;
    tx.commit().await?;
    println!(
        "generated: 2 sealed shares, 3 custodians; audit #{}",
        row.sequence
    );

    // An approved soft delete: approval consumed, state changed and audited
    // in one transaction.
    let request = ApprovalRequest {
        nonce: ApprovalNonce([42; 32]),
        operation: Label::new("soft-delete")?,
        request_hash: [7; 32],
        requester: ActorId::new("ops.carol")?,
        ticket: Label::new("CHG-2041")?,
        target: version.clone(),
        issued_at: now,
        expires_at: now
            .checked_add(std::time::Duration::from_secs(3600))
            .ok_or("time")?,
    };
    let mut tx = storage.begin().await?;
    tx.issue_approval_request(&request).await?;
    // The service verifies each approver's ed25519 signature before this.
    for (approver, role) in [("sec.bob", "security"), ("biz.dave", "business-owner")] {
        tx.record_approval(&Approval {
            nonce: request.nonce,
            operation: request.operation.clone(),
            request_hash: request.request_hash,
            requester: request.requester.clone(),
            ticket: request.ticket.clone(),
            role: Label::new(role)?,
            target: request.target.clone(),
            expires_at: request.expires_at,
            approver: ActorId::new(approver)?,
            signature: [0x5a; 64],
            recorded_at: now,
        })
        .await?;
    }
    tx.commit().await?;

    let mut tx = storage.begin().await?;
    let approvals = tx
        .consume_approval_request(
            &request.nonce,
            &request.operation,
            &request.request_hash,
            now,
        )
        .await?;
    let cooldown = now
        .checked_add(std::time::Duration::from_secs(7 * 86_400))
        .ok_or("time")?;
    tx.soft_delete_slot(&slot(2)?, &request.requester, now, cooldown)
        .await?;
    let row = tx.append_audit(entry("soft-delete slot 2")).await?;
    tx.commit().await?;
    println!(
        "soft-deleted slot 2 with {} approvals; cooldown until {cooldown}; audit #{}",
        approvals.len(),
        row.sequence
    );

    let mut read = storage.begin_read_only().await?;
    for summary in read.list_slots(&SlotFilter::default()).await? {
        println!(
            "  {} {} ({})",
            summary.slot,
            summary.kek_id,
            summary.state.name()
        );
    }
    println!(
        "  slot 2 state: {:?}",
        read.slot_state(&slot(2)?).await?.name()
    );
    println!("audit head: #{}", read.audit_head().await?.sequence);
    Ok(())
}

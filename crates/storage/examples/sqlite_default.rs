//! The embedded default with no set-up: a SQLite file in a temporary
//! directory, one key version through backup (real sealed envelopes under
//! per-slot KEKs), delivery, a KEK migration, an approved soft delete and
//! their audit records, each step one unit of work. These are the storage
//! traits' own calls; the backup service makes them for an operator
//! (`examples/hybrid_backup.rs`, on `shardkeep-backup`).
//!
//! Run: `cargo run -p shardkeep-storage --example sqlite_default`
#![allow(clippy::print_stdout)] // An example shows its results.

use rand::SeedableRng;
use rand::rngs::{ChaCha20Rng, SysRng};
use shardkeep_envelope::{Binding, EnvelopeParams, TrustedSigners, VerifiedEnvelope, archive_hash};
use shardkeep_sss_core::{Curve, CurveId, Secp256k1, Secret, ShareIndex, Threshold, split};
use shardkeep_storage::{
    ApprovalOperation, ApprovalRecord, ApprovalRequestHash, ApprovalRequestRecord, ApprovalStore,
    AuditEntry, AuditStore, CustodyEntry, CustodyStore, DeliveryOutcome, DeliveryRecord,
    EntityRecord, EntityState, GroupRecord, GroupStore, KeyVersionStore, PersonKeys, PersonRecord,
    PersonState, PolicyRecord, ReceiptStore, RegistryStore, Role, RoleSet, SealedShare,
    SealedShareStore, SlotDeletionStore, SlotFilter, SlotKekRecord, SlotKekStore, SplitReference,
    SqliteStorage, Storage, Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemoryKek, InMemorySigner, KekId, KeyEncryptionKey, KeyId,
    KeyVersion, NodeId, NodeVersion, ShareSlot, SignerId, Timestamp,
};

/// Stands in for the audit crate's chained hash (this crate never hashes).
fn entry(record: &str) -> impl FnOnce(&shardkeep_storage::AuditHead) -> AuditEntry + Send {
    let record = record.as_bytes().to_vec();
    move |head| AuditEntry {
        record,
        hash: [u8::try_from(head.sequence % 251).unwrap_or(0) + 1; 32],
    }
}

/// A KEK dedicated to `slot`, named after it and its generation.
fn slot_kek(
    slot: &ShareSlot,
    generation: u8,
    rng: &mut ChaCha20Rng,
) -> Result<InMemoryKek, Box<dyn std::error::Error>> {
    let id = KekId::new(format!("kek-{}-{}-g{generation}", slot.node_id, slot.index))?;
    Ok(InMemoryKek::for_slot(id, slot.clone(), rng))
}

/// The key store's record of a KEK it just created (a real key store
/// fingerprints the key; this stand-in hashes the id).
fn record_of(kek: &InMemoryKek, slot: &ShareSlot, created_at: Timestamp) -> SlotKekRecord {
    let mut fingerprint = [0u8; 32];
    for (i, byte) in kek.kek_id().as_str().bytes().enumerate() {
        fingerprint[i % 32] ^= byte;
    }
    SlotKekRecord {
        slot: slot.clone(),
        kek_id: kek.kek_id().clone(),
        fingerprint,
        created_at,
        destroyed_at: None,
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
    let slot = |i: u8| -> Result<ShareSlot, &'static str> {
        Ok(version.slot(ShareIndex::new(i).ok_or("index 0")?))
    };

    // The node's share, split 3-of-5 (a random stand-in here), and what
    // every envelope of the split is bound to.
    let mut rng = ChaCha20Rng::try_from_rng(&mut SysRng)?;
    let (commitments, shares) = split(
        &Secret::<Secp256k1>::random(&mut rng),
        Threshold::new(3, 5)?,
        &mut rng,
    )?
    .into_parts();
    let mut group_key = Vec::new();
    Secp256k1::encode_point(
        &Secret::<Secp256k1>::random(&mut rng).public_point(),
        &mut group_key,
    );
    let params = EnvelopeParams {
        node_version: version.clone(),
        created_at: now,
        binding: Binding::new(
            CurveId::Secp256k1,
            group_key.clone(),
            vec![1],
            commitments.to_bytes()[..Secp256k1::POINT_LEN].to_vec(),
            archive_hash(b"sealed protocol archive"),
        )?,
    };
    let signer = InMemorySigner::generate(SignerId::new("server-signer")?, &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer)?;

    // Generate: the version, two server shares sealed under their slots'
    // own KEKs (recorded as the slots' KEKs), three custodians.
    let mut keks = Vec::new();
    let mut tx = storage.begin().await?;
    // The group and the policy in force come first: the version records
    // both in its split reference, which every later check uses.
    let operator = ActorId::new("ops.alice")?;
    tx.register_group(&GroupRecord {
        key_id: version.key_id.clone(),
        curve: CurveId::Secp256k1.to_u8(),
        group_public_key: group_key,
        tss_degree: 2,
        parties: 5,
        registered_at: now,
    })
    .await?;
    let policy_hash = [0x70; 32]; // The backup crate hashes its policy.
    tx.set_policy(&PolicyRecord {
        hash: policy_hash,
        encoding: b"3-of-5, 2 on the server".to_vec(),
        set_at: now,
        set_by: ActorId::new("sec.bob")?,
    })
    .await?;
    let reference = SplitReference {
        curve: CurveId::Secp256k1.to_u8(),
        split_id: *commitments.split_id().as_bytes(),
        commitments: commitments.to_bytes(),
        binding: b"the encoded signed binding".to_vec(),
        policy_hash,
        server_shares: 2,
    };
    tx.create_key_version(&version, Threshold::new(3, 5)?, &reference, &operator, now)
        .await?;
    for share in &shares[..2] {
        let slot = version.slot(share.index());
        let kek = slot_kek(&slot, 1, &mut rng)?;
        let envelope = params.seal(&commitments, share, &signer, &kek, &mut rng)?;
        tx.store_sealed_share(&SealedShare {
            slot: slot.clone(),
            envelope: envelope.as_bytes().to_vec(),
            stored_at: now,
        })
        .await?;
        tx.record_slot_kek(&record_of(&kek, &slot, now)).await?;
        keks.push(kek);
    }
    for (share, custodian) in
        shares[2..]
            .iter()
            .zip(["customer-security", "escrow-co", "cold-backup"])
    {
        let i = share.index().get();
        // Each custodian entity is registered with the person acting for
        // it and every key that person uses (stand-ins here: a real
        // recipient is an age X25519 recipient, a real receipt key an
        // ed25519 public key).
        let agent = ActorId::new(format!("agent@{custodian}"))?;
        let recipient = format!("age1{custodian}");
        tx.register_person(&PersonRecord {
            id: agent.clone(),
            display_name: FreeText::new(format!("Custodian agent of {custodian}"))?,
            roles: RoleSet::EMPTY.with(Role::Custodian),
            keys: PersonKeys {
                receipt_key: Some([i; 32]),
                approval_key: None,
                age_recipient: Some(recipient.clone()),
                tls_fingerprint: None,
            },
            key_epoch: 1,
            state: PersonState::Active,
            registered_at: now,
            registered_by: operator.clone(),
        })
        .await?;
        tx.register_entity(&EntityRecord {
            id: CustodianId::new(custodian)?,
            display_name: FreeText::new(custodian)?,
            contact: FreeText::new(format!("security@{custodian}.example"))?,
            members: vec![agent.clone()],
            state: EntityState::Active,
            registered_at: now,
        })
        .await?;
        // The custodian gets the plain envelope, inside an age container
        // sealed to its agent's recipient (not built here: the container
        // hash is a stand-in).
        let envelope = params.plain(&commitments, share, &signer)?;
        tx.assign_custodian(&CustodyEntry {
            slot: slot(i)?,
            custodian: CustodianId::new(custodian)?,
            person: agent,
            recipient,
            envelope_id: envelope.id(),
            container_hash: [i; 32],
            updated_at: now,
            confirmed_at: None,
        })
        .await?;
        tx.record_delivery(&DeliveryRecord {
            slot: slot(i)?,
            custodian: CustodianId::new(custodian)?,
            envelope_id: *envelope.id().as_bytes(),
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

    // A KEK migration of slot 1, in one unit of work: the envelope is
    // re-wrapped from the old KEK to a new one and stored whole (same
    // envelope id), the old KEK destroyed and recorded so. The stored bytes
    // open with the new KEK alone.
    let migrated = slot(1)?;
    let old_kek = keks.swap_remove(0);
    let new_kek = slot_kek(&migrated, 2, &mut rng)?;
    let mut tx = storage.begin().await?;
    let stored = tx.load_sealed_share(&migrated).await?;
    let rewrapped =
        VerifiedEnvelope::decode_verify(&stored.envelope, &trusted)?.rewrap(&old_kek, &new_kek)?;
    tx.rewrap_sealed_share(&migrated, old_kek.kek_id(), rewrapped.as_bytes())
        .await?;
    drop(old_kek);
    tx.mark_slot_kek_destroyed(&migrated, now).await?;
    tx.record_slot_kek(&record_of(&new_kek, &migrated, now))
        .await?;
    let row = tx.append_audit(entry("kek-migrate slot 1")).await?;
    tx.commit().await?;
    let mut read = storage.begin_read_only().await?;
    let share = read.load_sealed_share(&migrated).await?;
    let opened = VerifiedEnvelope::decode_verify(&share.envelope, &trusted)?.open(&new_kek)?;
    drop(read);
    println!(
        "migrated slot 1 to {}: opens to share {}; audit #{}",
        new_kek.kek_id(),
        opened.index(),
        row.sequence
    );

    // An approved soft delete: approval consumed, state changed and audited
    // in one transaction.
    let request = ApprovalRequestRecord {
        // The backup layer hashes its canonical request encoding; any
        // 32-byte name serves here.
        hash: ApprovalRequestHash([42; 32]),
        encoding: b"canonical approval request".to_vec(),
        operation: ApprovalOperation::Delete,
        subject: Some(version.clone()),
        requester: ActorId::new("ops.carol")?,
        created_at: now,
        expires_at: now
            .checked_add(std::time::Duration::from_secs(3600))
            .ok_or("time")?,
        consumed_at: None,
        consumed_by: None,
    };
    let mut tx = storage.begin().await?;
    tx.insert_approval_request(&request).await?;
    // The service verifies each approver's ed25519 signature and
    // registration before this.
    for (approver, role) in [
        ("sec.bob", Role::Security),
        ("biz.dave", Role::BusinessOwner),
    ] {
        tx.insert_approval(&ApprovalRecord {
            request_hash: request.hash,
            approver: ActorId::new(approver)?,
            role,
            signature: [0x5a; 64],
            approved_at: now,
        })
        .await?;
    }
    tx.commit().await?;

    let mut tx = storage.begin().await?;
    let approvals = tx.approvals(&request.hash).await?;
    tx.consume_approval_request(&request.hash, now, &request.requester)
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

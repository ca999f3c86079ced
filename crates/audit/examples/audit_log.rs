//! The audit log on the embedded SQLite default, with no set-up: records
//! appended in units of work and through the group committer, a signed
//! checkpoint to a witness file, exports, verification, and what the
//! verifier says about an edited export.
//!
//! Run: `cargo run -p shardkeep-audit --example audit_log`
#![allow(clippy::print_stdout)] // An example shows its results.

use std::sync::Arc;

use shardkeep_audit::{
    AuditRecord, Error, EventType, GroupCommitPolicy, GroupCommitter, Outcome, Witness, append,
    checkpoint, export, export_json_lines, parse_export, read_witness, verify,
};
use shardkeep_envelope::{ActorId, InMemorySigner, KeyId, NodeId, Signer, SignerId, Timestamp};
use shardkeep_storage::{SqliteStorage, Storage, Transaction};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let storage = SqliteStorage::open(dir.path().join("shardkeep.db")).await?;
    // In production the checkpoint key lives in the HSM (shardkeep-kms).
    let signer = InMemorySigner::from_seed(SignerId::new("audit-checkpoints")?, &[7; 32]);
    let operator = ActorId::new("ops.alice")?;

    // A record inside the unit of work of the operation it records.
    let mut record = AuditRecord::new(EventType::Generate, Timestamp::now(), operator.clone());
    record.key_id = Some(KeyId::new("wallet-1")?);
    record.node_id = Some(NodeId::new("node-a")?);
    record.threshold = Some(shardkeep_sss_core::Threshold::new(3, 5)?);
    let mut tx = storage.begin().await?;
    let first = append(&mut tx, &record).await?;
    tx.commit().await?;
    println!("generate recorded as #{}", first.sequence);

    // Stand-alone records from concurrent tasks, in grouped commits.
    let committer = Arc::new(GroupCommitter::spawn(
        storage.clone(),
        GroupCommitPolicy::default(),
    ));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let committer = Arc::clone(&committer);
            let operator = operator.clone();
            tokio::spawn(async move {
                let mut record = AuditRecord::new(EventType::Inspect, Timestamp::now(), operator);
                if i % 10 == 0 {
                    record.event = EventType::AccessDenied;
                    record.outcome = Outcome::Failure {
                        reason: "no approval for share read".into(),
                    };
                }
                committer.append(&record).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!("100 more records through the group committer");

    let witness_path = dir.path().join("witness");
    let mut witness = Witness::open(&witness_path)?;
    let signed = checkpoint(&storage, &signer, &mut witness, Timestamp::now()).await?;
    println!("witness: {}", signed.to_line());

    let mut exported = Vec::new();
    export(&storage, &mut exported).await?;
    let mut json = Vec::new();
    export_json_lines(&storage, &mut json).await?;
    println!(
        "JSON Lines, first record: {}",
        String::from_utf8_lossy(json.split(|b| *b == b'\n').next().unwrap_or_default())
    );

    let rows = parse_export(&exported)?;
    let checkpoints = read_witness(&witness_path)?;
    let verified = verify(&rows, &checkpoints, &signer.verifying_key())?;
    println!(
        "verified {} records up to head {}",
        verified.records,
        hex::encode(verified.head.hash)
    );

    // Someone edits record 42 in the export (or the database).
    let mut edited = rows.clone();
    if let Some(byte) = edited[41].record.last_mut() {
        *byte ^= 1;
    }
    match verify(&edited, &checkpoints, &signer.verifying_key()) {
        Err(Error::Tampered(finding)) => println!("edited export: {finding}"),
        other => println!("edited export unexpectedly: {other:?}"),
    }
    // Someone cuts the last 10 records off.
    match verify(
        &rows[..rows.len() - 10],
        &checkpoints,
        &signer.verifying_key(),
    ) {
        Err(Error::Tampered(finding)) => println!("truncated export: {finding}"),
        other => println!("truncated export unexpectedly: {other:?}"),
    }
    if let Ok(committer) = Arc::try_unwrap(committer) {
        committer.shutdown().await;
    }
    Ok(())
}

//! The audit log on the embedded SQLite default, with no set-up: records
//! appended in units of work and through the group committer, a signed
//! checkpoint to a witness file, exports, verification, and what the
//! verifier says about an edited or cut export, and about one with no
//! witness. (In production the witness is a `PostgresWitness` or a file the
//! service can only append to; see the README.)
//!
//! Run: `cargo run -p shardkeep-audit --example audit_log`
#![allow(clippy::print_stdout)] // An example shows its results.

use std::sync::Arc;

use shardkeep_audit::{
    AuditRecord, Error, EventType, Export, FileWitness, GroupCommitPolicy, GroupCommitter, Outcome,
    Witness, append, checkpoint, export, export_json_lines, parse_export, verify,
};
use shardkeep_storage::{SqliteStorage, Storage, Transaction};
use shardkeep_types::{
    ActorId, FreeText, InMemorySigner, KeyId, NodeId, Signer, SignerId, Timestamp,
};

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
    record.threshold = Some(shardkeep_types::Threshold::new(3, 5)?);
    let mut tx = storage.begin().await?;
    let first = append(&mut tx, &record).await?;
    tx.commit().await?;
    println!("generate recorded as #{}", first.sequence);

    // Stand-alone records from concurrent tasks, in grouped commits.
    let committer = Arc::new(GroupCommitter::spawn(
        storage.clone(),
        GroupCommitPolicy::default(),
    ));
    let denied = FreeText::new("no approval for share read")?;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let committer = Arc::clone(&committer);
            let operator = operator.clone();
            let denied = denied.clone();
            tokio::spawn(async move {
                let mut record = AuditRecord::new(EventType::Inspect, Timestamp::now(), operator);
                if i % 10 == 0 {
                    record.event = EventType::AccessDenied;
                    record.outcome = Outcome::Failure { reason: denied };
                }
                committer.append(&record).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!("100 more records through the group committer");

    let mut witness = FileWitness::open(dir.path().join("witness"))?;
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

    let log = parse_export(&exported)?;
    let checkpoints = witness.read(&log.log_id).await?;
    let verified = verify(&log, &checkpoints, &signer.verifying_key())?;
    println!(
        "verified {} records of log {} up to head {}",
        verified.records,
        verified.log_id,
        hex::encode(verified.head.hash)
    );

    // Someone edits record 42 in the export (or the database).
    let mut edited = log.clone();
    if let Some(byte) = edited.rows[41].record.last_mut() {
        *byte ^= 1;
    }
    // Someone cuts the last 10 records off.
    let mut cut = log.clone();
    cut.rows.truncate(cut.rows.len() - 10);
    let attempts: [(&str, &Export, &[_]); 3] = [
        ("edited export", &edited, &checkpoints),
        ("truncated export", &cut, &checkpoints),
        ("truncated export, no witness", &cut, &[]),
    ];
    for (what, export, witnessed) in attempts {
        match verify(export, witnessed, &signer.verifying_key()) {
            Err(Error::Tampered(finding)) => println!("{what}: {finding}"),
            other => println!("{what} unexpectedly: {other:?}"),
        }
    }
    if let Ok(committer) = Arc::try_unwrap(committer) {
        committer.shutdown().await;
    }
    Ok(())
}

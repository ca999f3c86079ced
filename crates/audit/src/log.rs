//! Writing the log: appends inside the caller's unit of work, grouped
//! commits for throughput, checkpoints to a witness, and exports.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use shardkeep_storage::{
    AuditLogId, AuditRow, AuditStore, MAX_AUDIT_APPENDS_PER_TRANSACTION, MAX_PAGE_ROWS, Storage,
    StoredCheckpoint, Transaction,
};
use shardkeep_types::{Signer, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::chain::link;
use crate::checkpoint::Checkpoint;
use crate::error::Error;
use crate::export::{encode_header, encode_row};
use crate::json::json_line;
use crate::record::AuditRecord;
use crate::witness::Witness;

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence.
    pub sequence: u64,
    /// Its chained hash.
    pub hash: [u8; 32],
}

/// Appends `record` to the chain inside the caller's transaction, so it
/// commits together with the operation it records.
///
/// # Errors
/// [`Error::Encode`] before anything is written; [`Error::Storage`] from
/// the append (which aborts the transaction).
pub async fn append<T: AuditStore + Send>(
    tx: &mut T,
    record: &AuditRecord,
) -> Result<Appended, Error> {
    let bytes = record.encode()?;
    let row = tx.append_audit(link(bytes)).await?;
    Ok(Appended {
        sequence: row.sequence,
        hash: row.hash,
    })
}

/// When a grouped commit closes: after `max_records` records or `max_delay`
/// after its first record, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitPolicy {
    /// Most records per commit (1 to 64).
    pub max_records: usize,
    /// Longest a record waits for companions.
    pub max_delay: Duration,
}

impl Default for GroupCommitPolicy {
    /// 64 records or 10 ms.
    fn default() -> Self {
        Self {
            max_records: MAX_AUDIT_APPENDS_PER_TRANSACTION,
            max_delay: Duration::from_millis(10),
        }
    }
}

type Reply = oneshot::Sender<Result<Appended, Error>>;

/// Appends records that stand alone (not part of another unit of work) in
/// grouped commits: one transaction, one fsync, for up to 64 records. Each
/// caller's `append` returns once its record is durable.
#[derive(Debug)]
pub struct GroupCommitter {
    sender: mpsc::Sender<(Vec<u8>, Reply)>,
    task: JoinHandle<()>,
}

impl GroupCommitter {
    /// Starts the committer task on the current tokio runtime.
    #[must_use]
    pub fn spawn<S>(storage: S, policy: GroupCommitPolicy) -> Self
    where
        S: Storage + 'static,
        S::Transaction: 'static,
    {
        let max_records = policy
            .max_records
            .clamp(1, MAX_AUDIT_APPENDS_PER_TRANSACTION);
        let (sender, receiver) = mpsc::channel(4 * MAX_AUDIT_APPENDS_PER_TRANSACTION);
        let task = tokio::spawn(run_committer(
            storage,
            receiver,
            max_records,
            policy.max_delay,
        ));
        Self { sender, task }
    }

    /// Appends one record and waits until its group has committed.
    ///
    /// # Errors
    /// [`Error::Encode`] for a bad record (nothing is queued),
    /// [`Error::GroupCommit`] when its group's commit failed (no record of
    /// the group was written), [`Error::CommitterStopped`].
    pub async fn append(&self, record: &AuditRecord) -> Result<Appended, Error> {
        let bytes = record.encode()?;
        let (reply, response) = oneshot::channel();
        self.sender
            .send((bytes, reply))
            .await
            .map_err(|_| Error::CommitterStopped)?;
        response.await.map_err(|_| Error::CommitterStopped)?
    }

    /// Stops accepting records, commits what is queued, and waits.
    pub async fn shutdown(self) {
        drop(self.sender);
        // The task ends once the queue drains; a panic in it has already
        // failed every waiting caller.
        let _ = self.task.await;
    }
}

async fn run_committer<S: Storage>(
    storage: S,
    mut receiver: mpsc::Receiver<(Vec<u8>, Reply)>,
    max_records: usize,
    max_delay: Duration,
) {
    while let Some(first) = receiver.recv().await {
        let deadline = tokio::time::Instant::now() + max_delay;
        let mut group = vec![first];
        while group.len() < max_records {
            match receiver.try_recv() {
                Ok(item) => group.push(item),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(item)) => group.push(item),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let (records, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match commit_group(&storage, records).await {
            Ok(rows) => {
                for (reply, row) in replies.into_iter().zip(rows) {
                    // A caller that stopped waiting no longer needs the answer.
                    let _ = reply.send(Ok(Appended {
                        sequence: row.sequence,
                        hash: row.hash,
                    }));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(Error::GroupCommit(Arc::clone(&error))));
                }
            }
        }
    }
}

async fn commit_group<S: Storage>(
    storage: &S,
    records: Vec<Vec<u8>>,
) -> Result<Vec<AuditRow>, shardkeep_storage::Error> {
    let mut tx = storage.begin().await?;
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        rows.push(tx.append_audit(link(record)).await?);
    }
    tx.commit().await?;
    Ok(rows)
}

/// Checkpoints the log: signs its committed head (naming the log and the
/// signer), checks the signature under the signer's own public key, appends
/// the checkpoint to `witness` (durable before this returns) and then
/// stores a copy beside the audit table. Every call does all of this, also
/// when the head has not moved since the last checkpoint: nothing stored in
/// the database is ever returned or trusted here.
///
/// The head is read from a committed snapshot, so what is signed is on the
/// chain whatever else runs meanwhile; checkpointers running side by side
/// may witness their heads out of order, which the verifier accepts.
///
/// # Errors
/// [`Error::Storage`], [`Error::Signer`], [`Error::CheckpointSignature`]
/// (nothing witnessed or stored), or the witness's error (nothing stored).
/// A storage error after the witness took the checkpoint leaves it
/// witnessed, which is harmless: it names a committed head.
pub async fn checkpoint<S, K, W>(
    storage: &S,
    signer: &K,
    witness: &mut W,
    now: Timestamp,
) -> Result<Checkpoint, Error>
where
    S: Storage,
    K: Signer + ?Sized,
    W: Witness,
{
    let mut read = storage.begin_read_only().await?;
    let log_id = read.audit_log_id().await?;
    let head = read.audit_head().await?;
    read.rollback().await?;

    let checkpoint = Checkpoint::sign(log_id, &head, now, signer)?;
    if !checkpoint.verifies(&signer.verifying_key()) {
        return Err(Error::CheckpointSignature);
    }
    witness.append(&checkpoint).await?;

    let mut tx = storage.begin().await?;
    tx.store_checkpoint(&StoredCheckpoint {
        sequence: checkpoint.sequence,
        head_hash: checkpoint.head_hash,
        checkpoint: checkpoint.to_line().into_bytes(),
    })
    .await?;
    tx.commit().await?;
    Ok(checkpoint)
}

/// Writes the log's identity and every row, from one consistent snapshot,
/// in the export format the verifier reads. Returns the number of rows.
///
/// # Errors
/// [`Error::Storage`] or [`Error::Io`].
pub async fn export<S: Storage, W: Write>(storage: &S, mut out: W) -> Result<u64, Error> {
    let mut buffer = Vec::new();
    let count = for_each_row(storage, |item| {
        buffer.clear();
        match item {
            Snapshot::Log(log_id) => encode_header(&mut buffer, log_id),
            Snapshot::Row(row) => encode_row(&mut buffer, row),
        }
        out.write_all(&buffer).map_err(Error::from)
    })
    .await?;
    out.flush()?;
    Ok(count)
}

/// Writes every row as one JSON object per line, for people. A record that
/// does not decode is written with an `"error"` field instead of its
/// fields. The chain never depends on this form.
///
/// # Errors
/// [`Error::Storage`], [`Error::Io`] or [`Error::Json`].
pub async fn export_json_lines<S: Storage, W: Write>(
    storage: &S,
    mut out: W,
) -> Result<u64, Error> {
    let count = for_each_row(storage, |item| {
        let Snapshot::Row(row) = item else {
            return Ok(());
        };
        let line = json_line(row)?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n").map_err(Error::from)
    })
    .await?;
    out.flush()?;
    Ok(count)
}

/// What [`for_each_row`] hands its visitor: first the log's identity, then
/// every row.
enum Snapshot<'a> {
    Log(&'a AuditLogId),
    Row(&'a AuditRow),
}

/// Visits the log's identity, then every row, from one snapshot; returns
/// the number of rows.
async fn for_each_row<S: Storage>(
    storage: &S,
    mut visit: impl FnMut(Snapshot<'_>) -> Result<(), Error>,
) -> Result<u64, Error> {
    let mut tx = storage.begin_read_only().await?;
    visit(Snapshot::Log(&tx.audit_log_id().await?))?;
    let mut next = 1;
    let mut count = 0;
    loop {
        let page = tx.read_audit(next, MAX_PAGE_ROWS).await?;
        let Some(last) = page.last() else { break };
        next = last.sequence.saturating_add(1);
        for row in &page {
            visit(Snapshot::Row(row))?;
            count += 1;
        }
    }
    tx.rollback().await?;
    Ok(count)
}

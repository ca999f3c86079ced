//! The raw append-only audit table, its identity and its checkpoints.
//!
//! Appends run in write transactions, which hold the database-wide write
//! lock from `BEGIN` to the end: the head read here cannot move until the
//! transaction ends, so `sequence = head + 1` never forks and never gaps.
//! The database checks the same rule again in a `BEFORE INSERT` trigger,
//! and another refuses a checkpoint row that names a head off the chain.

use super::{Backend, Columns, SqlTransaction, args, db_int, guarded};
use crate::error::Error;
use crate::records::{AuditEntry, AuditHead, AuditLogId, AuditRow, DIGEST_LEN, StoredCheckpoint};
use crate::traits::AuditStore;
use crate::types::check_blob;
use crate::{
    MAX_AUDIT_APPENDS_PER_TRANSACTION, MAX_AUDIT_RECORD_LEN, MAX_CHECKPOINT_LEN, MAX_PAGE_ROWS,
};

const TABLE: &str = "audit_log";
const IDENTITY: &str = "audit_log_identity";
const CHECKPOINTS: &str = "audit_checkpoints_v2";

/// The largest sequence: the databases store it as a signed 64-bit integer.
const MAX_SEQUENCE: u64 = i64::MAX.unsigned_abs();

async fn head<B: Backend>(tx: &mut SqlTransaction<B>) -> Result<AuditHead, Error> {
    if let Some(head) = tx.audit_head {
        return Ok(head);
    }
    let row = tx
        .fetch_optional(
            TABLE,
            "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1",
            Vec::new(),
        )
        .await?;
    let head = match row {
        None => AuditHead::GENESIS,
        Some(row) => {
            let cols = Columns::<B>::new(&row, TABLE);
            AuditHead {
                sequence: cols.u64(0, "sequence")?,
                hash: cols.digest(1, "hash")?,
            }
        }
    };
    if !tx.read_only {
        // Only a write transaction holds the lock that keeps the head still.
        tx.audit_head = Some(head);
    }
    Ok(head)
}

async fn append<B: Backend, F>(tx: &mut SqlTransaction<B>, build: F) -> Result<AuditRow, Error>
where
    F: FnOnce(&AuditHead) -> AuditEntry + Send,
{
    if tx.audit_appends >= MAX_AUDIT_APPENDS_PER_TRANSACTION {
        return Err(Error::AuditBatchFull {
            max: MAX_AUDIT_APPENDS_PER_TRANSACTION,
        });
    }
    let head = head(tx).await?;
    let sequence = head
        .sequence
        .checked_add(1)
        .filter(|sequence| *sequence <= MAX_SEQUENCE)
        .ok_or(Error::AuditSequenceExhausted)?;
    let AuditEntry { record, hash } = build(&head);
    check_blob("audit record", &record, 1, MAX_AUDIT_RECORD_LEN)?;
    tx.execute(
        TABLE,
        "INSERT INTO audit_log (sequence, prev_hash, hash, record) VALUES ($1, $2, $3, $4)",
        args![
            db_int(sequence),
            head.hash.as_slice(),
            hash.as_slice(),
            record.as_slice()
        ],
    )
    .await?;
    tx.audit_head = Some(AuditHead { sequence, hash });
    tx.audit_appends += 1;
    Ok(AuditRow {
        sequence,
        prev_hash: head.hash,
        hash,
        record,
    })
}

async fn read<B: Backend>(
    tx: &mut SqlTransaction<B>,
    from: u64,
    limit: u32,
) -> Result<Vec<AuditRow>, Error> {
    let rows = tx
        .fetch(
            TABLE,
            "SELECT sequence, prev_hash, hash, record FROM audit_log \
             WHERE sequence >= $1 ORDER BY sequence LIMIT $2",
            args![db_int(from), i64::from(limit.min(MAX_PAGE_ROWS))],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, TABLE);
            Ok(AuditRow {
                sequence: cols.u64(0, "sequence")?,
                prev_hash: cols.digest(1, "prev_hash")?,
                hash: cols.digest(2, "hash")?,
                record: cols.blob(3, "record")?,
            })
        })
        .collect()
}

async fn log_id<B: Backend>(tx: &mut SqlTransaction<B>) -> Result<AuditLogId, Error> {
    let row = tx
        .fetch_optional(
            IDENTITY,
            "SELECT log_id FROM audit_log_identity",
            Vec::new(),
        )
        .await?;
    let row = row.ok_or(Error::CorruptRow {
        table: IDENTITY,
        column: "log_id",
    })?;
    let cols = Columns::<B>::new(&row, IDENTITY);
    let bytes = cols.blob(0, "log_id")?;
    Ok(AuditLogId(
        bytes.try_into().map_err(|_| cols.corrupt("log_id"))?,
    ))
}

/// The log's hash at `sequence` (at or below the head): all zeros for 0.
async fn hash_at<B: Backend>(
    tx: &mut SqlTransaction<B>,
    sequence: u64,
) -> Result<Option<[u8; DIGEST_LEN]>, Error> {
    if sequence == 0 {
        return Ok(Some(AuditHead::GENESIS.hash));
    }
    let row = tx
        .fetch_optional(
            TABLE,
            "SELECT hash FROM audit_log WHERE sequence = $1",
            args![db_int(sequence)],
        )
        .await?;
    row.map(|row| Columns::<B>::new(&row, TABLE).digest(0, "hash"))
        .transpose()
}

async fn store_checkpoint<B: Backend>(
    tx: &mut SqlTransaction<B>,
    checkpoint: &StoredCheckpoint,
) -> Result<(), Error> {
    check_blob("checkpoint", &checkpoint.checkpoint, 1, MAX_CHECKPOINT_LEN)?;
    let head = head(tx).await?;
    if checkpoint.sequence > head.sequence {
        return Err(Error::CheckpointAhead {
            sequence: checkpoint.sequence,
            head: head.sequence,
        });
    }
    // Variable-time comparison: hashes of the public log.
    if hash_at(tx, checkpoint.sequence).await? != Some(checkpoint.head_hash) {
        return Err(Error::CheckpointOffChain(checkpoint.sequence));
    }
    tx.execute(
        CHECKPOINTS,
        "INSERT INTO audit_checkpoints_v2 (sequence, head_hash, checkpoint) VALUES ($1, $2, $3)",
        args![
            db_int(checkpoint.sequence),
            checkpoint.head_hash.as_slice(),
            checkpoint.checkpoint.as_slice()
        ],
    )
    .await?;
    Ok(())
}

async fn latest_checkpoint<B: Backend>(
    tx: &mut SqlTransaction<B>,
) -> Result<Option<StoredCheckpoint>, Error> {
    let row = tx
        .fetch_optional(
            CHECKPOINTS,
            "SELECT sequence, head_hash, checkpoint FROM audit_checkpoints_v2 \
             ORDER BY id DESC LIMIT 1",
            Vec::new(),
        )
        .await?;
    row.map(|row| {
        let cols = Columns::<B>::new(&row, CHECKPOINTS);
        Ok(StoredCheckpoint {
            sequence: cols.u64(0, "sequence")?,
            head_hash: cols.digest(1, "head_hash")?,
            checkpoint: cols.blob(2, "checkpoint")?,
        })
    })
    .transpose()
}

impl<B: Backend> AuditStore for SqlTransaction<B> {
    async fn append_audit<F>(&mut self, build: F) -> Result<AuditRow, Error>
    where
        F: FnOnce(&AuditHead) -> AuditEntry + Send,
    {
        guarded!(self, Write, append(self, build))
    }

    async fn audit_head(&mut self) -> Result<AuditHead, Error> {
        guarded!(self, Read, head(self))
    }

    async fn read_audit(&mut self, from: u64, limit: u32) -> Result<Vec<AuditRow>, Error> {
        guarded!(self, Read, read(self, from, limit))
    }

    async fn audit_log_id(&mut self) -> Result<AuditLogId, Error> {
        guarded!(self, Read, log_id(self))
    }

    async fn store_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), Error> {
        guarded!(self, Write, store_checkpoint(self, checkpoint))
    }

    async fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, Error> {
        guarded!(self, Read, latest_checkpoint(self))
    }
}

//! Destruction statements of old external containers.

use shardkeep_types::{ActorId, CustodianId, EnvelopeId, NodeVersion};

use super::{Backend, Columns, SqlTransaction, args, guarded, share_slot, slot_args, with};
use crate::error::Error;
use crate::records::{DestructionStatementRecord, MAX_DESTRUCTION_STATEMENT_LEN};
use crate::traits::DestructionStore;
use crate::types::{check_blob, timestamp_to_db};

const TABLE: &str = "destruction_statements";

async fn record<B: Backend>(
    tx: &mut SqlTransaction<B>,
    record: &DestructionStatementRecord,
) -> Result<(), Error> {
    check_blob(
        "destruction statement",
        &record.statement,
        1,
        MAX_DESTRUCTION_STATEMENT_LEN,
    )?;
    if record.recorded_at < record.destroyed_at {
        return Err(Error::TimesOutOfOrder {
            field: "recorded_at",
        });
    }
    // The slot must be an external slot with a custody entry.
    super::custody::load(tx, &record.slot).await?;
    if tx
        .fetch_optional(
            TABLE,
            "SELECT 1 FROM destruction_statements \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
            slot_args(&record.slot),
        )
        .await?
        .is_some()
    {
        return Err(Error::DestructionStatementExists(record.slot.clone()));
    }
    tx.execute(
        TABLE,
        "INSERT INTO destruction_statements (key_id, node_id, version, share_index, envelope_id, \
         custodian_id, person_id, destroyed_at, recorded_at, statement) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        with(
            slot_args(&record.slot),
            args![
                record.envelope_id.as_bytes().as_slice(),
                record.custodian.as_str(),
                record.person.as_str(),
                timestamp_to_db(record.destroyed_at),
                timestamp_to_db(record.recorded_at),
                record.statement.as_slice(),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn list<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<Vec<DestructionStatementRecord>, Error> {
    let rows = tx
        .fetch(
            TABLE,
            "SELECT key_id, node_id, version, share_index, envelope_id, custodian_id, person_id, \
             destroyed_at, recorded_at, statement FROM destruction_statements \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 ORDER BY share_index",
            super::version_args(version),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, TABLE);
            Ok(DestructionStatementRecord {
                slot: share_slot(&cols, 0)?,
                envelope_id: EnvelopeId::from_bytes(cols.digest(4, "envelope_id")?),
                custodian: cols.parse(5, "custodian_id", CustodianId::new)?,
                person: cols.parse(6, "person_id", ActorId::new)?,
                destroyed_at: cols.timestamp(7, "destroyed_at")?,
                recorded_at: cols.timestamp(8, "recorded_at")?,
                statement: cols.blob(9, "statement")?,
            })
        })
        .collect()
}

impl<B: Backend> DestructionStore for SqlTransaction<B> {
    async fn record_destruction_statement(
        &mut self,
        statement: &DestructionStatementRecord,
    ) -> Result<(), Error> {
        guarded!(self, Write, record(self, statement))
    }

    async fn destruction_statements(
        &mut self,
        version: &NodeVersion,
    ) -> Result<Vec<DestructionStatementRecord>, Error> {
        guarded!(self, Read, list(self, version))
    }
}

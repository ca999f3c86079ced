//! The KEK of each server-held slot, as pinned by the key store.

use shardkeep_types::{KekId, ShareSlot, Timestamp};

use super::{Backend, Columns, SqlTransaction, args, guarded, share_slot, slot_args, slots, with};
use crate::error::Error;
use crate::records::SlotKekRecord;
use crate::traits::SlotKekStore;
use crate::types::timestamp_to_db;

const TABLE: &str = "slot_keks";

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT key_id, node_id, version, share_index, kek_id, fingerprint, created_at, ",
            "destroyed_at FROM slot_keks ",
            $tail
        )
    };
}

fn decode<B: Backend>(row: &B::Row) -> Result<SlotKekRecord, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    let record = SlotKekRecord {
        slot: share_slot(&cols, 0)?,
        kek_id: cols.parse(4, "kek_id", KekId::new)?,
        fingerprint: cols.digest(5, "fingerprint")?,
        created_at: cols.timestamp(6, "created_at")?,
        destroyed_at: cols.opt_timestamp(7, "destroyed_at")?,
    };
    if record
        .destroyed_at
        .is_some_and(|destroyed| destroyed < record.created_at)
    {
        return Err(cols.corrupt("destroyed_at"));
    }
    Ok(record)
}

/// The slot's live KEK, if it has one.
async fn live<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<Option<SlotKekRecord>, Error> {
    tx.fetch_optional(
        TABLE,
        select!(
            "WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
             AND destroyed_at IS NULL"
        ),
        slot_args(slot),
    )
    .await?
    .as_ref()
    .map(decode::<B>)
    .transpose()
}

async fn insert<B: Backend>(
    tx: &mut SqlTransaction<B>,
    record: &SlotKekRecord,
) -> Result<(), Error> {
    if record
        .destroyed_at
        .is_some_and(|destroyed| destroyed < record.created_at)
    {
        return Err(Error::TimesOutOfOrder {
            field: "destroyed_at",
        });
    }
    let slot = &record.slot;
    slots::check_slot_in_version(tx, slot).await?;
    if super::custody::exists(tx, slot).await? {
        return Err(Error::SlotHeldByCustodian(slot.clone()));
    }
    if record.destroyed_at.is_none() && live(tx, slot).await?.is_some() {
        return Err(Error::SlotKekExists(slot.clone()));
    }
    let recorded = tx
        .fetch_optional(
            TABLE,
            "SELECT 1 FROM slot_keks WHERE kek_id = $1",
            args![record.kek_id.as_str()],
        )
        .await?;
    if recorded.is_some() {
        return Err(Error::KekIdInUse(record.kek_id.clone()));
    }
    tx.execute(
        TABLE,
        "INSERT INTO slot_keks (key_id, node_id, version, share_index, kek_id, fingerprint, \
         created_at, destroyed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        with(
            slot_args(slot),
            args![
                record.kek_id.as_str(),
                record.fingerprint.as_slice(),
                timestamp_to_db(record.created_at),
                record.destroyed_at.map(timestamp_to_db),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn latest<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<Option<SlotKekRecord>, Error> {
    tx.fetch_optional(
        TABLE,
        select!(
            "WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
             ORDER BY CASE WHEN destroyed_at IS NULL THEN 0 ELSE 1 END, id DESC LIMIT 1"
        ),
        slot_args(slot),
    )
    .await?
    .as_ref()
    .map(decode::<B>)
    .transpose()
}

async fn mark_destroyed<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    at: Timestamp,
) -> Result<(), Error> {
    let record = live(tx, slot)
        .await?
        .ok_or_else(|| Error::SlotKekNotFound(slot.clone()))?;
    if at < record.created_at {
        return Err(Error::TimesOutOfOrder {
            field: "destroyed_at",
        });
    }
    tx.update_one(
        TABLE,
        "UPDATE slot_keks SET destroyed_at = $6 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
         AND kek_id = $5 AND destroyed_at IS NULL",
        with(
            slot_args(slot),
            args![record.kek_id.as_str(), timestamp_to_db(at)],
        ),
    )
    .await
}

impl<B: Backend> SlotKekStore for SqlTransaction<B> {
    async fn record_slot_kek(&mut self, record: &SlotKekRecord) -> Result<(), Error> {
        guarded!(self, Write, insert(self, record))
    }

    async fn slot_kek(&mut self, slot: &ShareSlot) -> Result<Option<SlotKekRecord>, Error> {
        guarded!(self, Read, latest(self, slot))
    }

    async fn mark_slot_kek_destroyed(
        &mut self,
        slot: &ShareSlot,
        at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, mark_destroyed(self, slot, at))
    }
}

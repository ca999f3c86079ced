//! The custody map and the delivery records of external shares.

use shardkeep_types::{CustodianId, FreeText, NodeVersion, ShareSlot, Timestamp};

use super::{
    Arg, Backend, Columns, SqlTransaction, args, guarded, share_slot, slot_args, slots, with,
};
use crate::error::Error;
use crate::records::{
    CustodyEntry, DeliveryOutcome, DeliveryRecord, MAX_CUSTODIAN_KEY_LEN, MAX_RECEIPT_LEN,
};
use crate::traits::{CustodyStore, ReceiptStore};
use crate::types::{check_blob, timestamp_to_db};

const TABLE: &str = "custody_map";
const DELIVERIES: &str = "deliveries";

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT key_id, node_id, version, share_index, custodian_id, contact, public_key, ",
            "updated_at, confirmed_at FROM custody_map ",
            $tail
        )
    };
}

const SELECT_ONE: &str =
    select!("WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4");

fn decode<B: Backend>(row: &<B::Db as sqlx::Database>::Row) -> Result<CustodyEntry, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    Ok(CustodyEntry {
        slot: share_slot(&cols, 0)?,
        custodian: cols.parse(4, "custodian_id", CustodianId::new)?,
        contact: cols.parse(5, "contact", FreeText::new)?,
        public_key: cols.blob(6, "public_key")?,
        updated_at: cols.timestamp(7, "updated_at")?,
        confirmed_at: cols.opt_timestamp(8, "confirmed_at")?,
    })
}

fn check_entry(entry: &CustodyEntry) -> Result<(), Error> {
    check_blob(
        "custodian public key",
        &entry.public_key,
        1,
        MAX_CUSTODIAN_KEY_LEN,
    )
}

/// The bound parameters of an entry: its slot (`$1`-`$4`), then custodian,
/// contact, public key, updated and confirmed times (`$5`-`$9`).
fn entry_args(entry: &CustodyEntry) -> Vec<Arg> {
    with(
        slot_args(&entry.slot),
        args![
            entry.custodian.as_str(),
            entry.contact.as_str(),
            entry.public_key.as_slice(),
            timestamp_to_db(entry.updated_at),
            entry.confirmed_at.map(timestamp_to_db),
        ],
    )
}

/// Whether a custodian is mapped to this slot.
pub(super) async fn exists<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<bool, Error> {
    Ok(tx
        .fetch_optional(TABLE, SELECT_ONE, slot_args(slot))
        .await?
        .is_some())
}

async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<CustodyEntry, Error> {
    let row = tx
        .fetch_optional(TABLE, SELECT_ONE, slot_args(slot))
        .await?
        .ok_or_else(|| Error::CustodyEntryNotFound(slot.clone()))?;
    decode::<B>(&row)
}

async fn assign<B: Backend>(tx: &mut SqlTransaction<B>, entry: &CustodyEntry) -> Result<(), Error> {
    check_entry(entry)?;
    let slot = &entry.slot;
    slots::check_slot_in_version(tx, slot).await?;
    if exists(tx, slot).await? {
        return Err(Error::CustodyEntryExists(slot.clone()));
    }
    if slots::exists(tx, slot).await? {
        return Err(Error::SlotHeldByServer(slot.clone()));
    }
    tx.execute(
        TABLE,
        "INSERT INTO custody_map (key_id, node_id, version, share_index, custodian_id, contact, \
         public_key, updated_at, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        entry_args(entry),
    )
    .await?;
    Ok(())
}

async fn update<B: Backend>(tx: &mut SqlTransaction<B>, entry: &CustodyEntry) -> Result<(), Error> {
    check_entry(entry)?;
    load(tx, &entry.slot).await?;
    tx.update_one(
        TABLE,
        "UPDATE custody_map SET custodian_id = $5, contact = $6, public_key = $7, \
         updated_at = $8, confirmed_at = $9 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
        entry_args(entry),
    )
    .await
}

async fn confirm<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    at: Timestamp,
) -> Result<(), Error> {
    load(tx, slot).await?;
    tx.update_one(
        TABLE,
        "UPDATE custody_map SET confirmed_at = $5 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
        with(slot_args(slot), args![timestamp_to_db(at)]),
    )
    .await
}

async fn map<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<Vec<CustodyEntry>, Error> {
    const SQL: &str =
        select!("WHERE key_id = $1 AND node_id = $2 AND version = $3 ORDER BY share_index");
    tx.fetch(TABLE, SQL, super::version_args(version))
        .await?
        .iter()
        .map(decode::<B>)
        .collect()
}

async fn record_delivery<B: Backend>(
    tx: &mut SqlTransaction<B>,
    delivery: &DeliveryRecord,
) -> Result<(), Error> {
    let (outcome, reason, receipt) = match &delivery.outcome {
        DeliveryOutcome::Delivered { receipt } => {
            check_blob("receipt", receipt, 1, MAX_RECEIPT_LEN)?;
            ("delivered", None, Some(receipt.as_slice()))
        }
        DeliveryOutcome::Failed { reason } => ("failed", Some(reason.as_str()), None),
    };
    let slot = &delivery.slot;
    let entry = load(tx, slot).await?;
    if entry.custodian != delivery.custodian {
        return Err(Error::CustodianMismatch {
            slot: slot.clone(),
            mapped: entry.custodian,
        });
    }
    if receipt.is_some()
        && tx
            .fetch_optional(
                DELIVERIES,
                "SELECT 1 FROM deliveries WHERE key_id = $1 AND node_id = $2 AND version = $3 \
                 AND share_index = $4 AND outcome = 'delivered'",
                slot_args(slot),
            )
            .await?
            .is_some()
    {
        return Err(Error::ReceiptExists(slot.clone()));
    }
    tx.execute(
        DELIVERIES,
        "INSERT INTO deliveries (key_id, node_id, version, share_index, custodian_id, \
         envelope_id, outcome, failure_reason, receipt, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        with(
            slot_args(slot),
            args![
                delivery.custodian.as_str(),
                delivery.envelope_id.as_slice(),
                outcome,
                reason,
                receipt,
                timestamp_to_db(delivery.recorded_at),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn deliveries<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<Vec<DeliveryRecord>, Error> {
    let rows = tx
        .fetch(
            DELIVERIES,
            "SELECT key_id, node_id, version, share_index, custodian_id, envelope_id, outcome, \
             failure_reason, receipt, recorded_at FROM deliveries \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 ORDER BY id",
            super::version_args(version),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, DELIVERIES);
            let outcome = match (
                cols.text(6, "outcome")?.as_str(),
                cols.opt_text(7, "failure_reason")?,
                cols.opt_blob(8, "receipt")?,
            ) {
                ("delivered", None, Some(receipt)) => DeliveryOutcome::Delivered { receipt },
                ("failed", Some(reason), None) => DeliveryOutcome::Failed {
                    reason: FreeText::new(reason).map_err(|_| cols.corrupt("failure_reason"))?,
                },
                _ => return Err(cols.corrupt("outcome")),
            };
            Ok(DeliveryRecord {
                slot: share_slot(&cols, 0)?,
                custodian: cols.parse(4, "custodian_id", CustodianId::new)?,
                envelope_id: cols.digest(5, "envelope_id")?,
                outcome,
                recorded_at: cols.timestamp(9, "recorded_at")?,
            })
        })
        .collect()
}

impl<B: Backend> CustodyStore for SqlTransaction<B> {
    async fn assign_custodian(&mut self, entry: &CustodyEntry) -> Result<(), Error> {
        guarded!(self, Write, assign(self, entry))
    }

    async fn update_custodian(&mut self, entry: &CustodyEntry) -> Result<(), Error> {
        guarded!(self, Write, update(self, entry))
    }

    async fn confirm_custody(&mut self, slot: &ShareSlot, at: Timestamp) -> Result<(), Error> {
        guarded!(self, Write, confirm(self, slot, at))
    }

    async fn custody_entry(&mut self, slot: &ShareSlot) -> Result<CustodyEntry, Error> {
        guarded!(self, Read, load(self, slot))
    }

    async fn custody_map(&mut self, version: &NodeVersion) -> Result<Vec<CustodyEntry>, Error> {
        guarded!(self, Read, map(self, version))
    }
}

impl<B: Backend> ReceiptStore for SqlTransaction<B> {
    async fn record_delivery(&mut self, delivery: &DeliveryRecord) -> Result<(), Error> {
        guarded!(self, Write, record_delivery(self, delivery))
    }

    async fn deliveries(&mut self, version: &NodeVersion) -> Result<Vec<DeliveryRecord>, Error> {
        guarded!(self, Read, deliveries(self, version))
    }
}

//! The custody map and the delivery records of external shares.

use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, NodeVersion, ShareSlot, Timestamp,
};

use super::{
    Arg, Backend, Columns, SqlTransaction, args, guarded, registry, share_slot, slot_args, slots,
    with,
};
use crate::error::Error;
use crate::records::{CustodyEntry, DeliveryOutcome, DeliveryRecord, EntityState, MAX_RECEIPT_LEN};
use crate::traits::{CustodyStore, ReceiptStore};
use crate::types::{check_blob, timestamp_to_db};

const TABLE: &str = "custody_map";
const DELIVERIES: &str = "deliveries";

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT key_id, node_id, version, share_index, custodian_id, person_id, recipient, ",
            "envelope_id, container_hash, updated_at, confirmed_at FROM custody_map ",
            $tail
        )
    };
}

const SELECT_ONE: &str =
    select!("WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4");

/// An entry, or [`Error::LegacyCustodyEntry`] for one made before the
/// registry (no person, recipient, envelope or container).
fn decode<B: Backend>(row: &B::Row) -> Result<CustodyEntry, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    let slot = share_slot(&cols, 0)?;
    let Some(person) = cols.opt_text(5, "person_id")? else {
        return Err(Error::LegacyCustodyEntry(slot));
    };
    Ok(CustodyEntry {
        slot,
        custodian: cols.parse(4, "custodian_id", CustodianId::new)?,
        person: ActorId::new(person).map_err(|_| cols.corrupt("person_id"))?,
        recipient: cols.text(6, "recipient")?,
        envelope_id: EnvelopeId::from_bytes(cols.digest(7, "envelope_id")?),
        container_hash: cols.digest(8, "container_hash")?,
        updated_at: cols.timestamp(9, "updated_at")?,
        confirmed_at: cols.opt_timestamp(10, "confirmed_at")?,
    })
}

/// The bound parameters of an entry: its slot (`$1`-`$4`), then custodian,
/// person, recipient, envelope id, container hash, updated and confirmed
/// times (`$5`-`$11`).
fn entry_args(entry: &CustodyEntry) -> Vec<Arg> {
    with(
        slot_args(&entry.slot),
        args![
            entry.custodian.as_str(),
            entry.person.as_str(),
            entry.recipient.as_str(),
            entry.envelope_id.as_bytes().as_slice(),
            entry.container_hash.as_slice(),
            timestamp_to_db(entry.updated_at),
            entry.confirmed_at.map(timestamp_to_db),
        ],
    )
}

/// Whether a custodian is mapped to this slot (a legacy entry included).
pub(super) async fn exists<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<bool, Error> {
    Ok(tx
        .fetch_optional(
            TABLE,
            "SELECT 1 FROM custody_map \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
            slot_args(slot),
        )
        .await?
        .is_some())
}

/// The slot's entry, or [`Error::CustodyEntryNotFound`] /
/// [`Error::LegacyCustodyEntry`].
pub(super) async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<CustodyEntry, Error> {
    let row = tx
        .fetch_optional(TABLE, SELECT_ONE, slot_args(slot))
        .await?
        .ok_or_else(|| Error::CustodyEntryNotFound(slot.clone()))?;
    decode::<B>(&row)
}

/// Checks an entry against the registry and the rest of its version's
/// custody map: an active entity, one of its active members, that
/// member's current age recipient, and no other share of the version at
/// the same entity.
async fn check_entry<B: Backend>(
    tx: &mut SqlTransaction<B>,
    entry: &CustodyEntry,
) -> Result<(), Error> {
    let entity = registry::load_entity(tx, &entry.custodian).await?;
    if entity.state != EntityState::Active {
        return Err(Error::EntityRevoked(entry.custodian.clone()));
    }
    if !entity.members.contains(&entry.person) {
        return Err(Error::PersonNotMember {
            person: entry.person.clone(),
            entity: entry.custodian.clone(),
        });
    }
    let (person, _) = registry::load_active_person(tx, &entry.person).await?;
    if person.keys.age_recipient.as_deref() != Some(entry.recipient.as_str()) {
        return Err(Error::RecipientMismatch(entry.slot.clone()));
    }
    if let Some(row) = tx
        .fetch_optional(
            TABLE,
            "SELECT key_id, node_id, version, share_index FROM custody_map \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index <> $4 \
             AND custodian_id = $5 LIMIT 1",
            with(slot_args(&entry.slot), args![entry.custodian.as_str()]),
        )
        .await?
    {
        return Err(Error::EntityHoldsShare {
            entity: entry.custodian.clone(),
            slot: share_slot(&Columns::<B>::new(&row, TABLE), 0)?,
        });
    }
    Ok(())
}

async fn assign<B: Backend>(tx: &mut SqlTransaction<B>, entry: &CustodyEntry) -> Result<(), Error> {
    let slot = &entry.slot;
    slots::check_slot_in_version(tx, slot).await?;
    if exists(tx, slot).await? {
        return Err(Error::CustodyEntryExists(slot.clone()));
    }
    if slots::exists(tx, slot).await? {
        return Err(Error::SlotHeldByServer(slot.clone()));
    }
    check_entry(tx, entry).await?;
    tx.execute(
        TABLE,
        "INSERT INTO custody_map (key_id, node_id, version, share_index, custodian_id, \
         person_id, recipient, envelope_id, container_hash, updated_at, confirmed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        entry_args(entry),
    )
    .await?;
    Ok(())
}

async fn update<B: Backend>(tx: &mut SqlTransaction<B>, entry: &CustodyEntry) -> Result<(), Error> {
    // A legacy entry may be replaced: that is how it leaves the legacy
    // state.
    if !exists(tx, &entry.slot).await? {
        return Err(Error::CustodyEntryNotFound(entry.slot.clone()));
    }
    check_entry(tx, entry).await?;
    tx.update_one(
        TABLE,
        "UPDATE custody_map SET custodian_id = $5, person_id = $6, recipient = $7, \
         envelope_id = $8, container_hash = $9, updated_at = $10, confirmed_at = $11, \
         legacy_contact = NULL, legacy_public_key = NULL \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
        entry_args(entry),
    )
    .await
}

/// Sets the slot's confirmation time to `at`, unless a later one is
/// recorded: it is the time of the last receipt or inventory proof.
pub(super) async fn confirm<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    at: Timestamp,
) -> Result<(), Error> {
    load(tx, slot).await?;
    tx.update_one(
        TABLE,
        "UPDATE custody_map SET confirmed_at = CASE \
         WHEN confirmed_at IS NULL OR confirmed_at < $5 THEN $5 ELSE confirmed_at END \
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
    if *entry.envelope_id.as_bytes() != delivery.envelope_id {
        return Err(Error::DeliveryEnvelopeMismatch(slot.clone()));
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
    if receipt.is_some() {
        // A receipt confirms the custodian holds the share.
        confirm(tx, slot, delivery.recorded_at).await?;
    }
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

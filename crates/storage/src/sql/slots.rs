//! Server-held share slots: sealed shares, their deletion state, and the log
//! of who read them.

use shardkeep_envelope::SealedEnvelopeFrame;

use shardkeep_types::{ActorId, KekId, KeyId, Label, NodeId, ShareSlot, Timestamp};

use super::{
    Backend, Columns, SqlTransaction, args, guarded, key_versions, share_slot, slot_args, with,
};
use crate::error::Error;
use crate::records::{
    KeyVersionState, MAX_EVIDENCE_LEN, SealedShare, ShareAccess, SlotFilter, SlotState,
    SlotSummary, sealed_frame,
};
use crate::traits::{SealedShareStore, ShareAccessLog, SlotDeletionStore};
use crate::types::{check_blob, timestamp_to_db};

const TABLE: &str = "share_slots";
const ACCESS_TABLE: &str = "share_access_log";

/// Columns 0..=3 are the slot, 4..=9 the deletion state, then `$tail`'s.
macro_rules! select {
    ($extra:literal, $tail:literal) => {
        concat!(
            "SELECT key_id, node_id, version, share_index, ",
            "state, deleted_at, deleted_by, cooldown_until, hard_deleted_at, evidence, ",
            $extra,
            " FROM share_slots ",
            $tail
        )
    };
}

const SELECT_SHARE: &str = select!(
    "kek_id, envelope, envelope_id, stored_at",
    "WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4"
);
const SELECT_STATE: &str = select!(
    "stored_at",
    "WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4"
);

fn decode_state<B: Backend>(cols: &Columns<'_, B>) -> Result<SlotState, Error> {
    let deleted_at = cols.opt_timestamp(5, "deleted_at")?;
    let deleted_by = cols
        .opt_text(6, "deleted_by")?
        .map(|by| ActorId::new(by).map_err(|_| cols.corrupt("deleted_by")))
        .transpose()?;
    let cooldown_until = cols.opt_timestamp(7, "cooldown_until")?;
    let hard_deleted_at = cols.opt_timestamp(8, "hard_deleted_at")?;
    let evidence = cols.opt_blob(9, "evidence")?;
    Ok(
        match (
            cols.text(4, "state")?.as_str(),
            deleted_at,
            deleted_by,
            cooldown_until,
            hard_deleted_at,
            evidence,
        ) {
            ("active", None, None, None, None, None) => SlotState::Active,
            ("soft_deleted", Some(at), Some(by), Some(cooldown_until), None, None) => {
                SlotState::SoftDeleted {
                    at,
                    by,
                    cooldown_until,
                }
            }
            ("hard_deleted", Some(soft_deleted_at), Some(_), Some(_), Some(at), Some(evidence)) => {
                SlotState::HardDeleted {
                    soft_deleted_at,
                    at,
                    evidence,
                }
            }
            _ => return Err(cols.corrupt("state")),
        },
    )
}

/// The slot's state, or [`Error::SealedShareNotFound`].
async fn load_state<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<SlotState, Error> {
    let row = tx
        .fetch_optional(TABLE, SELECT_STATE, slot_args(slot))
        .await?
        .ok_or_else(|| Error::SealedShareNotFound(slot.clone()))?;
    decode_state(&Columns::<B>::new(&row, TABLE))
}

/// Refuses anything but an active slot with the matching error.
fn require_active(slot: &ShareSlot, state: &SlotState) -> Result<(), Error> {
    match state {
        SlotState::Active => Ok(()),
        SlotState::SoftDeleted { cooldown_until, .. } => Err(Error::SlotSoftDeleted {
            slot: slot.clone(),
            cooldown_until: *cooldown_until,
        }),
        SlotState::HardDeleted { .. } => Err(Error::SlotHardDeleted(slot.clone())),
    }
}

/// Whether the server holds (or held) this slot.
pub(super) async fn exists<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<bool, Error> {
    Ok(tx
        .fetch_optional(
            TABLE,
            "SELECT 1 FROM share_slots \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4",
            slot_args(slot),
        )
        .await?
        .is_some())
}

/// Checks that `slot` lies within an existing version's share count and
/// returns the version's state.
pub(super) async fn check_slot_in_version<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<KeyVersionState, Error> {
    let record = key_versions::load(tx, &slot.node_version()).await?;
    if slot.index.get() > record.threshold.n() {
        return Err(Error::ShareIndexOutOfRange {
            slot: slot.clone(),
            total: record.threshold.n(),
        });
    }
    Ok(record.state)
}

async fn store<B: Backend>(tx: &mut SqlTransaction<B>, share: &SealedShare) -> Result<(), Error> {
    let frame = share.frame()?;
    let slot = &share.slot;
    let state = check_slot_in_version(tx, slot).await?;
    if state != KeyVersionState::Active {
        return Err(Error::KeyVersionState {
            version: slot.node_version(),
            expected: "active",
            found: state.name(),
        });
    }
    if exists(tx, slot).await? {
        return Err(Error::SealedShareExists(slot.clone()));
    }
    if super::custody::exists(tx, slot).await? {
        return Err(Error::SlotHeldByCustodian(slot.clone()));
    }
    tx.execute(
        TABLE,
        "INSERT INTO share_slots (key_id, node_id, version, share_index, kek_id, envelope, \
         envelope_id, stored_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active')",
        with(
            slot_args(slot),
            args![
                frame.kek_id().as_str(),
                share.envelope.as_slice(),
                frame.id().as_bytes().as_slice(),
                timestamp_to_db(share.stored_at),
            ],
        ),
    )
    .await?;
    Ok(())
}

/// An active share and its envelope's frame, checked against the row: the
/// envelope is a sealed envelope of the row's slot, with the row's KEK id
/// and envelope id ([`Error::CorruptRow`] otherwise).
async fn load_framed<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<(SealedShare, SealedEnvelopeFrame), Error> {
    let row = tx
        .fetch_optional(TABLE, SELECT_SHARE, slot_args(slot))
        .await?
        .ok_or_else(|| Error::SealedShareNotFound(slot.clone()))?;
    let cols = Columns::<B>::new(&row, TABLE);
    require_active(slot, &decode_state(&cols)?)?;
    let share = SealedShare {
        slot: share_slot(&cols, 0)?,
        envelope: cols.blob(11, "envelope")?,
        stored_at: cols.timestamp(13, "stored_at")?,
    };
    let frame = share.frame().map_err(|_| cols.corrupt("envelope"))?;
    if frame.kek_id() != &cols.parse(10, "kek_id", KekId::new)? {
        return Err(cols.corrupt("kek_id"));
    }
    if frame.id().as_bytes() != &cols.digest(12, "envelope_id")? {
        return Err(cols.corrupt("envelope_id"));
    }
    Ok((share, frame))
}

async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<SealedShare, Error> {
    Ok(load_framed(tx, slot).await?.0)
}

async fn rewrap<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    current_kek: &KekId,
    envelope: &[u8],
) -> Result<(), Error> {
    let rewrapped = sealed_frame(slot, envelope)?;
    let (_, stored) = load_framed(tx, slot).await?;
    if stored.kek_id() != current_kek {
        return Err(Error::KekMismatch {
            slot: slot.clone(),
            stored: stored.kek_id().clone(),
        });
    }
    if rewrapped.id() != stored.id() {
        return Err(Error::EnvelopeIdMismatch(slot.clone()));
    }
    tx.update_one(
        TABLE,
        "UPDATE share_slots SET kek_id = $5, envelope = $6 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
         AND state = 'active' AND kek_id = $7 AND envelope_id = $8",
        with(
            slot_args(slot),
            args![
                rewrapped.kek_id().as_str(),
                envelope,
                current_kek.as_str(),
                stored.id().as_bytes().as_slice(),
            ],
        ),
    )
    .await
}

async fn list<B: Backend>(
    tx: &mut SqlTransaction<B>,
    filter: &SlotFilter,
) -> Result<Vec<SlotSummary>, Error> {
    const SQL: &str = select!(
        "kek_id, envelope_id, stored_at",
        "WHERE ($1 IS NULL OR key_id = $1) AND ($2 IS NULL OR node_id = $2) \
         AND ($3 IS NULL OR version = $3) ORDER BY key_id, node_id, version, share_index"
    );
    let rows = tx
        .fetch(
            TABLE,
            SQL,
            args![
                filter.key_id.as_ref().map(KeyId::as_str),
                filter.node_id.as_ref().map(NodeId::as_str),
                filter.version.map(|version| i64::from(version.get())),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, TABLE);
            Ok(SlotSummary {
                slot: share_slot(&cols, 0)?,
                state: decode_state(&cols)?,
                kek_id: cols.parse(10, "kek_id", KekId::new)?,
                envelope_id: cols.digest(11, "envelope_id")?,
                stored_at: cols.timestamp(12, "stored_at")?,
            })
        })
        .collect()
}

async fn soft_delete<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    by: &ActorId,
    at: Timestamp,
    cooldown_until: Timestamp,
) -> Result<(), Error> {
    if cooldown_until < at {
        return Err(Error::TimesOutOfOrder {
            field: "cooldown_until",
        });
    }
    require_active(slot, &load_state(tx, slot).await?)?;
    tx.update_one(
        TABLE,
        "UPDATE share_slots SET state = 'soft_deleted', deleted_at = $5, deleted_by = $6, \
         cooldown_until = $7 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
         AND state = 'active'",
        with(
            slot_args(slot),
            args![
                timestamp_to_db(at),
                by.as_str(),
                timestamp_to_db(cooldown_until)
            ],
        ),
    )
    .await
}

/// The cooldown end of a soft-deleted slot, or the matching error.
fn require_soft_deleted(slot: &ShareSlot, state: &SlotState) -> Result<Timestamp, Error> {
    match state {
        SlotState::SoftDeleted { cooldown_until, .. } => Ok(*cooldown_until),
        SlotState::Active => Err(Error::SlotNotSoftDeleted(slot.clone())),
        SlotState::HardDeleted { .. } => Err(Error::SlotHardDeleted(slot.clone())),
    }
}

async fn rollback_deletion<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<(), Error> {
    require_soft_deleted(slot, &load_state(tx, slot).await?)?;
    tx.update_one(
        TABLE,
        "UPDATE share_slots SET state = 'active', deleted_at = NULL, deleted_by = NULL, \
         cooldown_until = NULL \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
         AND state = 'soft_deleted'",
        slot_args(slot),
    )
    .await
}

async fn hard_delete<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
    now: Timestamp,
    evidence: &[u8],
) -> Result<(), Error> {
    check_blob("evidence", evidence, 1, MAX_EVIDENCE_LEN)?;
    let until = require_soft_deleted(slot, &load_state(tx, slot).await?)?;
    if now < until {
        return Err(Error::SlotCooldown {
            slot: slot.clone(),
            until,
        });
    }
    tx.update_one(
        TABLE,
        "UPDATE share_slots SET state = 'hard_deleted', hard_deleted_at = $5, evidence = $6, \
         envelope = NULL \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 \
         AND state = 'soft_deleted'",
        with(slot_args(slot), args![timestamp_to_db(now), evidence]),
    )
    .await
}

async fn record_access<B: Backend>(
    tx: &mut SqlTransaction<B>,
    access: &ShareAccess,
) -> Result<(), Error> {
    if !exists(tx, &access.slot).await? {
        return Err(Error::SealedShareNotFound(access.slot.clone()));
    }
    tx.execute(
        ACCESS_TABLE,
        "INSERT INTO share_access_log (key_id, node_id, version, share_index, accessor, purpose, \
         accessed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        with(
            slot_args(&access.slot),
            args![
                access.accessor.as_str(),
                access.purpose.as_str(),
                timestamp_to_db(access.at)
            ],
        ),
    )
    .await?;
    Ok(())
}

fn decode_access<B: Backend>(row: &B::Row) -> Result<ShareAccess, Error> {
    let cols = Columns::<B>::new(row, ACCESS_TABLE);
    Ok(ShareAccess {
        slot: share_slot(&cols, 0)?,
        accessor: cols.parse(4, "accessor", ActorId::new)?,
        purpose: cols.parse(5, "purpose", Label::new)?,
        at: cols.timestamp(6, "accessed_at")?,
    })
}

async fn accesses<B: Backend>(
    tx: &mut SqlTransaction<B>,
    slot: &ShareSlot,
) -> Result<Vec<ShareAccess>, Error> {
    tx.fetch(
        ACCESS_TABLE,
        "SELECT key_id, node_id, version, share_index, accessor, purpose, accessed_at \
         FROM share_access_log \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND share_index = $4 ORDER BY id",
        slot_args(slot),
    )
    .await?
    .iter()
    .map(decode_access::<B>)
    .collect()
}

async fn accesses_since<B: Backend>(
    tx: &mut SqlTransaction<B>,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<ShareAccess>, Error> {
    tx.fetch(
        ACCESS_TABLE,
        "SELECT key_id, node_id, version, share_index, accessor, purpose, accessed_at \
         FROM share_access_log WHERE accessed_at >= $1 ORDER BY accessed_at, id LIMIT $2",
        args![
            timestamp_to_db(since),
            i64::from(limit.min(crate::MAX_PAGE_ROWS))
        ],
    )
    .await?
    .iter()
    .map(decode_access::<B>)
    .collect()
}

impl<B: Backend> SealedShareStore for SqlTransaction<B> {
    async fn store_sealed_share(&mut self, share: &SealedShare) -> Result<(), Error> {
        guarded!(self, Write, store(self, share))
    }

    async fn load_sealed_share(&mut self, slot: &ShareSlot) -> Result<SealedShare, Error> {
        guarded!(self, Read, load(self, slot))
    }

    async fn rewrap_sealed_share(
        &mut self,
        slot: &ShareSlot,
        current_kek: &KekId,
        envelope: &[u8],
    ) -> Result<(), Error> {
        guarded!(self, Write, rewrap(self, slot, current_kek, envelope))
    }

    async fn list_slots(&mut self, filter: &SlotFilter) -> Result<Vec<SlotSummary>, Error> {
        guarded!(self, Read, list(self, filter))
    }
}

impl<B: Backend> SlotDeletionStore for SqlTransaction<B> {
    async fn slot_state(&mut self, slot: &ShareSlot) -> Result<SlotState, Error> {
        guarded!(self, Read, load_state(self, slot))
    }

    async fn soft_delete_slot(
        &mut self,
        slot: &ShareSlot,
        by: &ActorId,
        at: Timestamp,
        cooldown_until: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, soft_delete(self, slot, by, at, cooldown_until))
    }

    async fn rollback_slot_deletion(&mut self, slot: &ShareSlot) -> Result<(), Error> {
        guarded!(self, Write, rollback_deletion(self, slot))
    }

    async fn hard_delete_slot(
        &mut self,
        slot: &ShareSlot,
        now: Timestamp,
        evidence: &[u8],
    ) -> Result<(), Error> {
        guarded!(self, Write, hard_delete(self, slot, now, evidence))
    }
}

impl<B: Backend> ShareAccessLog for SqlTransaction<B> {
    async fn record_share_access(&mut self, access: &ShareAccess) -> Result<(), Error> {
        guarded!(self, Write, record_access(self, access))
    }

    async fn share_accesses(&mut self, slot: &ShareSlot) -> Result<Vec<ShareAccess>, Error> {
        guarded!(self, Read, accesses(self, slot))
    }

    async fn share_accesses_since(
        &mut self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ShareAccess>, Error> {
        guarded!(self, Read, accesses_since(self, since, limit))
    }
}

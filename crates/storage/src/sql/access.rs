//! Rate counters and anomalies: in the database, so every replica shares
//! them.

use shardkeep_types::{ActorId, FreeText, Label, Timestamp};

use super::{Backend, Columns, SqlTransaction, args, guarded, share_slot};
use crate::MAX_PAGE_ROWS;
use crate::error::Error;
use crate::records::AnomalyRecord;
use crate::traits::AccessControlStore;
use crate::types::timestamp_to_db;

const COUNTERS: &str = "rate_counters";
const ANOMALIES: &str = "anomalies";

async fn bump<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    kind: &Label,
    window_start: Timestamp,
) -> Result<u32, Error> {
    // One statement: an upsert that returns the new count, and returns
    // nothing when the counter is full.
    let row = tx
        .fetch_optional(
            COUNTERS,
            "INSERT INTO rate_counters (person_id, kind, window_start, count) \
             VALUES ($1, $2, $3, 1) \
             ON CONFLICT (person_id, kind, window_start) \
             DO UPDATE SET count = rate_counters.count + 1 \
             WHERE rate_counters.count < 4294967295 \
             RETURNING count",
            args![
                person.as_str(),
                kind.as_str(),
                timestamp_to_db(window_start)
            ],
        )
        .await?
        .ok_or(Error::CounterExhausted { counter: "rate" })?;
    Columns::<B>::new(&row, COUNTERS).small(0, "count")
}

async fn record<B: Backend>(
    tx: &mut SqlTransaction<B>,
    anomaly: &AnomalyRecord,
) -> Result<(), Error> {
    let slot = anomaly.slot.as_ref();
    tx.execute(
        ANOMALIES,
        "INSERT INTO anomalies (kind, person_id, key_id, node_id, version, share_index, at, \
         detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            anomaly.kind.as_str(),
            anomaly.person.as_ref().map(ActorId::as_str),
            slot.map(|slot| slot.key_id.as_str()),
            slot.map(|slot| slot.node_id.as_str()),
            slot.map(|slot| i64::from(slot.version.get())),
            slot.map(|slot| i64::from(slot.index.get())),
            timestamp_to_db(anomaly.at),
            anomaly.detail.as_str(),
        ],
    )
    .await?;
    Ok(())
}

async fn since<B: Backend>(
    tx: &mut SqlTransaction<B>,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<AnomalyRecord>, Error> {
    let rows = tx
        .fetch(
            ANOMALIES,
            "SELECT key_id, node_id, version, share_index, kind, person_id, at, detail \
             FROM anomalies WHERE at >= $1 ORDER BY at, id LIMIT $2",
            args![timestamp_to_db(since), i64::from(limit.min(MAX_PAGE_ROWS))],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, ANOMALIES);
            let slot = match cols.opt_text(0, "key_id")? {
                Some(_) => Some(share_slot(&cols, 0)?),
                None => None,
            };
            Ok(AnomalyRecord {
                kind: cols.parse(4, "kind", Label::new)?,
                person: cols
                    .opt_text(5, "person_id")?
                    .map(|person| ActorId::new(person).map_err(|_| cols.corrupt("person_id")))
                    .transpose()?,
                slot,
                at: cols.timestamp(6, "at")?,
                detail: cols.parse(7, "detail", FreeText::new)?,
            })
        })
        .collect()
}

async fn counts<B: Backend>(tx: &mut SqlTransaction<B>) -> Result<Vec<(Label, u64)>, Error> {
    let rows = tx
        .fetch(
            ANOMALIES,
            "SELECT kind, count(*) FROM anomalies GROUP BY kind ORDER BY kind",
            Vec::new(),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, ANOMALIES);
            Ok((cols.parse(0, "kind", Label::new)?, cols.u64(1, "count")?))
        })
        .collect()
}

impl<B: Backend> AccessControlStore for SqlTransaction<B> {
    async fn bump_rate_counter(
        &mut self,
        person: &ActorId,
        kind: &Label,
        window_start: Timestamp,
    ) -> Result<u32, Error> {
        guarded!(self, Write, bump(self, person, kind, window_start))
    }

    async fn record_anomaly(&mut self, anomaly: &AnomalyRecord) -> Result<(), Error> {
        guarded!(self, Write, record(self, anomaly))
    }

    async fn anomalies_since(
        &mut self,
        since_at: Timestamp,
        limit: u32,
    ) -> Result<Vec<AnomalyRecord>, Error> {
        guarded!(self, Read, since(self, since_at, limit))
    }

    async fn anomaly_counts(&mut self) -> Result<Vec<(Label, u64)>, Error> {
        guarded!(self, Read, counts(self))
    }
}

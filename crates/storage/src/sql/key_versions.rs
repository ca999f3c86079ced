//! Key versions: active -> retiring -> retired.

use shardkeep_types::Threshold;
use shardkeep_types::{ActorId, KeyId, KeyVersion, Label, NodeId, NodeVersion, Timestamp};

use super::{
    Backend, Columns, SqlTransaction, args, groups, guarded, node_version, version_args, with,
};
use crate::error::Error;
use crate::records::{KeyVersionRecord, KeyVersionState, SplitReference};
use crate::traits::KeyVersionStore;
use crate::types::timestamp_to_db;

const TABLE: &str = "key_versions";

/// The columns [`decode`] reads, followed by `$tail`.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT key_id, node_id, version, threshold, total, created_at, state, ",
            "retiring_since, cooldown_until, retired_at, created_by, last_change_at, ",
            "last_change FROM key_versions ",
            $tail
        )
    };
}

const SELECT_ONE: &str = select!("WHERE key_id = $1 AND node_id = $2 AND version = $3");

const SELECT_ACTIVE: &str = "SELECT key_id, node_id, version FROM key_versions \
     WHERE key_id = $1 AND node_id = $2 AND state = 'active'";

/// Decodes the seven columns `threshold, total, created_at, state,
/// retiring_since, cooldown_until, retired_at` starting at `first`.
pub(super) fn threshold_and_state<B: Backend>(
    cols: &Columns<'_, B>,
    first: usize,
) -> Result<(Threshold, Timestamp, KeyVersionState), Error> {
    let t =
        usize::try_from(cols.int(first, "threshold")?).map_err(|_| cols.corrupt("threshold"))?;
    let n = usize::try_from(cols.int(first + 1, "total")?).map_err(|_| cols.corrupt("total"))?;
    let threshold = Threshold::new(t, n).map_err(|_| cols.corrupt("threshold"))?;
    let created_at = cols.timestamp(first + 2, "created_at")?;
    let since = cols.opt_timestamp(first + 4, "retiring_since")?;
    let cooldown_until = cols.opt_timestamp(first + 5, "cooldown_until")?;
    let retired_at = cols.opt_timestamp(first + 6, "retired_at")?;
    let state = match (
        cols.text(first + 3, "state")?.as_str(),
        since,
        cooldown_until,
        retired_at,
    ) {
        ("active", None, None, None) => KeyVersionState::Active,
        ("retiring", Some(since), Some(cooldown_until), None) => KeyVersionState::Retiring {
            since,
            cooldown_until,
        },
        ("retired", Some(since), Some(_), Some(at)) => KeyVersionState::Retired { since, at },
        _ => return Err(cols.corrupt("state")),
    };
    Ok((threshold, created_at, state))
}

fn decode<B: Backend>(row: &B::Row) -> Result<KeyVersionRecord, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    let version = node_version(&cols, 0)?;
    let (threshold, created_at, state) = threshold_and_state(&cols, 3)?;
    Ok(KeyVersionRecord {
        version,
        threshold,
        created_at,
        state,
        created_by: cols
            .opt_text(10, "created_by")?
            .map(|by| ActorId::new(by).map_err(|_| cols.corrupt("created_by")))
            .transpose()?,
        last_change_at: cols.timestamp(11, "last_change_at")?,
        last_change: cols.parse(12, "last_change", Label::new)?,
    })
}

/// Loads a key version, or [`Error::KeyVersionNotFound`].
pub(super) async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<KeyVersionRecord, Error> {
    let row = tx
        .fetch_optional(TABLE, SELECT_ONE, version_args(version))
        .await?
        .ok_or_else(|| Error::KeyVersionNotFound(version.clone()))?;
    decode::<B>(&row)
}

async fn active<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
    node_id: &NodeId,
) -> Result<Option<NodeVersion>, Error> {
    let Some(row) = tx
        .fetch_optional(
            TABLE,
            SELECT_ACTIVE,
            args![key_id.as_str(), node_id.as_str()],
        )
        .await?
    else {
        return Ok(None);
    };
    node_version(&Columns::<B>::new(&row, TABLE), 0).map(Some)
}

fn wrong_state(version: &NodeVersion, expected: &'static str, found: &KeyVersionState) -> Error {
    Error::KeyVersionState {
        version: version.clone(),
        expected,
        found: found.name(),
    }
}

/// What [`KeyVersionRecord::last_change`] says of a new version.
const CREATED: &str = "created";

async fn create<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    threshold: Threshold,
    reference: &SplitReference,
    created_by: &ActorId,
    created_at: Timestamp,
) -> Result<(), Error> {
    if tx
        .fetch_optional(TABLE, SELECT_ONE, version_args(version))
        .await?
        .is_some()
    {
        return Err(Error::KeyVersionExists(version.clone()));
    }
    if let Some(active) = active(tx, &version.key_id, &version.node_id).await? {
        return Err(Error::ActiveVersionExists { active });
    }
    groups::check_reference(tx, version, threshold, reference).await?;
    tx.execute(
        TABLE,
        "INSERT INTO key_versions (key_id, node_id, version, threshold, total, created_at, state, \
         created_by, last_change_at, last_change) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $6, $8)",
        with(
            version_args(version),
            args![
                i64::from(threshold.t()),
                i64::from(threshold.n()),
                timestamp_to_db(created_at),
                created_by.as_str(),
                CREATED,
            ],
        ),
    )
    .await?;
    groups::insert_reference(tx, version, reference).await
}

async fn next_version<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
    node_id: &NodeId,
) -> Result<KeyVersion, Error> {
    let row = tx
        .fetch_optional(
            TABLE,
            "SELECT max(version) FROM key_versions WHERE key_id = $1 AND node_id = $2",
            args![key_id.as_str(), node_id.as_str()],
        )
        .await?;
    let latest = match &row {
        Some(row) => Columns::<B>::new(row, TABLE).opt_int(0, "version")?,
        None => None,
    };
    let Some(latest) = latest else {
        return Ok(KeyVersion::new(1));
    };
    let latest = u32::try_from(latest).map_err(|_| Error::CorruptRow {
        table: TABLE,
        column: "version",
    })?;
    KeyVersion::new(latest)
        .next()
        .ok_or(Error::CounterExhausted {
            counter: "key version",
        })
}

async fn record_change<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    what: &Label,
    at: Timestamp,
) -> Result<(), Error> {
    let record = load(tx, version).await?;
    if matches!(record.state, KeyVersionState::Retired { .. }) {
        return Err(wrong_state(version, "active or retiring", &record.state));
    }
    if at < record.last_change_at {
        return Err(Error::TimesOutOfOrder { field: "at" });
    }
    tx.update_one(
        TABLE,
        "UPDATE key_versions SET last_change_at = $4, last_change = $5 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3",
        with(
            version_args(version),
            args![timestamp_to_db(at), what.as_str()],
        ),
    )
    .await
}

async fn list<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
    node_id: &NodeId,
) -> Result<Vec<KeyVersionRecord>, Error> {
    const SQL: &str = select!("WHERE key_id = $1 AND node_id = $2 ORDER BY version");
    tx.fetch(TABLE, SQL, args![key_id.as_str(), node_id.as_str()])
        .await?
        .iter()
        .map(decode::<B>)
        .collect()
}

async fn begin_retirement<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    at: Timestamp,
    cooldown_until: Timestamp,
) -> Result<(), Error> {
    if cooldown_until < at {
        return Err(Error::TimesOutOfOrder {
            field: "cooldown_until",
        });
    }
    let record = load(tx, version).await?;
    if record.state != KeyVersionState::Active {
        return Err(wrong_state(version, "active", &record.state));
    }
    tx.update_one(
        TABLE,
        "UPDATE key_versions SET state = 'retiring', retiring_since = $4, cooldown_until = $5 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND state = 'active'",
        with(
            version_args(version),
            args![timestamp_to_db(at), timestamp_to_db(cooldown_until)],
        ),
    )
    .await
}

async fn rollback_retirement<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<(), Error> {
    let record = load(tx, version).await?;
    if !matches!(record.state, KeyVersionState::Retiring { .. }) {
        return Err(wrong_state(version, "retiring", &record.state));
    }
    if let Some(active) = active(tx, &version.key_id, &version.node_id).await? {
        return Err(Error::ActiveVersionExists { active });
    }
    tx.update_one(
        TABLE,
        "UPDATE key_versions SET state = 'active', retiring_since = NULL, cooldown_until = NULL \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND state = 'retiring'",
        version_args(version),
    )
    .await
}

async fn retire<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    now: Timestamp,
) -> Result<(), Error> {
    let record = load(tx, version).await?;
    let KeyVersionState::Retiring { cooldown_until, .. } = record.state else {
        return Err(wrong_state(version, "retiring", &record.state));
    };
    if now < cooldown_until {
        return Err(Error::KeyVersionCooldown {
            version: version.clone(),
            until: cooldown_until,
        });
    }
    tx.update_one(
        TABLE,
        "UPDATE key_versions SET state = 'retired', retired_at = $4 \
         WHERE key_id = $1 AND node_id = $2 AND version = $3 AND state = 'retiring'",
        with(version_args(version), args![timestamp_to_db(now)]),
    )
    .await
}

impl<B: Backend> KeyVersionStore for SqlTransaction<B> {
    async fn create_key_version(
        &mut self,
        version: &NodeVersion,
        threshold: Threshold,
        reference: &SplitReference,
        created_by: &ActorId,
        created_at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(
            self,
            Write,
            create(self, version, threshold, reference, created_by, created_at)
        )
    }

    async fn split_reference(&mut self, version: &NodeVersion) -> Result<SplitReference, Error> {
        guarded!(self, Read, groups::load_reference(self, version))
    }

    async fn next_key_version(
        &mut self,
        key_id: &KeyId,
        node_id: &NodeId,
    ) -> Result<KeyVersion, Error> {
        guarded!(self, Read, next_version(self, key_id, node_id))
    }

    async fn record_version_change(
        &mut self,
        version: &NodeVersion,
        what: &Label,
        at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, record_change(self, version, what, at))
    }

    async fn key_version(&mut self, version: &NodeVersion) -> Result<KeyVersionRecord, Error> {
        guarded!(self, Read, load(self, version))
    }

    async fn key_versions(
        &mut self,
        key_id: &KeyId,
        node_id: &NodeId,
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        guarded!(self, Read, list(self, key_id, node_id))
    }

    async fn begin_key_retirement(
        &mut self,
        version: &NodeVersion,
        at: Timestamp,
        cooldown_until: Timestamp,
    ) -> Result<(), Error> {
        guarded!(
            self,
            Write,
            begin_retirement(self, version, at, cooldown_until)
        )
    }

    async fn rollback_key_retirement(&mut self, version: &NodeVersion) -> Result<(), Error> {
        guarded!(self, Write, rollback_retirement(self, version))
    }

    async fn retire_key_version(
        &mut self,
        version: &NodeVersion,
        now: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, retire(self, version, now))
    }
}

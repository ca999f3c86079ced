//! Recovery sessions' non-secret metadata: at most one open session per key
//! version; an open session's idle deadline moves, and it is closed once.

use shardkeep_types::{ActorId, Label, NodeVersion, Timestamp};

use super::{Backend, Columns, SqlTransaction, args, guarded, version_args, with};
use crate::error::Error;
use crate::records::{
    ApprovalOperation, ApprovalRequestHash, RecoverySessionId, RecoverySessionOutcome,
    RecoverySessionRecord,
};
use crate::traits::RecoverySessionStore;
use crate::types::timestamp_to_db;

const TABLE: &str = "recovery_sessions";
/// The columns [`decode`] reads, in order.
macro_rules! columns {
    () => {
        "id, key_id, node_id, version, split_id, operation, request_hash, replica, started_by, \
         started_at, expires_at, idle_expires_at, closed_at, outcome"
    };
}

fn decode<B: Backend>(row: &B::Row) -> Result<RecoverySessionRecord, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    let id: [u8; 16] = cols
        .blob(0, "id")?
        .try_into()
        .map_err(|_| cols.corrupt("id"))?;
    let operation = cols
        .small::<u8>(5, "operation")
        .ok()
        .and_then(ApprovalOperation::from_code)
        .ok_or_else(|| cols.corrupt("operation"))?;
    let outcome = cols
        .opt_text(13, "outcome")?
        .map(|name| {
            RecoverySessionOutcome::ALL
                .into_iter()
                .find(|outcome| outcome.name() == name)
                .ok_or_else(|| cols.corrupt("outcome"))
        })
        .transpose()?;
    Ok(RecoverySessionRecord {
        id: RecoverySessionId(id),
        version: super::node_version(&cols, 1)?,
        split_id: cols.digest(4, "split_id")?,
        operation,
        request_hash: ApprovalRequestHash(cols.digest(6, "request_hash")?),
        replica: cols.parse(7, "replica", Label::new)?,
        started_by: cols.parse(8, "started_by", ActorId::new)?,
        started_at: cols.timestamp(9, "started_at")?,
        expires_at: cols.timestamp(10, "expires_at")?,
        idle_expires_at: cols.timestamp(11, "idle_expires_at")?,
        closed_at: cols.opt_timestamp(12, "closed_at")?,
        outcome,
    })
}

async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &RecoverySessionId,
) -> Result<RecoverySessionRecord, Error> {
    let row = tx
        .fetch_optional(
            TABLE,
            concat!(
                "SELECT ",
                columns!(),
                " FROM recovery_sessions WHERE id = $1"
            ),
            args![id.0.as_slice()],
        )
        .await?
        .ok_or(Error::RecoverySessionNotFound(*id))?;
    decode::<B>(&row)
}

async fn open_of<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<Option<RecoverySessionRecord>, Error> {
    let row = tx
        .fetch_optional(
            TABLE,
            concat!(
                "SELECT ",
                columns!(),
                " FROM recovery_sessions \
                 WHERE key_id = $1 AND node_id = $2 AND version = $3 AND closed_at IS NULL"
            ),
            version_args(version),
        )
        .await?;
    row.map(|row| decode::<B>(&row)).transpose()
}

async fn latest_of_request<B: Backend>(
    tx: &mut SqlTransaction<B>,
    request: &ApprovalRequestHash,
) -> Result<Option<RecoverySessionRecord>, Error> {
    let row = tx
        .fetch_optional(
            TABLE,
            concat!(
                "SELECT ",
                columns!(),
                " FROM recovery_sessions WHERE request_hash = $1 \
                 ORDER BY started_at DESC, id LIMIT 1"
            ),
            args![request.0.as_slice()],
        )
        .await?;
    row.map(|row| decode::<B>(&row)).transpose()
}

async fn insert<B: Backend>(
    tx: &mut SqlTransaction<B>,
    session: &RecoverySessionRecord,
) -> Result<(), Error> {
    if session.expires_at <= session.started_at {
        return Err(Error::TimesOutOfOrder {
            field: "expires_at",
        });
    }
    if session.idle_expires_at <= session.started_at || session.idle_expires_at > session.expires_at
    {
        return Err(Error::TimesOutOfOrder {
            field: "idle_expires_at",
        });
    }
    if session.closed_at.is_some() || session.outcome.is_some() {
        return Err(Error::TimesOutOfOrder { field: "closed_at" });
    }
    // One statement on the way that succeeds: the row goes in only if its
    // key version and request exist and no session of the version is open
    // (the unique index), and only a refused insert reads to name why.
    let inserted = tx
        .execute(
            TABLE,
            "INSERT INTO recovery_sessions (id, key_id, node_id, version, split_id, operation, \
             request_hash, replica, started_by, started_at, expires_at, idle_expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
             WHERE EXISTS (SELECT 1 FROM key_versions \
                           WHERE key_id = $2 AND node_id = $3 AND version = $4) \
               AND EXISTS (SELECT 1 FROM approval_requests WHERE hash = $7) \
             ON CONFLICT DO NOTHING",
            with(
                args![session.id.0.as_slice()],
                with(
                    version_args(&session.version),
                    args![
                        session.split_id.as_slice(),
                        i64::from(session.operation.code()),
                        session.request_hash.0.as_slice(),
                        session.replica.as_str(),
                        session.started_by.as_str(),
                        timestamp_to_db(session.started_at),
                        timestamp_to_db(session.expires_at),
                        timestamp_to_db(session.idle_expires_at),
                    ],
                ),
            ),
        )
        .await?;
    if inserted == 1 {
        return Ok(());
    }
    match load(tx, &session.id).await {
        Ok(_) => return Err(Error::RecoverySessionExists(session.id)),
        Err(Error::RecoverySessionNotFound(_)) => {}
        Err(other) => return Err(other),
    }
    super::key_versions::load(tx, &session.version).await?;
    super::approvals::load_request(tx, &session.request_hash).await?;
    Err(Error::RecoverySessionOpen(session.version.clone()))
}

async fn touch<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &RecoverySessionId,
    idle_expires_at: Timestamp,
) -> Result<(), Error> {
    // Row-level and in one statement: only an open session whose times
    // admit the deadline moves; a refused update reads to name why.
    let updated = tx
        .execute(
            TABLE,
            "UPDATE recovery_sessions SET idle_expires_at = $2 \
             WHERE id = $1 AND closed_at IS NULL AND started_at < $2 AND expires_at >= $2",
            args![id.0.as_slice(), timestamp_to_db(idle_expires_at)],
        )
        .await?;
    if updated == 1 {
        return Ok(());
    }
    if load(tx, id).await?.closed_at.is_some() {
        return Err(Error::RecoverySessionClosed(*id));
    }
    Err(Error::TimesOutOfOrder {
        field: "idle_expires_at",
    })
}

async fn close<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &RecoverySessionId,
    at: Timestamp,
    outcome: RecoverySessionOutcome,
) -> Result<(), Error> {
    // Row-level: of two transactions closing the same session, the second
    // updates nothing; a refused close reads to name why.
    let updated = tx
        .execute(
            TABLE,
            "UPDATE recovery_sessions SET closed_at = $2, outcome = $3 \
             WHERE id = $1 AND closed_at IS NULL AND started_at <= $2",
            args![id.0.as_slice(), timestamp_to_db(at), outcome.name()],
        )
        .await?;
    if updated == 1 {
        return Ok(());
    }
    if load(tx, id).await?.closed_at.is_some() {
        return Err(Error::RecoverySessionClosed(*id));
    }
    Err(Error::TimesOutOfOrder { field: "closed_at" })
}

impl<B: Backend> RecoverySessionStore for SqlTransaction<B> {
    async fn insert_recovery_session(
        &mut self,
        session: &RecoverySessionRecord,
    ) -> Result<(), Error> {
        guarded!(self, Write, insert(self, session))
    }

    async fn recovery_session(
        &mut self,
        id: &RecoverySessionId,
    ) -> Result<RecoverySessionRecord, Error> {
        guarded!(self, Read, load(self, id))
    }

    async fn open_recovery_session(
        &mut self,
        version: &NodeVersion,
    ) -> Result<Option<RecoverySessionRecord>, Error> {
        guarded!(self, Read, open_of(self, version))
    }

    async fn latest_recovery_session_of_request(
        &mut self,
        request: &ApprovalRequestHash,
    ) -> Result<Option<RecoverySessionRecord>, Error> {
        guarded!(self, Read, latest_of_request(self, request))
    }

    async fn touch_recovery_session(
        &mut self,
        id: &RecoverySessionId,
        idle_expires_at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, touch(self, id, idle_expires_at))
    }

    async fn close_recovery_session(
        &mut self,
        id: &RecoverySessionId,
        at: Timestamp,
        outcome: RecoverySessionOutcome,
    ) -> Result<(), Error> {
        guarded!(self, Write, close(self, id, at, outcome))
    }
}

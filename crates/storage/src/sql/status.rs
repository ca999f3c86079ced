//! Status and metrics, in one query per page: a page of versions (keyset
//! pagination on the primary key) joined with the per-version aggregates of
//! share slots, custody entries, deliveries and drills, each grouped over
//! the page's versions only.

use shardkeep_types::{CustodianId, FreeText, KeyId, NodeVersion};

use super::{
    Arg, Backend, Columns, SqlTransaction, args, guarded, key_versions, node_version, with,
};
use crate::MAX_PAGE_ROWS;
use crate::error::Error;
use crate::records::{
    DeliveryStats, DrillStats, DrillSummary, ExposureRow, MAX_FAILURE_REASONS, RecentDrill,
    SplitSummary, StatusFilter, StatusSummary, VersionStatusRow,
};
use crate::traits::StatusStore;

const TABLE: &str = "key_versions";

/// The page query with the filter `$filter` (on `kv`, parameters from
/// `$6`). Parameters: `$1`-`$3` the version the page starts after, `$4`
/// 1 to include retired versions, `$5` the page size.
macro_rules! page_sql {
    ($filter:literal) => {
        concat!(
            "WITH page AS (",
            "SELECT kv.key_id, kv.node_id, kv.version, kv.threshold, kv.total, kv.created_at, ",
            "kv.state, kv.retiring_since, kv.cooldown_until, kv.retired_at, kv.last_change_at ",
            "FROM key_versions kv ",
            "WHERE (kv.key_id, kv.node_id, kv.version) > ($1, $2, $3) ",
            "AND (kv.state <> 'retired' OR $4 = 1) ",
            $filter,
            " ORDER BY kv.key_id, kv.node_id, kv.version LIMIT $5",
            "), slots AS (",
            "SELECT s.key_id, s.node_id, s.version, ",
            "count(CASE WHEN s.state = 'active' THEN 1 END) AS active, ",
            "count(CASE WHEN s.state = 'soft_deleted' THEN 1 END) AS soft_deleted, ",
            "count(CASE WHEN s.state = 'hard_deleted' THEN 1 END) AS hard_deleted ",
            "FROM page p JOIN share_slots s ",
            "ON s.key_id = p.key_id AND s.node_id = p.node_id AND s.version = p.version ",
            "GROUP BY s.key_id, s.node_id, s.version",
            "), custody AS (",
            "SELECT c.key_id, c.node_id, c.version, count(*) AS assigned, ",
            "count(c.confirmed_at) AS confirmed, min(c.confirmed_at) AS oldest ",
            "FROM page p JOIN custody_map c ",
            "ON c.key_id = p.key_id AND c.node_id = p.node_id AND c.version = p.version ",
            "GROUP BY c.key_id, c.node_id, c.version",
            "), delivered AS (",
            "SELECT d.key_id, d.node_id, d.version, ",
            "count(CASE WHEN d.outcome = 'delivered' THEN 1 END) AS receipts, ",
            "count(CASE WHEN d.outcome = 'failed' THEN 1 END) AS failures ",
            "FROM page p JOIN deliveries d ",
            "ON d.key_id = p.key_id AND d.node_id = p.node_id AND d.version = p.version ",
            "GROUP BY d.key_id, d.node_id, d.version",
            "), drills AS (",
            "SELECT r.key_id, r.node_id, r.version, max(r.started_at) AS last_started, ",
            "max(CASE WHEN r.outcome = 'passed' THEN r.finished_at END) AS last_passed ",
            "FROM page p JOIN drill_reports r ",
            "ON r.key_id = p.key_id AND r.node_id = p.node_id AND r.version = p.version ",
            "GROUP BY r.key_id, r.node_id, r.version",
            ") ",
            "SELECT p.key_id, p.node_id, p.version, p.threshold, p.total, p.created_at, p.state, ",
            "p.retiring_since, p.cooldown_until, p.retired_at, p.last_change_at, ",
            "sr.curve, sr.policy_hash, sr.server_shares, ",
            "COALESCE(s.active, 0), COALESCE(s.soft_deleted, 0), COALESCE(s.hard_deleted, 0), ",
            "COALESCE(c.assigned, 0), COALESCE(c.confirmed, 0), c.oldest, ",
            "COALESCE(dl.receipts, 0), COALESCE(dl.failures, 0), ",
            "ld.started_at, ld.finished_at, ld.outcome, dr.last_passed ",
            "FROM page p ",
            "LEFT JOIN split_references sr ",
            "ON sr.key_id = p.key_id AND sr.node_id = p.node_id AND sr.version = p.version ",
            "LEFT JOIN slots s ",
            "ON s.key_id = p.key_id AND s.node_id = p.node_id AND s.version = p.version ",
            "LEFT JOIN custody c ",
            "ON c.key_id = p.key_id AND c.node_id = p.node_id AND c.version = p.version ",
            "LEFT JOIN delivered dl ",
            "ON dl.key_id = p.key_id AND dl.node_id = p.node_id AND dl.version = p.version ",
            "LEFT JOIN drills dr ",
            "ON dr.key_id = p.key_id AND dr.node_id = p.node_id AND dr.version = p.version ",
            "LEFT JOIN drill_reports ld ",
            "ON ld.key_id = p.key_id AND ld.node_id = p.node_id AND ld.version = p.version ",
            "AND ld.started_at = dr.last_started ",
            "ORDER BY p.key_id, p.node_id, p.version"
        )
    };
}

const PAGE: &str = page_sql!("");
const PAGE_OF_KEY: &str = page_sql!("AND kv.key_id = $6");
const PAGE_OF_NODE: &str = page_sql!("AND kv.node_id = $6");
const PAGE_OF_KEY_NODE: &str = page_sql!("AND kv.key_id = $6 AND kv.node_id = $7");

/// The summary query with the filter `$filter` (parameters from `$2`);
/// `$1` is 1 to include retired versions.
macro_rules! summary_sql {
    ($filter:literal) => {
        concat!(
            "WITH v AS (",
            "SELECT key_id, node_id, version FROM key_versions ",
            "WHERE (state <> 'retired' OR $1 = 1) ",
            $filter,
            "), counts AS (",
            "SELECT count(*) AS versions, count(DISTINCT key_id) AS keys FROM v",
            "), nodes AS (",
            "SELECT count(*) AS nodes FROM (SELECT DISTINCT key_id, node_id FROM v) n",
            "), slots AS (",
            "SELECT count(*) AS active FROM v JOIN share_slots s ",
            "ON s.key_id = v.key_id AND s.node_id = v.node_id AND s.version = v.version ",
            "WHERE s.state = 'active'",
            "), custody AS (",
            "SELECT count(*) AS assigned FROM v JOIN custody_map c ",
            "ON c.key_id = v.key_id AND c.node_id = v.node_id AND c.version = v.version",
            "), delivered AS (",
            "SELECT count(CASE WHEN d.outcome = 'delivered' THEN 1 END) AS receipts, ",
            "count(CASE WHEN d.outcome = 'failed' THEN 1 END) AS failures ",
            "FROM v JOIN deliveries d ",
            "ON d.key_id = v.key_id AND d.node_id = v.node_id AND d.version = v.version",
            "), drills AS (",
            "SELECT count(*) AS drills, count(CASE WHEN r.outcome = 'passed' THEN 1 END) AS passed ",
            "FROM v JOIN drill_reports r ",
            "ON r.key_id = v.key_id AND r.node_id = v.node_id AND r.version = v.version",
            ") ",
            "SELECT counts.versions, nodes.nodes, counts.keys, slots.active, delivered.receipts, ",
            "custody.assigned, delivered.failures, drills.drills, drills.passed ",
            "FROM counts, nodes, slots, custody, delivered, drills"
        )
    };
}

const SUMMARY: &str = summary_sql!("");
const SUMMARY_OF_KEY: &str = summary_sql!("AND key_id = $2");
const SUMMARY_OF_NODE: &str = summary_sql!("AND node_id = $2");
const SUMMARY_OF_KEY_NODE: &str = summary_sql!("AND key_id = $2 AND node_id = $3");

/// The statement for `filter` among the four, and the filter's
/// parameters (appended to the ones before).
fn filtered(filter: &StatusFilter, statements: [&'static str; 4]) -> (&'static str, Vec<Arg>) {
    let [all, of_key, of_node, of_key_node] = statements;
    match (&filter.key_id, &filter.node_id) {
        (None, None) => (all, Vec::new()),
        (Some(key), None) => (of_key, args![key.as_str()]),
        (None, Some(node)) => (of_node, args![node.as_str()]),
        (Some(key), Some(node)) => (of_key_node, args![key.as_str(), node.as_str()]),
    }
}

fn decode_row<B: Backend>(row: &<B::Db as sqlx::Database>::Row) -> Result<VersionStatusRow, Error> {
    let cols = Columns::<B>::new(row, TABLE);
    let version = node_version(&cols, 0)?;
    let (threshold, created_at, state) = key_versions::threshold_and_state(&cols, 3)?;
    let split = match cols.opt_int(11, "curve")? {
        None => None,
        Some(_) => Some(SplitSummary {
            curve: cols.small(11, "curve")?,
            policy_hash: cols.digest(12, "policy_hash")?,
            server_shares: cols.small(13, "server_shares")?,
        }),
    };
    let assigned: u8 = cols.small(17, "assigned")?;
    let confirmed: u8 = cols.small(18, "confirmed")?;
    // The oldest confirmation counts only once every mapped slot has one.
    let oldest = cols.opt_timestamp(19, "oldest")?;
    let last_inventory_at = oldest.filter(|_| assigned > 0 && confirmed == assigned);
    let last_drill = match (
        cols.opt_timestamp(22, "started_at")?,
        cols.opt_timestamp(23, "finished_at")?,
        cols.opt_text(24, "outcome")?,
    ) {
        (None, None, None) => None,
        (Some(started_at), Some(finished_at), Some(outcome)) => Some(DrillSummary {
            started_at,
            finished_at,
            passed: match outcome.as_str() {
                "passed" => true,
                "failed" => false,
                _ => return Err(cols.corrupt("outcome")),
            },
        }),
        _ => return Err(cols.corrupt("started_at")),
    };
    Ok(VersionStatusRow {
        version,
        threshold,
        state,
        created_at,
        split,
        server_active: cols.small(14, "active")?,
        server_soft_deleted: cols.small(15, "soft_deleted")?,
        server_hard_deleted: cols.small(16, "hard_deleted")?,
        external_assigned: assigned,
        external_confirmed: cols.small(20, "receipts")?,
        deliveries_failed: cols.small(21, "failures")?,
        last_inventory_at,
        last_drill,
        last_passed_drill_at: cols.opt_timestamp(25, "last_passed")?,
        last_change_at: cols.timestamp(10, "last_change_at")?,
    })
}

async fn page<B: Backend>(
    tx: &mut SqlTransaction<B>,
    filter: &StatusFilter,
    after: Option<&NodeVersion>,
    limit: u32,
) -> Result<Vec<VersionStatusRow>, Error> {
    // Every id has at least one byte and versions are never negative, so
    // ('', '', -1) sorts before every version.
    let after = match after {
        Some(version) => super::version_args(version),
        None => args!["", "", -1_i64],
    };
    let (sql, filter_args) = filtered(filter, [PAGE, PAGE_OF_KEY, PAGE_OF_NODE, PAGE_OF_KEY_NODE]);
    let params = with(
        with(
            after,
            args![
                i64::from(filter.include_retired),
                i64::from(limit.min(MAX_PAGE_ROWS))
            ],
        ),
        filter_args,
    );
    tx.fetch(TABLE, sql, params)
        .await?
        .iter()
        .map(decode_row::<B>)
        .collect()
}

async fn summary<B: Backend>(
    tx: &mut SqlTransaction<B>,
    filter: &StatusFilter,
) -> Result<StatusSummary, Error> {
    let (sql, filter_args) = filtered(
        filter,
        [
            SUMMARY,
            SUMMARY_OF_KEY,
            SUMMARY_OF_NODE,
            SUMMARY_OF_KEY_NODE,
        ],
    );
    let params = with(args![i64::from(filter.include_retired)], filter_args);
    let row = tx
        .fetch_optional(TABLE, sql, params)
        .await?
        .ok_or(Error::CorruptRow {
            table: TABLE,
            column: "count",
        })?;
    let cols = Columns::<B>::new(&row, TABLE);
    Ok(StatusSummary {
        versions: cols.u64(0, "versions")?,
        nodes: cols.u64(1, "nodes")?,
        keys: cols.u64(2, "keys")?,
        server_shares_active: cols.u64(3, "active")?,
        external_confirmed: cols.u64(4, "receipts")?,
        external_assigned: cols.u64(5, "assigned")?,
        deliveries_failed: cols.u64(6, "failures")?,
        drills: cols.u64(7, "drills")?,
        drills_passed: cols.u64(8, "passed")?,
    })
}

async fn exposure<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
) -> Result<Vec<ExposureRow>, Error> {
    let rows = tx
        .fetch(
            TABLE,
            "SELECT kv.key_id, kv.node_id, kv.version, c.custodian_id, count(*), \
             (SELECT count(*) FROM share_slots s WHERE s.key_id = kv.key_id \
             AND s.node_id = kv.node_id AND s.version = kv.version AND s.state = 'active'), \
             kv.threshold \
             FROM key_versions kv JOIN custody_map c \
             ON c.key_id = kv.key_id AND c.node_id = kv.node_id AND c.version = kv.version \
             WHERE kv.key_id = $1 AND kv.state = 'active' \
             GROUP BY kv.key_id, kv.node_id, kv.version, c.custodian_id, kv.threshold \
             ORDER BY kv.node_id, kv.version, c.custodian_id",
            args![key_id.as_str()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, TABLE);
            let version = node_version(&cols, 0)?;
            Ok(ExposureRow {
                key_id: version.key_id,
                node_id: version.node_id,
                version: version.version,
                custodian: cols.parse(3, "custodian_id", CustodianId::new)?,
                shares: cols.small(4, "shares")?,
                server_active: cols.small(5, "server_active")?,
                t: cols.small(6, "threshold")?,
            })
        })
        .collect()
}

async fn delivery_stats<B: Backend>(tx: &mut SqlTransaction<B>) -> Result<DeliveryStats, Error> {
    const DELIVERIES: &str = "deliveries";
    let row = tx
        .fetch_optional(
            DELIVERIES,
            "WITH v AS (SELECT key_id, node_id, version FROM key_versions \
             WHERE state <> 'retired'), \
             custody AS (SELECT count(*) AS assigned FROM v JOIN custody_map c \
             ON c.key_id = v.key_id AND c.node_id = v.node_id AND c.version = v.version), \
             delivered AS (SELECT count(*) AS attempts, \
             count(CASE WHEN d.outcome = 'delivered' THEN 1 END) AS receipts, \
             count(CASE WHEN d.outcome = 'failed' THEN 1 END) AS failures \
             FROM v JOIN deliveries d \
             ON d.key_id = v.key_id AND d.node_id = v.node_id AND d.version = v.version) \
             SELECT custody.assigned, delivered.attempts, delivered.receipts, delivered.failures \
             FROM custody, delivered",
            Vec::new(),
        )
        .await?
        .ok_or(Error::CorruptRow {
            table: DELIVERIES,
            column: "count",
        })?;
    let cols = Columns::<B>::new(&row, DELIVERIES);
    let (assigned, attempts, confirmed, failed) = (
        cols.u64(0, "assigned")?,
        cols.u64(1, "attempts")?,
        cols.u64(2, "receipts")?,
        cols.u64(3, "failures")?,
    );
    let reasons = tx
        .fetch(
            DELIVERIES,
            "SELECT d.failure_reason, count(*) FROM deliveries d JOIN key_versions kv \
             ON kv.key_id = d.key_id AND kv.node_id = d.node_id AND kv.version = d.version \
             WHERE kv.state <> 'retired' AND d.outcome = 'failed' \
             GROUP BY d.failure_reason ORDER BY count(*) DESC, d.failure_reason LIMIT $1",
            args![i64::try_from(MAX_FAILURE_REASONS).unwrap_or(i64::MAX)],
        )
        .await?;
    let failure_reasons = reasons
        .iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, DELIVERIES);
            Ok((
                cols.parse(0, "failure_reason", FreeText::new)?,
                cols.u64(1, "count")?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    Ok(DeliveryStats {
        assigned,
        attempts,
        confirmed,
        failed,
        failure_reasons,
    })
}

async fn drill_stats<B: Backend>(
    tx: &mut SqlTransaction<B>,
    recent: u32,
) -> Result<DrillStats, Error> {
    const DRILLS: &str = "drill_reports";
    let row = tx
        .fetch_optional(
            DRILLS,
            "SELECT count(*), count(CASE WHEN outcome = 'passed' THEN 1 END) FROM drill_reports",
            Vec::new(),
        )
        .await?
        .ok_or(Error::CorruptRow {
            table: DRILLS,
            column: "count",
        })?;
    let cols = Columns::<B>::new(&row, DRILLS);
    let (drills, passed) = (cols.u64(0, "drills")?, cols.u64(1, "passed")?);
    let rows = tx
        .fetch(
            DRILLS,
            "SELECT key_id, node_id, version, started_at, finished_at, outcome \
             FROM drill_reports ORDER BY started_at DESC, key_id, node_id, version LIMIT $1",
            args![i64::from(recent.min(MAX_PAGE_ROWS))],
        )
        .await?;
    let recent = rows
        .iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, DRILLS);
            Ok(RecentDrill {
                target: node_version(&cols, 0)?,
                summary: DrillSummary {
                    started_at: cols.timestamp(3, "started_at")?,
                    finished_at: cols.timestamp(4, "finished_at")?,
                    passed: match cols.text(5, "outcome")?.as_str() {
                        "passed" => true,
                        "failed" => false,
                        _ => return Err(cols.corrupt("outcome")),
                    },
                },
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(DrillStats {
        drills,
        passed,
        recent,
    })
}

impl<B: Backend> StatusStore for SqlTransaction<B> {
    async fn status_page(
        &mut self,
        filter: &StatusFilter,
        after: Option<&NodeVersion>,
        limit: u32,
    ) -> Result<Vec<VersionStatusRow>, Error> {
        guarded!(self, Read, page(self, filter, after, limit))
    }

    async fn status_summary(&mut self, filter: &StatusFilter) -> Result<StatusSummary, Error> {
        guarded!(self, Read, summary(self, filter))
    }

    async fn exposure_rows(&mut self, key_id: &KeyId) -> Result<Vec<ExposureRow>, Error> {
        guarded!(self, Read, exposure(self, key_id))
    }

    async fn delivery_stats(&mut self) -> Result<DeliveryStats, Error> {
        guarded!(self, Read, delivery_stats(self))
    }

    async fn drill_stats(&mut self, recent: u32) -> Result<DrillStats, Error> {
        guarded!(self, Read, drill_stats(self, recent))
    }
}

//! Status and metrics, in one query per page: a page of versions (keyset
//! pagination on the primary key) joined with the per-version aggregates of
//! share slots, custody entries, deliveries and drills, each read from the
//! page's key range only (migration 0009 gives every one of those tables an
//! index on the version's key that covers what the aggregate reads).

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

/// The rows of `$table` (aliased `x`) that belong to versions in the
/// page's key range: after `$1`-`$3`, up to the page's last version
/// (`bound b`), and within the filter. The page's versions are one range
/// of the primary key, so every aggregate is a range scan of an index
/// ordered like it, whatever the table's size; rows of versions the page
/// leaves out (retired, another node) fall away in the final join.
macro_rules! page_range {
    ($table:literal, $filter:literal) => {
        concat!(
            "FROM bound b CROSS JOIN ",
            $table,
            " x WHERE (x.key_id, x.node_id, x.version) > ($1, $2, $3) ",
            "AND (x.key_id, x.node_id, x.version) <= (b.key_id, b.node_id, b.version) ",
            $filter
        )
    };
}

/// The page query with the filter `$filter` (on alias `x`, parameters
/// from `$6`). Parameters: `$1`-`$3` the version the page starts after,
/// `$4` 1 to include retired versions, `$5` the page size. One statement:
/// the page of versions, then, over the page's key range only, the
/// aggregates of share slots, custody entries, deliveries and drills and
/// the split references, joined to the page.
///
/// `CROSS JOIN` makes SQLite start from the one-row `bound` (PostgreSQL
/// plans it as an ordinary join), so each aggregate reads its index from
/// the page's first version to its last and nothing else.
macro_rules! page_sql {
    ($filter:literal) => {
        concat!(
            "WITH page AS (",
            "SELECT x.key_id, x.node_id, x.version, x.threshold, x.total, x.created_at, ",
            "x.state, x.retiring_since, x.cooldown_until, x.retired_at, x.last_change_at ",
            "FROM key_versions x ",
            "WHERE (x.key_id, x.node_id, x.version) > ($1, $2, $3) ",
            "AND (x.state <> 'retired' OR $4 = 1) ",
            $filter,
            " ORDER BY x.key_id, x.node_id, x.version LIMIT $5",
            "), bound AS (",
            "SELECT key_id, node_id, version FROM page ",
            "ORDER BY key_id DESC, node_id DESC, version DESC LIMIT 1",
            "), refs AS (",
            "SELECT x.key_id, x.node_id, x.version, x.curve, x.policy_hash, x.server_shares ",
            page_range!("split_references", $filter),
            "), slots AS (",
            "SELECT x.key_id, x.node_id, x.version, ",
            "count(CASE WHEN x.state = 'active' THEN 1 END) AS active, ",
            "count(CASE WHEN x.state = 'soft_deleted' THEN 1 END) AS soft_deleted, ",
            "count(CASE WHEN x.state = 'hard_deleted' THEN 1 END) AS hard_deleted ",
            page_range!("share_slots", $filter),
            " GROUP BY x.key_id, x.node_id, x.version",
            "), custody AS (",
            "SELECT x.key_id, x.node_id, x.version, count(*) AS assigned, ",
            "count(x.confirmed_at) AS confirmed, min(x.confirmed_at) AS oldest ",
            page_range!("custody_map", $filter),
            " GROUP BY x.key_id, x.node_id, x.version",
            "), delivered AS (",
            "SELECT x.key_id, x.node_id, x.version, ",
            "count(CASE WHEN x.outcome = 'delivered' THEN 1 END) AS receipts, ",
            "count(CASE WHEN x.outcome = 'failed' THEN 1 END) AS failures ",
            page_range!("deliveries", $filter),
            " GROUP BY x.key_id, x.node_id, x.version",
            "), drills AS (",
            "SELECT x.key_id, x.node_id, x.version, x.started_at, x.finished_at, x.outcome, ",
            "max(CASE WHEN x.outcome = 'passed' THEN x.finished_at END) ",
            "OVER (PARTITION BY x.key_id, x.node_id, x.version) AS last_passed, ",
            "row_number() OVER (PARTITION BY x.key_id, x.node_id, x.version ",
            "ORDER BY x.started_at DESC) AS newest ",
            page_range!("drill_reports", $filter),
            ") ",
            "SELECT p.key_id, p.node_id, p.version, p.threshold, p.total, p.created_at, p.state, ",
            "p.retiring_since, p.cooldown_until, p.retired_at, p.last_change_at, ",
            "r.curve, r.policy_hash, r.server_shares, ",
            "COALESCE(s.active, 0), COALESCE(s.soft_deleted, 0), COALESCE(s.hard_deleted, 0), ",
            "COALESCE(c.assigned, 0), COALESCE(c.confirmed, 0), c.oldest, ",
            "COALESCE(dl.receipts, 0), COALESCE(dl.failures, 0), ",
            "dr.started_at, dr.finished_at, dr.outcome, dr.last_passed ",
            "FROM page p ",
            "LEFT JOIN refs r ",
            "ON r.key_id = p.key_id AND r.node_id = p.node_id AND r.version = p.version ",
            "LEFT JOIN slots s ",
            "ON s.key_id = p.key_id AND s.node_id = p.node_id AND s.version = p.version ",
            "LEFT JOIN custody c ",
            "ON c.key_id = p.key_id AND c.node_id = p.node_id AND c.version = p.version ",
            "LEFT JOIN delivered dl ",
            "ON dl.key_id = p.key_id AND dl.node_id = p.node_id AND dl.version = p.version ",
            "LEFT JOIN drills dr ",
            "ON dr.key_id = p.key_id AND dr.node_id = p.node_id AND dr.version = p.version ",
            "AND dr.newest = 1 ",
            "ORDER BY p.key_id, p.node_id, p.version"
        )
    };
}

const PAGE: &str = page_sql!("");
const PAGE_OF_KEY: &str = page_sql!("AND x.key_id = $6");
const PAGE_OF_NODE: &str = page_sql!("AND x.node_id = $6");
const PAGE_OF_KEY_NODE: &str = page_sql!("AND x.key_id = $6 AND x.node_id = $7");

/// The counts `$columns` of the rows of `$table` (aliased `x`), three ways,
/// as the common table expressions `<$name>_all` (every version in the
/// filter), `<$name>_gone` (the versions left out) and `<$name>_sel` (the
/// selected versions). `CROSS JOIN` makes SQLite look each version up in
/// the table's index rather than scan the table (PostgreSQL plans it as an
/// ordinary join).
macro_rules! summary_counts {
    ($name:literal, $table:literal, $columns:literal, $filter:literal) => {
        concat!(
            ", ",
            $name,
            "_all AS (SELECT ",
            $columns,
            " FROM ",
            $table,
            " x WHERE TRUE ",
            $filter,
            "), ",
            $name,
            "_gone AS (SELECT ",
            $columns,
            " FROM gone g CROSS JOIN ",
            $table,
            " x WHERE x.key_id = g.key_id AND x.node_id = g.node_id AND x.version = g.version",
            "), ",
            $name,
            "_sel AS (SELECT ",
            $columns,
            " FROM sel g CROSS JOIN ",
            $table,
            " x WHERE x.key_id = g.key_id AND x.node_id = g.node_id AND x.version = g.version",
            ")"
        )
    };
}

/// One total of the summary, the count `$column` of [`summary_counts!`]
/// `$name`: the rows of every version in the filter less those of the
/// versions left out, or the rows of the selected versions, as
/// `w.complement` says (see [`summary_sql!`]). Only the branch taken runs.
macro_rules! summary_pick {
    ($name:literal, $column:literal) => {
        concat!(
            "CASE WHEN w.complement THEN (SELECT ",
            $column,
            " FROM ",
            $name,
            "_all) - (SELECT ",
            $column,
            " FROM ",
            $name,
            "_gone) ELSE (SELECT ",
            $column,
            " FROM ",
            $name,
            "_sel) END"
        )
    };
}

/// The summary query with the filter `$filter` (on alias `x`, parameters
/// from `$2`); `$1` is 1 to include retired versions. One statement.
///
/// Counting the rows of slots, custody entries, deliveries and drills
/// straight from their indexes is several times cheaper than joining each
/// row to its version, and every row belongs to a version (foreign keys);
/// the join is only needed to leave retired versions out. So the versions
/// in the filter are split into the selected ones (`sel`) and the ones left
/// out (`gone`, empty when retired versions are included), and each total
/// joins the smaller set (`w.complement`): the whole filter less `gone`
/// while `gone` is no larger than `sel`, else `sel` itself. The cost is at
/// most that of counting the filter's rows plus joining half of its
/// versions' rows.
macro_rules! summary_sql {
    ($filter:literal) => {
        concat!(
            "WITH sel AS (",
            "SELECT x.key_id, x.node_id, x.version FROM key_versions x ",
            "WHERE (x.state <> 'retired' OR $1 = 1) ",
            $filter,
            "), gone AS (",
            "SELECT x.key_id, x.node_id, x.version FROM key_versions x ",
            "WHERE x.state = 'retired' AND $1 = 0 ",
            $filter,
            ")",
            summary_counts!(
                "slots",
                "share_slots",
                "count(CASE WHEN x.state = 'active' THEN 1 END) AS active",
                $filter
            ),
            summary_counts!("custody", "custody_map", "count(*) AS assigned", $filter),
            summary_counts!(
                "delivered",
                "deliveries",
                "count(CASE WHEN x.outcome = 'delivered' THEN 1 END) AS receipts, \
                 count(CASE WHEN x.outcome = 'failed' THEN 1 END) AS failures",
                $filter
            ),
            summary_counts!(
                "drilled",
                "drill_reports",
                "count(*) AS drills, count(CASE WHEN x.outcome = 'passed' THEN 1 END) AS passed",
                $filter
            ),
            " SELECT w.versions, ",
            "(SELECT count(*) FROM (SELECT x.key_id, x.node_id FROM key_versions x ",
            "WHERE (x.state <> 'retired' OR $1 = 1) ",
            $filter,
            " GROUP BY x.key_id, x.node_id) n), ",
            "(SELECT count(*) FROM (SELECT x.key_id FROM key_versions x ",
            "WHERE (x.state <> 'retired' OR $1 = 1) ",
            $filter,
            " GROUP BY x.key_id) n), ",
            summary_pick!("slots", "active"),
            ", ",
            summary_pick!("delivered", "receipts"),
            ", ",
            summary_pick!("custody", "assigned"),
            ", ",
            summary_pick!("delivered", "failures"),
            ", ",
            summary_pick!("drilled", "drills"),
            ", ",
            summary_pick!("drilled", "passed"),
            " FROM (SELECT count(CASE WHEN x.state <> 'retired' OR $1 = 1 THEN 1 END) ",
            "AS versions, ",
            "$1 = 1 OR 2 * count(CASE WHEN x.state = 'retired' THEN 1 END) <= count(*) ",
            "AS complement ",
            "FROM key_versions x WHERE TRUE ",
            $filter,
            ") w"
        )
    };
}

const SUMMARY: &str = summary_sql!("");
const SUMMARY_OF_KEY: &str = summary_sql!("AND x.key_id = $2");
const SUMMARY_OF_NODE: &str = summary_sql!("AND x.node_id = $2");
const SUMMARY_OF_KEY_NODE: &str = summary_sql!("AND x.key_id = $2 AND x.node_id = $3");

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

fn decode_row<B: Backend>(row: &B::Row) -> Result<VersionStatusRow, Error> {
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

/// The exposure rows of `keys`, ordered by key, node, version and
/// custodian.
async fn exposure<B: Backend>(
    tx: &mut SqlTransaction<B>,
    keys: &[KeyId],
) -> Result<Vec<ExposureRow>, Error> {
    let mut exposure = Vec::new();
    for chunk in keys.chunks(crate::KEYS_PER_QUERY) {
        let rows = tx
            .fetch(
                TABLE,
                "SELECT kv.key_id, kv.node_id, kv.version, c.custodian_id, count(*), \
                 (SELECT count(*) FROM share_slots s WHERE s.key_id = kv.key_id \
                 AND s.node_id = kv.node_id AND s.version = kv.version AND s.state = 'active'), \
                 kv.threshold \
                 FROM key_versions kv JOIN custody_map c \
                 ON c.key_id = kv.key_id AND c.node_id = kv.node_id AND c.version = kv.version \
                 WHERE kv.key_id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32) AND kv.state = 'active' \
                 GROUP BY kv.key_id, kv.node_id, kv.version, c.custodian_id, kv.threshold \
                 ORDER BY kv.key_id, kv.node_id, kv.version, c.custodian_id",
                super::key_list_args(chunk),
            )
            .await?;
        for row in &rows {
            let cols = Columns::<B>::new(row, TABLE);
            let version = node_version(&cols, 0)?;
            exposure.push(ExposureRow {
                key_id: version.key_id,
                node_id: version.node_id,
                version: version.version,
                custodian: cols.parse(3, "custodian_id", CustodianId::new)?,
                shares: cols.small(4, "shares")?,
                server_active: cols.small(5, "server_active")?,
                t: cols.small(6, "threshold")?,
            });
        }
    }
    // Chunks in the caller's order, duplicates once: the documented order.
    exposure.sort_by(|a, b| {
        (&a.key_id, &a.node_id, a.version, &a.custodian).cmp(&(
            &b.key_id,
            &b.node_id,
            b.version,
            &b.custodian,
        ))
    });
    exposure.dedup_by(|a, b| {
        (&a.key_id, &a.node_id, a.version, &a.custodian)
            == (&b.key_id, &b.node_id, b.version, &b.custodian)
    });
    Ok(exposure)
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
        guarded!(self, Read, exposure(self, core::slice::from_ref(key_id)))
    }

    async fn exposure_rows_of(&mut self, keys: &[KeyId]) -> Result<Vec<ExposureRow>, Error> {
        guarded!(self, Read, exposure(self, keys))
    }

    async fn delivery_stats(&mut self) -> Result<DeliveryStats, Error> {
        guarded!(self, Read, delivery_stats(self))
    }

    async fn drill_stats(&mut self, recent: u32) -> Result<DrillStats, Error> {
        guarded!(self, Read, drill_stats(self, recent))
    }
}

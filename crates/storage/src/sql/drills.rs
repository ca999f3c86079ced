//! Recovery drill reports.

use shardkeep_types::ShareIndex;
use shardkeep_types::{ActorId, FreeText, NodeVersion};

use super::{Backend, Columns, SqlTransaction, args, guarded, key_versions, node_version, with};
use crate::error::Error;
use crate::records::{DrillOutcome, DrillReport, MAX_DRILL_REPORT_LEN};
use crate::traits::DrillStore;
use crate::types::{check_blob, timestamp_to_db};

const TABLE: &str = "drill_reports";

/// Share indices as one byte each, the order they were given in.
fn encode_indices(indices: &[ShareIndex]) -> Vec<u8> {
    indices.iter().map(|index| index.get()).collect()
}

async fn record<B: Backend>(tx: &mut SqlTransaction<B>, report: &DrillReport) -> Result<(), Error> {
    if report.finished_at < report.started_at {
        return Err(Error::TimesOutOfOrder {
            field: "finished_at",
        });
    }
    if !report.shares_used.is_sorted_by(|a, b| a < b) {
        return Err(Error::UnorderedShareIndices);
    }
    let (outcome, reason) = match &report.outcome {
        DrillOutcome::Passed => ("passed", None),
        DrillOutcome::Failed { reason } => ("failed", Some(reason.as_str())),
    };
    check_blob("drill report", &report.report, 0, MAX_DRILL_REPORT_LEN)?;
    key_versions::load(tx, &report.target).await?;
    if tx
        .fetch_optional(
            TABLE,
            "SELECT 1 FROM drill_reports \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 AND started_at = $4",
            with(
                super::version_args(&report.target),
                args![timestamp_to_db(report.started_at)],
            ),
        )
        .await?
        .is_some()
    {
        return Err(Error::DrillReportExists {
            target: report.target.clone(),
            started_at: report.started_at,
        });
    }
    tx.execute(
        TABLE,
        "INSERT INTO drill_reports (key_id, node_id, version, started_at, finished_at, operator, \
         shares_used, outcome, failure_reason, report) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        with(
            super::version_args(&report.target),
            args![
                timestamp_to_db(report.started_at),
                timestamp_to_db(report.finished_at),
                report.operator.as_str(),
                encode_indices(&report.shares_used).as_slice(),
                outcome,
                reason,
                report.report.as_slice(),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn list<B: Backend>(
    tx: &mut SqlTransaction<B>,
    target: &NodeVersion,
) -> Result<Vec<DrillReport>, Error> {
    let rows = tx
        .fetch(
            TABLE,
            "SELECT key_id, node_id, version, started_at, finished_at, operator, shares_used, \
             outcome, failure_reason, report FROM drill_reports \
             WHERE key_id = $1 AND node_id = $2 AND version = $3 ORDER BY started_at",
            super::version_args(target),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, TABLE);
            let shares_used = cols
                .blob(6, "shares_used")?
                .into_iter()
                .map(|index| ShareIndex::new(index).ok_or_else(|| cols.corrupt("shares_used")))
                .collect::<Result<Vec<_>, _>>()?;
            let outcome = match (
                cols.text(7, "outcome")?.as_str(),
                cols.opt_text(8, "failure_reason")?,
            ) {
                ("passed", None) => DrillOutcome::Passed,
                ("failed", Some(reason)) => DrillOutcome::Failed {
                    reason: FreeText::new(reason).map_err(|_| cols.corrupt("failure_reason"))?,
                },
                _ => return Err(cols.corrupt("outcome")),
            };
            Ok(DrillReport {
                target: node_version(&cols, 0)?,
                started_at: cols.timestamp(3, "started_at")?,
                finished_at: cols.timestamp(4, "finished_at")?,
                operator: cols.parse(5, "operator", ActorId::new)?,
                shares_used,
                outcome,
                report: cols.blob(9, "report")?,
            })
        })
        .collect()
}

impl<B: Backend> DrillStore for SqlTransaction<B> {
    async fn record_drill(&mut self, report: &DrillReport) -> Result<(), Error> {
        guarded!(self, Write, record(self, report))
    }

    async fn drill_reports(&mut self, version: &NodeVersion) -> Result<Vec<DrillReport>, Error> {
        guarded!(self, Read, list(self, version))
    }
}

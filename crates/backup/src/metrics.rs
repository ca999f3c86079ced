//! The metrics snapshot the service exports: coverage and the recoverable
//! count, delivery confirmation rate and failure reasons, drill success
//! rate, durations and age, anomalies by type.
//!
//! One call, one read-only transaction over storage aggregates (the status
//! summary, delivery and drill statistics, anomaly counts) and the per
//! version status in pages of [`MAX_PAGE_ROWS`](shardkeep_storage::MAX_PAGE_ROWS)
//! for what is decided per version (recoverable, drill due, policy). It is
//! read by the service's exporter, not by a person: it is neither rate
//! limited nor audited.

use std::time::Duration;

use shardkeep_storage::{
    AccessControlStore, DeliveryStats, DrillStats, GroupStore, KeyVersionState, MAX_PAGE_ROWS,
    MAX_REASON_LEN, StatusFilter, StatusStore, StatusSummary, Storage,
};
use shardkeep_types::{FreeText, Label, NodeVersion, Timestamp};

use crate::error::Error;
use crate::service::BackupService;
use crate::status::{ExposureState, StatusContext};

/// How many recent drills the snapshot's durations cover.
const RECENT_DRILLS: u32 = 100;

/// Delivery metrics over the versions that are not retired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryMetrics {
    /// External slots mapped to a custodian.
    pub assigned: u64,
    /// Delivery attempts recorded.
    pub attempts: u64,
    /// Slots with a confirmed receipt.
    pub confirmed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Failure reasons with their counts, most frequent first.
    pub failure_reasons: Vec<(FreeText<MAX_REASON_LEN>, u64)>,
}

impl DeliveryMetrics {
    /// Confirmed slots over assigned slots; `None` with none assigned. The
    /// alert fires below 1.
    #[must_use]
    pub fn confirmation_rate(&self) -> Option<f64> {
        ratio(self.confirmed, self.assigned)
    }
}

impl From<DeliveryStats> for DeliveryMetrics {
    fn from(stats: DeliveryStats) -> Self {
        Self {
            assigned: stats.assigned,
            attempts: stats.attempts,
            confirmed: stats.confirmed,
            failed: stats.failed,
            failure_reasons: stats.failure_reasons,
        }
    }
}

/// Drill metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrillMetrics {
    /// Drill reports.
    pub drills: u64,
    /// Drill reports that passed.
    pub passed: u64,
    /// Durations of the latest drills (up to 100), newest first.
    pub recent_durations: Vec<Duration>,
    /// When the latest drill started.
    pub last_started_at: Option<Timestamp>,
    /// Active versions that never passed a drill.
    pub never_passed: u64,
    /// Active versions whose drill is due now.
    pub due: u64,
    /// The age of the stalest last passed drill among the active versions
    /// that passed one (the alert fires past 100 days).
    pub oldest_pass_age: Option<Duration>,
}

impl DrillMetrics {
    /// Passed over all drills; `None` before the first drill.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.passed, self.drills)
    }

    /// The mean of [`DrillMetrics::recent_durations`].
    #[must_use]
    pub fn mean_recent_duration(&self) -> Option<Duration> {
        let count = u32::try_from(self.recent_durations.len()).ok()?;
        let total: Duration = self.recent_durations.iter().sum();
        total.checked_div(count)
    }

    fn from_stats(stats: &DrillStats) -> Self {
        Self {
            drills: stats.drills,
            passed: stats.passed,
            recent_durations: stats
                .recent
                .iter()
                .map(|drill| {
                    Duration::from_millis(
                        drill
                            .summary
                            .finished_at
                            .as_unix_millis()
                            .saturating_sub(drill.summary.started_at.as_unix_millis()),
                    )
                })
                .collect(),
            last_started_at: stats
                .recent
                .iter()
                .map(|drill| drill.summary.started_at)
                .max(),
            never_passed: 0,
            due: 0,
            oldest_pass_age: None,
        }
    }
}

/// Everything the service exports, at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// When it was taken.
    pub at: Timestamp,
    /// Totals over the versions that are not retired.
    pub totals: StatusSummary,
    /// Versions (not retired) the custodians alone can rebuild.
    pub recoverable: u64,
    /// Versions (not retired) made under another policy than the one in
    /// force.
    pub needs_regeneration: u64,
    /// Deliveries.
    pub delivery: DeliveryMetrics,
    /// Drills.
    pub drills: DrillMetrics,
    /// Access anomalies recorded, by kind.
    pub anomalies: Vec<(Label, u64)>,
}

impl MetricsSnapshot {
    /// Recoverable versions over versions (not retired): the coverage;
    /// `None` with no version. The alert fires below 1.
    #[must_use]
    pub fn coverage(&self) -> Option<f64> {
        ratio(self.recoverable, self.totals.versions)
    }

    /// Versions (not retired) that are not recoverable.
    #[must_use]
    pub const fn not_recoverable(&self) -> u64 {
        self.totals.versions.saturating_sub(self.recoverable)
    }

    /// Anomalies of all kinds.
    #[must_use]
    pub fn anomaly_total(&self) -> u64 {
        self.anomalies.iter().map(|(_, count)| count).sum()
    }
}

/// `part / whole`, `None` for an empty whole.
#[allow(clippy::cast_precision_loss)] // A rate for a dashboard: 2^52 and beyond is not a count this holds.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole != 0).then(|| part as f64 / whole as f64)
}

impl<S: Storage> BackupService<S>
where
    S::Transaction: GroupStore + StatusStore + AccessControlStore,
{
    /// The metrics snapshot, computed from storage in one read-only
    /// transaction.
    ///
    /// # Errors
    /// Storage failures (a privilege violation is recorded as an anomaly).
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, Error> {
        match self.metrics().await {
            Err(Error::Storage(storage)) => {
                self.report_storage_error(None, &storage).await?;
                Err(Error::Storage(storage))
            }
            other => other,
        }
    }

    async fn metrics(&self) -> Result<MetricsSnapshot, Error> {
        let mut tx = self.begin_read_only().await?;
        let snapshot = self.metrics_in(&mut tx).await?;
        drop(tx);
        Ok(snapshot)
    }

    /// The metrics snapshot, read in `tx`.
    pub(crate) async fn metrics_in(
        &self,
        tx: &mut S::Transaction,
    ) -> Result<MetricsSnapshot, Error> {
        let now = self.now();
        let filter = StatusFilter::default();
        let totals = tx.status_summary(&filter).await?;
        let delivery = DeliveryMetrics::from(tx.delivery_stats().await?);
        let mut drills = DrillMetrics::from_stats(&tx.drill_stats(RECENT_DRILLS).await?);
        let anomalies = tx.anomaly_counts().await?;
        let context = StatusContext {
            now,
            drill_interval: self.config().drill_interval,
            policy: tx
                .current_policy()
                .await?
                .map(|policy| (policy.hash, policy.set_at)),
        };
        let mut recoverable = 0u64;
        let mut needs_regeneration = 0u64;
        let mut oldest_pass: Option<Timestamp> = None;
        let mut after: Option<NodeVersion> = None;
        loop {
            let rows = tx
                .status_page(&filter, after.as_ref(), MAX_PAGE_ROWS)
                .await?;
            for row in &rows {
                let status = context.version_status(row, ExposureState::NotApplicable)?;
                recoverable += u64::from(status.recoverable);
                needs_regeneration += u64::from(status.needs_regeneration);
                if status.state != KeyVersionState::Active {
                    continue;
                }
                match status.last_passed_drill_at {
                    None => drills.never_passed += 1,
                    Some(passed) => {
                        oldest_pass = Some(oldest_pass.map_or(passed, |oldest| oldest.min(passed)));
                    }
                }
                drills.due += u64::from(status.next_drill.is_some_and(|due| due.overdue));
            }
            match rows.last() {
                Some(last)
                    if rows.len() >= usize::try_from(MAX_PAGE_ROWS).unwrap_or(usize::MAX) =>
                {
                    after = Some(last.version.clone());
                }
                _ => break,
            }
        }
        drills.oldest_pass_age = oldest_pass.map(|passed| {
            Duration::from_millis(now.as_unix_millis().saturating_sub(passed.as_unix_millis()))
        });
        Ok(MetricsSnapshot {
            at: now,
            totals,
            recoverable,
            needs_regeneration,
            delivery,
            drills,
            anomalies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_none_on_empty_wholes() {
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(3, 4), Some(0.75));
        let drills = DrillMetrics {
            drills: 0,
            passed: 0,
            recent_durations: vec![],
            last_started_at: None,
            never_passed: 0,
            due: 0,
            oldest_pass_age: None,
        };
        assert_eq!(drills.success_rate(), None);
        assert_eq!(drills.mean_recent_duration(), None);
        let drills = DrillMetrics {
            recent_durations: vec![Duration::from_secs(10), Duration::from_secs(20)],
            ..drills
        };
        assert_eq!(drills.mean_recent_duration(), Some(Duration::from_secs(15)));
    }
}

//! What the service's metrics exporter and read-only status page show:
//! the metrics snapshot, the status of every version that is not retired
//! and of every retired one whose destruction statements are still
//! outstanding, the audit head and the last witnessed checkpoint, read in
//! one read-only transaction.
//!
//! Like the metrics snapshot, it is read by the exporter, not by a person:
//! it is neither rate limited nor audited, and it writes nothing (a
//! privilege violation of the storage role is recorded as an anomaly, as
//! for every storage error of the service).

use shardkeep_audit::Checkpoint;
use shardkeep_storage::{
    AccessControlStore, AuditStore, DestructionStore, GroupStore, KeyVersionState, MAX_PAGE_ROWS,
    StatusFilter, StatusStore, Storage, VersionStatusRow,
};
use shardkeep_types::{AuditHead, NodeVersion};

use crate::error::Error;
use crate::metrics::MetricsSnapshot;
use crate::service::BackupService;
use crate::status::{ExposureState, StatusContext, VersionStatus};

/// Everything the exporter and the status page show, at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExporterSnapshot {
    /// The aggregate metrics.
    pub metrics: MetricsSnapshot,
    /// The status of every version that is not retired (active and
    /// retiring), ordered by key, node and version, with its exposure and,
    /// for a retiring version, its outstanding destruction statements.
    pub versions: Vec<VersionStatus>,
    /// The status of every retired version (re-split, its cooldown over)
    /// whose old containers' destruction statements are still
    /// outstanding, ordered by key, node and version: retirement does not
    /// excuse a custodian from destroying the old container.
    pub retired_with_outstanding_destructions: Vec<VersionStatus>,
    /// The head of the audit chain.
    pub audit_head: AuditHead,
    /// The checkpoint stored last (the copy kept beside the audit table of
    /// what the witness took); `None` before the first checkpoint.
    pub last_checkpoint: Option<Checkpoint>,
}

impl<S: Storage> BackupService<S>
where
    S::Transaction: GroupStore + StatusStore + AccessControlStore + AuditStore,
{
    /// The exporter's snapshot, computed in one read-only transaction:
    /// the storage queries of [`BackupService::metrics_snapshot`], one
    /// status query per [`MAX_PAGE_ROWS`] versions (retired ones included)
    /// plus two per group key (exposure), a few per retiring version
    /// (destruction statements) and per retired version with external
    /// containers not all covered by a statement, the audit head and the
    /// last checkpoint.
    ///
    /// # Errors
    /// Storage failures (a privilege violation is recorded as an anomaly);
    /// [`Error::Audit`] when the stored checkpoint does not parse.
    pub async fn exporter_snapshot(&self) -> Result<ExporterSnapshot, Error> {
        match self.exporter().await {
            Err(Error::Storage(storage)) => {
                self.report_storage_error(None, &storage).await?;
                Err(Error::Storage(storage))
            }
            other => other,
        }
    }

    async fn exporter(&self) -> Result<ExporterSnapshot, Error> {
        let mut tx = self.begin_read_only().await?;
        let metrics = self.metrics_in(&mut tx).await?;
        let context = StatusContext {
            now: metrics.at,
            drill_interval: self.config().drill_interval,
            policy: tx
                .current_policy()
                .await?
                .map(|policy| (policy.hash, policy.set_at)),
        };
        // Retired versions too, in the same pass: the ones whose
        // destruction statements are outstanding are shown.
        let filter = StatusFilter {
            include_retired: true,
            ..StatusFilter::default()
        };
        let mut versions = Vec::new();
        let mut retired_with_outstanding_destructions = Vec::new();
        let mut after: Option<NodeVersion> = None;
        loop {
            let rows = tx
                .status_page(&filter, after.as_ref(), MAX_PAGE_ROWS)
                .await?;
            let (retired, unretired): (Vec<_>, Vec<_>) = rows
                .iter()
                .cloned()
                .partition(|row| matches!(row.state, KeyVersionState::Retired { .. }));
            versions.extend(self.statuses_of(&mut tx, &unretired, &context).await?);
            for row in &retired {
                if let Some(status) = self.retired_outstanding(&mut tx, row, &context).await? {
                    retired_with_outstanding_destructions.push(status);
                }
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
        let audit_head = tx.audit_head().await?;
        let last_checkpoint = match tx.latest_checkpoint().await? {
            None => None,
            Some(stored) => Some(Checkpoint::parse_line(&stored.checkpoint).map_err(|error| {
                Error::Audit(shardkeep_audit::Error::Witness { line: 0, error })
            })?),
        };
        drop(tx);
        Ok(ExporterSnapshot {
            metrics,
            versions,
            retired_with_outstanding_destructions,
            audit_head,
            last_checkpoint,
        })
    }

    /// The status of the retired version of `row` if destruction
    /// statements of its old containers are outstanding. A version without
    /// external containers, or with a statement for each, is passed over
    /// with at most one query: only the rest are checked for having been
    /// replaced by a re-split (the versions whose containers must be
    /// destroyed).
    async fn retired_outstanding(
        &self,
        tx: &mut S::Transaction,
        row: &VersionStatusRow,
        context: &StatusContext,
    ) -> Result<Option<VersionStatus>, Error> {
        if row.external_assigned == 0
            || tx.destruction_statements(&row.version).await?.len()
                >= usize::from(row.external_assigned)
        {
            return Ok(None);
        }
        let outstanding = self.outstanding_of(tx, &row.version).await?;
        if outstanding.is_empty() {
            return Ok(None);
        }
        let mut status = context.version_status(row, ExposureState::NotApplicable)?;
        status.outstanding_destructions = outstanding;
        Ok(Some(status))
    }
}

//! The service's state as Open Metrics series, encoded from one
//! [`ExporterSnapshot`] per scrape. Every series is documented in the
//! crate's README (section "The metrics port").

use core::fmt;
use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use shardkeep_backup::{ExporterSnapshot, ExposureState, VersionStatus};
use shardkeep_storage::KeyVersionState;
use shardkeep_types::Timestamp;

/// Most delivery failure reasons exported under their own label; the
/// rest are summed under `other`. Reasons are operator text: this bounds
/// the series however many distinct ones are recorded.
pub const MAX_FAILURE_REASONS: usize = 10;

/// The label of the failure reasons beyond [`MAX_FAILURE_REASONS`].
const OTHER_REASONS: &str = "other";

/// Seconds since the Unix epoch.
#[allow(clippy::cast_precision_loss)] // Milliseconds since 1970 stay far below 2^53.
fn seconds(at: Timestamp) -> f64 {
    at.as_unix_millis() as f64 / 1000.0
}

/// A count as a sample value.
#[allow(clippy::cast_precision_loss)] // Counts and sequences stay far below 2^53.
fn as_f64(count: u64) -> f64 {
    count as f64
}

/// `part / whole`, `None` for an empty whole.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole != 0).then(|| as_f64(part) / as_f64(whole))
}

/// A length as a count.
fn len(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// Encodes the series of a snapshot, or only `shardkeep_exporter_up 0`
/// when the snapshot could not be taken.
#[derive(Debug)]
pub(crate) struct SnapshotCollector {
    pub(crate) snapshot: Option<Arc<ExporterSnapshot>>,
    /// Snapshots that failed since the port started.
    pub(crate) failures: u64,
}

/// Writes one series family at a time.
struct Out<'a>(DescriptorEncoder<'a>);

impl Out<'_> {
    fn metric(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        value: &impl EncodeMetric,
    ) -> fmt::Result {
        let encoder = self.0.encode_descriptor(name, help, None, kind)?;
        value.encode(encoder)
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Into<f64>) -> fmt::Result {
        let value: f64 = value.into();
        self.metric(name, help, MetricType::Gauge, &ConstGauge::new(value))
    }

    fn count(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.metric(name, help, MetricType::Gauge, &ConstGauge::new(value))
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.metric(name, help, MetricType::Counter, &ConstCounter::new(value))
    }

    /// A gauge that has no sample when `value` is `None` (a rate of
    /// nothing is undefined, not 0 or 1).
    fn optional_gauge(&mut self, name: &str, help: &str, value: Option<f64>) -> fmt::Result {
        let encoder = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        match value {
            Some(value) => ConstGauge::new(value).encode(encoder),
            None => Ok(()),
        }
    }

    /// One sample per label set.
    fn labelled<'v, V: EncodeMetric + 'v>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: impl IntoIterator<Item = (Vec<(&'static str, &'v str)>, V)>,
    ) -> fmt::Result {
        let mut encoder = self.0.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in samples {
            value.encode(encoder.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The version of each (key, node) the per-node series show: the newest
/// that is not retired (`versions` is ordered by key, node and version).
fn newest_per_node(versions: &[VersionStatus]) -> impl Iterator<Item = &VersionStatus> {
    versions.iter().enumerate().filter_map(|(at, status)| {
        let replaced = versions.get(at + 1).is_some_and(|next| {
            next.version.key_id == status.version.key_id
                && next.version.node_id == status.version.node_id
        });
        (!replaced).then_some(status)
    })
}

/// Exposed active nodes per group key (every key with an active version
/// appears, with 0 when none is exposed).
fn exposed_per_key(versions: &[VersionStatus]) -> BTreeMap<&str, u64> {
    let mut per_key = BTreeMap::new();
    for status in versions
        .iter()
        .filter(|status| status.state == KeyVersionState::Active)
    {
        *per_key.entry(status.version.key_id.as_str()).or_insert(0) +=
            u64::from(matches!(status.exposure, ExposureState::Exposed { .. }));
    }
    per_key
}

impl SnapshotCollector {
    fn write(&self, out: &mut Out<'_>) -> fmt::Result {
        out.counter(
            "shardkeep_exporter_snapshot_failures",
            "Snapshots of the service state that failed since the metrics port started",
            self.failures,
        )?;
        let Some(snapshot) = &self.snapshot else {
            return out.gauge(
                "shardkeep_exporter_up",
                "1 when the service state below was read for this scrape, 0 when it could not be",
                0u8,
            );
        };
        out.gauge(
            "shardkeep_exporter_up",
            "1 when the service state below was read for this scrape, 0 when it could not be",
            1u8,
        )?;
        let metrics = &snapshot.metrics;
        out.gauge(
            "shardkeep_snapshot_timestamp_seconds",
            "When the service state below was read",
            seconds(metrics.at),
        )?;

        // Coverage and recoverability.
        out.count(
            "shardkeep_versions",
            "Key versions that are not retired",
            metrics.totals.versions,
        )?;
        out.count(
            "shardkeep_versions_recoverable",
            "Key versions (not retired) the custodians alone can rebuild: at least t confirmed external shares",
            metrics.recoverable,
        )?;
        out.count(
            "shardkeep_versions_not_recoverable",
            "Key versions (not retired) the custodians alone cannot rebuild",
            metrics.not_recoverable(),
        )?;
        out.count(
            "shardkeep_versions_needing_regeneration",
            "Key versions (not retired) made under another policy than the one in force",
            metrics.needs_regeneration,
        )?;
        out.optional_gauge(
            "shardkeep_coverage_ratio",
            "Recoverable versions over versions (not retired); no sample without versions",
            metrics.coverage(),
        )?;
        let nodes: Vec<&VersionStatus> = newest_per_node(&snapshot.versions).collect();
        out.labelled(
            "shardkeep_node_recoverable",
            "1 when the custodians alone can rebuild the node's newest unretired version, else 0",
            MetricType::Gauge,
            nodes.iter().map(|status| {
                (
                    node_labels(status),
                    ConstGauge::new(i64::from(status.recoverable)),
                )
            }),
        )?;
        out.labelled(
            "shardkeep_node_coverage_ratio",
            "Confirmed external shares over external shares of the node's newest unretired version",
            MetricType::Gauge,
            nodes.iter().filter_map(|status| {
                ratio(
                    u64::from(status.external_confirmed),
                    u64::from(status.external_shares),
                )
                .map(|coverage| (node_labels(status), ConstGauge::new(coverage)))
            }),
        )?;

        // Deliveries.
        let delivery = &metrics.delivery;
        out.count(
            "shardkeep_delivery_assigned_slots",
            "External share slots (versions not retired) mapped to a custodian",
            delivery.assigned,
        )?;
        out.count(
            "shardkeep_delivery_confirmed_slots",
            "External share slots (versions not retired) with a confirmed delivery receipt",
            delivery.confirmed,
        )?;
        out.count(
            "shardkeep_delivery_pending_slots",
            "External share slots (versions not retired) mapped but without a confirmed receipt",
            delivery.assigned.saturating_sub(delivery.confirmed),
        )?;
        out.optional_gauge(
            "shardkeep_delivery_confirmation_ratio",
            "Confirmed over assigned external slots; no sample with none assigned",
            delivery.confirmation_rate(),
        )?;
        out.counter(
            "shardkeep_delivery_attempts",
            "Delivery attempts recorded (versions not retired)",
            delivery.attempts,
        )?;
        out.counter(
            "shardkeep_delivery_failed_attempts",
            "Failed delivery attempts recorded (versions not retired), whatever the reason",
            delivery.failed,
        )?;
        let mut reasons: Vec<(&str, u64)> = delivery
            .failure_reasons
            .iter()
            .take(MAX_FAILURE_REASONS)
            .map(|(reason, count)| (reason.as_str(), *count))
            .collect();
        let other: u64 = delivery
            .failure_reasons
            .iter()
            .skip(MAX_FAILURE_REASONS)
            .map(|(_, count)| count)
            .sum();
        if other > 0 {
            reasons.push((OTHER_REASONS, other));
        }
        out.labelled(
            "shardkeep_delivery_failures",
            "Failed delivery attempts by the reason recorded (the most frequent reasons; the rest as \"other\")",
            MetricType::Counter,
            reasons
                .into_iter()
                .map(|(reason, count)| (vec![("reason", reason)], ConstCounter::new(count))),
        )?;

        // Drills.
        let drills = &metrics.drills;
        out.counter("shardkeep_drills", "Drill reports", drills.drills)?;
        out.counter(
            "shardkeep_drills_passed",
            "Drill reports that passed",
            drills.passed,
        )?;
        out.optional_gauge(
            "shardkeep_drill_success_ratio",
            "Passed over all drill reports; no sample before the first drill",
            drills.success_rate(),
        )?;
        out.optional_gauge(
            "shardkeep_drill_last_duration_seconds",
            "How long the latest drill took",
            drills
                .recent_durations
                .first()
                .map(std::time::Duration::as_secs_f64),
        )?;
        out.optional_gauge(
            "shardkeep_drill_last_start_timestamp_seconds",
            "When the latest drill started",
            drills.last_started_at.map(seconds),
        )?;
        out.optional_gauge(
            "shardkeep_drill_oldest_pass_age_seconds",
            "Age of the stalest last passed drill among the active versions that passed one",
            drills.oldest_pass_age.map(|age| age.as_secs_f64()),
        )?;
        out.count(
            "shardkeep_versions_never_drilled",
            "Active versions that never passed a drill",
            drills.never_passed,
        )?;
        out.count(
            "shardkeep_versions_drill_due",
            "Active versions whose drill is due now",
            drills.due,
        )?;

        // Exposure, destructions, anomalies.
        out.labelled(
            "shardkeep_exposed_nodes",
            "Active nodes of a group key that the server's shares and one custodian could rebuild beyond the group's tss-lib threshold",
            MetricType::Gauge,
            exposed_per_key(&snapshot.versions)
                .into_iter()
                .map(|(key, count)| (vec![("key_id", key)], ConstGauge::new(count))),
        )?;
        out.count(
            "shardkeep_versions_exposure_unknown",
            "Active versions whose group key is not registered (its exposure cannot be computed)",
            len(snapshot
                .versions
                .iter()
                .filter(|status| status.exposure == ExposureState::UnknownGroup)
                .count()),
        )?;
        out.count(
            "shardkeep_destructions_outstanding",
            "Old containers of re-split versions (retiring or retired) whose custodians have not signed a destruction statement",
            snapshot
                .versions
                .iter()
                .chain(&snapshot.retired_with_outstanding_destructions)
                .map(|status| len(status.outstanding_destructions.len()))
                .sum(),
        )?;
        out.labelled(
            "shardkeep_access_anomalies",
            "Access anomalies recorded, by kind",
            MetricType::Counter,
            metrics
                .anomalies
                .iter()
                .map(|(kind, count)| (vec![("kind", kind.as_str())], ConstCounter::new(*count))),
        )?;

        // The audit log.
        out.count(
            "shardkeep_audit_head_sequence",
            "Sequence number of the audit chain's head",
            snapshot.audit_head.sequence,
        )?;
        out.optional_gauge(
            "shardkeep_audit_checkpoint_sequence",
            "Sequence number of the last witnessed checkpoint",
            snapshot
                .last_checkpoint
                .as_ref()
                .map(|checkpoint| as_f64(checkpoint.sequence)),
        )?;
        out.optional_gauge(
            "shardkeep_audit_checkpoint_timestamp_seconds",
            "When the last witnessed checkpoint was signed",
            snapshot
                .last_checkpoint
                .as_ref()
                .map(|checkpoint| seconds(checkpoint.signed_at)),
        )
    }
}

/// The per-node labels: the group key and the node (public identifiers).
fn node_labels(status: &VersionStatus) -> Vec<(&'static str, &str)> {
    vec![
        ("key_id", status.version.key_id.as_str()),
        ("node_id", status.version.node_id.as_str()),
    ]
}

impl Collector for SnapshotCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.write(&mut Out(encoder))
    }
}

//! Refusals at the edge: requests whose client certificate names nobody
//! (none, unknown, a revoked person's). They never reach the procedure
//! (there is no person to audit them against), so they are counted here
//! and reported as `tracing` events, rate-limited: a scanner trying
//! certificate after certificate must not flood the log. Unknown and
//! revoked certificates are also recorded as durable anomalies by the
//! backup service (bounded there per fingerprint and per window); this
//! process asks for each fingerprint at most once per window, so a flood
//! from one certificate costs the database nothing past its first request.

use core::fmt;
use core::time::Duration;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use shardkeep_backup::{CERTIFICATE_ANOMALIES_PER_WINDOW, CERTIFICATE_ANOMALY_WINDOW};

use tokio::time::Instant;

use crate::error::Error;
use crate::identity::CertificateFingerprint;

/// The window edge refusals are reported in.
pub const EDGE_REPORT_WINDOW: Duration = Duration::from_secs(60);

/// Edge refusals reported one by one per window, over every kind and
/// certificate together (a scanner rotating certificates gets no more):
/// the rest are only counted, and reported as one summary event when the
/// next window starts.
pub const EDGE_REPORTS_PER_WINDOW: u64 = 20;

/// How many edge refusals this service has seen since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EdgeRefusalCounts {
    /// Requests without a client certificate (only a connection that
    /// bypassed the TLS configuration gets that far).
    pub no_certificate: u64,
    /// Requests with a certificate no registered person has.
    pub unknown_certificate: u64,
    /// Requests with a revoked person's certificate.
    pub revoked_person: u64,
    /// Of all these, how many were reported one by one.
    pub reported: u64,
    /// And how many were only counted (over the window's budget).
    pub suppressed: u64,
}

impl EdgeRefusalCounts {
    /// Every edge refusal.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.no_certificate + self.unknown_certificate + self.revoked_person
    }
}

struct State {
    counts: EdgeRefusalCounts,
    window_start: Instant,
    reported_in_window: u64,
    suppressed_in_window: u64,
    anomaly_window_start: Instant,
    /// The fingerprints sent to be recorded as anomalies in the current
    /// anomaly window (at most the backup service's budget).
    anomalies_in_window: HashSet<[u8; 32]>,
}

/// The edge refusals of one service: a handle, cheap to clone, that the
/// host (its metrics) reads.
#[derive(Clone)]
pub struct EdgeRefusals {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for EdgeRefusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeRefusals")
            .field("counts", &self.counts())
            .finish()
    }
}

impl Default for EdgeRefusals {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                counts: EdgeRefusalCounts::default(),
                window_start: Instant::now(),
                reported_in_window: 0,
                suppressed_in_window: 0,
                anomaly_window_start: Instant::now(),
                anomalies_in_window: HashSet::new(),
            })),
        }
    }
}

impl EdgeRefusals {
    /// The counts so far.
    #[must_use]
    pub fn counts(&self) -> EdgeRefusalCounts {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts
    }

    /// Whether the refusal of `fingerprint` should be recorded as a durable
    /// anomaly: the first time in the window this process sees it, while
    /// fewer than the backup service's budget of fingerprints were sent in
    /// the window (the database bounds them again over every replica).
    pub(crate) fn anomaly_due(&self, fingerprint: &CertificateFingerprint) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(state.anomaly_window_start) >= CERTIFICATE_ANOMALY_WINDOW {
            state.anomaly_window_start = now;
            state.anomalies_in_window.clear();
        }
        let budget = usize::try_from(CERTIFICATE_ANOMALIES_PER_WINDOW).unwrap_or(usize::MAX);
        if state.anomalies_in_window.len() >= budget {
            return false;
        }
        state.anomalies_in_window.insert(fingerprint.0)
    }

    /// Counts `error` if it is an edge refusal of `method`, and reports it
    /// unless the window's budget is spent.
    pub(crate) fn record(&self, method: &str, error: &Error) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match error {
            Error::NoClientCertificate => state.counts.no_certificate += 1,
            Error::UnknownCertificate { .. } => state.counts.unknown_certificate += 1,
            Error::PersonRevoked(_) => state.counts.revoked_person += 1,
            _ => return,
        }
        let now = Instant::now();
        if now.duration_since(state.window_start) >= EDGE_REPORT_WINDOW {
            if state.suppressed_in_window > 0 {
                tracing::warn!(
                    target: "shardkeep_grpc::edge",
                    suppressed = state.suppressed_in_window,
                    "edge refusals over the report budget in the last window"
                );
            }
            state.window_start = now;
            state.reported_in_window = 0;
            state.suppressed_in_window = 0;
        }
        if state.reported_in_window < EDGE_REPORTS_PER_WINDOW {
            state.reported_in_window += 1;
            state.counts.reported += 1;
            // Public values only: a certificate's fingerprint, a person's
            // id.
            match error {
                Error::UnknownCertificate { fingerprint } => tracing::warn!(
                    target: "shardkeep_grpc::edge",
                    method,
                    fingerprint = %fingerprint,
                    "refused: client certificate not registered"
                ),
                Error::PersonRevoked(person) => tracing::warn!(
                    target: "shardkeep_grpc::edge",
                    method,
                    person = %person,
                    "refused: client certificate of a revoked person"
                ),
                _ => tracing::warn!(
                    target: "shardkeep_grpc::edge",
                    method,
                    "refused: no client certificate"
                ),
            }
        } else {
            state.suppressed_in_window += 1;
            state.counts.suppressed += 1;
        }
    }
}

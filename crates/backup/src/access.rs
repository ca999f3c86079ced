//! Rate limits and access anomalies.
//!
//! Share reads, recovery attempts and inspect calls are limited per person
//! in fixed windows aligned to the Unix epoch (every replica computes the
//! same window), with the counters in the database, so replicas sharing one
//! database share the limits. A call over the limit is refused with
//! [`Error::RateLimited`] and recorded as an anomaly: an anomaly record
//! (storage's access log of anomalies) and an audit record, committed even
//! though the call is refused.
//!
//! Other anomalies: repeated rejected shares or inventory proofs from one
//! person in a window, and privilege violations (the database refusing a
//! statement the service role may not run, such as an audit UPDATE).

use core::fmt;
use std::time::Duration;

use shardkeep_audit::{EventType, Outcome};
use shardkeep_storage::{AccessControlStore, AnomalyRecord, Storage, Transaction};
use shardkeep_types::{ActorId, FreeText, Label, ShareSlot, Timestamp};

use crate::config::RateLimit;
use crate::error::Error;
use crate::service::BackupService;

/// What a rate counter counts, per person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateKind {
    /// Reads of server-held shares (limit: `share_read_limit`).
    ShareRead,
    /// Recovery attempts: sessions started, shares submitted (limit:
    /// `recovery_attempt_limit`).
    RecoveryAttempt,
    /// Status, listing and inventory calls (limit: `inspect_limit`).
    Inspect,
    /// Rejected inventory proofs (past `bad_share_anomaly_threshold` in
    /// `bad_share_window`: an anomaly, not a refusal).
    BadInventoryProof,
    /// Rejected recovery shares (as [`RateKind::BadInventoryProof`]).
    BadShare,
}

impl RateKind {
    /// The counter's name in the database.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ShareRead => "share-read",
            Self::RecoveryAttempt => "recovery-attempt",
            Self::Inspect => "inspect",
            Self::BadInventoryProof => "bad-inventory-proof",
            Self::BadShare => "bad-share",
        }
    }

    fn label(self) -> Result<Label, Error> {
        Ok(Label::new(self.name())?)
    }
}

impl fmt::Display for RateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of access anomaly was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// A person went over a rate limit (a burst).
    RateLimited,
    /// The database refused a statement the service role may not run.
    PrivilegeViolation,
    /// Rejected inventory proofs from one person past the threshold.
    RepeatedBadProofs,
    /// Rejected recovery shares from one person past the threshold.
    RepeatedBadShares,
    /// A client certificate no registered person has (signed by the
    /// trusted CA, so issued to someone) was presented.
    UnknownCertificate,
    /// A revoked person's client certificate was presented.
    RevokedCertificate,
}

impl AnomalyKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::RateLimited,
        Self::PrivilegeViolation,
        Self::RepeatedBadProofs,
        Self::RepeatedBadShares,
        Self::UnknownCertificate,
        Self::RevokedCertificate,
    ];

    /// The kind's name, as stored and exported.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RateLimited => "rate-limited",
            Self::PrivilegeViolation => "privilege-violation",
            Self::RepeatedBadProofs => "repeated-bad-proofs",
            Self::RepeatedBadShares => "repeated-bad-shares",
            Self::UnknownCertificate => "unknown-certificate",
            Self::RevokedCertificate => "revoked-certificate",
        }
    }

    fn label(self) -> Result<Label, Error> {
        Ok(Label::new(self.name())?)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The window certificate anomalies are bounded in: one durable record per
/// certificate fingerprint per window, at most
/// [`CERTIFICATE_ANOMALIES_PER_WINDOW`] over every certificate.
pub const CERTIFICATE_ANOMALY_WINDOW: Duration = Duration::from_secs(60);

/// Certificate anomalies recorded per [`CERTIFICATE_ANOMALY_WINDOW`] over
/// every certificate and replica together: past it a flood of refused
/// certificates (each one issued by the trusted CA) adds nothing to the
/// database until the next window.
pub const CERTIFICATE_ANOMALIES_PER_WINDOW: u32 = 60;

/// The rate counter (its "person" column) every certificate anomaly counts
/// against, under the counter kind [`CERTIFICATE_BUDGET_KIND`].
const CERTIFICATE_BUDGET_COUNTER: &str = "edge:certificates";

/// The counter kind of [`CERTIFICATE_BUDGET_COUNTER`].
const CERTIFICATE_BUDGET_KIND: &str = "certificate-anomalies";

/// The rate counter of one certificate fingerprint: `cert:` and the first
/// 29 bytes in hex (the counter's key holds at most 64 bytes; a collision
/// of 232 bits would only merge two certificates' budgets). Counted under
/// the anomaly kind's name, apart from every person's counters.
fn certificate_counter(fingerprint: &[u8; 32]) -> Result<ActorId, Error> {
    Ok(ActorId::new(format!(
        "cert:{}",
        hex::encode(&fingerprint[..29])
    ))?)
}

/// The fixed window of length `window` holding `now`: windows start at
/// multiples of `window` since the Unix epoch, so every replica computes
/// the same one. Returns (start, start of the next window).
pub(crate) fn window_bounds(now: Timestamp, window: Duration) -> (Timestamp, Timestamp) {
    let length = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let now_ms = now.as_unix_millis();
    let start_ms = now_ms - now_ms % length;
    // `start_ms <= now_ms`, a valid time.
    let start = Timestamp::from_unix_millis(start_ms).unwrap_or(now);
    // The next window may start beyond the last representable time: then
    // it never starts, and the latest time stands for it.
    let next = Timestamp::from_unix_millis(start_ms.saturating_add(length))
        .unwrap_or_else(|_| Timestamp::from_unix_millis(i64::MAX.unsigned_abs()).unwrap_or(now));
    (start, next)
}

/// Adds one to the counter of (`person`, `kind`, window) in `tx` and
/// returns the new count; a counter that cannot count further reads as
/// `u32::MAX`, certainly over any limit.
async fn bump<T: AccessControlStore + Send>(
    tx: &mut T,
    person: &ActorId,
    kind: &Label,
    window_start: Timestamp,
) -> Result<u32, Error> {
    match tx.bump_rate_counter(person, kind, window_start).await {
        Ok(count) => Ok(count),
        Err(shardkeep_storage::Error::CounterExhausted { .. }) => Ok(u32::MAX),
        Err(other) => Err(other.into()),
    }
}

/// Whether a counted event may go ahead.
#[derive(Debug)]
#[must_use]
pub(crate) enum RateCheck {
    /// Within the limit.
    Allowed,
    /// Over it: the anomaly and its audit record are written in the
    /// caller's transaction; commit it, then return the error.
    Refused(Error),
}

impl<S: Storage> BackupService<S>
where
    S::Transaction: AccessControlStore,
{
    /// The limit of `kind` in this service's configuration.
    fn limit_of(&self, kind: RateKind) -> RateLimit {
        let config = self.config();
        match kind {
            RateKind::ShareRead => config.share_read_limit,
            RateKind::RecoveryAttempt => config.recovery_attempt_limit,
            RateKind::Inspect => config.inspect_limit,
            RateKind::BadInventoryProof | RateKind::BadShare => RateLimit {
                max: config.bad_share_anomaly_threshold,
                window: config.bad_share_window,
            },
        }
    }

    /// Counts one event of `kind` by `person` inside `tx`. Over the limit,
    /// writes the anomaly and its audit record into `tx` and returns
    /// [`RateCheck::Refused`] with [`Error::RateLimited`]: the caller
    /// commits, so the refusal is recorded, and returns the error.
    ///
    /// # Errors
    /// Storage and audit failures.
    pub(crate) async fn count_in(
        &self,
        tx: &mut S::Transaction,
        person: &ActorId,
        kind: RateKind,
    ) -> Result<RateCheck, Error> {
        let limit = self.limit_of(kind);
        let now = self.now();
        let (window_start, retry_at) = window_bounds(now, limit.window);
        let count = bump(tx, person, &kind.label()?, window_start).await?;
        if count <= limit.max {
            return Ok(RateCheck::Allowed);
        }
        let error = Error::RateLimited {
            person: person.clone(),
            kind,
            count,
            limit: limit.max,
            retry_at,
        };
        self.anomaly_in(tx, AnomalyKind::RateLimited, Some(person), None, &error)
            .await?;
        Ok(RateCheck::Refused(error))
    }

    /// Counts one rejected submission (an inventory proof, a recovery
    /// share) by `person` inside `tx`; past the threshold in the window,
    /// records an anomaly there too. Never refuses anything itself: the
    /// submission is already refused.
    ///
    /// # Errors
    /// Storage and audit failures.
    pub(crate) async fn count_rejection_in(
        &self,
        tx: &mut S::Transaction,
        person: &ActorId,
        slot: Option<&ShareSlot>,
        kind: RateKind,
        rejection: &Error,
    ) -> Result<(), Error> {
        let limit = self.limit_of(kind);
        let (window_start, _) = window_bounds(self.now(), limit.window);
        let count = bump(tx, person, &kind.label()?, window_start).await?;
        if count > limit.max {
            let anomaly = match kind {
                RateKind::BadShare => AnomalyKind::RepeatedBadShares,
                _ => AnomalyKind::RepeatedBadProofs,
            };
            let why = format!(
                "{count} rejected ({kind}) in the current window, threshold {}; latest: {rejection}",
                limit.max
            );
            self.anomaly_in(tx, anomaly, Some(person), slot, &why)
                .await?;
        }
        Ok(())
    }

    /// Writes an anomaly record and its audit record (`access-denied`,
    /// failed, detail naming the anomaly) into `tx`.
    async fn anomaly_in(
        &self,
        tx: &mut S::Transaction,
        kind: AnomalyKind,
        person: Option<&ActorId>,
        slot: Option<&ShareSlot>,
        what: &(dyn fmt::Display + Sync),
    ) -> Result<(), Error> {
        let text = what.to_string();
        let anomaly = AnomalyRecord {
            kind: kind.label()?,
            person: person.cloned(),
            slot: slot.cloned(),
            at: self.now(),
            detail: FreeText::sanitized(&text)?,
        };
        tx.record_anomaly(&anomaly).await?;
        let version = slot.map(ShareSlot::node_version);
        // An anomaly with no known person (a privilege violation outside
        // any call) is recorded under the replica's own name.
        let operator = match person {
            Some(person) => person.clone(),
            None => ActorId::new(format!("replica:{}", self.config().replica_id))?,
        };
        let mut record = self.record(EventType::AccessDenied, &operator, version.as_ref());
        record.share_index = slot.map(|slot| slot.index);
        record.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&text)?,
        };
        record.detail = Some(FreeText::sanitized(&format!("anomaly: {kind}"))?);
        Self::audit(tx, &record).await
    }

    /// Records `error` as a privilege-violation anomaly when it is one
    /// (the database refused a statement the service role may not run),
    /// in a transaction of its own. Returns whether it was one.
    ///
    /// Every operation of this crate reports its storage errors here; the
    /// gRPC service and the CLI call it for errors they get from storage
    /// directly.
    ///
    /// # Errors
    /// Storage and audit failures while recording.
    pub async fn report_storage_error(
        &self,
        actor: Option<&ActorId>,
        error: &shardkeep_storage::Error,
    ) -> Result<bool, Error> {
        if !error.is_privilege_violation() {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        self.anomaly_in(&mut tx, AnomalyKind::PrivilegeViolation, actor, None, error)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a refused client certificate as a durable anomaly:
    /// [`AnomalyKind::UnknownCertificate`] when no registered person has
    /// it, [`AnomalyKind::RevokedCertificate`] (naming them) when
    /// `revoked_person` does. The record names the certificate by its
    /// SHA-256 fingerprint (public, as the certificate is), and carries its
    /// audit record (`access-denied`).
    ///
    /// Bounded so that a flood cannot grow the database: at most one record
    /// per fingerprint per [`CERTIFICATE_ANOMALY_WINDOW`], and at most
    /// [`CERTIFICATE_ANOMALIES_PER_WINDOW`] over every certificate, counted
    /// in the database (every replica shares the budget). Returns whether
    /// a record was written; a refusal over the budget changes nothing.
    ///
    /// # Errors
    /// Storage and audit failures.
    pub async fn record_certificate_refusal(
        &self,
        fingerprint: &[u8; 32],
        revoked_person: Option<&ActorId>,
    ) -> Result<bool, Error> {
        let kind = match revoked_person {
            None => AnomalyKind::UnknownCertificate,
            Some(_) => AnomalyKind::RevokedCertificate,
        };
        let (window_start, _) = window_bounds(self.now(), CERTIFICATE_ANOMALY_WINDOW);
        let mut tx = self.begin().await?;
        let seen = bump(
            &mut tx,
            &certificate_counter(fingerprint)?,
            &kind.label()?,
            window_start,
        )
        .await?;
        if seen > 1 {
            // Recorded already in this window: the count stays where it
            // was (one is all it needs to say).
            tx.rollback().await?;
            return Ok(false);
        }
        let budget = bump(
            &mut tx,
            &ActorId::new(CERTIFICATE_BUDGET_COUNTER)?,
            &Label::new(CERTIFICATE_BUDGET_KIND)?,
            window_start,
        )
        .await?;
        if budget > CERTIFICATE_ANOMALIES_PER_WINDOW {
            // Over the budget: nothing written, this certificate's own
            // count undone with it (it may be recorded next window).
            tx.rollback().await?;
            return Ok(false);
        }
        let hex = hex::encode(fingerprint);
        let what = match revoked_person {
            None => format!("client certificate sha256:{hex} is not registered"),
            Some(person) => format!("client certificate sha256:{hex} of revoked person {person}"),
        };
        self.anomaly_in(&mut tx, kind, revoked_person, None, &what)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Passes `result` through, recording a privilege violation in it as
    /// an anomaly first. A failure to record is returned instead: a
    /// privilege violation must not pass silently.
    pub(crate) async fn observed<T>(
        &self,
        actor: &ActorId,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        match result {
            Err(Error::Storage(storage)) => {
                self.report_storage_error(Some(actor), &storage).await?;
                Err(Error::Storage(storage))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        let minute = Duration::from_secs(60);
        assert_eq!(window_bounds(at(0), minute), (at(0), at(60_000)));
        assert_eq!(window_bounds(at(59_999), minute), (at(0), at(60_000)));
        assert_eq!(window_bounds(at(60_000), minute), (at(60_000), at(120_000)));
        let hour = Duration::from_secs(3600);
        assert_eq!(
            window_bounds(at(1_800_000_123_456), hour),
            (at(1_800_000_000_000), at(1_800_003_600_000))
        );
    }

    #[test]
    fn the_last_window_never_ends_past_the_last_time() {
        let last = i64::MAX.unsigned_abs();
        let (start, next) = window_bounds(at(last), Duration::from_secs(3600));
        assert!(start <= at(last));
        assert_eq!(next, at(last));
    }

    #[test]
    fn names_are_labels() {
        for kind in [
            RateKind::ShareRead,
            RateKind::RecoveryAttempt,
            RateKind::Inspect,
            RateKind::BadInventoryProof,
            RateKind::BadShare,
        ] {
            kind.label().unwrap();
        }
        for kind in AnomalyKind::ALL {
            kind.label().unwrap();
        }
    }

    proptest! {
        #[test]
        fn every_time_is_in_its_window(now in 0u64..=i64::MAX.unsigned_abs(), secs in 1u64..1_000_000) {
            let (start, next) = window_bounds(at(now), Duration::from_secs(secs));
            prop_assert!(start <= at(now));
            prop_assert!(at(now) < next || next == at(i64::MAX.unsigned_abs()));
            prop_assert_eq!(start.as_unix_millis() % (secs * 1000), 0);
        }
    }
}

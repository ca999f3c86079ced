//! Where the service's notion of "now" comes from.
//!
//! Every decision with a time in it (expiry of a challenge, a cooldown, a
//! drill falling due) reads the injected [`Clock`], never the system clock
//! directly, so that tests drive time and replicas agree on what they
//! compare.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shardkeep_types::Timestamp;

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move: for tests and for
/// replaying a procedure at fixed times.
#[derive(Debug)]
pub struct FixedClock {
    millis: AtomicU64,
}

impl FixedClock {
    /// A clock showing `at`.
    #[must_use]
    pub fn new(at: Timestamp) -> Self {
        Self {
            millis: AtomicU64::new(at.as_unix_millis()),
        }
    }

    /// Sets the time to `at` (it may go backwards: tests of refusals need
    /// that).
    pub fn set(&self, at: Timestamp) {
        self.millis.store(at.as_unix_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `by`, saturating at the largest time a
    /// [`Timestamp`] holds.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        let millis = self.millis.load(Ordering::SeqCst);
        // A fixed clock only ever holds values that came from a Timestamp,
        // or a saturated sum of one; fall back to the largest valid time.
        Timestamp::from_unix_millis(millis).unwrap_or_else(|_| latest_timestamp())
    }
}

/// The largest time a [`Timestamp`] holds (`i64::MAX` milliseconds, so that
/// every database stores it as a signed 64-bit integer).
fn latest_timestamp() -> Timestamp {
    Timestamp::from_unix_millis(i64::MAX.unsigned_abs()).unwrap_or(Timestamp::EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told() {
        let start = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let clock = FixedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            clock.now().as_unix_millis(),
            start.as_unix_millis() + 7 * 24 * 3600 * 1000
        );
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn a_fixed_clock_saturates_instead_of_wrapping() {
        let clock = FixedClock::new(Timestamp::from_unix_millis(1).unwrap());
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), latest_timestamp());
        assert!(clock.now() > Timestamp::from_unix_millis(1).unwrap());
    }
}

//! Timestamps.

use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// A point in time: milliseconds since the Unix epoch (UTC), at most
/// `i64::MAX` so that every database stores it as a signed 64-bit integer.
///
/// On the wire receipt and audit timestamps are a big-endian u64 of
/// milliseconds, and decoders refuse values above `i64::MAX`; the envelope's
/// `created_at` is whole UTC seconds (see [`Timestamp::from_unix_seconds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// Milliseconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] above `i64::MAX`.
    pub fn from_unix_millis(millis: u64) -> Result<Self, Error> {
        if i64::try_from(millis).is_err() {
            return Err(Error::TimestampOutOfRange(millis));
        }
        Ok(Self(millis))
    }

    /// Whole seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] when the time in milliseconds would be
    /// above `i64::MAX`.
    pub fn from_unix_seconds(seconds: u64) -> Result<Self, Error> {
        let millis = seconds
            .checked_mul(1000)
            .ok_or(Error::TimestampOutOfRange(seconds))?;
        Self::from_unix_millis(millis).map_err(|_| Error::TimestampOutOfRange(seconds))
    }

    /// The current system time. A clock set before 1970 reads as the epoch.
    #[must_use]
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        Self(
            u64::try_from(millis)
                .unwrap_or(u64::MAX)
                .min(i64::MAX.unsigned_abs()),
        )
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, the milliseconds dropped.
    #[must_use]
    pub const fn as_unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// This time plus `duration`, `None` past the representable range.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        Self::from_unix_millis(self.0.checked_add(millis)?).ok()
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-05T03:14:15.926Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0 % 1000;
        let seconds = self.0 / 1000;
        let (hour, minute, second) = (seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
        let (year, month, day) = civil_from_days(seconds / 86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_762_312_455_926, "2025-11-05T03:14:15.926Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(
                Timestamp::from_unix_millis(millis).unwrap().to_string(),
                text
            );
        }
    }

    #[test]
    fn timestamps_stay_in_i64() {
        assert!(Timestamp::from_unix_millis(i64::MAX.unsigned_abs()).is_ok());
        assert!(matches!(
            Timestamp::from_unix_millis(u64::MAX),
            Err(Error::TimestampOutOfRange(u64::MAX))
        ));
        assert!(
            Timestamp::from_unix_millis(i64::MAX.unsigned_abs())
                .unwrap()
                .checked_add(Duration::from_millis(1))
                .is_none()
        );
        assert!(Timestamp::now() > Timestamp::from_unix_millis(1_700_000_000_000).unwrap());
    }

    /// The last whole second whose milliseconds fit in an `i64`.
    const MAX_SECONDS: u64 = 9_223_372_036_854_775;

    proptest::proptest! {
        #[test]
        fn whole_seconds_round_trip_and_stay_in_i64_millis(
            seconds in proptest::prop_oneof![0..=MAX_SECONDS, MAX_SECONDS + 1..=u64::MAX]
        ) {
            let max_seconds = MAX_SECONDS;
            match Timestamp::from_unix_seconds(seconds) {
                Ok(time) => {
                    proptest::prop_assert!(seconds <= max_seconds);
                    proptest::prop_assert_eq!(time.as_unix_seconds(), seconds);
                    proptest::prop_assert_eq!(time.as_unix_millis(), seconds * 1000);
                }
                Err(error) => {
                    proptest::prop_assert!(seconds > max_seconds);
                    proptest::prop_assert!(matches!(error, Error::TimestampOutOfRange(s) if s == seconds));
                }
            }
        }

        /// Milliseconds round-trip exactly up to `i64::MAX`, and are refused
        /// above it.
        #[test]
        fn millis_round_trip_up_to_i64_max(millis in proptest::prelude::any::<u64>()) {
            match Timestamp::from_unix_millis(millis) {
                Ok(time) => proptest::prop_assert_eq!(time.as_unix_millis(), millis),
                Err(error) => {
                    proptest::prop_assert!(i64::try_from(millis).is_err());
                    proptest::prop_assert_eq!(error, Error::TimestampOutOfRange(millis));
                }
            }
        }
    }
}

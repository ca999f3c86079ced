//! Plain values shared by every record: time, actor names, labels, the
//! (key, node, version) triple, and the checks on free text and blobs.

use core::fmt;
use core::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shardkeep_envelope::{KeyId, KeyVersion, NodeId, ShareSlot};
use shardkeep_sss_core::ShareIndex;

use crate::error::Error;

/// A point in time: milliseconds since the Unix epoch (UTC), at most
/// `i64::MAX` so that every database stores it as a signed 64-bit integer.
///
/// Storage never reads the clock itself: callers pass the time, so every
/// replica and every test decides "now" in one place.
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

    /// This time plus `duration`, `None` past the representable range.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        Self::from_unix_millis(self.0.checked_add(millis)?).ok()
    }

    pub(crate) fn to_db(self) -> i64 {
        // The constructor keeps the value at or below i64::MAX.
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    pub(crate) fn from_db(value: i64) -> Option<Self> {
        u64::try_from(value).ok().map(Self)
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

/// Longest actor id or label, in bytes.
pub const MAX_LABEL_LEN: usize = 64;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $allowed:expr, $alphabet:literal) => {
        $(#[$doc])*
        ///
        #[doc = concat!("1-64 bytes of `", $alphabet, "`.")]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`Error::InvalidName`] when the name breaks the rule.
            pub fn new(name: impl Into<String>) -> Result<Self, Error> {
                let name = name.into();
                let allowed: fn(u8) -> bool = $allowed;
                if name.is_empty()
                    || name.len() > MAX_LABEL_LEN
                    || !name.bytes().all(allowed)
                {
                    return Err(Error::InvalidName {
                        what: $what,
                        len: name.len(),
                    });
                }
                Ok(Self(name))
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A person or service acting on the system: an operator, a requester,
    /// an approver, a reader of a sealed share.
    ActorId,
    "actor_id",
    |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-' | b'@'),
    "[A-Za-z0-9._:@-]"
);
name_type!(
    /// A short machine-readable word: an operation name, an approver role, a
    /// ticket reference, the purpose of a share read.
    Label,
    "label",
    |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'),
    "[A-Za-z0-9._:-]"
);

/// One rotation epoch of one node's share of one group key: the unit that
/// key versions, custody maps, drills and approvals refer to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeVersion {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share is backed up.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
}

impl NodeVersion {
    /// The share slot of `index` in this version.
    #[must_use]
    pub fn slot(&self, index: ShareIndex) -> ShareSlot {
        ShareSlot {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            version: self.version,
            index,
        }
    }
}

impl From<&ShareSlot> for NodeVersion {
    fn from(slot: &ShareSlot) -> Self {
        Self {
            key_id: slot.key_id.clone(),
            node_id: slot.node_id.clone(),
            version: slot.version,
        }
    }
}

impl fmt::Display for NodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.key_id, self.node_id, self.version)
    }
}

/// Checks free text (a contact, a failure reason): 1 to `max` bytes, no
/// control characters, so it prints safely in a terminal or a log.
pub(crate) fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), Error> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(Error::InvalidText {
            field,
            len: text.len(),
        });
    }
    Ok(())
}

/// Checks the length of an opaque blob against its cap.
pub(crate) fn check_blob(
    field: &'static str,
    blob: &[u8],
    min: usize,
    max: usize,
) -> Result<(), Error> {
    if blob.len() < min || blob.len() > max {
        return Err(Error::BlobLength {
            field,
            len: blob.len(),
            min,
            max,
        });
    }
    Ok(())
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

    #[test]
    fn names_follow_their_alphabet() {
        assert!(ActorId::new("ops.alice@example.com").is_ok());
        assert!(Label::new("ops.alice@example.com").is_err());
        assert!(Label::new("INC-1234").is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65), "a\n"] {
            assert!(ActorId::new(bad).is_err(), "{bad:?}");
            assert!(Label::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_refuses_control_characters() {
        assert!(check_text("contact", "Alice <alice@example.com>", 64).is_ok());
        assert!(check_text("contact", "", 64).is_err());
        assert!(check_text("contact", "a\u{1b}[2J", 64).is_err());
        assert!(check_text("contact", "abc", 2).is_err());
    }
}

//! How times are stored, and the checks on free text and blobs shared by
//! every record. The names and times themselves (`Timestamp`, `ActorId`,
//! `Label`, `NodeVersion`) are `shardkeep_envelope`'s.

use shardkeep_envelope::{Timestamp, is_free_text};

use crate::error::Error;

/// A timestamp as both databases store it: signed 64-bit milliseconds.
pub(crate) fn timestamp_to_db(at: Timestamp) -> i64 {
    // `Timestamp` keeps the value at or below i64::MAX.
    i64::try_from(at.as_unix_millis()).unwrap_or(i64::MAX)
}

/// A stored timestamp; `None` for a negative value (a row changed outside
/// this crate).
pub(crate) fn timestamp_from_db(value: i64) -> Option<Timestamp> {
    u64::try_from(value)
        .ok()
        .and_then(|millis| Timestamp::from_unix_millis(millis).ok())
}

/// Checks free text (a contact, a failure reason): 1 to `max` bytes, no
/// control characters, so it prints safely in a terminal or a log.
pub(crate) fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), Error> {
    if !is_free_text(text, max) {
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
    fn timestamps_round_trip_through_the_database_integer() {
        for millis in [0, 1_762_312_455_926, i64::MAX.unsigned_abs()] {
            let at = Timestamp::from_unix_millis(millis).unwrap();
            assert_eq!(timestamp_from_db(timestamp_to_db(at)), Some(at));
        }
        assert_eq!(timestamp_from_db(-1), None);
        assert_eq!(timestamp_from_db(i64::MIN), None);
    }

    #[test]
    fn text_refuses_control_characters() {
        assert!(check_text("contact", "Alice <alice@example.com>", 64).is_ok());
        assert!(check_text("contact", "", 64).is_err());
        assert!(check_text("contact", "a\u{1b}[2J", 64).is_err());
        assert!(check_text("contact", "abc", 2).is_err());
    }
}

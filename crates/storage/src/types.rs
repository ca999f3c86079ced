//! How times are stored, and the check on blobs shared by every record.
//! The names, times and free text themselves (`Timestamp`, `ActorId`,
//! `Label`, `NodeVersion`, `FreeText`) are `shardkeep_types`'.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use shardkeep_types::Timestamp;

use crate::error::Error;

/// A timestamp as both databases store it: signed 64-bit milliseconds.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn timestamp_to_db(at: Timestamp) -> i64 {
    // `Timestamp` keeps the value at or below i64::MAX.
    i64::try_from(at.as_unix_millis()).unwrap_or(i64::MAX)
}

/// A stored timestamp; `None` for a negative value (a row changed outside
/// this crate).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn timestamp_from_db(value: i64) -> Option<Timestamp> {
    u64::try_from(value)
        .ok()
        .and_then(|millis| Timestamp::from_unix_millis(millis).ok())
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
#[cfg(any(feature = "sqlite", feature = "postgres"))]
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
}

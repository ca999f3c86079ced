//! Pre-approved drill schedules: a drill needs a security approval or a
//! pre-approved schedule.
//!
//! A schedule is approved once, through the ordinary approvals: a drill
//! request (one security approval, no server shares, no target) whose
//! change hash is the hash of the schedule's canonical encoding
//! (`shkp-dsc`, below). The approver's tool decodes the schedule, shows it
//! ([`DrillSchedule::describe`]) and checks that its hash is the request's
//! change hash before signing the request. Within the schedule's window,
//! drills of the request's key version start on it
//! ([`start_scheduled_drill`](crate::BackupService::start_scheduled_drill))
//! without a per-drill approval, at most one per `cadence` (counted from
//! the start of the last session under the schedule, whatever became of
//! it); the approvers are checked again at each start, so revoking one
//! stops the schedule.
//!
//! Encoding, version 1: magic `shkp-dsc`, version byte, `not_before` and
//! `not_after` (unix milliseconds, u64 big-endian), `cadence` (seconds, u64
//! big-endian). Hash: `SHA-256("shardkeep/drill-schedule/v1" || encoding)`.

use core::fmt::Write as _;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shardkeep_types::Timestamp;
use shardkeep_wire::{Reader, check_total_len};

use crate::error::Error;

/// First bytes of an encoded drill schedule.
pub const DRILL_SCHEDULE_MAGIC: &[u8; 8] = b"shkp-dsc";
/// The drill schedule format version this build writes and reads.
pub const DRILL_SCHEDULE_VERSION: u8 = 1;
/// Domain tag of a schedule's hash (a drill request's change hash).
pub const DRILL_SCHEDULE_TAG: &[u8] = b"shardkeep/drill-schedule/v1";
/// Length of an encoded schedule.
pub const DRILL_SCHEDULE_LEN: usize = 8 + 1 + 8 + 8 + 8;
/// Shortest cadence: one drill a day at most.
pub const MIN_DRILL_CADENCE: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest window a schedule may cover: about 13 months (a yearly drill
/// plan with slack), after which it is approved again.
pub const MAX_DRILL_SCHEDULE_WINDOW: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// When drills of one key version may run without a per-drill approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillSchedule {
    /// The first time a drill may start.
    pub not_before: Timestamp,
    /// The time from which no drill starts (after `not_before`).
    pub not_after: Timestamp,
    /// The least time between the starts of two drills of the schedule
    /// (whole seconds, at least [`MIN_DRILL_CADENCE`]).
    pub cadence: Duration,
}

impl DrillSchedule {
    /// Checks the schedule's rules: a window of positive length up to
    /// [`MAX_DRILL_SCHEDULE_WINDOW`]; a cadence of whole seconds, at least
    /// [`MIN_DRILL_CADENCE`] and no longer than the window.
    ///
    /// # Errors
    /// [`Error::DrillScheduleInvalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, why| Err(Error::DrillScheduleInvalid { field, why });
        if self.not_after <= self.not_before {
            return invalid("not_after", "must be after not_before");
        }
        let window = Duration::from_millis(
            self.not_after.as_unix_millis() - self.not_before.as_unix_millis(),
        );
        if window > MAX_DRILL_SCHEDULE_WINDOW {
            return invalid("not_after", "the window is longer than 400 days");
        }
        if self.cadence.subsec_nanos() != 0 {
            return invalid("cadence", "whole seconds only");
        }
        if self.cadence < MIN_DRILL_CADENCE {
            return invalid("cadence", "at most one drill a day");
        }
        if self.cadence > window {
            return invalid("cadence", "longer than the window");
        }
        Ok(())
    }

    /// The canonical encoding (see the module documentation).
    ///
    /// # Errors
    /// [`Error::DrillScheduleInvalid`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let mut out = Vec::with_capacity(DRILL_SCHEDULE_LEN);
        out.extend_from_slice(DRILL_SCHEDULE_MAGIC);
        out.push(DRILL_SCHEDULE_VERSION);
        out.extend_from_slice(&self.not_before.as_unix_millis().to_be_bytes());
        out.extend_from_slice(&self.not_after.as_unix_millis().to_be_bytes());
        out.extend_from_slice(&self.cadence.as_secs().to_be_bytes());
        Ok(out)
    }

    /// Decodes and checks an encoded schedule (what the approver's tool
    /// reads).
    ///
    /// # Errors
    /// [`Error::Framing`] (length, magic, version, trailing bytes),
    /// [`Error::Types`] (a time out of range),
    /// [`Error::DrillScheduleInvalid`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len("drill schedule", bytes.len(), DRILL_SCHEDULE_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "drill schedule",
            DRILL_SCHEDULE_MAGIC,
            DRILL_SCHEDULE_VERSION,
        )?;
        let not_before = Timestamp::from_unix_millis(reader.u64("not_before")?)?;
        let not_after = Timestamp::from_unix_millis(reader.u64("not_after")?)?;
        let cadence = Duration::from_secs(reader.u64("cadence")?);
        reader.finish("drill schedule")?;
        let schedule = Self {
            not_before,
            not_after,
            cadence,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The schedule's hash: the change hash of the drill request that
    /// approves it.
    ///
    /// # Errors
    /// [`Error::DrillScheduleInvalid`].
    pub fn hash(&self) -> Result<[u8; 32], Error> {
        let mut hasher = Sha256::new();
        hasher.update(DRILL_SCHEDULE_TAG);
        hasher.update(self.encode()?);
        Ok(hasher.finalize().into())
    }

    /// Whether a drill may start at `at` as far as the window goes.
    #[must_use]
    pub fn covers(&self, at: Timestamp) -> bool {
        self.not_before <= at && at < self.not_after
    }

    /// What the approver reads before signing the request whose change
    /// hash this schedule's hash is.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "drill schedule (shkp-dsc v1)");
        let _ = writeln!(out, "  not before:          {}", self.not_before);
        let _ = writeln!(out, "  not after:           {}", self.not_after);
        let _ = writeln!(
            out,
            "  cadence:             at most one drill every {} s",
            self.cadence.as_secs()
        );
        if let Ok(hash) = self.hash() {
            let _ = writeln!(out, "  hash (change hash):  {}", hex::encode(hash));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> DrillSchedule {
        DrillSchedule {
            not_before: Timestamp::from_unix_seconds(1_767_225_600).unwrap(),
            not_after: Timestamp::from_unix_seconds(1_767_225_600 + 365 * 86_400).unwrap(),
            cadence: Duration::from_secs(90 * 86_400),
        }
    }

    /// The encoding is pinned: a change to the format fails here.
    #[test]
    fn golden_encoding_and_round_trip() {
        let bytes = schedule().encode().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "73686b702d64736301",
                "0000019b76daa800",
                "000001a2ce8bd400",
                "000000000076a700",
            )
        );
        assert_eq!(DrillSchedule::decode(&bytes).unwrap(), schedule());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(DrillSchedule::decode(&trailing).is_err());
        assert!(DrillSchedule::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut version = bytes;
        version[8] = 2;
        assert!(DrillSchedule::decode(&version).is_err());
        assert!(schedule().describe().contains("every 7776000 s"));
    }

    #[test]
    fn each_rule_is_checked() {
        type Edit = fn(&mut DrillSchedule);
        let cases: [(Edit, &str); 5] = [
            (|s| s.not_after = s.not_before, "not_after"),
            (
                |s| {
                    s.not_after = s
                        .not_before
                        .checked_add(Duration::from_secs(401 * 86_400))
                        .unwrap();
                },
                "not_after",
            ),
            (|s| s.cadence = Duration::from_secs(3600), "cadence"),
            (|s| s.cadence = Duration::from_millis(86_400_500), "cadence"),
            (|s| s.cadence = Duration::from_secs(366 * 86_400), "cadence"),
        ];
        for (edit, expected) in cases {
            let mut bad = schedule();
            edit(&mut bad);
            assert!(
                matches!(bad.encode(), Err(Error::DrillScheduleInvalid { field, .. }) if field == expected),
                "{expected}"
            );
        }
    }

    #[test]
    fn the_window_is_half_open() {
        let s = schedule();
        assert!(s.covers(s.not_before));
        assert!(!s.covers(s.not_after));
        assert!(!s.covers(Timestamp::from_unix_seconds(1_767_225_599).unwrap()));
    }
}

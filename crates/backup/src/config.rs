//! How one service instance is configured: who it is, and the times and
//! limits the procedure runs with.

use std::time::Duration;

use shardkeep_types::Label;

use crate::error::Error;

/// Days, as a [`Duration`].
const fn days(days: u64) -> Duration {
    Duration::from_secs(days * 24 * 60 * 60)
}

/// A per-person limit: at most `max` events of one kind in each window of
/// `window`. The counters live in the database, so replicas share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Most events per window.
    pub max: u32,
    /// The window's length (windows are aligned to multiples of it since the
    /// Unix epoch, so every replica computes the same window).
    pub window: Duration,
}

/// The configuration of one service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Names the deployment in every approval request, so an approval given
    /// for one deployment never authorises an operation in another.
    pub deployment_id: Label,
    /// Names this process among the replicas sharing one database
    /// (recovery sessions live in the memory of the replica that made them).
    pub replica_id: Label,
    /// How long an old key version or a soft-deleted slot waits before it
    /// can be hard-deleted (the procedure recommends 7 days).
    pub cooldown: Duration,
    /// How often a drill is due (quarterly: 90 days).
    pub drill_interval: Duration,
    /// How long an inventory challenge stays answerable.
    pub inventory_challenge_ttl: Duration,
    /// How long an idle recovery session lives before it is wiped.
    pub session_idle_timeout: Duration,
    /// How long an approval request stays approvable and usable (24 hours
    /// by default: approvers in other time zones can answer within a day).
    pub approval_ttl: Duration,
    /// Reads of server-held shares, per person.
    pub share_read_limit: RateLimit,
    /// Recovery attempts (sessions started, submissions), per person.
    pub recovery_attempt_limit: RateLimit,
    /// Status and listing calls, per person.
    pub inspect_limit: RateLimit,
    /// Rejected shares from one person in one window before the rejection
    /// is also recorded as an anomaly.
    pub bad_share_anomaly_threshold: u32,
    /// The window in which rejected shares and inventory proofs are
    /// counted against `bad_share_anomaly_threshold`.
    pub bad_share_window: Duration,
}

impl ServiceConfig {
    /// The procedure's defaults for a deployment and replica: 7-day
    /// cooldown, drills every 90 days, 15-minute sessions and challenges.
    #[must_use]
    pub fn new(deployment_id: Label, replica_id: Label) -> Self {
        Self {
            deployment_id,
            replica_id,
            cooldown: days(7),
            drill_interval: days(90),
            inventory_challenge_ttl: Duration::from_secs(15 * 60),
            session_idle_timeout: Duration::from_secs(15 * 60),
            approval_ttl: Duration::from_secs(24 * 60 * 60),
            share_read_limit: RateLimit {
                max: 10,
                window: Duration::from_secs(60 * 60),
            },
            recovery_attempt_limit: RateLimit {
                max: 20,
                window: Duration::from_secs(60 * 60),
            },
            inspect_limit: RateLimit {
                max: 600,
                window: Duration::from_secs(60),
            },
            bad_share_anomaly_threshold: 3,
            bad_share_window: Duration::from_secs(60 * 60),
        }
    }

    /// Checks that every duration and limit can work: no zero windows or
    /// limits, a cooldown of at least a day.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("drill_interval", self.drill_interval),
            ("inventory_challenge_ttl", self.inventory_challenge_ttl),
            ("session_idle_timeout", self.session_idle_timeout),
            ("approval_ttl", self.approval_ttl),
            ("share_read_limit.window", self.share_read_limit.window),
            (
                "recovery_attempt_limit.window",
                self.recovery_attempt_limit.window,
            ),
            ("inspect_limit.window", self.inspect_limit.window),
            ("bad_share_window", self.bad_share_window),
        ];
        for (setting, value) in positive {
            if value.as_millis() == 0 {
                return Err(Error::InvalidConfig {
                    setting,
                    why: "must be longer than zero",
                });
            }
        }
        if self.cooldown < days(1) {
            return Err(Error::InvalidConfig {
                setting: "cooldown",
                why: "must be at least one day, so that a deletion can be rolled back",
            });
        }
        for (setting, limit) in [
            ("share_read_limit.max", self.share_read_limit),
            ("recovery_attempt_limit.max", self.recovery_attempt_limit),
            ("inspect_limit.max", self.inspect_limit),
        ] {
            if limit.max == 0 {
                return Err(Error::InvalidConfig {
                    setting,
                    why: "must allow at least one event",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServiceConfig {
        ServiceConfig::new(Label::new("prod-eu").unwrap(), Label::new("r1").unwrap())
    }

    #[test]
    fn defaults_follow_the_procedure() {
        let config = config();
        assert_eq!(config.cooldown, days(7));
        assert_eq!(config.drill_interval, days(90));
        config.validate().unwrap();
    }

    #[test]
    fn unusable_settings_are_refused_by_name() {
        let mut short = config();
        short.cooldown = Duration::from_secs(3600);
        assert!(matches!(
            short.validate(),
            Err(Error::InvalidConfig {
                setting: "cooldown",
                ..
            })
        ));
        let mut zero = config();
        zero.share_read_limit.max = 0;
        assert!(matches!(
            zero.validate(),
            Err(Error::InvalidConfig {
                setting: "share_read_limit.max",
                ..
            })
        ));
        let mut window = config();
        window.inspect_limit.window = Duration::ZERO;
        assert!(matches!(
            window.validate(),
            Err(Error::InvalidConfig {
                setting: "inspect_limit.window",
                ..
            })
        ));
    }
}

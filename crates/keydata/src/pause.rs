//! Pause points for crash tests (feature `pause-points`; never enabled in
//! a build that serves). A process whose environment names a point in
//! [`PAUSE_AT_VAR`] announces it on its standard output
//! (`shardkeep-paused <point>`) when it gets there and stops for good, so
//! that a test can kill it with SIGKILL at exactly that step.

use std::io::Write as _;

/// The environment variable naming the point to stop at.
pub const PAUSE_AT_VAR: &str = "SHARDKEEP_PAUSE_AT";

/// Whether this process was asked to stop at some point.
#[must_use]
pub fn pausing() -> bool {
    std::env::var_os(PAUSE_AT_VAR).is_some()
}

/// Stops this process for good at `point` when [`PAUSE_AT_VAR`] names it,
/// after announcing it on standard output; returns at once otherwise.
pub fn pause_point(point: &str) {
    if std::env::var_os(PAUSE_AT_VAR).is_none_or(|at| at != point) {
        return;
    }
    let mut out = std::io::stdout().lock();
    // Best effort: the test waiting for the line fails on its own if it
    // never comes.
    let _ = out.write_all(format!("shardkeep-paused {point}\n").as_bytes());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

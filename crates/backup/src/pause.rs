//! Pause points for crash tests (feature `pause-points`; never enabled in
//! a build that serves; without it every function here is empty). See
//! `shardkeep_keydata::pause`: a process whose environment names a point
//! stops there for good, for the test to kill it with SIGKILL.

/// Stops this process for good at `point` when the environment names it.
#[cfg(feature = "pause-points")]
pub(crate) fn pause_point(point: &str) {
    shardkeep_keydata::pause::pause_point(point);
}

/// Without the feature: nothing.
#[cfg(not(feature = "pause-points"))]
pub(crate) fn pause_point(_point: &str) {}

/// In a process asked to pause, tells the crash test the session's
/// one-time key on standard output, so that it can search the files the
/// killed process left for it. Nothing without the feature, or in a
/// process not asked to pause.
#[cfg(feature = "pause-points")]
pub(crate) fn announce_session_key(
    session: &shardkeep_storage::RecoverySessionId,
    identity: &shardkeep_envelope::deps::age::x25519::Identity,
) {
    use shardkeep_envelope::deps::age::secrecy::ExposeSecret as _;
    use std::io::Write as _;
    if !shardkeep_keydata::pause::pausing() {
        return;
    }
    let line = zeroize::Zeroizing::new(format!(
        "shardkeep-session-key {session} {}\n",
        identity.to_string().expose_secret()
    ));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Without the feature: nothing.
#[cfg(not(feature = "pause-points"))]
pub(crate) fn announce_session_key(
    _session: &shardkeep_storage::RecoverySessionId,
    _identity: &shardkeep_envelope::deps::age::x25519::Identity,
) {
}

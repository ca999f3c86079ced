//! Helpers shared by the integration tests.

use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    ContainerError, ContainerIdentity, Error, OpenedContainer, TrustedSigners, open_container,
};

/// Opens `container` with one X25519 identity.
pub(crate) fn open_x25519(
    container: &[u8],
    identity: &age::x25519::Identity,
    trusted: &TrustedSigners,
) -> Result<OpenedContainer, Error> {
    open_container(
        container,
        ContainerIdentity::X25519(std::slice::from_ref(identity)),
        trusted,
    )
}

/// Asserts that `identity` does not open `container`.
#[track_caller]
pub(crate) fn assert_not_opened_by(
    container: &[u8],
    identity: &age::x25519::Identity,
    trusted: &TrustedSigners,
) {
    assert_eq!(
        open_x25519(container, identity, trusted).unwrap_err(),
        Error::Container(ContainerError::NoMatchingIdentity)
    );
}

/// The work factor (log2 N) written in a binary passphrase container's
/// scrypt stanza (`-> scrypt <salt> <log_n>`).
pub(crate) fn scrypt_work_factor(container: &[u8]) -> u8 {
    let header = String::from_utf8_lossy(&container[..container.len().min(200)]).into_owned();
    let line = header
        .lines()
        .find(|line| line.starts_with("-> scrypt "))
        .unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

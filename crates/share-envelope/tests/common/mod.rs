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

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod archive;
mod bigint;
mod codec;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod golden;
mod json;
mod keystore;
mod loaded;
#[cfg(feature = "pause-points")]
#[doc(hidden)]
pub mod pause;
mod peer_wire;
mod regenerate;
mod remote;
mod save_data;
mod selftest;
mod signing;
#[cfg(test)]
mod test_support;

pub use archive::{
    ARCHIVE_KDF_HKDF_SHA256, ARCHIVE_KEY_TAG, ARCHIVE_MAGIC, ARCHIVE_VERSION, SealedArchive,
};
pub use error::{BindingField, Error, FieldError, FormatError, JsonError, Result};
pub use keystore::{
    KEYSTORE_AAD_TAG, KEYSTORE_MAGIC, KEYSTORE_SUFFIX, KEYSTORE_VERSION, KekKeystoreCodec,
    KeystoreCodec, WriteMode, keystore_path, load_keystore, write_keystore,
};
pub use loaded::{loaded_other_party_secrets, loaded_party_secrets, loaded_party_secrets_of};
pub use peer_wire::{
    COMMIT_REQUEST_MAGIC, MAX_SELF_TEST_MESSAGE_LEN, NONCE_COMMITMENTS_MAGIC, NonceCommitments,
    SELF_TEST_WIRE_VERSION, SIGN_REQUEST_MAGIC, SIGNATURE_SHARES_MAGIC, SignatureShares,
};
pub use regenerate::regenerate;
pub use remote::{PeerTransport, RemotePeers, TransportError};
pub use save_data::LocalPartySaveData;
pub use selftest::{Check, CheckResult, Outcome, SelfTestReport};
#[cfg(any(test, feature = "in-process-peers"))]
pub use signing::InProcessPeers;
pub use signing::{
    CommitRequest, NonceCommitment, SELF_TEST_TAG, SelfTestPeers, SelfTestResponder, SignRequest,
    SignatureShare,
};

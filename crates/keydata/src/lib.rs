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
#[cfg(feature = "pause-points")]
#[doc(hidden)]
pub mod pause;
mod regenerate;
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
pub use regenerate::regenerate;
pub use save_data::LocalPartySaveData;
pub use selftest::{Check, CheckResult, Outcome, SelfTestReport};
pub use signing::{
    CommitRequest, InProcessPeers, NonceCommitment, SELF_TEST_TAG, SelfTestPeers,
    SelfTestResponder, SignRequest, SignatureShare,
};

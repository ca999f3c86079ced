#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod aead;
mod binding;
#[cfg(feature = "containers")]
mod container;
mod envelope;
mod error;
mod frame;
mod receipt;
mod trust;

// The golden vectors (tests with `containers`) and the fuzz targets use it.
#[cfg(any(all(test, feature = "containers"), fuzzing))]
mod fixtures;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod internal;

#[cfg(test)]
#[cfg(feature = "containers")]
mod golden;
#[cfg(test)]
mod published_vectors;

pub use binding::{ARCHIVE_HASH_TAG, Binding, MAX_PARTY_ID_LEN, archive_hash};
#[cfg(feature = "containers")]
pub use container::{
    Armor, CONTAINER_MAGIC, CONTAINER_VERSION, ContainerIdentity, ContainerRecipients,
    MAX_ARCHIVE_LEN, MAX_CONTAINER_CONTENTS_LEN, MAX_CONTAINER_LEN, MAX_CONTAINER_RECIPIENTS,
    MAX_CONTAINER_STANZAS, MAX_SCRYPT_WORK_FACTOR, MIN_SCRYPT_WORK_FACTOR, OpenedContainer,
    encode_container_contents, open_container, open_x25519_container, seal_container,
};
pub use envelope::{
    CurveCommitments, CurveShare, ENVELOPE_CHECKSUM_TAG, ENVELOPE_ID_TAG, ENVELOPE_MAGIC,
    ENVELOPE_SIGNATURE_TAG, ENVELOPE_VERSION, EncodedEnvelope, EnvelopeHeader, EnvelopeParams,
    MAX_ENVELOPE_LEN, PayloadKind, VerifiedEnvelope,
};
#[cfg(feature = "containers")]
pub use error::ContainerError;
pub use error::{BindingField, Error};
pub use frame::SealedEnvelopeFrame;
pub use receipt::{
    Custodian, CustodianSet, DeliveryCertificate, DeliveryEntry, DeliveryState, FailureReason,
    IgnoredReason, IgnoredReceipt, MAX_FAILURE_REASON_LEN, MAX_RECEIPT_LEN, RECEIPT_MAGIC,
    RECEIPT_SIGNATURE_TAG, RECEIPT_VERSION, Receipt, ReceiptStatus, VerifiedReceipt,
};
pub use trust::TrustedSigners;

/// The crates whose types appear in this crate's API, re-exported so that
/// callers name the same versions.
pub mod deps {
    #[cfg(feature = "containers")]
    pub use age;
    pub use ed25519_dalek;
    pub use shardkeep_sss_core;
    pub use shardkeep_types;
}

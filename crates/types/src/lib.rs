#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod audit;
mod custody;
mod error;
mod free_text;
mod ids;
#[cfg(feature = "in-memory")]
mod in_memory;
mod names;
mod threshold;
mod time;

pub use audit::{AUDIT_LOG_ID_LEN, AuditHead, AuditLogId, AuditRow, MAX_AUDIT_RECORD_LEN};
pub use custody::{
    CustodyError, DATA_KEY_LEN, DataKey, KeyEncryptionKey, MAX_WRAPPED_KEY_LEN, Signer, WrappedKey,
};
pub use error::{Error, FramingError, ThresholdError};
pub use free_text::FreeText;
pub use ids::{EnvelopeId, KeyVersion, NodeVersion, ShareSlot};
#[cfg(feature = "in-memory")]
pub use in_memory::{InMemoryKek, InMemorySigner};
pub use names::{ActorId, CustodianId, KekId, KeyId, Label, MAX_NAME_LEN, NodeId, SignerId};
pub use threshold::{ShareIndex, Threshold};
pub use time::Timestamp;

/// The crates whose types appear in this crate's API, re-exported so that
/// callers name the same versions.
pub mod deps {
    pub use ed25519_dalek;
    pub use shardkeep_wire;
}

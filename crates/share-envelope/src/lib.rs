#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod binding;
mod custody;
mod error;
mod ids;

pub use binding::{ARCHIVE_HASH_TAG, Binding, MAX_PARTY_ID_LEN, archive_hash};
pub use custody::{
    CustodyError, DATA_KEY_LEN, DataKey, InMemoryKek, InMemorySigner, KeyEncryptionKey,
    MAX_WRAPPED_KEY_LEN, Signer, WrappedKey,
};
pub use error::Error;
pub use ids::{CustodianId, KekId, KeyId, KeyVersion, MAX_NAME_LEN, NodeId, ShareSlot, SignerId};

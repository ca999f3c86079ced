#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod chain;
mod checkpoint;
mod codec;
mod error;
mod export;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "storage")]
mod json;
#[cfg(feature = "storage")]
mod log;
#[cfg(feature = "postgres-witness")]
mod postgres_witness;
mod record;
mod verify;
mod witness;

#[cfg(feature = "storage")]
pub use chain::link;
pub use chain::{AUDIT_TAG, chain_hash};
pub use checkpoint::{
    CHECKPOINT_FORMAT_VERSION, CHECKPOINT_TAG, Checkpoint, FileWitness, MAX_WITNESS_FILE_LEN,
    MAX_WITNESS_LINE_LEN, parse_witness, read_witness,
};
pub use error::{DecodeError, EncodeError, Error, Finding, WitnessError};
pub use export::{EXPORT_HEADER, Export, encode_export, encode_row, parse_export};
#[cfg(feature = "storage")]
pub use log::{
    Appended, GroupCommitPolicy, GroupCommitter, append, checkpoint, export, export_json_lines,
};
#[cfg(feature = "postgres-witness")]
pub use postgres_witness::PostgresWitness;
pub use record::{
    AuditRecord, EventType, MAX_APPROVERS, MAX_DETAIL_LEN, MAX_REASON_LEN, MAX_RECORD_LEN,
    MAX_TARGET_LEN, Outcome, RECORD_FORMAT_VERSION,
};
pub use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditHead, AuditLogId, AuditRow};
pub use verify::{VerifiedLog, verify};
pub use witness::Witness;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod chain;
mod checkpoint;
mod codec;
mod error;
mod export;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "storage")]
mod json;
#[cfg(feature = "storage")]
mod log;
#[cfg(feature = "postgres-witness")]
mod postgres_witness;
mod record;
mod review;
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
pub use export::{EXPORT_MAGIC, EXPORT_VERSION, Export, encode_export, encode_row, parse_export};
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
pub use review::{
    AuditReview, MAX_ARCHIVED_REVIEWS, MAX_FINDINGS_LEN, MAX_REVIEW_ARCHIVE_LEN, MAX_REVIEW_LEN,
    REVIEW_ARCHIVE_MAGIC, REVIEW_ARCHIVE_VERSION, REVIEW_MAGIC, REVIEW_TAG, REVIEW_VERSION,
    REVIEWERS_NEEDED, ReviewArchive, ReviewedRange, VerifiedReview, verify_review_archive,
};
pub use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditHead, AuditLogId, AuditRow};
pub use verify::{VerifiedLog, verify};
pub use witness::Witness;

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are no record, witness, checkpoint line or export (a
    /// version 1 checkpoint line among them) are refused by every decoder
    /// of this crate, none of which panics.
    #[test]
    fn every_decoder_refuses_what_is_not_its_format() {
        for data in [
            &b"\x01"[..],
            b"\xff\xff",
            b"shardkeep-checkpoint-v1 0\n",
            b"shardkeep-checkpoint-v2 0\n",
        ] {
            assert!(AuditRecord::decode(data).is_err(), "{data:?}");
            assert!(parse_witness(data).is_err(), "{data:?}");
            assert!(Checkpoint::parse_line(data).is_err(), "{data:?}");
            assert!(parse_export(data).is_err(), "{data:?}");
            assert!(AuditReview::decode(data).is_err(), "{data:?}");
            assert!(ReviewArchive::parse(data).is_err(), "{data:?}");
        }
    }
}

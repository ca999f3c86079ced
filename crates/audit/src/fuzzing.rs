//! Entry points of the cargo-fuzz targets in `fuzz/`, compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); not part of the API. One function
//! per target: it parses arbitrary bytes, re-encodes what parses and
//! asserts the round trip (one encoding per value), so a panic is a
//! finding.

use crate::checkpoint::{Checkpoint, parse_witness};
use crate::export::{encode_export, parse_export};
use crate::record::AuditRecord;

/// Target `audit_record_decode`: what decodes re-encodes identically.
///
/// # Panics
/// When a decoded record re-encodes differently.
pub fn record_decode(data: &[u8]) {
    if let Ok(record) = AuditRecord::decode(data) {
        let encoded = record.encode();
        assert_eq!(
            encoded.as_deref(),
            Ok(data),
            "record encoding is not canonical"
        );
    }
}

/// Target `audit_witness_parse`: what parses (a witness file, or one
/// checkpoint line) prints back identically.
///
/// # Panics
/// When a parsed witness prints differently.
pub fn witness_parse(data: &[u8]) {
    if let Ok(checkpoints) = parse_witness(data) {
        let printed: String = checkpoints
            .iter()
            .map(|checkpoint| checkpoint.to_line() + "\n")
            .collect();
        assert_eq!(printed.as_bytes(), data, "witness form is not canonical");
    }
    if let Ok(checkpoint) = Checkpoint::parse_line(data) {
        assert_eq!(
            checkpoint.to_line().as_bytes(),
            data,
            "checkpoint line is not canonical"
        );
    }
}

/// Target `audit_export_parse`: what parses re-encodes identically.
///
/// # Panics
/// When a parsed export re-encodes differently.
pub fn export_parse(data: &[u8]) {
    if let Ok(export) = parse_export(data) {
        assert_eq!(
            encode_export(&export.log_id, &export.rows),
            data,
            "export form is not canonical"
        );
    }
}

/// Target `audit_review_parse`: a review, or a review
/// archive, that parses re-encodes identically.
///
/// # Panics
/// When a parsed review or archive re-encodes differently.
pub fn review_parse(data: &[u8]) {
    if let Ok(review) = crate::review::AuditReview::decode(data) {
        assert_eq!(review.encode(), data, "review encoding is not canonical");
    }
    if let Ok(archive) = crate::review::ReviewArchive::parse(data) {
        assert_eq!(archive.encode(), data, "review archive is not canonical");
    }
}

//! Entry points for the fuzz targets in `fuzz/`: each parses arbitrary
//! bytes and, when they parse, checks that re-encoding gives them back
//! (one encoding per value). Not part of the API.

use crate::checkpoint::{Checkpoint, parse_witness};
use crate::export::{encode_export, parse_export};
use crate::record::AuditRecord;

/// Record decoding: never panics; what decodes re-encodes identically.
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

/// Witness parsing: never panics; what parses prints back identically.
pub fn witness_parse(data: &[u8]) {
    if let Ok(checkpoints) = parse_witness(data) {
        let printed: String = checkpoints
            .iter()
            .map(|checkpoint| checkpoint.to_line() + "\n")
            .collect();
        assert_eq!(printed.as_bytes(), data, "witness form is not canonical");
    }
    if let Ok(checkpoint) = Checkpoint::parse_line(data) {
        assert_eq!(checkpoint.to_line().as_bytes(), data);
    }
}

/// Export parsing: never panics; what parses re-encodes identically.
pub fn export_parse(data: &[u8]) {
    if let Ok(export) = parse_export(data) {
        assert_eq!(
            encode_export(&export.log_id, &export.rows),
            data,
            "export form is not canonical"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_accept_garbage_and_round_trip() {
        for data in [
            &b""[..],
            b"\x01",
            b"shardkeep-checkpoint-v2 0\n",
            b"shardkeep-checkpoint-v1 0\n",
            b"\xff\xff",
        ] {
            record_decode(data);
            witness_parse(data);
            export_parse(data);
        }
        export_parse(&encode_export(&shardkeep_types::AuditLogId([1; 16]), &[]));
    }
}

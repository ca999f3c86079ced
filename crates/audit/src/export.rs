//! The export format the verifier reads: the raw rows, byte for byte.
//!
//! ```text
//! "shardkeep/audit-export/v1\n"
//! then per row: u64 sequence || [32] prev hash || [32] hash ||
//!               u32 record length (1..=65536) || record
//! ```
//!
//! Integers are big-endian; the file ends exactly after a row. The stored
//! hashes are carried so the verifier can name the first changed record;
//! it recomputes every hash itself.

use shardkeep_storage::{AuditRow, MAX_AUDIT_RECORD_LEN};
use shardkeep_wire::Reader;

use crate::error::{DecodeError, Error};

/// The first bytes of every export.
pub const EXPORT_HEADER: &[u8] = b"shardkeep/audit-export/v1\n";

/// Appends one row's encoding to `out`.
pub fn encode_row(out: &mut Vec<u8>, row: &AuditRow) {
    out.extend_from_slice(&row.sequence.to_be_bytes());
    out.extend_from_slice(&row.prev_hash);
    out.extend_from_slice(&row.hash);
    // Storage caps records at 64 KiB.
    out.extend_from_slice(
        &u32::try_from(row.record.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&row.record);
}

/// A whole export of `rows`.
#[must_use]
pub fn encode_export(rows: &[AuditRow]) -> Vec<u8> {
    let mut out = EXPORT_HEADER.to_vec();
    for row in rows {
        encode_row(&mut out, row);
    }
    out
}

/// Parses an export.
///
/// # Errors
/// [`Error::Export`] with the offset of the first bad byte: a wrong header,
/// a truncated row, or a record length out of range.
pub fn parse_export(bytes: &[u8]) -> Result<Vec<AuditRow>, Error> {
    let mut reader = Reader::new(bytes);
    let fail = |offset, error| Error::Export { offset, error };
    let header = reader
        .take(EXPORT_HEADER.len(), "header")
        .map_err(|_| fail(0, DecodeError::BadHeader))?;
    if header != EXPORT_HEADER {
        return Err(fail(0, DecodeError::BadHeader));
    }
    let mut rows = Vec::new();
    while reader.remaining() > 0 {
        let start = reader.offset();
        let row = read_row(&mut reader).map_err(|error| fail(start, error))?;
        rows.push(row);
    }
    Ok(rows)
}

fn read_row(reader: &mut Reader<'_>) -> Result<AuditRow, DecodeError> {
    let sequence = reader.u64("sequence")?;
    let prev_hash = *reader.array("prev hash")?;
    let hash = *reader.array("hash")?;
    // The cap is checked before the record is copied.
    let record = reader.prefixed_u32("record", 1, MAX_AUDIT_RECORD_LEN)?;
    Ok(AuditRow {
        sequence,
        prev_hash,
        hash,
        record: record.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<AuditRow> {
        (1..=3)
            .map(|i| AuditRow {
                sequence: i,
                prev_hash: [u8::try_from(i).unwrap(); 32],
                hash: [0xf0; 32],
                record: vec![0x11; usize::try_from(i).unwrap()],
            })
            .collect()
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let bytes = encode_export(&rows());
        assert_eq!(parse_export(&bytes).unwrap(), rows());
        assert!(parse_export(EXPORT_HEADER).unwrap().is_empty());
        let first_row = EXPORT_HEADER.len();
        // Cut anywhere inside a row: the offset names that row's start.
        let cut = parse_export(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(
            cut,
            Error::Export {
                error: DecodeError::Truncated,
                ..
            }
        ));
        let mut wrong_header = bytes.clone();
        wrong_header[0] = b'S';
        assert!(matches!(
            parse_export(&wrong_header),
            Err(Error::Export {
                offset: 0,
                error: DecodeError::BadHeader
            })
        ));
        let mut zero_len = bytes;
        zero_len[first_row + 72..first_row + 76].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            parse_export(&zero_len),
            Err(Error::Export { offset, error: DecodeError::InvalidLength }) if offset == first_row
        ));
    }
}

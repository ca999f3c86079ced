//! The export format the verifier reads: the log's identity and the raw
//! rows, byte for byte.
//!
//! ```text
//! "shardkeep/audit-export/v2\n" || [16] log id
//! then per row: u64 sequence || [32] prev hash || [32] hash ||
//!               u32 record length (1..=65536) || record
//! ```
//!
//! Integers are big-endian; the file ends exactly after a row. The stored
//! hashes are carried so the verifier can name the first changed record;
//! it recomputes every hash itself. Version 1 (no log id) is refused with
//! [`DecodeError::RetiredExportFormat`].

use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditLogId, AuditRow, MAX_AUDIT_RECORD_LEN};
use shardkeep_wire::{FramingError, Reader};

use crate::error::{DecodeError, Error};

/// The first bytes of every export.
pub const EXPORT_HEADER: &[u8] = b"shardkeep/audit-export/v2\n";

/// The first bytes of a retired version 1 export.
const V1_EXPORT_HEADER: &[u8] = b"shardkeep/audit-export/v1\n";

/// A parsed export: which log, and its rows as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The log, as the exported database names it.
    pub log_id: AuditLogId,
    /// The rows, in the order exported.
    pub rows: Vec<AuditRow>,
}

/// Appends the header naming `log_id` to `out`.
pub(crate) fn encode_header(out: &mut Vec<u8>, log_id: &AuditLogId) {
    out.extend_from_slice(EXPORT_HEADER);
    out.extend_from_slice(&log_id.0);
}

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

/// A whole export of `rows` of log `log_id`.
#[must_use]
pub fn encode_export(log_id: &AuditLogId, rows: &[AuditRow]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(&mut out, log_id);
    for row in rows {
        encode_row(&mut out, row);
    }
    out
}

/// Parses an export.
///
/// # Errors
/// [`Error::Export`] with the offset of the first bad byte: a wrong or
/// retired header, a truncated row, or a record length out of range.
pub fn parse_export(bytes: &[u8]) -> Result<Export, Error> {
    let mut reader = Reader::new(bytes);
    let fail = |offset, error| Error::Export { offset, error };
    // The header is the export's magic and version in one line: input too
    // short to hold it is not an export either.
    let not_an_export = || {
        fail(
            0,
            FramingError::BadMagic {
                format: "audit export",
            }
            .into(),
        )
    };
    let header = reader
        .take(EXPORT_HEADER.len(), "header")
        .map_err(|_| not_an_export())?;
    if header == V1_EXPORT_HEADER {
        return Err(fail(0, DecodeError::RetiredExportFormat));
    }
    if header != EXPORT_HEADER {
        return Err(not_an_export());
    }
    let log_id = AuditLogId(
        *reader
            .array::<AUDIT_LOG_ID_LEN>("log id")
            .map_err(|error| fail(EXPORT_HEADER.len(), error.into()))?,
    );
    let mut rows = Vec::new();
    while reader.remaining() > 0 {
        let start = reader.offset();
        let row = read_row(&mut reader).map_err(|error| fail(start, error))?;
        rows.push(row);
    }
    Ok(Export { log_id, rows })
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

    const LOG: AuditLogId = AuditLogId([7; AUDIT_LOG_ID_LEN]);

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
        let bytes = encode_export(&LOG, &rows());
        assert_eq!(
            parse_export(&bytes).unwrap(),
            Export {
                log_id: LOG,
                rows: rows()
            }
        );
        assert!(
            parse_export(&encode_export(&LOG, &[]))
                .unwrap()
                .rows
                .is_empty()
        );
        let first_row = EXPORT_HEADER.len() + AUDIT_LOG_ID_LEN;
        // Cut anywhere inside a row: the offset names that row's start.
        let cut = parse_export(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(
            cut,
            Error::Export {
                error: DecodeError::Framing(FramingError::Truncated { .. }),
                ..
            }
        ));
        // A header without its log id.
        assert!(matches!(
            parse_export(EXPORT_HEADER),
            Err(Error::Export {
                offset: 26,
                error: DecodeError::Framing(FramingError::Truncated {
                    field: "log id",
                    ..
                })
            })
        ));
        let mut wrong_header = bytes.clone();
        wrong_header[0] = b'S';
        assert!(matches!(
            parse_export(&wrong_header),
            Err(Error::Export {
                offset: 0,
                error: DecodeError::Framing(FramingError::BadMagic {
                    format: "audit export"
                })
            })
        ));
        let mut v1 = V1_EXPORT_HEADER.to_vec();
        v1.extend_from_slice(&bytes[EXPORT_HEADER.len()..]);
        assert!(matches!(
            parse_export(&v1),
            Err(Error::Export {
                offset: 0,
                error: DecodeError::RetiredExportFormat
            })
        ));
        let mut zero_len = bytes;
        zero_len[first_row + 72..first_row + 76].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            parse_export(&zero_len),
            Err(Error::Export {
                offset,
                error: DecodeError::Framing(FramingError::LengthOutOfRange { len: 0, .. }),
            }) if offset == first_row
        ));
    }
}

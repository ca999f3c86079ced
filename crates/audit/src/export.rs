//! The export format the verifier reads: the log's identity and the raw
//! rows, byte for byte.
//!
//! Format v2: the magic `shkp-aex`, the version byte, the 16-byte log id,
//! then the rows (sequence, previous hash, hash, length-prefixed record)
//! until the end of the input, which ends exactly after a row. The byte
//! layout is in the repository's `docs/formats.md`, section "Audit export
//! v2". The stored hashes are carried so the verifier can name the first
//! changed record; it recomputes every hash itself.
//!
//! Exports of development builds began with a text line instead of the
//! magic: `shardkeep/audit-export/v1\n` (no log id), refused with
//! [`DecodeError::RetiredExportFormat`], and `shardkeep/audit-export/v2\n`,
//! refused as not an export (bad magic).

use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditLogId, AuditRow, MAX_AUDIT_RECORD_LEN};
use shardkeep_wire::Reader;

use crate::error::{DecodeError, Error};

/// The magic bytes at the start of every export.
pub const EXPORT_MAGIC: &[u8; 8] = b"shkp-aex";

/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u8 = 2;

/// The text first line of a retired version 1 export (which names no log).
const V1_EXPORT_HEADER: &[u8] = b"shardkeep/audit-export/v1\n";

/// Where the log id starts: after the magic and the version byte.
const LOG_ID_OFFSET: usize = EXPORT_MAGIC.len() + 1;

/// A parsed export: which log, and its rows as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The log, as the exported database names it.
    pub log_id: AuditLogId,
    /// The rows, in the order exported.
    pub rows: Vec<AuditRow>,
}

/// Appends the header naming `log_id` to `out`: magic, version, log id.
pub(crate) fn encode_header(out: &mut Vec<u8>, log_id: &AuditLogId) {
    out.extend_from_slice(EXPORT_MAGIC);
    out.push(EXPORT_VERSION);
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
/// [`Error::Export`] with the offset of the first bad byte: a wrong magic,
/// an unsupported or retired version, a truncated header or row, or a
/// record length out of range.
pub fn parse_export(bytes: &[u8]) -> Result<Export, Error> {
    let fail = |offset, error| Error::Export { offset, error };
    // Told apart from other input so that the operator learns to export
    // again rather than that the file is no export.
    if bytes.starts_with(V1_EXPORT_HEADER) {
        return Err(fail(0, DecodeError::RetiredExportFormat));
    }
    let mut reader = Reader::new(bytes);
    reader
        .magic_and_version("audit export", EXPORT_MAGIC, EXPORT_VERSION)
        .map_err(|error| fail(0, error.into()))?;
    let log_id = AuditLogId(
        *reader
            .array::<AUDIT_LOG_ID_LEN>("log id")
            .map_err(|error| fail(LOG_ID_OFFSET, error.into()))?,
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
    use shardkeep_wire::FramingError;

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
        let first_row = LOG_ID_OFFSET + AUDIT_LOG_ID_LEN;
        assert_eq!(first_row, 25);
        assert_eq!(&bytes[..9], b"shkp-aex\x02");
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
            parse_export(&bytes[..LOG_ID_OFFSET]),
            Err(Error::Export {
                offset: 9,
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
        let mut v3 = bytes.clone();
        v3[8] = 3;
        assert!(matches!(
            parse_export(&v3),
            Err(Error::Export {
                offset: 0,
                error: DecodeError::Framing(FramingError::UnsupportedVersion {
                    format: "audit export",
                    version: 3
                })
            })
        ));
        // The text first line of the development builds' v2 is no magic.
        let mut text_v2 = b"shardkeep/audit-export/v2\n".to_vec();
        text_v2.extend_from_slice(&bytes[LOG_ID_OFFSET..]);
        assert!(matches!(
            parse_export(&text_v2),
            Err(Error::Export {
                offset: 0,
                error: DecodeError::Framing(FramingError::BadMagic { .. })
            })
        ));
        let mut v1 = V1_EXPORT_HEADER.to_vec();
        v1.extend_from_slice(&bytes[first_row..]);
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

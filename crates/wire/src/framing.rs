//! The one error type of this crate: why bytes are not framed as their
//! format says, reported the same way by every shardkeep codec.

/// Why bytes could not be read or a field could not be written: the
/// framing every shardkeep format shares (magic, version, whole-input cap,
/// field lengths, truncation, trailing bytes).
///
/// Carries format and field names and lengths only, never input bytes.
/// Every codec reports these through one `Framing(FramingError)` variant
/// of its own error type, so a framing problem reads the same whatever
/// format it was found in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The input does not start with the format's magic bytes.
    #[error("not a shardkeep {format}: wrong magic bytes")]
    BadMagic {
        /// Which format was expected.
        format: &'static str,
    },
    /// The format version byte is not one this build reads.
    #[error("unsupported {format} format version {version}")]
    UnsupportedVersion {
        /// Which format.
        format: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The whole input is longer than the format's documented cap; refused
    /// before parsing (or reading) it.
    #[error("{format} is {len} bytes, over the {max}-byte cap")]
    TooLarge {
        /// Which format.
        format: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The input ends inside a field.
    #[error("truncated input: {field} needs {needed} more bytes")]
    Truncated {
        /// The field that could not be read.
        field: &'static str,
        /// How many more bytes it needed.
        needed: usize,
    },
    /// A length (declared by a prefix while reading, or of the value while
    /// writing) is outside the field's bounds.
    #[error("{field} has length {len}, outside {min}..={max}")]
    LengthOutOfRange {
        /// The field.
        field: &'static str,
        /// The length.
        len: usize,
        /// Smallest accepted length.
        min: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// Bytes remain after the last field.
    #[error("{len} trailing bytes after the {what}")]
    TrailingBytes {
        /// What was being read (a format or a section of one).
        what: &'static str,
        /// How many bytes remain.
        len: usize,
    },
}

/// Refuses a whole input of `len` bytes when it is longer than `max`:
/// checked before any parsing, and before reading a file whose length is
/// known.
///
/// # Errors
/// [`FramingError::TooLarge`] naming `format`.
pub const fn check_total_len(
    format: &'static str,
    len: usize,
    max: usize,
) -> Result<(), FramingError> {
    if len > max {
        return Err(FramingError::TooLarge { format, len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_length_is_capped() {
        assert_eq!(check_total_len("envelope", 10, 10), Ok(()));
        assert_eq!(check_total_len("envelope", 0, 0), Ok(()));
        assert_eq!(
            check_total_len("envelope", 11, 10),
            Err(FramingError::TooLarge {
                format: "envelope",
                len: 11,
                max: 10
            })
        );
    }

    #[test]
    fn messages_name_the_format_and_field_never_bytes() {
        let cases = [
            (
                FramingError::BadMagic { format: "receipt" },
                "not a shardkeep receipt: wrong magic bytes",
            ),
            (
                FramingError::UnsupportedVersion {
                    format: "receipt",
                    version: 9,
                },
                "unsupported receipt format version 9",
            ),
            (
                FramingError::TooLarge {
                    format: "receipt",
                    len: 500,
                    max: 400,
                },
                "receipt is 500 bytes, over the 400-byte cap",
            ),
            (
                FramingError::Truncated {
                    field: "status",
                    needed: 1,
                },
                "truncated input: status needs 1 more bytes",
            ),
            (
                FramingError::LengthOutOfRange {
                    field: "name",
                    len: 0,
                    min: 1,
                    max: 64,
                },
                "name has length 0, outside 1..=64",
            ),
            (
                FramingError::TrailingBytes {
                    what: "receipt",
                    len: 2,
                },
                "2 trailing bytes after the receipt",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }
}

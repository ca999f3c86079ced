//! The one error type of this crate.

/// Why bytes could not be read or a field could not be written.
///
/// Carries field names and lengths only, never input bytes. Format crates
/// map each variant into their own error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
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

//! The error types of this crate.

pub use shardkeep_wire::FramingError;

/// A value breaks the rule of its type: a name, a timestamp, free text, or
/// the canonical encoding of a name, a key version or a share slot.
///
/// Carries kinds, lengths and positions only, never the value itself (free
/// text may hold anything an operator typed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (key id, node id, signer id, actor id, label, ...) breaks the
    /// rule: 1-64 bytes of its alphabet (`[A-Za-z0-9._:-]`; actor ids also
    /// allow `@`).
    #[error("invalid {what}: {len} bytes, or a byte outside its alphabet")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A time beyond `i64::MAX` milliseconds since the Unix epoch.
    #[error("timestamp {0} ms is out of range")]
    TimestampOutOfRange(u64),
    /// Free text is empty or longer than its cap.
    #[error("free text has {len} bytes, outside 1..={max}")]
    FreeTextLength {
        /// Its length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Free text holds a character the free-text rule refuses (a control,
    /// format, separator, private-use or unassigned character), or bytes
    /// that are not UTF-8, at byte `offset`.
    #[error("free text has a refused character or invalid UTF-8 at byte {offset}")]
    FreeTextCharacter {
        /// Where the first refused character (or invalid byte) starts.
        offset: usize,
    },
    /// An encoded share slot has share index 0.
    #[error("share index 0")]
    ZeroShareIndex,
    /// An encoded name, key version or share slot is cut short.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

/// A threshold or a share index breaks `1 <= index <= n`, `2 <= t <= n <=
/// 255`.
///
/// Deliberately exhaustive: this is the whole set of threshold rules, so a
/// crate that keeps its own threshold variants (sss-core) maps it without a
/// catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// `t` and `n` break `2 <= t <= n <= 255`.
    #[error("invalid threshold: {t}-of-{n} (need 2 <= t <= n <= 255)")]
    InvalidThreshold {
        /// Shares needed to recover.
        t: usize,
        /// Shares in total.
        n: usize,
    },
    /// A share index is zero or greater than `n`.
    #[error("share index {index} is outside 1..={n}")]
    IndexOutOfRange {
        /// The offending index (0 when the index was zero).
        index: u8,
        /// Shares in total.
        n: u8,
    },
}

//! The audit chain's vocabulary: what storage keeps of the log and what the
//! audit crate chains, checkpoints, exports and verifies. Here, below both,
//! so that the verifier needs no storage crate (and no database driver).

use core::fmt;

/// Longest audit record, in bytes: storage refuses more, the export format
/// caps its record length field at it.
pub const MAX_AUDIT_RECORD_LEN: usize = 64 * 1024;

/// Length of an audit chain hash (SHA-256).
const HASH_LEN: usize = 32;

/// The head of the audit chain: the last record's sequence and hash;
/// [`AuditHead::GENESIS`] for an empty log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditHead {
    /// Sequence of the last record, 0 for an empty log.
    pub sequence: u64,
    /// Hash of the last record, all zeros for an empty log.
    pub hash: [u8; HASH_LEN],
}

impl AuditHead {
    /// The head of an empty log: the first record has sequence 1 and links
    /// to an all-zero hash.
    pub const GENESIS: Self = Self {
        sequence: 0,
        hash: [0; HASH_LEN],
    };
}

/// One stored row of the append-only audit table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// 1, 2, 3...: previous + 1, computed under the head lock.
    pub sequence: u64,
    /// The previous row's hash (all zeros for sequence 1).
    pub prev_hash: [u8; HASH_LEN],
    /// This row's hash, as computed by the audit crate.
    pub hash: [u8; HASH_LEN],
    /// Canonical record bytes.
    pub record: Vec<u8>,
}

/// Bytes of an [`AuditLogId`].
pub const AUDIT_LOG_ID_LEN: usize = 16;

/// The identity of an audit log: random bytes fixed when the log is created
/// (its database schema migrated), stored beside the log and never changed.
/// Every checkpoint signs it, so a witness of one log is never taken for
/// another's. Displayed as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditLogId(pub [u8; AUDIT_LOG_ID_LEN]);

impl fmt::Display for AuditLogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AuditLogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditLogId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_show_as_lowercase_hex() {
        let id = AuditLogId([0xab; AUDIT_LOG_ID_LEN]);
        assert_eq!(id.to_string(), "ab".repeat(AUDIT_LOG_ID_LEN));
        assert_eq!(
            format!("{id:?}"),
            format!("AuditLogId({})", "ab".repeat(16))
        );
        assert_eq!(AuditHead::GENESIS.sequence, 0);
        assert_eq!(AuditHead::GENESIS.hash, [0; 32]);
    }
}

//! The hash chain: each record's hash covers its sequence, its
//! predecessor's hash and its canonical bytes.

use sha2::{Digest, Sha256};
#[cfg(feature = "storage")]
use shardkeep_storage::AuditEntry;
#[cfg(feature = "storage")]
use shardkeep_types::AuditHead;

/// Domain tag of every chain hash.
pub const AUDIT_TAG: &[u8] = b"shardkeep/audit/v1";

/// `SHA-256("shardkeep/audit/v1" || sequence (u64 BE) || prev_hash ||
/// record length (u32 BE) || record)`.
#[must_use]
pub fn chain_hash(sequence: u64, prev_hash: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(AUDIT_TAG);
    hasher.update(sequence.to_be_bytes());
    hasher.update(prev_hash);
    // Records are capped far below 4 GiB (storage refuses more than 64 KiB).
    hasher.update(
        u32::try_from(record.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    hasher.update(record);
    hasher.finalize().into()
}

/// The builder storage runs under the head lock: links `record` to the head
/// it is handed.
#[cfg(feature = "storage")]
pub fn link(record: Vec<u8>) -> impl FnOnce(&AuditHead) -> AuditEntry + Send {
    move |head: &AuditHead| AuditEntry {
        hash: chain_hash(head.sequence.saturating_add(1), &head.hash, &record),
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_moves_the_hash() {
        let base = chain_hash(1, &[0; 32], b"record");
        assert_ne!(base, chain_hash(2, &[0; 32], b"record"));
        assert_ne!(base, chain_hash(1, &[1; 32], b"record"));
        assert_ne!(base, chain_hash(1, &[0; 32], b"recorD"));
        assert_eq!(base, chain_hash(1, &[0; 32], b"record"));
        #[cfg(feature = "storage")]
        {
            let entry = link(b"record".to_vec())(&AuditHead::GENESIS);
            assert_eq!(entry.hash, base);
        }
    }
}

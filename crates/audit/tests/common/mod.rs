//! Helpers shared by the integration tests and the bench: building hash
//! chains of records the way storage appends them, and their exports.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use shardkeep_audit::{AuditLogId, AuditRecord, EventType, Export, chain_hash};
use shardkeep_storage::{AuditHead, AuditRow};
use shardkeep_types::{ActorId, Timestamp};

/// The log the built chains belong to.
pub(crate) const LOG: AuditLogId = AuditLogId([0x5a; 16]);

/// Chains encoded `records` into rows, starting after `head`.
pub(crate) fn chain_from(head: AuditHead, records: &[Vec<u8>]) -> Vec<AuditRow> {
    let mut head = head;
    records
        .iter()
        .map(|record| {
            let sequence = head.sequence + 1;
            let hash = chain_hash(sequence, &head.hash, record);
            let row = AuditRow {
                sequence,
                prev_hash: head.hash,
                hash,
                record: record.clone(),
            };
            head = AuditHead { sequence, hash };
            row
        })
        .collect()
}

/// An export of `rows` of [`LOG`].
pub(crate) fn export_of(rows: &[AuditRow]) -> Export {
    Export {
        log_id: LOG,
        rows: rows.to_vec(),
    }
}

/// The head of the chain `rows` at `sequence` (genesis at 0).
pub(crate) fn head_at(rows: &[AuditRow], sequence: u64) -> AuditHead {
    if sequence == 0 {
        return AuditHead::GENESIS;
    }
    let row = &rows[usize::try_from(sequence - 1).unwrap()];
    AuditHead {
        sequence,
        hash: row.hash,
    }
}

/// `count` minimal records of `event` by operator `ops`, at 0, 1, 2, ... ms,
/// encoded.
pub(crate) fn minimal_records(event: EventType, count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            AuditRecord::new(
                event,
                Timestamp::from_unix_millis(i).unwrap(),
                ActorId::new("ops").unwrap(),
            )
            .encode()
            .unwrap()
        })
        .collect()
}

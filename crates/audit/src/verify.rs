//! The independent verifier: given an exported log, the witnessed
//! checkpoints (read from outside the audited database) and the checkpoint
//! signer's public key, it recomputes the chain and reports the first record
//! changed, removed, reordered or inserted, any rewrite behind a witnessed
//! checkpoint, a fork in the witness, a witness of another log, and any
//! truncation behind the highest witnessed head.
//!
//! It needs no database and trusts nothing in the export: not the stored
//! hashes (it recomputes them), not the order (it checks sequences), not the
//! record bytes (it decodes them canonically). Without a witness it
//! verifies nothing: a log whose only anchor is itself can be cut at will.

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::VerifyingKey;
use shardkeep_types::{AuditHead, AuditLogId, AuditRow};

use crate::chain::chain_hash;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Finding};
use crate::export::Export;
use crate::record::AuditRecord;

/// What a successful verification establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLog {
    /// The log verified.
    pub log_id: AuditLogId,
    /// Records checked.
    pub records: u64,
    /// The recomputed head.
    pub head: AuditHead,
    /// Witnessed checkpoints checked.
    pub checkpoints: usize,
    /// The highest witnessed sequence: everything up to it is anchored.
    pub latest_checkpoint: u64,
    /// Records after the highest witnessed checkpoint: not yet anchored, so
    /// their removal would not show until a later checkpoint covers them.
    pub unwitnessed: u64,
}

/// Verifies an exported log against the checkpoints of its witness (in any
/// order; one witness or several merged).
///
/// # Errors
/// [`Error::Tampered`] with the first [`Finding`]; among them
/// [`Finding::NoWitness`] when `witness` is empty and
/// [`Finding::Truncated`] when the log ends before the highest witnessed
/// head.
pub fn verify(
    export: &Export,
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<VerifiedLog, Error> {
    verify_inner(export, witness, key).map_err(Error::Tampered)
}

fn verify_inner(
    export: &Export,
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<VerifiedLog, Finding> {
    let witnessed = check_witness(&export.log_id, witness, key)?;
    let rows = &export.rows;

    let mut counts: HashMap<u64, usize> = HashMap::with_capacity(rows.len());
    for row in rows {
        *counts.entry(row.sequence).or_default() += 1;
    }

    let mut head = AuditHead::GENESIS;
    let mut last_matching: Option<u64> = None;
    if let Some(hash) = witnessed.get(&0) {
        if *hash != AuditHead::GENESIS.hash {
            return Err(Finding::CheckpointMismatch {
                sequence: 0,
                after: None,
            });
        }
        last_matching = Some(0);
    }
    for (position, row) in rows.iter().enumerate() {
        head = next_link(rows, position, head, &counts)?;
        let hash = head.hash;
        if let Some(witnessed_hash) = witnessed.get(&row.sequence) {
            if *witnessed_hash != hash {
                return Err(Finding::CheckpointMismatch {
                    sequence: row.sequence,
                    after: last_matching,
                });
            }
            last_matching = Some(row.sequence);
        }
    }
    // What the rows show is reported first; without a witness nothing
    // outside the database says where the log should end.
    let Some(&highest) = witnessed.keys().next_back() else {
        return Err(Finding::NoWitness);
    };
    if highest > head.sequence {
        return Err(Finding::Truncated {
            witnessed: highest,
            present: head.sequence,
        });
    }
    Ok(VerifiedLog {
        log_id: export.log_id,
        records: head.sequence,
        head,
        checkpoints: witness.len(),
        latest_checkpoint: highest,
        unwitnessed: head.sequence - highest,
    })
}

/// Checks that every checkpoint is of this log and signed by `key`, and
/// that no two name different heads at one sequence; returns the witnessed
/// head per sequence. Order does not matter: checkpointers running side by
/// side may witness a lower head after a higher one, and both lie on the
/// one chain.
pub(crate) fn check_witness(
    log_id: &AuditLogId,
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<BTreeMap<u64, [u8; 32]>, Finding> {
    let mut witnessed = BTreeMap::new();
    for (index, checkpoint) in witness.iter().enumerate() {
        let line = index + 1;
        if checkpoint.log_id != *log_id {
            return Err(Finding::OtherLog {
                line,
                witnessed: checkpoint.log_id,
                exported: *log_id,
            });
        }
        if !checkpoint.verifies(key) {
            return Err(Finding::BadCheckpointSignature { line });
        }
        let earlier = *witnessed
            .entry(checkpoint.sequence)
            .or_insert(checkpoint.head_hash);
        if earlier != checkpoint.head_hash {
            return Err(Finding::WitnessFork {
                sequence: checkpoint.sequence,
                line,
            });
        }
    }
    Ok(witnessed)
}

/// The head after the row at `position`, which must follow `head`: the
/// next sequence, linked to `head`'s hash, its own hash the chain hash of
/// its record, and a record that decodes.
pub(crate) fn next_link(
    rows: &[AuditRow],
    position: usize,
    head: AuditHead,
    counts: &HashMap<u64, usize>,
) -> Result<AuditHead, Finding> {
    let row = &rows[position];
    let expected = head.sequence + 1;
    if row.sequence != expected {
        return Err(misplaced(rows, position, expected, counts));
    }
    if row.prev_hash != head.hash {
        return Err(Finding::Relinked {
            sequence: row.sequence,
            position,
        });
    }
    let hash = chain_hash(row.sequence, &head.hash, &row.record);
    if hash != row.hash {
        return Err(Finding::Changed {
            sequence: row.sequence,
            position,
        });
    }
    if let Err(error) = AuditRecord::decode(&row.record) {
        return Err(Finding::Malformed {
            sequence: row.sequence,
            position,
            error,
        });
    }
    Ok(AuditHead {
        sequence: row.sequence,
        hash,
    })
}

/// Names what happened when the row at `position` does not carry the
/// expected sequence.
fn misplaced(
    rows: &[AuditRow],
    position: usize,
    expected: u64,
    counts: &HashMap<u64, usize>,
) -> Finding {
    let row = &rows[position];
    if row.sequence < expected {
        // A sequence already passed: this row or, when it repeats the row
        // just before it, that one does not belong. The next row's link
        // tells which of the two the chain continues from.
        let previous_is_forged = row.sequence + 1 == expected
            && position > 0
            && rows.get(position + 1).is_some_and(|next| {
                next.prev_hash == row.hash && next.prev_hash != rows[position - 1].hash
            });
        return Finding::Inserted {
            sequence: row.sequence,
            position: if previous_is_forged {
                position - 1
            } else {
                position
            },
        };
    }
    if counts.get(&row.sequence).copied().unwrap_or(0) > 1 {
        return Finding::Inserted {
            sequence: row.sequence,
            position,
        };
    }
    if counts.contains_key(&expected) {
        Finding::Reordered {
            sequence: expected,
            position,
            found: row.sequence,
        }
    } else {
        Finding::Removed {
            sequence: expected,
            position,
            found: row.sequence,
        }
    }
}

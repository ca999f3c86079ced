//! The independent verifier: given an exported log, the witness and the
//! checkpoint signer's public key, it recomputes the chain and reports the
//! first record changed, removed, reordered or inserted, any rewrite behind
//! a witnessed checkpoint, and any truncation behind the latest one.
//!
//! It needs no database and trusts nothing in the export: not the stored
//! hashes (it recomputes them), not the order (it checks sequences), not the
//! record bytes (it decodes them canonically).

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::VerifyingKey;
use shardkeep_storage::{AuditHead, AuditRow};

use crate::chain::chain_hash;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Finding};
use crate::record::AuditRecord;

/// What a successful verification establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLog {
    /// Records checked.
    pub records: u64,
    /// The recomputed head.
    pub head: AuditHead,
    /// Witness checkpoints checked.
    pub checkpoints: usize,
    /// The latest witnessed sequence, if the witness is not empty.
    pub latest_checkpoint: Option<u64>,
    /// Records after the latest checkpoint: not yet covered by a signature,
    /// so their removal would not show until the next checkpoint.
    pub unwitnessed: u64,
}

/// Verifies an exported log against a witness.
///
/// # Errors
/// [`Error::Tampered`] with the first [`Finding`].
pub fn verify(
    rows: &[AuditRow],
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<VerifiedLog, Error> {
    verify_inner(rows, witness, key).map_err(Error::Tampered)
}

fn verify_inner(
    rows: &[AuditRow],
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<VerifiedLog, Finding> {
    let witnessed = check_witness(witness, key)?;
    let latest_checkpoint = witnessed.keys().next_back().copied();

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
        let expected = head.sequence + 1;
        if row.sequence != expected {
            return Err(misplaced(rows, position, expected, &counts));
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
        head = AuditHead {
            sequence: row.sequence,
            hash,
        };
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
    if let Some(latest) = latest_checkpoint
        && latest > head.sequence
    {
        return Err(Finding::Truncated {
            witnessed: latest,
            present: head.sequence,
        });
    }
    Ok(VerifiedLog {
        records: head.sequence,
        head,
        checkpoints: witness.len(),
        latest_checkpoint,
        unwitnessed: head.sequence - latest_checkpoint.unwrap_or(0),
    })
}

/// Checks every witness signature and that the witness never goes back or
/// contradicts itself; returns the witnessed head per sequence.
fn check_witness(
    witness: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<BTreeMap<u64, [u8; 32]>, Finding> {
    let mut witnessed = BTreeMap::new();
    let mut latest = 0;
    for (index, checkpoint) in witness.iter().enumerate() {
        let line = index + 1;
        if !checkpoint.verifies(key) {
            return Err(Finding::BadCheckpointSignature { line });
        }
        let contradicts = checkpoint.sequence < latest
            || witnessed
                .get(&checkpoint.sequence)
                .is_some_and(|hash| *hash != checkpoint.head_hash);
        if contradicts {
            return Err(Finding::WitnessInconsistent { line });
        }
        latest = checkpoint.sequence;
        witnessed.insert(checkpoint.sequence, checkpoint.head_hash);
    }
    Ok(witnessed)
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

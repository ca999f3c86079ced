//! Random logs, random single edits: the verifier catches every one and
//! names where it happened; an untouched log verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use proptest::prelude::*;
use shardkeep_audit::{
    AuditLogId, AuditRecord, Checkpoint, Error, EventType, Finding, Outcome, encode_export,
    parse_export, verify,
};
use shardkeep_storage::{AuditHead, AuditRow};
use shardkeep_types::{
    ActorId, FreeText, InMemorySigner, KeyId, KeyVersion, NodeId, Signer, SignerId, Timestamp,
};
use shardkeep_types::{ShareIndex, Threshold};

mod common;
use common::{LOG, chain_from, export_of, head_at, minimal_records};

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.@-]{0,11}"
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~\u{e9}\u{4e2d}]{{1,{max}}}")).unwrap()
}

prop_compose! {
    fn record()(
        event in proptest::sample::select(EventType::ALL),
        millis in 0u64..4_000_000_000_000,
        operator in name(),
        approvers in proptest::collection::btree_set(name(), 0..3),
        key_id in proptest::option::of("[a-z0-9-]{1,12}"),
        node_id in proptest::option::of("[a-z0-9-]{1,12}"),
        version in proptest::option::of(any::<u32>()),
        share_index in proptest::option::of(1u8..=255),
        envelope_id in proptest::option::of(any::<[u8; 32]>()),
        signature in proptest::option::weighted(0.3, proptest::collection::vec(any::<u8>(), 64)),
        target in proptest::option::of(text(24)),
        threshold in proptest::option::of((2u8..=5, 0u8..=3)),
        failure in proptest::option::of(text(40)),
        detail in proptest::option::of(text(60)),
    ) -> AuditRecord {
        let mut record = AuditRecord::new(
            event,
            Timestamp::from_unix_millis(millis).unwrap(),
            ActorId::new(operator).unwrap(),
        );
        record.approvers = approvers.into_iter().map(|a| ActorId::new(a).unwrap()).collect::<BTreeSet<_>>();
        record.key_id = key_id.map(|k| KeyId::new(k).unwrap());
        record.node_id = node_id.map(|n| NodeId::new(n).unwrap());
        record.version = version.map(KeyVersion::new);
        record.share_index = share_index.and_then(ShareIndex::new);
        record.envelope_id = envelope_id;
        record.signature = signature.map(|s| s.try_into().unwrap());
        record.target = target.map(|t| FreeText::new(t).unwrap());
        record.threshold = threshold.map(|(t, extra)| {
            Threshold::new(usize::from(t), usize::from(t + extra)).unwrap()
        });
        record.outcome = failure.map_or(Outcome::Success, |reason| Outcome::Failure { reason: FreeText::new(reason).unwrap() });
        record.detail = detail.map(|d| FreeText::new(d).unwrap());
        record
    }
}

fn signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[9; 32])
}

/// A witness with checkpoints at `every`-th sequences and at the end.
fn witness(rows: &[AuditRow], every: u64) -> Vec<Checkpoint> {
    let n = rows.len() as u64;
    let mut sequences: Vec<u64> = (1..=n).filter(|s| s % every == 0).collect();
    sequences.push(n);
    sequences.dedup();
    sequences
        .into_iter()
        .map(|s| {
            Checkpoint::sign(
                LOG,
                &head_at(rows, s),
                Timestamp::from_unix_millis(s).unwrap(),
                &signer(),
            )
            .unwrap()
        })
        .collect()
}

fn key() -> VerifyingKey {
    signer().verifying_key()
}

fn finding(rows: &[AuditRow], witness: &[Checkpoint]) -> Finding {
    // The export format round-trips, so edits survive export and import.
    let export = parse_export(&encode_export(&LOG, rows)).unwrap();
    match verify(&export, witness, &key()) {
        Err(Error::Tampered(finding)) => finding,
        other => panic!("edit not detected: {other:?}"),
    }
}

/// Changes one field of a record, by `selector`.
fn change_field(record: &mut AuditRecord, selector: u8) {
    match selector % 7 {
        0 => {
            record.timestamp =
                Timestamp::from_unix_millis(record.timestamp.as_unix_millis() ^ 1).unwrap();
        }
        1 => {
            record.operator = ActorId::new(format!("{}x", &record.operator.as_str()[..1])).unwrap();
        }
        2 => {
            let next = EventType::ALL.iter().find(|e| **e != record.event).unwrap();
            record.event = *next;
        }
        3 => {
            record.outcome = match record.outcome {
                Outcome::Success => Outcome::Failure {
                    reason: FreeText::new("forged").unwrap(),
                },
                Outcome::Failure { .. } => Outcome::Success,
            };
        }
        4 => {
            record.share_index =
                ShareIndex::new(record.share_index.map_or(1, |i| i.get() % 255 + 1));
        }
        5 => {
            if record.approvers.insert(ActorId::new("zz.forged").unwrap()) {
                return;
            }
            record.approvers.clear();
        }
        _ => {
            record.detail = match record.detail {
                None => Some(FreeText::new("added later").unwrap()),
                Some(_) => None,
            };
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Change { row: usize, selector: u8 },
    Drop { row: usize },
    Swap { row: usize },
    InsertReplay { at: usize, from: usize },
    InsertForged { at: usize },
    Truncate { keep: usize },
    Rewrite { row: usize, selector: u8 },
}

fn edit(n: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..n, any::<u8>()).prop_map(|(row, selector)| Edit::Change { row, selector }),
        (0..n).prop_map(|row| Edit::Drop { row }),
        (0..n - 1).prop_map(|row| Edit::Swap { row }),
        (0..=n, 0..n).prop_map(|(at, from)| Edit::InsertReplay { at, from }),
        (0..n - 1).prop_map(|at| Edit::InsertForged { at }),
        (0..n).prop_map(|keep| Edit::Truncate { keep }),
        (0..n, any::<u8>()).prop_map(|(row, selector)| Edit::Rewrite { row, selector }),
    ]
}

fn log_and_edit() -> impl Strategy<Value = (Vec<AuditRecord>, u64, Edit)> {
    (proptest::collection::vec(record(), 2..24), 1u64..8).prop_flat_map(|(records, every)| {
        let n = records.len();
        (Just(records), Just(every), edit(n))
    })
}

fn seq(row: usize) -> u64 {
    row as u64 + 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_round_trip(record in record()) {
        let bytes = record.encode().unwrap();
        prop_assert_eq!(AuditRecord::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn every_single_edit_is_caught_and_placed((records, every, edit) in log_and_edit()) {
        let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
        let rows = chain_from(AuditHead::GENESIS, &encoded);
        let witness = witness(&rows, every);
        let n = rows.len();
        let witnessed: BTreeSet<u64> = witness.iter().map(|c| c.sequence).collect();

        // Untouched, the log verifies, whatever order the checkpoints were
        // witnessed in.
        let verified = verify(&export_of(&rows), &witness, &key()).unwrap();
        prop_assert_eq!(verified.records, n as u64);
        prop_assert_eq!(verified.unwitnessed, 0);
        let mut reversed = witness.clone();
        reversed.reverse();
        prop_assert_eq!(verify(&export_of(&rows), &reversed, &key()).unwrap(), verified);

        let mut edited = rows.clone();
        let expected = match edit {
            Edit::Change { row, selector } => {
                let mut record = records[row].clone();
                change_field(&mut record, selector);
                let bytes = record.encode().unwrap();
                prop_assume!(bytes != edited[row].record);
                edited[row].record = bytes;
                vec![Finding::Changed { sequence: seq(row), position: row }]
            }
            Edit::Drop { row } => {
                edited.remove(row);
                if row == n - 1 {
                    vec![Finding::Truncated { witnessed: n as u64, present: n as u64 - 1 }]
                } else {
                    vec![Finding::Removed { sequence: seq(row), position: row, found: seq(row + 1) }]
                }
            }
            Edit::Swap { row } => {
                edited.swap(row, row + 1);
                vec![Finding::Reordered { sequence: seq(row), position: row, found: seq(row + 1) }]
            }
            Edit::InsertReplay { at, from } => {
                edited.insert(at, rows[from].clone());
                if from == at {
                    // An identical copy next to its original: either is "the" copy.
                    vec![
                        Finding::Inserted { sequence: seq(from), position: at },
                        Finding::Inserted { sequence: seq(from), position: at + 1 },
                    ]
                } else {
                    vec![Finding::Inserted { sequence: seq(from), position: at }]
                }
            }
            Edit::InsertForged { at } => {
                // A forger who knows the chain: a consistent row claiming the
                // next sequence, placed before the real one.
                let head = head_at(&rows, at as u64);
                let mut forged_record = records[at].clone();
                forged_record.detail = Some(FreeText::new("forged").unwrap());
                let forged = chain_from(head, &[forged_record.encode().unwrap()]).remove(0);
                prop_assume!(forged.hash != rows[at].hash);
                edited.insert(at, forged);
                if witnessed.contains(&seq(at)) {
                    vec![Finding::CheckpointMismatch {
                        sequence: seq(at),
                        after: witnessed.range(..seq(at)).next_back().copied(),
                    }]
                } else {
                    vec![Finding::Inserted { sequence: seq(at), position: at }]
                }
            }
            Edit::Truncate { keep } => {
                edited.truncate(keep);
                vec![Finding::Truncated { witnessed: n as u64, present: keep as u64 }]
            }
            Edit::Rewrite { row, selector } => {
                // The whole chain recomputed after the change: only the
                // witness can tell.
                let mut changed = encoded.clone();
                let mut record = records[row].clone();
                change_field(&mut record, selector);
                changed[row] = record.encode().unwrap();
                prop_assume!(changed[row] != encoded[row]);
                edited = chain_from(AuditHead::GENESIS, &changed);
                let first = *witnessed.range(seq(row)..).next().unwrap();
                vec![Finding::CheckpointMismatch {
                    sequence: first,
                    after: witnessed.range(..seq(row)).next_back().copied(),
                }]
            }
        };
        let found = finding(&edited, &witness);
        prop_assert!(expected.contains(&found), "edit {:?}: expected {:?}, found {:?}", edit, expected, found);
    }

    #[test]
    fn the_witness_must_verify_under_the_key((records, every, _edit) in log_and_edit(), line in any::<prop::sample::Index>(), bit in 0usize..512) {
        let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
        let rows = chain_from(AuditHead::GENESIS, &encoded);
        let mut witness = witness(&rows, every);
        let target = line.index(witness.len());
        witness[target].signature[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(
            finding(&rows, &witness),
            Finding::BadCheckpointSignature { line: target + 1 }
        );
    }
}

fn sign(head: AuditHead) -> Checkpoint {
    Checkpoint::sign(LOG, &head, Timestamp::EPOCH, &signer()).unwrap()
}

#[test]
fn appends_after_the_latest_checkpoint_are_reported_unwitnessed() {
    let records = minimal_records(EventType::Inspect, 5);
    let rows = chain_from(AuditHead::GENESIS, &records);
    let witness = witness(&rows[..3], 10);
    let verified = verify(&export_of(&rows), &witness, &key()).unwrap();
    assert_eq!(verified.log_id, LOG);
    assert_eq!(verified.latest_checkpoint, 3);
    assert_eq!(verified.unwitnessed, 2);
    // Dropping unwitnessed records cannot be seen yet; dropping witnessed
    // ones can.
    assert!(verify(&export_of(&rows[..3]), &witness, &key()).is_ok());
    assert!(matches!(
        verify(&export_of(&rows[..2]), &witness, &key()),
        Err(Error::Tampered(Finding::Truncated {
            witnessed: 3,
            present: 2
        }))
    ));
}

#[test]
fn the_highest_witnessed_head_bounds_the_log_whatever_the_order() {
    let rows = chain_from(AuditHead::GENESIS, &minimal_records(EventType::Inspect, 6));
    // Two checkpointers side by side: the lower head arrived last.
    let witness = [sign(head_at(&rows, 5)), sign(head_at(&rows, 2))];
    let verified = verify(&export_of(&rows), &witness, &key()).unwrap();
    assert_eq!(verified.latest_checkpoint, 5);
    assert_eq!(verified.unwitnessed, 1);
    assert!(matches!(
        verify(&export_of(&rows[..4]), &witness, &key()),
        Err(Error::Tampered(Finding::Truncated {
            witnessed: 5,
            present: 4
        }))
    ));
}

/// The attack the witness exists for: a log cut back (all of it, or to
/// before a witnessed head) verifies against nothing but itself.
#[test]
fn a_log_without_a_witness_is_not_verified() {
    let rows = chain_from(
        AuditHead::GENESIS,
        &minimal_records(EventType::HardDelete, 4),
    );
    for kept in [4, 1, 0] {
        assert!(matches!(
            verify(&export_of(&rows[..kept]), &[], &key()),
            Err(Error::Tampered(Finding::NoWitness))
        ));
    }
}

#[test]
fn a_witness_of_another_log_is_refused() {
    // Two logs whose first records are the same have the same first hashes:
    // only the log id in the signed checkpoint tells their witnesses apart.
    let rows = chain_from(AuditHead::GENESIS, &minimal_records(EventType::Generate, 3));
    let other = AuditLogId([0xa5; 16]);
    let theirs = Checkpoint::sign(other, &head_at(&rows, 2), Timestamp::EPOCH, &signer()).unwrap();
    assert!(theirs.verifies(&key()));
    assert_eq!(
        verify(
            &export_of(&rows[..2]),
            std::slice::from_ref(&theirs),
            &key()
        )
        .unwrap_err()
        .to_string(),
        format!(
            "audit log does not verify: witness line 1 is a checkpoint of log {other}, \
             not of the exported log {LOG}"
        )
    );
    let mixed = [sign(head_at(&rows, 1)), theirs];
    assert!(matches!(
        verify(&export_of(&rows), &mixed, &key()),
        Err(Error::Tampered(Finding::OtherLog {
            line: 2,
            witnessed,
            exported: LOG,
        })) if witnessed == other
    ));
}

#[test]
fn a_witness_that_contradicts_itself_is_refused() {
    let records = minimal_records(EventType::Drill, 4);
    let rows = chain_from(AuditHead::GENESIS, &records);
    // A fork: two heads at one sequence. Only one can be on the exported
    // chain, and which one does not matter: two histories were signed.
    let forked = [
        sign(head_at(&rows, 2)),
        sign(AuditHead {
            sequence: 2,
            hash: [1; 32],
        }),
    ];
    assert!(matches!(
        verify(&export_of(&rows), &forked, &key()),
        Err(Error::Tampered(Finding::WitnessFork {
            sequence: 2,
            line: 2
        }))
    ));
    let wrong_key = InMemorySigner::from_seed(SignerId::new("other").unwrap(), &[1; 32]);
    let witness = [sign(head_at(&rows, 4))];
    assert!(matches!(
        verify(&export_of(&rows), &witness, &wrong_key.verifying_key()),
        Err(Error::Tampered(Finding::BadCheckpointSignature { line: 1 }))
    ));
    // A record that hashes right but is not canonical was written around
    // this crate: found from the rows alone, before asking for a witness.
    let mut odd = records.clone();
    odd[1].push(0);
    let rows = chain_from(AuditHead::GENESIS, &odd);
    assert!(matches!(
        verify(&export_of(&rows), &[], &key()),
        Err(Error::Tampered(Finding::Malformed {
            sequence: 2,
            position: 1,
            ..
        }))
    ));
    // A row replaced by one with another history breaks the next link.
    let mut relinked = chain_from(AuditHead::GENESIS, &records);
    relinked[2].prev_hash = [7; 32];
    assert!(matches!(
        verify(&export_of(&relinked), &witness, &key()),
        Err(Error::Tampered(Finding::Relinked {
            sequence: 3,
            position: 2
        }))
    ));
}

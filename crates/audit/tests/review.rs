//! The archive of a two-person review, verified offline against the
//! witness: each attack on it (a changed record, a dropped record, a range
//! whose head the witness does not name, a forged review) is refused with
//! its own finding, from the archive's bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::{
    AuditReview, Checkpoint, Error, EventType, Export, Finding, ReviewArchive, ReviewedRange,
    verify_review_archive,
};
use shardkeep_storage::{AuditHead, AuditRow};
use shardkeep_types::{ActorId, FreeText, InMemorySigner, Signer, SignerId, Timestamp};

mod common;
use common::{LOG, chain_from, head_at, minimal_records};

/// The reviewed range: records 2..=5 of a log of 6.
const FIRST: u64 = 2;
const LAST: u64 = 5;

fn checkpoint_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[0x42; 32])
}

fn person(seed: u8) -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("person").unwrap(), &[seed; 32])
}

fn carol() -> ActorId {
    ActorId::new("comp.carol").unwrap()
}

fn dave() -> ActorId {
    ActorId::new("comp.dave").unwrap()
}

fn reviewer_keys() -> Vec<(ActorId, VerifyingKey)> {
    vec![
        (carol(), person(1).verifying_key()),
        (dave(), person(2).verifying_key()),
    ]
}

fn log() -> Vec<AuditRow> {
    chain_from(AuditHead::GENESIS, &minimal_records(EventType::Inspect, 6))
}

fn witness_of(rows: &[AuditRow], at: &[u64]) -> Vec<Checkpoint> {
    at.iter()
        .map(|sequence| {
            Checkpoint::sign(
                LOG,
                &head_at(rows, *sequence),
                Timestamp::from_unix_millis(10_000).unwrap(),
                &checkpoint_signer(),
            )
            .unwrap()
        })
        .collect()
}

fn range_of(rows: &[AuditRow]) -> ReviewedRange {
    ReviewedRange {
        log_id: LOG,
        first: FIRST,
        last: LAST,
        head_hash: head_at(rows, LAST).hash,
    }
}

fn review(range: ReviewedRange, reviewer: ActorId, signer: &dyn Signer) -> AuditReview {
    AuditReview::sign(
        range,
        reviewer,
        FreeText::new("no findings").unwrap(),
        Timestamp::from_unix_millis(20_000).unwrap(),
        signer,
    )
    .unwrap()
}

/// The archive of the honest review of `rows`, as bytes.
fn archive_bytes(rows: &[AuditRow]) -> Vec<u8> {
    let range = range_of(rows);
    ReviewArchive {
        reviews: vec![
            review(range, carol(), &person(1)),
            review(range, dave(), &person(2)),
        ],
        export: Export {
            log_id: LOG,
            rows: rows[1..5].to_vec(),
        },
    }
    .encode()
}

fn check(bytes: &[u8], witness: &[Checkpoint]) -> Result<shardkeep_audit::VerifiedReview, Finding> {
    let archive = ReviewArchive::parse(bytes).unwrap();
    match verify_review_archive(
        &archive,
        witness,
        &checkpoint_signer().verifying_key(),
        &reviewer_keys(),
    ) {
        Ok(verified) => Ok(verified),
        Err(Error::Tampered(finding)) => Err(finding),
        Err(other) => panic!("{other}"),
    }
}

/// Edits the archive through its parsed form and encodes it again.
fn edited(bytes: &[u8], edit: impl FnOnce(&mut ReviewArchive)) -> Vec<u8> {
    let mut archive = ReviewArchive::parse(bytes).unwrap();
    edit(&mut archive);
    archive.encode()
}

#[test]
fn an_honest_archive_verifies() {
    let rows = log();
    let verified = check(&archive_bytes(&rows), &witness_of(&rows, &[3, 5, 6])).unwrap();
    assert_eq!(verified.range, range_of(&rows));
    assert_eq!(verified.reviewers, [carol(), dave()]);
    assert_eq!(verified.records, 4);
    assert_eq!(verified.checkpoints, 3);
}

#[test]
fn a_changed_record_is_refused() {
    let rows = log();
    let mut bytes = archive_bytes(&rows);
    // The last byte of the archive is the last record's last byte.
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        check(&bytes, &witness_of(&rows, &[5])),
        Err(Finding::Changed {
            sequence: 5,
            position: 3
        })
    );
}

#[test]
fn a_dropped_record_is_refused() {
    let rows = log();
    let bytes = archive_bytes(&rows);
    let witness = witness_of(&rows, &[5]);
    let inside = edited(&bytes, |archive| {
        archive.export.rows.remove(1);
    });
    assert_eq!(
        check(&inside, &witness),
        Err(Finding::Removed {
            sequence: 3,
            position: 1,
            found: 4
        })
    );
    let first = edited(&bytes, |archive| {
        archive.export.rows.remove(0);
    });
    assert_eq!(
        check(&first, &witness),
        Err(Finding::Removed {
            sequence: 2,
            position: 0,
            found: 3
        })
    );
    let last = edited(&bytes, |archive| {
        archive.export.rows.pop();
    });
    assert_eq!(
        check(&last, &witness),
        Err(Finding::Truncated {
            witnessed: 5,
            present: 4
        })
    );
}

#[test]
fn a_range_whose_head_the_witness_does_not_name_is_refused() {
    let rows = log();
    let bytes = archive_bytes(&rows);
    // The witness saw another record 4, so another head at 5: this range
    // (reviewed on a database that was rewritten) is not the witnessed log.
    let mut records = minimal_records(EventType::Inspect, 6);
    records[3] = minimal_records(EventType::Drill, 4).pop().unwrap();
    let witnessed_log = chain_from(AuditHead::GENESIS, &records);
    assert_eq!(
        check(&bytes, &witness_of(&witnessed_log, &[5])),
        Err(Finding::RangeHeadMismatch { sequence: LAST })
    );
    // No checkpoint at the range's head: nothing anchors it.
    assert_eq!(
        check(&bytes, &witness_of(&rows, &[4, 6])),
        Err(Finding::RangeHeadUnwitnessed { sequence: LAST })
    );
}

#[test]
fn a_forged_review_signature_is_refused() {
    let rows = log();
    let bytes = archive_bytes(&rows);
    let witness = witness_of(&rows, &[5]);
    // Dave's review signed by someone else's key.
    let forged = edited(&bytes, |archive| {
        archive.reviews[1] = review(range_of(&rows), dave(), &person(9));
    });
    assert_eq!(
        check(&forged, &witness),
        Err(Finding::BadReviewSignature {
            review: 2,
            reviewer: dave()
        })
    );
    // Carol's findings rewritten after she signed.
    let altered = edited(&bytes, |archive| {
        archive.reviews[0].findings = FreeText::new("findings removed").unwrap();
    });
    assert_eq!(
        check(&altered, &witness),
        Err(Finding::BadReviewSignature {
            review: 1,
            reviewer: carol()
        })
    );
}

#[test]
fn one_person_twice_or_other_ranges_are_no_two_person_review() {
    let rows = log();
    let bytes = archive_bytes(&rows);
    let witness = witness_of(&rows, &[5]);
    let twice = edited(&bytes, |archive| {
        archive.reviews[1] = archive.reviews[0].clone();
    });
    assert_eq!(
        check(&twice, &witness),
        Err(Finding::ReviewIncomplete { reviewers: 1 })
    );
    let other_range = edited(&bytes, |archive| {
        let mut range = range_of(&rows);
        range.first = 1;
        archive.reviews[1] = review(range, dave(), &person(2));
    });
    assert_eq!(
        check(&other_range, &witness),
        Err(Finding::ReviewRangeMismatch { review: 2 })
    );
    let stranger = edited(&bytes, |archive| {
        archive.reviews[1] = review(
            range_of(&rows),
            ActorId::new("mallory").unwrap(),
            &person(3),
        );
    });
    assert!(matches!(
        check(&stranger, &witness),
        Err(Finding::UnknownReviewer { review: 2, .. })
    ));
}

#[test]
fn a_range_rewritten_after_its_review_is_refused() {
    let rows = log();
    let bytes = archive_bytes(&rows);
    // Record 3 replaced and every later hash recomputed: the rows chain,
    // but to another head than the reviewers signed.
    let mut records = minimal_records(EventType::Inspect, 6);
    records[2] = minimal_records(EventType::Drill, 3).pop().unwrap();
    let rewritten = chain_from(AuditHead::GENESIS, &records);
    let forged = edited(&bytes, |archive| {
        archive.export.rows = rewritten[1..5].to_vec();
    });
    assert_eq!(
        check(&forged, &witness_of(&rows, &[5])),
        Err(Finding::ReviewedHeadMismatch { sequence: LAST })
    );
}

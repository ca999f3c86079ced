//! Audit review cases, generic over the storage backend: the two-person
//! review and archive end to end (verified offline against a file
//! witness), then every refusal with its own error, then the attacks on an
//! archive the service wrote. Each case ends by verifying the whole audit
//! log against a fresh witnessed checkpoint.

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::{
    AuditReview, Checkpoint, Error as AuditError, EventType, FileWitness, Finding, Outcome,
    ReviewArchive, ReviewedRange, read_witness, verify_review_archive,
};
use shardkeep_backup::{AuditReviewState, Error, Role};
use shardkeep_storage::Storage;
use shardkeep_types::{ActorId, InMemorySigner, Signer, SignerId, Timestamp};

use super::{Harness, actor, text};

/// The reviewers and the auditor a [`Fixture`] registers.
const PERSONS: [(&str, Role); 4] = [
    ("comp-1", Role::Compliance),
    ("comp-2", Role::Compliance),
    ("comp-3", Role::Compliance),
    ("aud-1", Role::Auditor),
];

/// A service with, besides `sec-1` and `ops-1`: three compliance reviewers
/// and an auditor, each with a known approval key; a checkpoint signer and
/// a witness file.
pub struct Fixture<S: Storage> {
    pub h: Harness<S>,
    keys: Vec<(ActorId, InMemorySigner)>,
}

/// The approval key a [`Fixture`] registers for `name`.
fn person_key(name: &str) -> InMemorySigner {
    let at = PERSONS
        .iter()
        .position(|(person, _)| *person == name)
        .unwrap();
    InMemorySigner::from_seed(
        SignerId::new("review").unwrap(),
        &[0xc0 + u8::try_from(at).unwrap(); 32],
    )
}

fn checkpoint_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[0x42; 32])
}

impl<S: Storage> Fixture<S> {
    pub async fn new(storage: S, dir: tempfile::TempDir) -> Self {
        let h = Harness::new(storage, dir).await;
        let mut keys = Vec::new();
        for (name, role) in PERSONS {
            let id = actor(name);
            let signer = person_key(name);
            let mut registration = h.person(&id, &[role]);
            registration.keys.approval_key = Some(signer.verifying_key().to_bytes());
            h.service
                .register_person(&h.security, registration)
                .await
                .unwrap();
            keys.push((id, signer));
        }
        Self { h, keys }
    }

    fn key(&self, name: &str) -> &InMemorySigner {
        &self
            .keys
            .iter()
            .find(|(id, _)| id.as_str() == name)
            .unwrap()
            .1
    }

    /// The reviewers' public keys, as an auditor holds them offline.
    fn reviewer_keys(&self) -> Vec<(ActorId, VerifyingKey)> {
        self.keys
            .iter()
            .map(|(id, signer)| (id.clone(), signer.verifying_key()))
            .collect()
    }

    fn witness_path(&self) -> PathBuf {
        self.h.dir.path().join("audit.witness")
    }

    /// Checkpoints the log's current head to the witness file.
    async fn checkpoint(&self) -> Checkpoint {
        let mut witness = FileWitness::open(self.witness_path()).unwrap();
        shardkeep_audit::checkpoint(
            self.h.service.storage(),
            &checkpoint_signer(),
            &mut witness,
            self.h.clock_now(),
        )
        .await
        .unwrap()
    }

    /// The range `first..=` the current head, checkpointed.
    async fn witnessed_range(&self, first: u64) -> ReviewedRange {
        let checkpoint = self.checkpoint().await;
        ReviewedRange {
            log_id: checkpoint.log_id,
            first,
            last: checkpoint.sequence,
            head_hash: checkpoint.head_hash,
        }
    }

    /// `name` signs a review of `range` with their registered key.
    fn review(&self, range: ReviewedRange, name: &str) -> Vec<u8> {
        review_by(range, name, "no findings", self.key(name))
    }

    async fn submit(&self, name: &str, review: &[u8]) -> Result<AuditReviewState, Error> {
        self.h
            .service
            .submit_audit_review(&actor(name), review)
            .await
    }

    async fn last_record(&self) -> shardkeep_audit::AuditRecord {
        self.h.audit_records().await.pop().unwrap()
    }

    /// The whole log verifies against the witness file, with a fresh
    /// checkpoint of its head.
    async fn assert_log_verifies(&self) {
        self.h
            .verify_audit_with(&checkpoint_signer(), &self.witness_path())
            .await;
    }

    /// A complete review of the log so far, and its archive by the auditor.
    async fn reviewed_archive(&self) -> (ReviewedRange, Vec<u8>) {
        let range = self.witnessed_range(2).await;
        self.submit("comp-1", &self.review(range, "comp-1"))
            .await
            .unwrap();
        self.submit("comp-2", &self.review(range, "comp-2"))
            .await
            .unwrap();
        let archive = self
            .h
            .service
            .archive_audit_review(&actor("aud-1"), &range)
            .await
            .unwrap();
        (range, archive)
    }

    /// Verifies archive bytes as an auditor does offline: the witness file
    /// and the reviewers' and checkpoint signer's public keys.
    fn verify_offline(&self, archive: &[u8]) -> Result<shardkeep_audit::VerifiedReview, Finding> {
        let witness = read_witness(self.witness_path()).unwrap();
        self.verify_with(archive, &witness)
    }

    fn verify_with(
        &self,
        archive: &[u8],
        witness: &[Checkpoint],
    ) -> Result<shardkeep_audit::VerifiedReview, Finding> {
        let archive = ReviewArchive::parse(archive).unwrap();
        match verify_review_archive(
            &archive,
            witness,
            &checkpoint_signer().verifying_key(),
            &self.reviewer_keys(),
        ) {
            Ok(verified) => Ok(verified),
            Err(AuditError::Tampered(finding)) => Err(finding),
            Err(other) => panic!("{other}"),
        }
    }
}

/// `name`'s review of `range`, signed with `signer`.
fn review_by(range: ReviewedRange, name: &str, findings: &str, signer: &dyn Signer) -> Vec<u8> {
    AuditReview::sign(
        range,
        actor(name),
        text(findings),
        Timestamp::from_unix_millis(1_900_000_000_000).unwrap(),
        signer,
    )
    .unwrap()
    .encode()
}

fn assert_refusal_audited(record: &shardkeep_audit::AuditRecord, event: EventType) {
    assert_eq!(record.event, event);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));
}

pub async fn two_person_review_and_archive<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    let first = f
        .submit("comp-1", &f.review(range, "comp-1"))
        .await
        .unwrap();
    assert_eq!(first.reviewers, [actor("comp-1")]);
    assert!(!first.complete);
    // One review is no two-person review: nothing to archive yet.
    assert!(matches!(
        f.h.service
            .archive_audit_review(&actor("aud-1"), &range)
            .await,
        Err(Error::AuditReviewIncomplete { reviewers: 1 })
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditArchive);
    let second = f
        .submit("comp-2", &f.review(range, "comp-2"))
        .await
        .unwrap();
    assert_eq!(second.reviewers, [actor("comp-1"), actor("comp-2")]);
    assert!(second.complete);
    assert_eq!(second.range, range);

    let archive =
        f.h.service
            .archive_audit_review(&actor("aud-1"), &range)
            .await
            .unwrap();
    let record = f.last_record().await;
    assert_eq!(record.event, EventType::AuditArchive);
    assert_eq!(record.outcome, Outcome::Success);
    // Archived to a file, verified offline from the file and the witness.
    let path = f.h.dir.path().join("review.archive");
    std::fs::write(&path, &archive).unwrap();
    let verified = f.verify_offline(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(verified.range, range);
    assert_eq!(verified.reviewers, [actor("comp-1"), actor("comp-2")]);
    assert_eq!(verified.records, range.last);
    let parsed = ReviewArchive::parse(&archive).unwrap();
    assert_eq!(parsed.export.rows.first().unwrap().sequence, 1);
    assert_eq!(parsed.export.rows.last().unwrap().hash, range.head_hash);

    let events: Vec<EventType> =
        f.h.audit_records()
            .await
            .iter()
            .map(|record| record.event)
            .collect();
    assert!(events.ends_with(&[
        EventType::AuditReview,
        EventType::AuditArchive,
        EventType::AuditReview,
        EventType::AuditArchive,
    ]));
    f.assert_log_verifies().await;
}

pub async fn second_reviewer_cannot_be_the_first<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    f.submit("comp-1", &f.review(range, "comp-1"))
        .await
        .unwrap();
    // Another review of the same range by the same person: another
    // signature, still one person.
    let again = review_by(range, "comp-1", "second look", f.key("comp-1"));
    assert!(matches!(
        f.submit("comp-1", &again).await,
        Err(Error::SameReviewerTwice(r)) if r.as_str() == "comp-1"
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditReview);
    // The refusal changed nothing: a second person completes the review.
    assert!(
        f.submit("comp-2", &f.review(range, "comp-2"))
            .await
            .unwrap()
            .complete
    );
    f.assert_log_verifies().await;
}

pub async fn replayed_review_is_refused<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    let review = f.review(range, "comp-1");
    f.submit("comp-1", &review).await.unwrap();
    assert!(matches!(
        f.submit("comp-1", &review).await,
        Err(Error::AuditReviewReplayed(r)) if r.as_str() == "comp-1"
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditReview);
    f.submit("comp-2", &f.review(range, "comp-2"))
        .await
        .unwrap();
    // The range has its two reviews: a third is refused.
    assert!(matches!(
        f.submit("comp-3", &f.review(range, "comp-3")).await,
        Err(Error::AuditReviewComplete)
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditReview);
    f.assert_log_verifies().await;
}

pub async fn revoked_reviewer_is_refused<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    f.submit("comp-1", &f.review(range, "comp-1"))
        .await
        .unwrap();
    // Signed while comp-2 was active, submitted after the revocation.
    let review = f.review(range, "comp-2");
    f.h.service
        .revoke_person(&f.h.security, &actor("comp-2"), text("left the company"))
        .await
        .unwrap();
    assert!(matches!(
        f.submit("comp-2", &review).await,
        Err(Error::PersonRevoked(r)) if r.as_str() == "comp-2"
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AccessDenied);
    assert!(matches!(
        f.h.service
            .archive_audit_review(&actor("aud-1"), &range)
            .await,
        Err(Error::AuditReviewIncomplete { reviewers: 1 })
    ));
    f.assert_log_verifies().await;
}

pub async fn range_not_on_the_log_is_refused<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    let mut wrong_head = range;
    wrong_head.head_hash[0] ^= 1;
    assert!(matches!(
        f.submit("comp-1", &f.review(wrong_head, "comp-1")).await,
        Err(Error::AuditReviewHeadMismatch { last }) if last == range.last
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditReview);
    // The head hash of another record: the range must end where it says.
    let mut shifted = range;
    shifted.last -= 1;
    assert!(matches!(
        f.submit("comp-1", &f.review(shifted, "comp-1")).await,
        Err(Error::AuditReviewHeadMismatch { .. })
    ));
    let mut beyond = range;
    beyond.last += 1_000;
    assert!(matches!(
        f.submit("comp-1", &f.review(beyond, "comp-1")).await,
        Err(Error::AuditReviewBeyondHead { .. })
    ));
    let mut other_log = range;
    other_log.log_id.0[0] ^= 1;
    assert!(matches!(
        f.submit("comp-1", &f.review(other_log, "comp-1")).await,
        Err(Error::AuditReviewOtherLog)
    ));
    assert!(matches!(
        f.h.service
            .archive_audit_review(&actor("aud-1"), &wrong_head)
            .await,
        Err(Error::AuditReviewHeadMismatch { .. })
    ));
    // Nothing was stored: the right range still takes its two reviews.
    f.submit("comp-1", &f.review(range, "comp-1"))
        .await
        .unwrap();
    f.assert_log_verifies().await;
}

pub async fn forged_or_misplaced_review_is_refused<S: Storage>(f: Fixture<S>) {
    let range = f.witnessed_range(1).await;
    // comp-1's name, someone else's key.
    let forged = review_by(range, "comp-1", "no findings", f.key("comp-2"));
    assert!(matches!(
        f.submit("comp-1", &forged).await,
        Err(Error::AuditReviewSignatureInvalid(r)) if r.as_str() == "comp-1"
    ));
    assert_refusal_audited(&f.last_record().await, EventType::AuditReview);
    // Findings edited after signing.
    let mut edited = AuditReview::decode(&f.review(range, "comp-1")).unwrap();
    edited.findings = text("all clear");
    assert!(matches!(
        f.submit("comp-1", &edited.encode()).await,
        Err(Error::AuditReviewSignatureInvalid(_))
    ));
    // Submitted by another person than the reviewer.
    assert!(matches!(
        f.submit("comp-2", &f.review(range, "comp-1")).await,
        Err(Error::AuditReviewNotSubmitter { .. })
    ));
    // An auditor does not review.
    assert!(matches!(
        f.submit("aud-1", &f.review(range, "aud-1")).await,
        Err(Error::MissingRole {
            role: Role::Compliance,
            ..
        })
    ));
    assert!(matches!(
        f.submit("comp-1", b"not a review").await,
        Err(Error::AuditReviewInvalid(_))
    ));
    f.assert_log_verifies().await;
}

pub async fn archive_attacks_are_refused_offline<S: Storage>(f: Fixture<S>) {
    let (range, archive) = f.reviewed_archive().await;
    assert!(f.verify_offline(&archive).is_ok());
    let parsed = ReviewArchive::parse(&archive).unwrap();
    let edited = |edit: &dyn Fn(&mut ReviewArchive)| {
        let mut copy = parsed.clone();
        edit(&mut copy);
        copy.encode()
    };

    // A changed record: one byte of the last record's timestamp.
    let mut changed = archive.clone();
    let last_record = parsed.export.rows.last().unwrap().record.len();
    changed[archive.len() - last_record + 2] ^= 1;
    assert!(matches!(
        f.verify_offline(&changed),
        Err(Finding::Changed { sequence, .. }) if sequence == range.last
    ));
    // A dropped record.
    let dropped = edited(&|a| {
        a.export.rows.remove(1);
    });
    assert!(matches!(
        f.verify_offline(&dropped),
        Err(Finding::Removed { sequence: 3, .. })
    ));
    // A head the witness does not name: only checkpoints of other heads.
    let witness = read_witness(f.witness_path()).unwrap();
    let other_heads: Vec<Checkpoint> = witness
        .iter()
        .filter(|checkpoint| checkpoint.sequence != range.last)
        .cloned()
        .collect();
    assert_eq!(
        f.verify_with(&archive, &other_heads),
        Err(Finding::RangeHeadUnwitnessed {
            sequence: range.last
        })
    );
    // ...or a witness that saw another head there (signed by the
    // checkpoint key over a rewritten history).
    let mut forked = witness.clone();
    forked.retain(|checkpoint| checkpoint.sequence != range.last);
    let mut other_head = range.head();
    other_head.hash[0] ^= 1;
    forked.push(
        Checkpoint::sign(
            range.log_id,
            &other_head,
            f.h.clock_now(),
            &checkpoint_signer(),
        )
        .unwrap(),
    );
    assert_eq!(
        f.verify_with(&archive, &forked),
        Err(Finding::RangeHeadMismatch {
            sequence: range.last
        })
    );
    // A forged review: comp-2's review re-signed by another key.
    let forged = edited(&|a| {
        a.reviews[1] =
            AuditReview::decode(&review_by(range, "comp-2", "no findings", f.key("comp-3")))
                .unwrap();
    });
    assert_eq!(
        f.verify_with(&forged, &witness),
        Err(Finding::BadReviewSignature {
            review: 2,
            reviewer: actor("comp-2")
        })
    );
    f.assert_log_verifies().await;
}

//! Two-person review of the audit log as an operation (procedure step 8):
//! compliance reviewers submit signed reviews of a range of the log (first
//! and last sequence, head hash, findings); once two distinct persons have
//! reviewed the same range, it is archived: its reviews and the export of
//! its records, in one file the auditors verify offline against the
//! witness (`shardkeep_audit::verify_review_archive`, or
//! `shardkeep-audit-verify review`).
//!
//! Reviews are signed with the reviewer's registered approval key (their
//! signing key; the review's domain tag `shardkeep/audit-review/v1` keeps
//! it apart from their approvals).

use shardkeep_audit::{
    AuditReview, EventType, Export, REVIEWERS_NEEDED, ReviewArchive, ReviewedRange,
};
use shardkeep_storage::{
    AuditReviewRange, AuditReviewRecord, AuditReviewStore, AuditStore, MAX_PAGE_ROWS, Storage,
    Transaction,
};
use shardkeep_types::{ActorId, FreeText};

use crate::error::Error;
use crate::registry::{Role, admit_ed25519_key};
use crate::service::BackupService;

/// Where a range's review stands after a review was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReviewState {
    /// The range reviewed.
    pub range: ReviewedRange,
    /// Who reviewed it so far, in recording order.
    pub reviewers: Vec<ActorId>,
    /// Whether two distinct persons have reviewed it (it can be archived).
    pub complete: bool,
}

/// The storage form of a reviewed range.
fn stored_range(range: &ReviewedRange) -> AuditReviewRange {
    AuditReviewRange {
        first: range.first,
        last: range.last,
        head_hash: range.head_hash,
    }
}

/// Whether an error is a review refusal that leaves an audit trace.
fn is_review_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::AuditReviewNotSubmitter { .. }
            | Error::AuditReviewSignatureInvalid(_)
            | Error::AuditReviewOtherLog
            | Error::AuditReviewBeyondHead { .. }
            | Error::AuditReviewHeadMismatch { .. }
            | Error::AuditReviewReplayed(_)
            | Error::SameReviewerTwice(_)
            | Error::AuditReviewComplete
            | Error::AuditReviewIncomplete { .. }
    )
}

/// In `tx`: the range is of this log and ends at a record of it whose
/// chain hash is the range's head hash.
async fn check_range_on_log<T: AuditStore + Send>(
    tx: &mut T,
    range: &ReviewedRange,
) -> Result<(), Error> {
    if tx.audit_log_id().await? != range.log_id {
        return Err(Error::AuditReviewOtherLog);
    }
    let head = tx.audit_head().await?;
    if range.last > head.sequence {
        return Err(Error::AuditReviewBeyondHead {
            last: range.last,
            head: head.sequence,
        });
    }
    let row = tx.read_audit(range.last, 1).await?;
    // Public chain hashes: a plain comparison.
    match row.first() {
        Some(row) if row.sequence == range.last && row.hash == range.head_hash => Ok(()),
        _ => Err(Error::AuditReviewHeadMismatch { last: range.last }),
    }
}

/// The stored reviews of `range`, decoded, in recording order.
async fn reviews_of<T: AuditReviewStore + Send>(
    tx: &mut T,
    range: &ReviewedRange,
) -> Result<Vec<AuditReview>, Error> {
    tx.audit_reviews(&stored_range(range))
        .await?
        .iter()
        .map(|stored| AuditReview::decode(&stored.encoding).map_err(Error::AuditReviewInvalid))
        .collect()
}

/// The distinct reviewers of `reviews`, in order.
fn distinct_reviewers(reviews: &[AuditReview]) -> Vec<ActorId> {
    let mut reviewers: Vec<ActorId> = Vec::with_capacity(reviews.len());
    for review in reviews {
        if !reviewers.contains(&review.reviewer) {
            reviewers.push(review.reviewer.clone());
        }
    }
    reviewers
}

impl<S: Storage> BackupService<S> {
    /// Records a compliance reviewer's signed review ([`AuditReview`]
    /// bytes) of a range of the audit log. In order: the caller is the
    /// reviewer; they are registered, active and hold the compliance role
    /// (looked up now); the signature verifies under their registered
    /// approval key; the range is of this log and its head hash is the
    /// stored record's at its last sequence; the signature was not recorded
    /// before; they have not reviewed the range before; the range does not
    /// have its two reviews yet. Stored and audited (`audit-review`) in
    /// one transaction; refusals are audited too.
    ///
    /// # Errors
    /// [`Error::AuditReviewInvalid`] for bytes that do not decode; the
    /// refusals of authorization (audited as `access-denied`);
    /// [`Error::AuditReviewNotSubmitter`],
    /// [`Error::AuditReviewSignatureInvalid`], [`Error::AuditReviewOtherLog`],
    /// [`Error::AuditReviewBeyondHead`], [`Error::AuditReviewHeadMismatch`],
    /// [`Error::AuditReviewReplayed`], [`Error::SameReviewerTwice`],
    /// [`Error::AuditReviewComplete`] (audited as failed `audit-review`);
    /// storage and audit errors.
    pub async fn submit_audit_review(
        &self,
        actor: &ActorId,
        review: &[u8],
    ) -> Result<AuditReviewState, Error> {
        let review = AuditReview::decode(review).map_err(Error::AuditReviewInvalid)?;
        match self.record_audit_review(actor, &review).await {
            Err(error) if is_review_refusal(&error) => {
                self.refuse_approval(actor, EventType::AuditReview, error)
                    .await
            }
            other => other,
        }
    }

    async fn record_audit_review(
        &self,
        actor: &ActorId,
        review: &AuditReview,
    ) -> Result<AuditReviewState, Error> {
        if actor != &review.reviewer {
            return Err(Error::AuditReviewNotSubmitter {
                actor: actor.clone(),
                reviewer: review.reviewer.clone(),
            });
        }
        let tx = self.begin().await?;
        let (mut tx, person) = self
            .authorize_or_refuse(tx, actor, &[Role::Compliance], None)
            .await?;
        let invalid = || Error::AuditReviewSignatureInvalid(review.reviewer.clone());
        let key = person.keys.approval_key.ok_or_else(invalid)?;
        let key = admit_ed25519_key(actor, "approval key", &key).map_err(|_| invalid())?;
        if !review.verifies(&key) {
            return Err(invalid());
        }
        let range = review.range;
        check_range_on_log(&mut tx, &range).await?;
        let earlier = reviews_of(&mut tx, &range).await?;
        // Signatures are public: a plain comparison.
        if earlier
            .iter()
            .any(|stored| stored.signature == review.signature)
        {
            return Err(Error::AuditReviewReplayed(review.reviewer.clone()));
        }
        if earlier
            .iter()
            .any(|stored| stored.reviewer == review.reviewer)
        {
            return Err(Error::SameReviewerTwice(review.reviewer.clone()));
        }
        if distinct_reviewers(&earlier).len() >= REVIEWERS_NEEDED {
            return Err(Error::AuditReviewComplete);
        }
        let now = self.now();
        match tx
            .insert_audit_review(&AuditReviewRecord {
                range: stored_range(&range),
                reviewer: review.reviewer.clone(),
                encoding: review.encode(),
                signature: review.signature,
                reviewed_at: review.reviewed_at,
                recorded_at: now,
            })
            .await
        {
            Ok(()) => {}
            // A signature recorded for another range, or a concurrent
            // submission of the same review.
            Err(shardkeep_storage::Error::AuditReviewSignatureExists) => {
                return Err(Error::AuditReviewReplayed(review.reviewer.clone()));
            }
            Err(shardkeep_storage::Error::AuditReviewExists(reviewer)) => {
                return Err(Error::SameReviewerTwice(reviewer));
            }
            Err(other) => return Err(other.into()),
        }
        let mut reviewers = distinct_reviewers(&earlier);
        reviewers.push(review.reviewer.clone());
        let complete = reviewers.len() >= REVIEWERS_NEEDED;
        let mut audit = self.record(EventType::AuditReview, actor, None);
        audit.detail = Some(FreeText::sanitized(&format!(
            "reviewed audit records {}..={} (head {}): review {} of {REVIEWERS_NEEDED}; findings: {}",
            range.first,
            range.last,
            hex::encode(range.head_hash),
            reviewers.len(),
            review.findings.as_str(),
        ))?);
        Self::audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(AuditReviewState {
            range,
            reviewers,
            complete,
        })
    }

    /// Archives a reviewed range: its reviews and the export of its
    /// records as a [`ReviewArchive`] (bytes to store out of the service's
    /// reach and verify offline against the witness). A compliance person
    /// or an auditor asks; the range must have its two reviews and still
    /// end at the stored head hash. Audited (`audit-archive`) in the
    /// transaction that reads the records; refusals too.
    ///
    /// # Errors
    /// The refusals of authorization (audited as `access-denied`);
    /// [`Error::AuditReviewOtherLog`], [`Error::AuditReviewBeyondHead`],
    /// [`Error::AuditReviewHeadMismatch`], [`Error::AuditReviewIncomplete`]
    /// (audited as failed `audit-archive`); [`Error::AuditReviewInvalid`]
    /// for a stored review that does not decode; storage and audit errors.
    pub async fn archive_audit_review(
        &self,
        actor: &ActorId,
        range: &ReviewedRange,
    ) -> Result<Vec<u8>, Error> {
        match self.build_review_archive(actor, range).await {
            Err(error) if is_review_refusal(&error) => {
                self.refuse_approval(actor, EventType::AuditArchive, error)
                    .await
            }
            other => other,
        }
    }

    async fn build_review_archive(
        &self,
        actor: &ActorId,
        range: &ReviewedRange,
    ) -> Result<Vec<u8>, Error> {
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Compliance, Role::Auditor], None)
            .await?;
        check_range_on_log(&mut tx, range).await?;
        let reviews = reviews_of(&mut tx, range).await?;
        let reviewers = distinct_reviewers(&reviews);
        if reviewers.len() < REVIEWERS_NEEDED {
            return Err(Error::AuditReviewIncomplete {
                reviewers: reviewers.len(),
            });
        }
        let mut rows = Vec::new();
        let mut next = range.first;
        while next <= range.last {
            let page = tx.read_audit(next, MAX_PAGE_ROWS).await?;
            let Some(last) = page.last() else { break };
            next = last.sequence.saturating_add(1);
            rows.extend(page.into_iter().filter(|row| row.sequence <= range.last));
        }
        let archive = ReviewArchive {
            reviews,
            export: Export {
                log_id: range.log_id,
                rows,
            },
        };
        let bytes = archive.encode();
        let names: Vec<&str> = reviewers.iter().map(ActorId::as_str).collect();
        let mut audit = self.record(EventType::AuditArchive, actor, None);
        audit.detail = Some(FreeText::sanitized(&format!(
            "archived audit records {}..={} (head {}), {} records, reviewed by {}; archive of {} bytes",
            range.first,
            range.last,
            hex::encode(range.head_hash),
            archive.export.rows.len(),
            names.join(", "),
            bytes.len(),
        ))?);
        Self::audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(bytes)
    }
}

//! Signed reviews of ranges of the audit log (the two-person review): the
//! record and the store. The caller decodes and checks the review (its
//! signature under the reviewer's registered key, the range against the
//! log, the two-person rule); storage keeps the reviews, append-only, one
//! per reviewer and range, each signature once.

use core::future::Future;

use shardkeep_types::{ActorId, Timestamp};

use crate::error::Error;

/// Longest stored review encoding, in bytes.
pub const MAX_AUDIT_REVIEW_LEN: usize = 4096;

/// The range of the audit log a review covers: records `first..=last`,
/// the record at `last` hashing to `head_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditReviewRange {
    /// The first sequence reviewed (at least 1).
    pub first: u64,
    /// The last sequence reviewed (at least `first`).
    pub last: u64,
    /// The chain hash of the record at `last`.
    pub head_hash: [u8; 32],
}

/// One reviewer's signed review of a range, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReviewRecord {
    /// What was reviewed.
    pub range: AuditReviewRange,
    /// Who reviewed it.
    pub reviewer: ActorId,
    /// The review as signed (the audit crate's `shkp-arv` encoding).
    pub encoding: Vec<u8>,
    /// Its signature (also inside `encoding`): unique among all reviews.
    pub signature: [u8; 64],
    /// When the reviewer signed it (their clock, from the review).
    pub reviewed_at: Timestamp,
    /// When the service recorded it.
    pub recorded_at: Timestamp,
}

/// Reviews of ranges of the audit log: append-only.
pub trait AuditReviewStore {
    /// Stores one review.
    ///
    /// # Errors
    /// [`Error::AuditReviewExists`] when the reviewer already reviewed the
    /// range, [`Error::AuditReviewSignatureExists`] when the signature is
    /// already stored (a replay), [`Error::BlobLength`] (encoding),
    /// [`Error::AuditReviewRangeInvalid`] for a range that is not
    /// `1 <= first <= last`.
    fn insert_audit_review(
        &mut self,
        review: &AuditReviewRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The reviews of exactly `range`, in recording order (then reviewer).
    ///
    /// # Errors
    /// [`Error::Database`].
    fn audit_reviews(
        &mut self,
        range: &AuditReviewRange,
    ) -> impl Future<Output = Result<Vec<AuditReviewRecord>, Error>> + Send;
}

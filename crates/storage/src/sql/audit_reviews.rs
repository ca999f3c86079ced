//! Signed reviews of ranges of the audit log: append-only, one per reviewer
//! and range, each signature once.

use super::{Backend, Columns, SqlTransaction, args, db_int, guarded};
use crate::audit_reviews::{
    AuditReviewRange, AuditReviewRecord, AuditReviewStore, MAX_AUDIT_REVIEW_LEN,
};
use crate::error::Error;
use crate::types::{check_blob, timestamp_to_db};
use shardkeep_types::ActorId;

const REVIEWS: &str = "audit_reviews";

async fn insert_review<B: Backend>(
    tx: &mut SqlTransaction<B>,
    review: &AuditReviewRecord,
) -> Result<(), Error> {
    check_blob("audit review", &review.encoding, 1, MAX_AUDIT_REVIEW_LEN)?;
    let range = &review.range;
    if range.first == 0 || range.first > range.last {
        return Err(Error::AuditReviewRangeInvalid);
    }
    if tx
        .fetch_optional(
            REVIEWS,
            "SELECT 1 FROM audit_reviews WHERE signature = $1",
            args![review.signature.as_slice()],
        )
        .await?
        .is_some()
    {
        return Err(Error::AuditReviewSignatureExists);
    }
    if tx
        .fetch_optional(
            REVIEWS,
            "SELECT 1 FROM audit_reviews WHERE first_sequence = $1 AND last_sequence = $2 \
             AND head_hash = $3 AND reviewer = $4",
            args![
                db_int(range.first),
                db_int(range.last),
                range.head_hash.as_slice(),
                review.reviewer.as_str(),
            ],
        )
        .await?
        .is_some()
    {
        return Err(Error::AuditReviewExists(review.reviewer.clone()));
    }
    tx.execute(
        REVIEWS,
        "INSERT INTO audit_reviews (first_sequence, last_sequence, head_hash, reviewer, \
         encoding, signature, reviewed_at, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            db_int(range.first),
            db_int(range.last),
            range.head_hash.as_slice(),
            review.reviewer.as_str(),
            review.encoding.as_slice(),
            review.signature.as_slice(),
            timestamp_to_db(review.reviewed_at),
            timestamp_to_db(review.recorded_at),
        ],
    )
    .await?;
    Ok(())
}

async fn reviews_of<B: Backend>(
    tx: &mut SqlTransaction<B>,
    range: &AuditReviewRange,
) -> Result<Vec<AuditReviewRecord>, Error> {
    let rows = tx
        .fetch(
            REVIEWS,
            "SELECT first_sequence, last_sequence, head_hash, reviewer, encoding, signature, \
             reviewed_at, recorded_at FROM audit_reviews \
             WHERE first_sequence = $1 AND last_sequence = $2 AND head_hash = $3 \
             ORDER BY recorded_at, reviewer",
            args![
                db_int(range.first),
                db_int(range.last),
                range.head_hash.as_slice()
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, REVIEWS);
            Ok(AuditReviewRecord {
                range: AuditReviewRange {
                    first: cols.u64(0, "first_sequence")?,
                    last: cols.u64(1, "last_sequence")?,
                    head_hash: cols.digest(2, "head_hash")?,
                },
                reviewer: cols.parse(3, "reviewer", ActorId::new)?,
                encoding: cols.blob(4, "encoding")?,
                signature: cols
                    .blob(5, "signature")?
                    .try_into()
                    .map_err(|_| cols.corrupt("signature"))?,
                reviewed_at: cols.timestamp(6, "reviewed_at")?,
                recorded_at: cols.timestamp(7, "recorded_at")?,
            })
        })
        .collect()
}

impl<B: Backend> AuditReviewStore for SqlTransaction<B> {
    async fn insert_audit_review(&mut self, review: &AuditReviewRecord) -> Result<(), Error> {
        guarded!(self, Write, insert_review(self, review))
    }

    async fn audit_reviews(
        &mut self,
        range: &AuditReviewRange,
    ) -> Result<Vec<AuditReviewRecord>, Error> {
        guarded!(self, Read, reviews_of(self, range))
    }
}

//! Two-person review of the audit log: a reviewer's signed review of a
//! range of records (format `shkp-arv` v1), the archive of a reviewed range
//! (format `shkp-ara` v1: the reviews and the export of the range), and its
//! offline verification against the witness.
//!
//! Review v1:
//!
//! ```text
//! [8]   magic "shkp-arv"
//! u8    version (1)
//! [16]  log id
//! u64   first sequence (>= 1)
//! u64   last sequence (>= first)
//! [32]  hash of the record at the last sequence (the range's head)
//! name  reviewer (u8 length 1..=64, actor id)
//! text  findings (u16 length 1..=1024, UTF-8 free text)
//! u64   reviewed at, ms since the Unix epoch (<= i64::MAX)
//! [64]  Ed25519 signature over "shardkeep/audit-review/v1" || every byte above
//! ```
//!
//! Archive v1:
//!
//! ```text
//! [8]   magic "shkp-ara"
//! u8    version (1)
//! u8    review count (1..=8)
//! then per review: u16 length (1..=MAX_REVIEW_LEN) and the review's bytes
//! then the export of the range (`shkp-aex` v2) up to the end of the input
//! ```
//!
//! The verifier trusts nothing in the archive: it recomputes the chain of
//! the range, requires a witnessed checkpoint naming the range's head,
//! and checks every review's signature under the reviewer key the caller
//! gives for that reviewer. The first row's predecessor hash is not checked
//! against earlier rows (the archive has none); it is bound by the chain
//! hash of that row, so by the witnessed head.

use std::collections::{BTreeSet, HashMap};

use ed25519_dalek::{Signature, VerifyingKey};
use shardkeep_types::{
    AUDIT_LOG_ID_LEN, ActorId, AuditHead, AuditLogId, FreeText, Signer, Timestamp,
};
use shardkeep_wire::{Reader, check_total_len};

use crate::checkpoint::{Checkpoint, MAX_WITNESS_FILE_LEN};
use crate::error::{DecodeError, Error, Finding};
use crate::export::{Export, encode_export, parse_export};
use crate::record::{put_text, read_actor, read_text};
use crate::verify::{check_witness, next_link};

/// Domain tag of review signatures.
pub const REVIEW_TAG: &[u8] = b"shardkeep/audit-review/v1";

/// The magic bytes at the start of every review.
pub const REVIEW_MAGIC: &[u8; 8] = b"shkp-arv";

/// The review format version this crate writes and reads.
pub const REVIEW_VERSION: u8 = 1;

/// Longest findings text, in bytes.
pub const MAX_FINDINGS_LEN: usize = 1024;

/// Longest encoded review: every field at its cap.
pub const MAX_REVIEW_LEN: usize =
    8 + 1 + AUDIT_LOG_ID_LEN + 8 + 8 + 32 + 65 + 2 + MAX_FINDINGS_LEN + 8 + 64;

/// The magic bytes at the start of every review archive.
pub const REVIEW_ARCHIVE_MAGIC: &[u8; 8] = b"shkp-ara";

/// The review archive format version this crate writes and reads.
pub const REVIEW_ARCHIVE_VERSION: u8 = 1;

/// Most reviews one archive holds.
pub const MAX_ARCHIVED_REVIEWS: usize = 8;

/// Largest review archive the verifier reads, in bytes.
pub const MAX_REVIEW_ARCHIVE_LEN: usize = MAX_WITNESS_FILE_LEN;

/// Distinct reviewers a review needs to be complete.
pub const REVIEWERS_NEEDED: usize = 2;

/// What a review covers: records `first..=last` of log `log_id`, whose
/// last record hashes to `head_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReviewedRange {
    /// The log.
    pub log_id: AuditLogId,
    /// The first sequence reviewed (at least 1).
    pub first: u64,
    /// The last sequence reviewed (at least `first`).
    pub last: u64,
    /// The chain hash of the record at `last`.
    pub head_hash: [u8; 32],
}

impl ReviewedRange {
    /// Whether `first..=last` is a range of records: `1 <= first <= last`.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.first >= 1 && self.first <= self.last
    }

    /// The head the range ends at.
    #[must_use]
    pub const fn head(&self) -> AuditHead {
        AuditHead {
            sequence: self.last,
            hash: self.head_hash,
        }
    }
}

/// One reviewer's signed review of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReview {
    /// What was reviewed.
    pub range: ReviewedRange,
    /// Who reviewed it (a registered person).
    pub reviewer: ActorId,
    /// What they found.
    pub findings: FreeText<MAX_FINDINGS_LEN>,
    /// When they signed (their clock).
    pub reviewed_at: Timestamp,
    /// Ed25519 by the reviewer's key over [`REVIEW_TAG`] and the fields.
    pub signature: [u8; 64],
}

impl AuditReview {
    /// The reviewer's tool: signs a review of `range` as `reviewer` with
    /// `signer` (the reviewer's registered key).
    ///
    /// # Errors
    /// [`Error::Decode`] with [`DecodeError::InvalidRange`] for a range
    /// that is not `1 <= first <= last`; [`Error::ReviewSigner`] when the
    /// signer fails.
    pub fn sign(
        range: ReviewedRange,
        reviewer: ActorId,
        findings: FreeText<MAX_FINDINGS_LEN>,
        reviewed_at: Timestamp,
        signer: &dyn Signer,
    ) -> Result<Self, Error> {
        if !range.is_valid() {
            return Err(DecodeError::InvalidRange.into());
        }
        let mut review = Self {
            range,
            reviewer,
            findings,
            reviewed_at,
            signature: [0; 64],
        };
        review.signature = signer
            .sign(&review.signed_message())
            .map_err(Error::ReviewSigner)?
            .to_bytes();
        Ok(review)
    }

    /// The fields the signature covers, in their encoding.
    fn signed_fields(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_REVIEW_LEN);
        out.extend_from_slice(REVIEW_MAGIC);
        out.push(REVIEW_VERSION);
        out.extend_from_slice(&self.range.log_id.0);
        out.extend_from_slice(&self.range.first.to_be_bytes());
        out.extend_from_slice(&self.range.last.to_be_bytes());
        out.extend_from_slice(&self.range.head_hash);
        self.reviewer.encode_prefixed(&mut out);
        put_text(&mut out, self.findings.as_str());
        out.extend_from_slice(&self.reviewed_at.as_unix_millis().to_be_bytes());
        out
    }

    /// The bytes the signature covers: the tag, then the fields.
    fn signed_message(&self) -> Vec<u8> {
        let mut message = REVIEW_TAG.to_vec();
        message.extend_from_slice(&self.signed_fields());
        message
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_fields();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses a review: the canonical form only, nothing after it.
    ///
    /// # Errors
    /// [`DecodeError`]: bad framing (magic, version, cap, truncation,
    /// trailing bytes), [`DecodeError::InvalidRange`],
    /// [`DecodeError::InvalidName`], [`DecodeError::InvalidText`],
    /// [`DecodeError::InvalidTimestamp`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_total_len("audit review", bytes.len(), MAX_REVIEW_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version("audit review", REVIEW_MAGIC, REVIEW_VERSION)?;
        let log_id = AuditLogId(*reader.array::<AUDIT_LOG_ID_LEN>("log id")?);
        let first = reader.u64("first sequence")?;
        let last = reader.u64("last sequence")?;
        let head_hash = *reader.array::<32>("head hash")?;
        let range = ReviewedRange {
            log_id,
            first,
            last,
            head_hash,
        };
        if !range.is_valid() {
            return Err(DecodeError::InvalidRange);
        }
        let reviewer = read_actor(&mut reader, "reviewer")?;
        let findings = read_text::<MAX_FINDINGS_LEN>(&mut reader, "findings")?;
        let reviewed_at = Timestamp::from_unix_millis(reader.u64("reviewed at")?)
            .map_err(|_| DecodeError::InvalidTimestamp)?;
        let signature = *reader.array::<64>("signature")?;
        reader.finish("audit review")?;
        Ok(Self {
            range,
            reviewer,
            findings,
            reviewed_at,
            signature,
        })
    }

    /// Whether the signature verifies (strictly) under `key`.
    #[must_use]
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(
            &self.signed_message(),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

/// A reviewed range as archived: its reviews and the export of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewArchive {
    /// The reviews, in the order they were recorded.
    pub reviews: Vec<AuditReview>,
    /// The rows `first..=last` of the log, as stored.
    pub export: Export,
}

impl ReviewArchive {
    /// The archive's bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(REVIEW_ARCHIVE_MAGIC);
        out.push(REVIEW_ARCHIVE_VERSION);
        // At most MAX_ARCHIVED_REVIEWS when parsed; an archive built with
        // more is refused by the parser, never cut here.
        out.push(u8::try_from(self.reviews.len()).unwrap_or(u8::MAX));
        for review in &self.reviews {
            let bytes = review.encode();
            // A review is at most MAX_REVIEW_LEN bytes.
            out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(&encode_export(&self.export.log_id, &self.export.rows));
        out
    }

    /// Parses an archive.
    ///
    /// # Errors
    /// [`Error::ReviewArchive`] with the offset of the first bad byte (a
    /// bad header, review count or review); [`Error::Export`] for the
    /// export part, with its offset in the archive.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let fail = |offset, error| Error::ReviewArchive { offset, error };
        check_total_len("audit review archive", bytes.len(), MAX_REVIEW_ARCHIVE_LEN)
            .map_err(|error| fail(0, error.into()))?;
        let mut reader = Reader::new(bytes);
        reader
            .magic_and_version(
                "audit review archive",
                REVIEW_ARCHIVE_MAGIC,
                REVIEW_ARCHIVE_VERSION,
            )
            .map_err(|error| fail(0, error.into()))?;
        let count_at = reader.offset();
        let count = usize::from(
            reader
                .u8("review count")
                .map_err(|error| fail(count_at, error.into()))?,
        );
        if !(1..=MAX_ARCHIVED_REVIEWS).contains(&count) {
            return Err(fail(count_at, DecodeError::ReviewCount(count)));
        }
        let mut reviews = Vec::with_capacity(count);
        for _ in 0..count {
            let start = reader.offset();
            let review = reader
                .prefixed_u16("review", 1, MAX_REVIEW_LEN)
                .map_err(DecodeError::from)
                .and_then(AuditReview::decode)
                .map_err(|error| fail(start, error))?;
            reviews.push(review);
        }
        let export_at = reader.offset();
        let export = parse_export(&bytes[export_at..]).map_err(|error| match error {
            Error::Export { offset, error } => Error::Export {
                offset: offset + export_at,
                error,
            },
            other => other,
        })?;
        Ok(Self { reviews, export })
    }
}

/// What a verified review archive establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReview {
    /// The range, as its reviewers signed it and the rows and the witness
    /// confirm it.
    pub range: ReviewedRange,
    /// The distinct reviewers whose signatures verified, in archive order.
    pub reviewers: Vec<ActorId>,
    /// Records checked.
    pub records: u64,
    /// Witnessed checkpoints checked.
    pub checkpoints: usize,
}

/// Verifies a review archive offline: every checkpoint of `witness` is of
/// the archived log and signed by `checkpoint_key` (no fork); every review
/// names the same range and verifies under its reviewer's key in
/// `reviewers`, and at least [`REVIEWERS_NEEDED`] distinct persons
/// reviewed; the rows are exactly `first..=last`, each hashing to its
/// stored hash and linking to the one before; the recomputed head is the
/// reviewed head; and a witnessed checkpoint names that head at `last`
/// (checkpoints inside the range must match too).
///
/// # Errors
/// [`Error::Tampered`] with the first [`Finding`]: the witness findings of
/// [`verify`](crate::verify), [`Finding::ReviewRangeMismatch`],
/// [`Finding::UnknownReviewer`], [`Finding::BadReviewSignature`],
/// [`Finding::ReviewIncomplete`], the row findings
/// ([`Finding::Changed`], [`Finding::Removed`], [`Finding::Truncated`],
/// ...), [`Finding::ReviewedHeadMismatch`], [`Finding::RangeHeadUnwitnessed`],
/// [`Finding::RangeHeadMismatch`].
pub fn verify_review_archive(
    archive: &ReviewArchive,
    witness: &[Checkpoint],
    checkpoint_key: &VerifyingKey,
    reviewers: &[(ActorId, VerifyingKey)],
) -> Result<VerifiedReview, Error> {
    verify_archive_inner(archive, witness, checkpoint_key, reviewers).map_err(Error::Tampered)
}

fn verify_archive_inner(
    archive: &ReviewArchive,
    witness: &[Checkpoint],
    checkpoint_key: &VerifyingKey,
    reviewers: &[(ActorId, VerifyingKey)],
) -> Result<VerifiedReview, Finding> {
    let export = &archive.export;
    let witnessed = check_witness(&export.log_id, witness, checkpoint_key)?;
    let range = check_reviews(archive, reviewers)?;
    let signed_by: Vec<ActorId> = {
        let mut seen = BTreeSet::new();
        archive
            .reviews
            .iter()
            .filter(|review| seen.insert(review.reviewer.clone()))
            .map(|review| review.reviewer.clone())
            .collect()
    };
    if signed_by.len() < REVIEWERS_NEEDED {
        return Err(Finding::ReviewIncomplete {
            reviewers: signed_by.len(),
        });
    }
    let head = check_range_rows(export, &range, &witnessed)?;
    if head.hash != range.head_hash {
        return Err(Finding::ReviewedHeadMismatch {
            sequence: range.last,
        });
    }
    match witnessed.get(&range.last) {
        None => Err(Finding::RangeHeadUnwitnessed {
            sequence: range.last,
        }),
        Some(hash) if *hash != head.hash => Err(Finding::RangeHeadMismatch {
            sequence: range.last,
        }),
        Some(_) => Ok(VerifiedReview {
            range,
            reviewers: signed_by,
            records: range.last - range.first + 1,
            checkpoints: witness.len(),
        }),
    }
}

/// Every review names the first review's range, of the exported log, and
/// verifies under its reviewer's given key; returns the range.
fn check_reviews(
    archive: &ReviewArchive,
    reviewers: &[(ActorId, VerifyingKey)],
) -> Result<ReviewedRange, Finding> {
    let keys: HashMap<&ActorId, &VerifyingKey> =
        reviewers.iter().map(|(id, key)| (id, key)).collect();
    let Some(range) = archive.reviews.first().map(|review| review.range) else {
        return Err(Finding::ReviewIncomplete { reviewers: 0 });
    };
    for (index, review) in archive.reviews.iter().enumerate() {
        let position = index + 1;
        if review.range != range || review.range.log_id != archive.export.log_id {
            return Err(Finding::ReviewRangeMismatch { review: position });
        }
        let Some(key) = keys.get(&review.reviewer) else {
            return Err(Finding::UnknownReviewer {
                review: position,
                reviewer: review.reviewer.clone(),
            });
        };
        if !review.verifies(key) {
            return Err(Finding::BadReviewSignature {
                review: position,
                reviewer: review.reviewer.clone(),
            });
        }
    }
    Ok(range)
}

/// Recomputes the chain of the rows, which must be exactly
/// `range.first..=range.last`; checks every witnessed checkpoint inside the
/// range; returns the recomputed head.
fn check_range_rows(
    export: &Export,
    range: &ReviewedRange,
    witnessed: &std::collections::BTreeMap<u64, [u8; 32]>,
) -> Result<AuditHead, Finding> {
    let rows = &export.rows;
    let mut counts: HashMap<u64, usize> = HashMap::with_capacity(rows.len());
    for row in rows {
        *counts.entry(row.sequence).or_default() += 1;
    }
    let Some(first_row) = rows.first() else {
        return Err(Finding::Truncated {
            witnessed: range.last,
            present: range.first - 1,
        });
    };
    // The row before the range is not archived: its hash is what the first
    // row links to, bound by that row's chain hash.
    let mut head = AuditHead {
        sequence: range.first - 1,
        hash: first_row.prev_hash,
    };
    let mut last_matching = None;
    for (position, row) in rows.iter().enumerate() {
        let expected = head.sequence + 1;
        if expected > range.last {
            return Err(Finding::Inserted {
                sequence: row.sequence,
                position,
            });
        }
        head = next_link(rows, position, head, &counts)?;
        let hash = head.hash;
        if let Some(witnessed_hash) = witnessed.get(&row.sequence) {
            if *witnessed_hash != hash && row.sequence != range.last {
                return Err(Finding::CheckpointMismatch {
                    sequence: row.sequence,
                    after: last_matching,
                });
            }
            last_matching = Some(row.sequence);
        }
    }
    if head.sequence < range.last {
        return Err(Finding::Truncated {
            witnessed: range.last,
            present: head.sequence,
        });
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shardkeep_types::{InMemorySigner, SignerId};
    use shardkeep_wire::FramingError;

    use super::*;

    fn signer(seed: u8) -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("reviewer").unwrap(), &[seed; 32])
    }

    fn range() -> ReviewedRange {
        ReviewedRange {
            log_id: AuditLogId([0x1d; AUDIT_LOG_ID_LEN]),
            first: 3,
            last: 9,
            head_hash: [0xab; 32],
        }
    }

    fn review() -> AuditReview {
        AuditReview::sign(
            range(),
            ActorId::new("comp.carol").unwrap(),
            FreeText::new("no findings").unwrap(),
            Timestamp::from_unix_millis(1_790_000_000_000).unwrap(),
            &signer(1),
        )
        .unwrap()
    }

    #[test]
    fn every_signed_field_is_bound() {
        let review = review();
        let key = signer(1).verifying_key();
        assert!(review.verifies(&key));
        assert!(!review.verifies(&signer(2).verifying_key()));
        let edits: [fn(&mut AuditReview); 7] = [
            |r| r.range.log_id.0[0] ^= 1,
            |r| r.range.first += 1,
            |r| r.range.last += 1,
            |r| r.range.head_hash[0] ^= 1,
            |r| r.reviewer = ActorId::new("comp.dave").unwrap(),
            |r| r.findings = FreeText::new("one finding").unwrap(),
            |r| r.reviewed_at = Timestamp::from_unix_millis(1).unwrap(),
        ];
        for edit in edits {
            let mut moved = review.clone();
            edit(&mut moved);
            assert!(!moved.verifies(&key), "{moved:?}");
        }
    }

    #[test]
    fn refuses_non_canonical_reviews() {
        let bytes = review().encode();
        assert_eq!(AuditReview::decode(&bytes).unwrap(), review());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            AuditReview::decode(&trailing),
            Err(DecodeError::Framing(FramingError::TrailingBytes { .. }))
        ));
        assert!(matches!(
            AuditReview::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Framing(FramingError::Truncated { .. }))
        ));
        // first 0, and first after last.
        let mut zero_first = bytes.clone();
        zero_first[25..33].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(
            AuditReview::decode(&zero_first),
            Err(DecodeError::InvalidRange)
        );
        let mut reversed = bytes.clone();
        reversed[25..33].copy_from_slice(&10u64.to_be_bytes());
        assert_eq!(
            AuditReview::decode(&reversed),
            Err(DecodeError::InvalidRange)
        );
        let mut bad_version = bytes;
        bad_version[8] = 2;
        assert!(matches!(
            AuditReview::decode(&bad_version),
            Err(DecodeError::Framing(
                FramingError::UnsupportedVersion { .. }
            ))
        ));
        let mut backwards = range();
        backwards.first = 10;
        assert!(matches!(
            AuditReview::sign(
                backwards,
                ActorId::new("a").unwrap(),
                FreeText::new("x").unwrap(),
                Timestamp::EPOCH,
                &signer(1)
            ),
            Err(Error::Decode(DecodeError::InvalidRange))
        ));
        assert!(
            AuditReview::decode(&vec![0; MAX_REVIEW_LEN + 1]).is_err(),
            "over the cap"
        );
    }

    #[test]
    fn archives_round_trip_and_refuse_bad_counts() {
        let archive = ReviewArchive {
            reviews: vec![review(), review()],
            export: Export {
                log_id: range().log_id,
                rows: Vec::new(),
            },
        };
        let bytes = archive.encode();
        assert_eq!(ReviewArchive::parse(&bytes).unwrap(), archive);
        let mut none = bytes.clone();
        none[9] = 0;
        assert!(matches!(
            ReviewArchive::parse(&none),
            Err(Error::ReviewArchive {
                offset: 9,
                error: DecodeError::ReviewCount(0)
            })
        ));
        // The export part's offsets are the archive's.
        let cut = ReviewArchive::parse(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            matches!(cut, Error::Export { offset, .. } if offset == bytes.len() - 16),
            "{cut:?}"
        );
    }

    proptest! {
        #[test]
        fn reviews_round_trip(
            log in any::<[u8; AUDIT_LOG_ID_LEN]>(),
            first in 1u64..u64::MAX / 2,
            extra in 0u64..u64::MAX / 2,
            head_hash in any::<[u8; 32]>(),
            reviewer in "[a-z][a-z0-9.]{0,63}",
            findings in "[ -~]{1,1024}",
            at in 0u64..=i64::MAX as u64,
            signature in any::<[u8; 32]>(),
        ) {
            let review = AuditReview {
                range: ReviewedRange {
                    log_id: AuditLogId(log),
                    first,
                    last: first + extra,
                    head_hash,
                },
                reviewer: ActorId::new(reviewer).unwrap(),
                findings: FreeText::new(findings).unwrap(),
                reviewed_at: Timestamp::from_unix_millis(at).unwrap(),
                signature: [signature, signature].concat().try_into().unwrap(),
            };
            let bytes = review.encode();
            prop_assert!(bytes.len() <= MAX_REVIEW_LEN);
            prop_assert_eq!(AuditReview::decode(&bytes).unwrap(), review);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
            if let Ok(review) = AuditReview::decode(&bytes) {
                prop_assert_eq!(review.encode(), bytes.clone());
            }
            let _ = ReviewArchive::parse(&bytes);
        }
    }
}

//! The one error type of this crate, with nested detail enums.

#[cfg(feature = "storage")]
use std::sync::Arc;

use shardkeep_wire::FramingError;

/// Everything that can go wrong writing, exporting or verifying the audit
/// log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record cannot be encoded: a field breaks its rule.
    #[error("audit record: {0}")]
    Encode(#[from] EncodeError),
    /// Record bytes do not decode.
    #[error("audit record: {0}")]
    Decode(#[from] DecodeError),
    /// An export file does not parse.
    #[error("audit export, byte {offset}: {error}")]
    Export {
        /// Where the problem starts.
        offset: usize,
        /// What is wrong.
        error: DecodeError,
    },
    /// A witness line does not parse.
    #[error("witness line {line}: {error}")]
    Witness {
        /// The 1-based line number (0: the witness as a whole).
        line: usize,
        /// What is wrong.
        error: WitnessError,
    },
    /// A review archive does not parse (its export part is
    /// [`Error::Export`], with offsets in the archive).
    #[error("audit review archive, byte {offset}: {error}")]
    ReviewArchive {
        /// Where the problem starts.
        offset: usize,
        /// What is wrong.
        error: DecodeError,
    },
    /// The log does not verify: the first thing found wrong.
    #[error("audit log does not verify: {0}")]
    Tampered(Finding),
    /// The storage backend failed.
    #[cfg(feature = "storage")]
    #[error("storage: {0}")]
    Storage(#[from] shardkeep_storage::Error),
    /// A grouped commit failed; every record of the group was rolled back.
    #[cfg(feature = "storage")]
    #[error("grouped audit commit failed: {0}")]
    GroupCommit(Arc<shardkeep_storage::Error>),
    /// The group committer has stopped.
    #[cfg(feature = "storage")]
    #[error("the audit group committer has stopped")]
    CommitterStopped,
    /// The checkpoint signer failed.
    #[error("checkpoint signer: {0}")]
    Signer(#[source] shardkeep_types::CustodyError),
    /// A reviewer's signer failed to sign a review.
    #[error("review signer: {0}")]
    ReviewSigner(#[source] shardkeep_types::CustodyError),
    /// The checkpoint signer returned a signature that does not verify
    /// under its own public key: nothing was witnessed or stored.
    #[error("the checkpoint signer's signature does not verify under its public key")]
    CheckpointSignature,
    /// The witness database failed or refused the statement.
    #[cfg(feature = "postgres-witness")]
    #[error("witness database error during {operation}: {source}")]
    WitnessDatabase {
        /// What the witness was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the witness schema failed.
    #[cfg(feature = "postgres-witness")]
    #[error("witness schema: {0}")]
    WitnessMigration(#[source] sqlx::migrate::MigrateError),
    /// The witness database holds no witness table (run
    /// `PostgresWitness::install` as its owner).
    #[cfg(feature = "postgres-witness")]
    #[error("the witness database is not set up")]
    WitnessNotInstalled,
    /// Reading or writing a file (an export, a witness file) failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Writing JSON failed.
    #[cfg(feature = "storage")]
    #[error("JSON export: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why a record cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// More approvers than a record holds.
    #[error("{0} approvers; at most {max}", max = crate::record::MAX_APPROVERS)]
    TooManyApprovers(usize),
}

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not framed as the format says: an export without the
    /// export header, an unknown record version, input over the cap, cut
    /// short, a length field out of its range, or trailing bytes.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// An unknown event type code.
    #[error("unknown event type {0}")]
    UnknownEvent(u8),
    /// A presence flag or outcome byte other than 0 or 1.
    #[error("flag byte {0} is neither 0 nor 1")]
    BadFlag(u8),
    /// A name breaks its rule.
    #[error("invalid {0}")]
    InvalidName(&'static str),
    /// Free text breaks its rule (empty, too long, a refused character, not
    /// UTF-8).
    #[error("invalid {0}")]
    InvalidText(&'static str),
    /// Approvers are not in strictly increasing order (each list has one
    /// encoding).
    #[error("approvers are not strictly increasing")]
    UnorderedApprovers,
    /// More approvers than a record holds.
    #[error("too many approvers")]
    TooManyApprovers,
    /// Share index 0.
    #[error("share index 0")]
    ZeroShareIndex,
    /// An impossible threshold.
    #[error("invalid threshold")]
    InvalidThreshold,
    /// A timestamp beyond `i64::MAX` milliseconds.
    #[error("timestamp out of range")]
    InvalidTimestamp,
    /// A reviewed range that is not `1 <= first <= last`.
    #[error("invalid reviewed range: it must satisfy 1 <= first <= last")]
    InvalidRange,
    /// A review archive holding no review or more than it may.
    #[error("{0} reviews in an archive; 1 to {max}", max = crate::review::MAX_ARCHIVED_REVIEWS)]
    ReviewCount(usize),
    /// An export of format v1, which names no log: export it again with
    /// this version.
    #[error("an audit export of format v1, which names no log; export it again")]
    RetiredExportFormat,
}

/// Why a witness line does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// A line that does not start with `shardkeep-checkpoint-v2 ` (its
    /// magic), a line longer than a checkpoint line can be, or a witness
    /// larger than the verifier reads.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A `shardkeep-checkpoint-v1` line: that format names no log, so it
    /// could be a checkpoint of another log, and is no longer accepted.
    #[error("a shardkeep-checkpoint-v1 line names no log and is refused; checkpoint again")]
    RetiredFormat,
    /// The last line has no newline: the write that added it was cut short.
    #[error("incomplete last line")]
    IncompleteLine,
    /// Not exactly seven fields separated by single spaces.
    #[error("expected 7 space-separated fields")]
    FieldCount,
    /// A number with a sign, leading zeros, non-digits or out of range.
    #[error("non-canonical {0}")]
    BadNumber(&'static str),
    /// Hex that is not lowercase or of the wrong length.
    #[error("non-canonical {0}")]
    BadHex(&'static str),
    /// The signer id breaks the name rule.
    #[error("invalid signer id")]
    BadSignerId,
}

/// The first thing the verifier found wrong with an exported log. Row
/// findings name the row's `position` in the export (0-based) and the
/// sequence concerned; witness findings the checkpoint's 1-based position
/// in the witness handed to the verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Finding {
    /// The row's content no longer matches its hash: the record was changed.
    #[error("record {sequence} (row {position}) was changed")]
    Changed {
        /// The sequence of the changed record.
        sequence: u64,
        /// Its row in the export.
        position: usize,
    },
    /// The row's hash matches but its record is not a canonical record: it
    /// was written by something other than this crate.
    #[error("record {sequence} (row {position}) is malformed: {error}")]
    Malformed {
        /// The sequence.
        sequence: u64,
        /// Its row in the export.
        position: usize,
        /// Why it does not decode.
        error: DecodeError,
    },
    /// The row does not link to the row before it: one of the two was
    /// replaced.
    #[error("record {sequence} (row {position}) does not link to its predecessor")]
    Relinked {
        /// The sequence of the row whose link breaks.
        sequence: u64,
        /// Its row in the export.
        position: usize,
    },
    /// Records from `sequence` are missing (later records remain).
    #[error("record {sequence} was removed (found {found} at row {position})")]
    Removed {
        /// The first missing sequence.
        sequence: u64,
        /// The row where it should be.
        position: usize,
        /// The sequence found there instead.
        found: u64,
    },
    /// Record `sequence` appears out of order.
    #[error("record {sequence} is out of order (found {found} at row {position})")]
    Reordered {
        /// The sequence expected at `position`.
        sequence: u64,
        /// The row where it should be.
        position: usize,
        /// The sequence found there instead.
        found: u64,
    },
    /// A row that does not belong: a repeated or forged sequence.
    #[error("row {position} (sequence {sequence}) was inserted")]
    Inserted {
        /// The sequence the inserted row claims.
        sequence: u64,
        /// Its row in the export.
        position: usize,
    },
    /// The log ends before the highest witnessed head: records were cut
    /// off.
    #[error("log truncated: it ends at {present}, the witness saw {witnessed}")]
    Truncated {
        /// The highest witnessed sequence.
        witnessed: u64,
        /// The last sequence present.
        present: u64,
    },
    /// The chain up to a witnessed checkpoint hashes differently: records
    /// after `after` and up to `sequence` were rewritten (hashes and all).
    #[error(
        "records up to {sequence} were rewritten{}",
        after.map_or_else(String::new, |after| format!(" (after checkpoint {after}, which matches)"))
    )]
    CheckpointMismatch {
        /// The checkpoint's sequence.
        sequence: u64,
        /// The latest checkpoint before it that matched, if any.
        after: Option<u64>,
    },
    /// A witness checkpoint's signature does not verify under the given key.
    #[error("witness line {line}: checkpoint signature does not verify")]
    BadCheckpointSignature {
        /// The 1-based position in the witness (its line in one file).
        line: usize,
    },
    /// The witness names two different heads at one sequence: two
    /// histories were checkpointed, so one of them was rewritten.
    #[error("witness line {line} names another head at sequence {sequence}: the log forked")]
    WitnessFork {
        /// The sequence with two heads.
        sequence: u64,
        /// The 1-based position of the second head in the witness.
        line: usize,
    },
    /// A checkpoint of another log: the witness is not this log's, or the
    /// log's identity was replaced.
    #[error(
        "witness line {line} is a checkpoint of log {witnessed}, not of the exported log {exported}"
    )]
    OtherLog {
        /// The 1-based position in the witness.
        line: usize,
        /// The log it names.
        witnessed: shardkeep_types::AuditLogId,
        /// The log the export names.
        exported: shardkeep_types::AuditLogId,
    },
    /// A review of an archive names another range (or another log) than
    /// the archive's first review.
    #[error("review {review} of the archive names another range than the first")]
    ReviewRangeMismatch {
        /// The 1-based position of the review in the archive.
        review: usize,
    },
    /// A review by a reviewer whose key the verifier was not given.
    #[error("review {review} is by {reviewer}, whose key was not given")]
    UnknownReviewer {
        /// The 1-based position of the review in the archive.
        review: usize,
        /// The reviewer it names.
        reviewer: shardkeep_types::ActorId,
    },
    /// A review's signature does not verify under its reviewer's key: it
    /// was forged or altered.
    #[error("review {review}: the signature of {reviewer} does not verify")]
    BadReviewSignature {
        /// The 1-based position of the review in the archive.
        review: usize,
        /// The reviewer it names.
        reviewer: shardkeep_types::ActorId,
    },
    /// Fewer distinct reviewers than a two-person review needs.
    #[error("{reviewers} distinct reviewers; a review needs {needed}", needed = crate::review::REVIEWERS_NEEDED)]
    ReviewIncomplete {
        /// The distinct reviewers found.
        reviewers: usize,
    },
    /// The archived rows chain to another head than the reviewers signed:
    /// the range was rewritten (hashes and all) after its review.
    #[error("the archived records up to {sequence} hash to another head than was reviewed")]
    ReviewedHeadMismatch {
        /// The range's last sequence.
        sequence: u64,
    },
    /// No witnessed checkpoint names the range's head: nothing outside the
    /// audited database anchors the reviewed range.
    #[error("no witnessed checkpoint at the reviewed head {sequence}: the range is not anchored")]
    RangeHeadUnwitnessed {
        /// The range's last sequence.
        sequence: u64,
    },
    /// The witnessed checkpoint at the range's last sequence names another
    /// head: the reviewed range is not the witnessed log's.
    #[error("the witness names another head at the reviewed head {sequence}")]
    RangeHeadMismatch {
        /// The range's last sequence.
        sequence: u64,
    },
    /// No witnessed checkpoint: nothing outside the audited database
    /// anchors the log, so a cut or a rewrite of it cannot show.
    #[error("no witnessed checkpoint: the log is not anchored")]
    NoWitness,
}

#[cfg(feature = "postgres-witness")]
impl Error {
    pub(crate) fn witness_database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::WitnessDatabase { operation, source }
    }
}

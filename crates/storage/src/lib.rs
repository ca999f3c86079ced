#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit_reviews;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
#[cfg(feature = "conformance")]
pub mod fleet;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "test-support")]
pub mod test_support;
mod traits;
mod types;

// Two-person review of the audit log.
pub use audit_reviews::{
    AuditReviewRange, AuditReviewRecord, AuditReviewStore, MAX_AUDIT_REVIEW_LEN,
};
pub use error::Error;
#[cfg(feature = "postgres")]
pub use postgres::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DurabilityPolicy, Postgres, PostgresOptions,
    PostgresStorage,
};
pub use records::{
    AUDIT_LOG_ID_LEN, ApprovalOperation, ApprovalRecord, ApprovalRequestHash,
    ApprovalRequestRecord, AuditEntry, AuditHead, AuditLogId, AuditRow, CustodyEntry, DIGEST_LEN,
    DeliveryOutcome, DeliveryRecord, DrillOutcome, DrillReport, KeyVersionRecord, KeyVersionState,
    MAX_APPROVAL_REQUEST_LEN, MAX_CONTACT_LEN, MAX_DRILL_REPORT_LEN, MAX_ENVELOPE_LEN,
    MAX_EVIDENCE_LEN, MAX_REASON_LEN, MAX_RECEIPT_LEN, SIGNATURE_LEN, SealedShare, ShareAccess,
    SlotFilter, SlotKekRecord, SlotState, SlotSummary, StoredCheckpoint,
};
// Issue 13: recovery sessions.
pub use records::{RecoverySessionId, RecoverySessionOutcome, RecoverySessionRecord};
pub use traits::RecoverySessionStore;
// Rotation: destruction statements of re-split versions.
pub use records::{DestructionStatementRecord, MAX_DESTRUCTION_STATEMENT_LEN};
pub use traits::DestructionStore;
// Issue 12: registry, groups and policies, split references, inventory,
// access control, status.
pub use records::{
    AnomalyRecord, DeliveryStats, DrillStats, DrillSummary, EntityRecord, EntityState, ExposureRow,
    GroupRecord, InventoryChallenge, InventoryProofRecord, MAX_AGE_RECIPIENT_LEN,
    MAX_ANOMALY_DETAIL_LEN, MAX_BINDING_LEN, MAX_COMMITMENTS_LEN, MAX_DISPLAY_NAME_LEN,
    MAX_ENTITY_MEMBERS, MAX_FAILURE_REASONS, MAX_GROUP_KEY_LEN, MAX_INVENTORY_PROOF_LEN,
    MAX_POLICY_LEN, MAX_REVOCATION_REASON_LEN, PUBLIC_KEY_LEN, PersonKeyEpoch, PersonKeys,
    PersonRecord, PersonState, PolicyRecord, RecentDrill, Role, RoleSet, SplitReference,
    SplitSummary, StatusFilter, StatusSummary, VersionStatusRow,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{Backend, SqlStorage, SqlTransaction};
#[cfg(feature = "sqlite")]
pub use sqlite::{Sqlite, SqliteStorage};
pub use traits::{AccessControlStore, GroupStore, InventoryStore, RegistryStore, StatusStore};
pub use traits::{
    ApprovalStore, AuditStore, CustodyStore, DrillStore, KeyVersionStore, ReceiptStore,
    SealedShareStore, ShareAccessLog, SlotDeletionStore, SlotKekStore, Storage, Transaction,
};

pub use shardkeep_types::MAX_AUDIT_RECORD_LEN;

/// Most audit records one transaction may append (a grouped commit).
pub const MAX_AUDIT_APPENDS_PER_TRANSACTION: usize = 64;

/// Longest stored checkpoint, in bytes.
pub const MAX_CHECKPOINT_LEN: usize = 4096;

/// Most rows one page of a listing returns.
pub const MAX_PAGE_ROWS: u32 = 10_000;

/// The key ids one statement names (`key_id IN ($1, ..., $32)`) in
/// [`GroupStore::groups_of`] and [`StatusStore::exposure_rows_of`]: a
/// status page's keys in a few queries instead of one each.
pub const KEYS_PER_QUERY: usize = 32;

/// How many ids one query of [`RegistryStore::persons_named`] looks up;
/// more ids take more queries.
pub const PERSONS_PER_QUERY: usize = 8;

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod access;
mod approval;
mod approval_ops;
mod approver_set;
mod audit_export;
mod audit_review;
mod checklist;
mod clock;
mod config;
mod deletion;
mod delivery;
mod destruction;
mod error;
mod exporter;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod generate;
mod inventory;
mod inventory_check;
mod metrics;
mod pause;
mod policy;
mod recovery;
mod recovery_shares;
mod reference;
mod registry;
mod rotation;
mod schedule;
mod service;
mod session;
mod status;
mod zero_retention;

pub use approval::{
    APPROVAL_MAGIC, APPROVAL_REQUEST_HASH_TAG, APPROVAL_REQUEST_MAGIC, APPROVAL_REQUEST_VERSION,
    APPROVAL_SIGNATURE_TAG, APPROVAL_VERSION, Approval, ApprovalParams, ApprovalRequest,
    ApprovalSubject, MAX_APPROVAL_LEN, MAX_APPROVAL_REQUEST_LEN, MAX_APPROVAL_SLOTS,
    MAX_APPROVAL_TARGET_LEN, MAX_APPROVAL_TICKET_LEN, request_hash, role_code, sign_approval,
};
pub use approval_ops::ApprovalState;
pub use approver_set::{APPROVER_SET_CHANGE_TAG, ApproverSetChange, ChangeApproval};
pub use audit_review::AuditReviewState;
pub use checklist::{
    CHECKLIST_JSON_FORMAT, ChecklistItem, ChecklistKind, ChecklistQuery, ChecklistReport, Evidence,
    EvidenceKind, ItemOutcome,
};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{RateLimit, ServiceConfig};
pub use deletion::{
    DeletionParams, IMMEDIATE_DELETE_TAG, SoftDeleted, ZeroRetentionDraft, immediate_delete_hash,
};
pub use delivery::{Confirmation, DeliveryReport, DeliveryResult};
pub use destruction::{
    DESTRUCTION_STATEMENT_MAGIC, DESTRUCTION_STATEMENT_TAG, DESTRUCTION_STATEMENT_VERSION,
    DestructionStatement, MAX_DESTRUCTION_STATEMENT_LEN, OutstandingDestruction,
};
pub use error::Error;
pub use generate::{
    CustodianContainer, ExternalCustodian, GenerateRequest, Generated, SaveDataSource, ServerShare,
    TssGroup,
};
pub use policy::{
    CurrentPolicy, Exposure, NodeCustody, POLICY_MAGIC, POLICY_TAG, POLICY_VERSION, Policy,
    PolicySettings, check_exposure, exposures,
};
pub use reference::{
    CONTAINER_HASH_TAG, SPLIT_BINDING_MAGIC, SPLIT_BINDING_TAG, SPLIT_BINDING_VERSION,
    VerifiedSplit, container_hash,
};
pub use registry::{
    EntityRecord, EntityRegistration, EntityState, PersonKeys, PersonRecord, PersonRegistration,
    PersonState, Role, RoleSet, validate_person_keys,
};
pub use rotation::{RotateRequest, Rotated, RotationKind};
pub use schedule::{
    DRILL_SCHEDULE_LEN, DRILL_SCHEDULE_MAGIC, DRILL_SCHEDULE_TAG, DRILL_SCHEDULE_VERSION,
    DrillSchedule, MAX_DRILL_SCHEDULE_WINDOW, MIN_DRILL_CADENCE,
};
pub use shardkeep_kms::ShredMethod;
pub use shardkeep_storage::{ApprovalOperation, ApprovalRecord, ApprovalRequestHash};
pub use zero_retention::{
    ApprovalEvidence, ComplianceSignOff, DestroyedSlot, DrillEvidence,
    MAX_ZERO_RETENTION_CERTIFICATE_LEN, MAX_ZERO_RETENTION_ENTRIES, ReceiptEvidence,
    ZERO_RETENTION_EVIDENCE_TAG, ZERO_RETENTION_MAGIC, ZERO_RETENTION_SIGNOFF_TAG,
    ZERO_RETENTION_TAG, ZERO_RETENTION_VERSION, ZeroRetentionBody, ZeroRetentionCertificate,
    evidence_hash, sign_zero_retention, verify_zero_retention_certificate,
};
// Recovery sessions.
pub use recovery::{DrillParams, RecoveryParams, RecoveryProgress};
pub use recovery_shares::{
    MAX_SUBMISSION_STANZAS, MAX_SUBMISSIONS_PER_CALL, RecoveryOutcome, RecoveryReport,
    RecoveryTarget, RecoveryTimings, RejectedShare, ShareRejection, ShareSource,
};
pub use session::{
    MAX_SEALED_SUBMISSION_LEN, MAX_SESSION_APPROVALS, MAX_SESSION_DESCRIPTOR_LEN,
    MAX_SESSION_RECIPIENT_LEN, MAX_SUBMISSION_LEN, SESSION_DESCRIPTOR_MAGIC,
    SESSION_DESCRIPTOR_TAG, SESSION_DESCRIPTOR_VERSION, SUBMISSION_MAGIC, SUBMISSION_SIGNATURE_TAG,
    SUBMISSION_VERSION, SessionDescriptor, prepare_recovery_submission, seal_recovery_submission,
};
pub use shardkeep_storage::{RecoverySessionId, RecoverySessionOutcome};
// Types of this crate's API that come from the crates below it.
pub use service::{BackupService, ServiceParts, ServiceRng};
pub use shardkeep_envelope::{Armor, DeliveryCertificate, ReceiptStatus};

// Inspect: status and listing, inventory, rate limits, anomalies, metrics.
pub use access::{
    AnomalyKind, CERTIFICATE_ANOMALIES_PER_WINDOW, CERTIFICATE_ANOMALY_WINDOW, RateKind,
};
pub use exporter::ExporterSnapshot;
pub use inventory::{
    CustodianCredentials, INVENTORY_CHALLENGE_MAGIC, INVENTORY_CHALLENGE_VERSION,
    INVENTORY_NONCE_LEN, INVENTORY_PROOF_MAGIC, INVENTORY_PROOF_VERSION, INVENTORY_SIGNATURE_TAG,
    InventoryChallenge, InventoryProof, MAX_INVENTORY_CHALLENGE_LEN, MAX_INVENTORY_PROOF_LEN,
    MAX_POSSESSION_PROOF_LEN, prove_inventory,
};
pub use inventory_check::InventoryConfirmation;
pub use metrics::{DeliveryMetrics, DrillMetrics, MetricsSnapshot};
pub use status::{
    DEFAULT_PAGE_SIZE, DrillDue, DrillDueReason, ExposureState, MAX_PAGE_SIZE, PAGE_TOKEN_TAG,
    ServerShareEntry, ShareListPage, ShareListQuery, StatusOverview, StatusPage, StatusQuery,
    VersionStatus, effective_page_size,
};

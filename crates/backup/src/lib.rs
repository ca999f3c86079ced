#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod access;
mod clock;
mod config;
mod delivery;
mod error;
mod generate;
mod inventory;
mod inventory_check;
mod metrics;
mod policy;
mod reference;
mod registry;
mod service;
mod status;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{RateLimit, ServiceConfig};
pub use delivery::{Confirmation, DeliveryReport, DeliveryResult};
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
// Types of this crate's API that come from the crates below it.
pub use service::{BackupService, ServiceParts, ServiceRng};
pub use shardkeep_envelope::{Armor, DeliveryCertificate, ReceiptStatus};

// Inspect: status and listing, inventory, rate limits, anomalies, metrics.
pub use access::{AnomalyKind, RateKind};
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

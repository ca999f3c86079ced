#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod access;
mod clock;
mod config;
mod error;
mod inventory;
mod inventory_check;
mod metrics;
mod policy;
mod registry;
mod service;
mod status;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{RateLimit, ServiceConfig};
pub use error::Error;
pub use policy::{
    Exposure, NodeCustody, POLICY_MAGIC, POLICY_TAG, POLICY_VERSION, Policy, check_exposure,
    exposures,
};
pub use registry::{Role, RoleSet};
pub use service::{BackupService, ServiceParts, ServiceRng};

// Inspect: status and listing, inventory, rate limits, anomalies, metrics.
pub use access::{AnomalyKind, RateKind};
pub use inventory::{
    CONTAINER_HASH_TAG, CustodianCredentials, INVENTORY_CHALLENGE_MAGIC,
    INVENTORY_CHALLENGE_VERSION, INVENTORY_NONCE_LEN, INVENTORY_PROOF_MAGIC,
    INVENTORY_PROOF_VERSION, INVENTORY_SIGNATURE_TAG, InventoryChallenge, InventoryProof,
    MAX_INVENTORY_CHALLENGE_LEN, MAX_INVENTORY_PROOF_LEN, MAX_POSSESSION_PROOF_LEN, container_hash,
    prove_inventory,
};
pub use inventory_check::InventoryConfirmation;
pub use metrics::{DeliveryMetrics, DrillMetrics, MetricsSnapshot};
pub use status::{
    DEFAULT_PAGE_SIZE, DrillDue, DrillDueReason, ExposureState, MAX_PAGE_SIZE, PAGE_TOKEN_TAG,
    ServerShareEntry, ShareListPage, ShareListQuery, StatusOverview, StatusPage, StatusQuery,
    VersionStatus, effective_page_size,
};

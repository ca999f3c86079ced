#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod clock;
mod config;
mod delivery;
mod error;
mod generate;
mod policy;
mod reference;
mod registry;
mod service;

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

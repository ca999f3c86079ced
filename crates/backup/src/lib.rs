#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod clock;
mod config;
mod error;
mod policy;
mod registry;
mod service;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{RateLimit, ServiceConfig};
pub use error::Error;
pub use policy::{
    Exposure, NodeCustody, POLICY_MAGIC, POLICY_TAG, POLICY_VERSION, Policy, check_exposure,
    exposures,
};
pub use registry::{Role, RoleSet};
pub use service::{BackupService, ServiceParts, ServiceRng};

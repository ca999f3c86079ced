//! The registry of persons and custodian entities.
//!
//! Each person (approver, operator, custodian contact) has one record with
//! every key and identity they use; custodian entities list the persons who
//! act for them. Both must be registered and active before use, and every
//! check looks the person up at the time of use.

pub use shardkeep_storage::{Role, RoleSet};

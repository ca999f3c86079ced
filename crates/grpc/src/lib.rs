#![doc = include_str!("../README.md")]

mod convert;
mod edge;
mod error;
pub mod http;
mod identity;
mod server;
mod service;
mod sidecar;
mod tls;

pub use edge::{EDGE_REPORT_WINDOW, EDGE_REPORTS_PER_WINDOW, EdgeRefusalCounts, EdgeRefusals};
pub use error::Error;
pub use identity::{Caller, CertificateFingerprint};
pub use server::{DEFAULT_CHECKPOINT_INTERVAL, FILE_DESCRIPTOR_SET, ServerConfig, serve, serve_on};
pub use service::{
    EXPORT_CHUNK_SIZE, ExportStream, GrpcService, MAX_MESSAGE_SIZE, RecoveryTargets,
};
pub use sidecar::{GrpcPeerTransport, SelfTestSidecar};
pub use tls::TlsIdentity;

/// The messages, server and client generated from
/// `proto/infra/v1/backup.proto` (package `infra.v1`).
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod proto {
    tonic::include_proto!("infra.v1");
}

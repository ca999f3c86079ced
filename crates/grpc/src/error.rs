//! The crate's one error type, and what a caller is told of it.

use shardkeep_types::ActorId;
use tonic::{Code, Status};

/// What can go wrong serving the backup procedure over gRPC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection carries no client certificate (the server's TLS
    /// configuration requires one: only a request that bypassed TLS gets
    /// here).
    #[error("no client certificate")]
    NoClientCertificate,
    /// The client certificate's fingerprint is no registered person's
    /// current TLS fingerprint.
    #[error("client certificate {fingerprint} is not registered")]
    UnknownCertificate {
        /// The certificate's SHA-256 fingerprint, hex (public).
        fingerprint: String,
    },
    /// The certificate is a revoked person's.
    #[error("person {0} is revoked")]
    PersonRevoked(ActorId),
    /// The caller holds none of the roles a request needs (checked here
    /// only where the procedure has no operation that checks it: the
    /// audit export).
    #[error("person {person} has none of the roles {needs}")]
    MissingRole {
        /// The caller.
        person: ActorId,
        /// The roles that would do, by name.
        needs: &'static str,
    },
    /// `HardDeleteShares` on a server without an audit signer and witness
    /// ([`GrpcService::with_checkpoints`](crate::GrpcService::with_checkpoints)).
    #[error("this server has no audit checkpoint signer and witness configured")]
    NoAuditCheckpoints,
    /// Reading the audit log for an export failed.
    #[error("audit export: {0}")]
    Audit(#[source] shardkeep_audit::Error),
    /// A request field is malformed.
    #[error("invalid {field}: {why}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// Why (public: names the rule, never the value).
        why: &'static str,
    },
    /// The server's or the client CA's certificate or key does not parse.
    #[error("TLS configuration: {0}")]
    TlsConfig(&'static str),
    /// The recovery target of a version is not configured here.
    #[error("no recovery target for {0}")]
    NoRecoveryTarget(shardkeep_types::NodeVersion),
    /// The task running an operation panicked or was cancelled.
    #[error("the operation's task failed")]
    TaskFailed,
    /// The listen address cannot be bound.
    #[error("cannot bind {0}: {1}")]
    Bind(std::net::SocketAddr, #[source] std::io::Error),
    /// The reflection service refused the descriptor set.
    #[error("reflection: {0}")]
    Reflection(String),
    /// A shutdown waited its whole grace period for requests in flight,
    /// then cut them off.
    #[error("requests still in flight after the shutdown grace of {0:?} were cut off")]
    ShutdownGraceExceeded(core::time::Duration),
    /// `SelfTest` on a server the host gave no party to answer for.
    #[error("this server serves no self-test party")]
    NoSelfTestParty,
    /// The self-test sidecar's thread cannot be started.
    #[error("cannot start the self-test thread: {0}")]
    SidecarThread(#[source] std::io::Error),
    /// The self-test responder refused a request (malformed, another key
    /// or session, nonces already used). Its messages name what is wrong
    /// with the request, never a secret.
    #[error("self-test: {0}")]
    SelfTest(#[source] shardkeep_keydata::Error),
    /// The transport failed (TLS configuration, serving).
    #[error("transport: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The backup procedure refused or failed.
    #[error(transparent)]
    Backup(#[from] shardkeep_backup::Error),
    /// Storage failed while resolving the caller.
    #[error("storage: {0}")]
    Storage(#[source] shardkeep_storage::Error),
}

impl From<tonic::transport::Error> for Error {
    fn from(error: tonic::transport::Error) -> Self {
        Self::Transport(error)
    }
}

impl From<shardkeep_storage::Error> for Error {
    fn from(error: shardkeep_storage::Error) -> Self {
        Self::Storage(error)
    }
}

/// What a caller is told of every decryption or signature failure.
pub(crate) const OPAQUE_REFUSAL: &str = "cannot verify or decrypt";

/// The status a caller gets. Refusals keep their message (the procedure's
/// messages name ids and rules, never a secret: they are audited as they
/// are); failures inside the service are one opaque `INTERNAL`.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        use shardkeep_backup::Error as B;
        let code = match &error {
            Error::NoClientCertificate
            | Error::UnknownCertificate { .. }
            | Error::PersonRevoked(_) => {
                // One message for every identity refusal: a caller learns
                // nothing about which certificates are registered.
                return Self::unauthenticated("client certificate not accepted");
            }
            // A self-test request the responder refuses is malformed or of
            // another key or session: the caller's request.
            Error::InvalidArgument { .. } | Error::SelfTest(_) => Code::InvalidArgument,
            Error::MissingRole { .. } => Code::PermissionDenied,
            Error::NoRecoveryTarget(_) | Error::NoAuditCheckpoints | Error::NoSelfTestParty => {
                Code::FailedPrecondition
            }
            // Decryption and signature failures: one status for all, the
            // detail stays in the audit record.
            Error::Backup(backup) if backup.is_opaque_to_caller() => {
                return Self::invalid_argument(OPAQUE_REFUSAL);
            }
            Error::Backup(backup) => match backup {
                B::MissingRole { .. }
                | B::NotSlotCustodian { .. }
                | B::ApprovalNotSubmitter { .. }
                | B::AuditReviewNotSubmitter { .. } => Code::PermissionDenied,
                B::BadPageToken { .. }
                | B::TooManySubmissions { .. }
                | B::RecoveryTargetNotADirectory(_)
                | B::NotExternalSlot(_)
                | B::ContainerMismatch(_)
                | B::ReceiptWrongCustodian { .. }
                | B::ReceiptWrongEnvelope(_)
                | B::ChallengeMismatch { .. }
                | B::ChallengeForOtherCustodian { .. }
                | B::InventoryWrongPerson { .. }
                | B::InventoryEnvelopeMismatch { .. }
                | B::InventoryContainerMismatch { .. }
                | B::NotCustodianMember { .. }
                | B::ApprovalParamsInvalid { .. }
                | B::AuditReviewInvalid(_)
                | B::AuditReviewOtherLog
                | B::AuditReviewBeyondHead { .. }
                | B::AuditReviewHeadMismatch { .. }
                | B::InvalidGroup { .. }
                | B::GroupMismatch { .. }
                | B::CustodianCount { .. }
                | B::DuplicateCustodian(_)
                | B::DuplicateCustodianPerson(_)
                | B::NotEntityMember { .. }
                | B::InvalidAgeRecipient { .. }
                | B::PublicShareMismatch(_)
                | B::RotationKindMismatch { .. }
                | B::NotServerSlot(_)
                | B::DeletionRequestMismatch { .. }
                | B::PolicyServerShares { .. }
                | B::PolicyExternalShares { .. }
                | B::PolicyTooManyShares { .. }
                | B::InvalidMembers { .. }
                | B::WeakKey { .. }
                | B::BootstrapNotSelf { .. }
                | B::BootstrapWithoutSecurity(_) => Code::InvalidArgument,
                B::PersonExists(_) | B::EntityExists(_) => Code::AlreadyExists,
                B::RateLimited { .. } => Code::ResourceExhausted,
                B::RecoverySessionUnknown(_)
                | B::ApprovalRequestUnknown(_)
                | B::ChallengeNotFound { .. }
                | B::NothingToRotate { .. }
                | B::Storage(shardkeep_storage::Error::KeyVersionNotFound(_)) => Code::NotFound,
                B::ApprovalMissing { .. }
                | B::ApprovalExpired { .. }
                | B::ApprovalReplayed(_)
                | B::ApprovalParametersMismatch { .. }
                | B::RecoverySessionActive(_)
                | B::RecoverySessionExpired { .. }
                | B::RecoverySessionClosed(_)
                | B::RecoverySessionFinishing(_)
                | B::RecoverySessionLost(_)
                | B::SessionOnOtherReplica { .. }
                | B::OtherPartySecretsLoaded { .. }
                | B::VersionRetired { .. }
                // About another person than the caller (a custodian, an
                // approver): the caller's own are identity refusals.
                | B::UnknownPerson(_)
                | B::PersonRevoked(_)
                | B::VersionNotActive(_)
                | B::AlreadyConfirmed(_)
                | B::UnknownEntity(_)
                | B::EntityRevoked(_)
                | B::MissingPersonKey { .. }
                | B::ChallengeConsumed { .. }
                | B::ChallengeExpired { .. }
                | B::NotInCustody(_)
                | B::CustodianRevoked(_)
                | B::NoReceiptKey(_)
                | B::SelfApproval(_)
                | B::SameApproverTwice(_)
                | B::ApproverWrongRole { .. }
                | B::ApproverRevoked(_)
                | B::AuditReviewReplayed(_)
                | B::SameReviewerTwice(_)
                | B::AuditReviewComplete
                | B::NoPolicy
                | B::ActiveVersionExists(_)
                | B::Exposure { .. }
                | B::RotationInProgress(_)
                | B::SlotState { .. }
                | B::DeletionSessionOpen { .. }
                | B::DeletionTooFewConfirmed { .. }
                | B::DeletionWithoutDrill(_)
                | B::DeletionCooldown { .. }
                | B::PolicyChangeNeedsApproval { .. }
                | B::ApproverSetChangeUnapproved(_)
                | B::KeyInUse { .. }
                | B::KeyReused(_)
                | B::KeyRetired { .. }
                | B::PersonInOtherEntity { .. }
                | B::LastSecurityPerson(_) => Code::FailedPrecondition,
                _ => {
                    tracing::error!(error = %error, "internal failure");
                    return Self::internal("internal error");
                }
            },
            Error::TlsConfig(_)
            | Error::TaskFailed
            | Error::Transport(_)
            | Error::Storage(_)
            | Error::Audit(_)
            | Error::Bind(..)
            | Error::SidecarThread(_)
            | Error::Reflection(_)
            | Error::ShutdownGraceExceeded(_) => {
                // The caller learns nothing; the operator reads why (error
                // messages name ids and rules, never a secret).
                tracing::error!(error = %error, "internal failure");
                return Self::internal("internal error");
            }
        };
        Self::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use shardkeep_types::ActorId;

    use super::*;

    #[test]
    fn every_identity_refusal_is_told_alike() {
        let person = ActorId::new("ops-1").unwrap();
        let statuses = [
            Status::from(Error::NoClientCertificate),
            Status::from(Error::UnknownCertificate {
                fingerprint: "00".repeat(32),
            }),
            Status::from(Error::PersonRevoked(person)),
        ];
        for status in statuses {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), "client certificate not accepted");
        }
    }

    #[test]
    fn another_person_unknown_or_revoked_is_the_procedures_refusal() {
        // The caller's own are turned into identity refusals before this
        // mapping (GrpcService::run); these name a custodian or approver.
        let custodian = ActorId::new("cust-0-contact").unwrap();
        for error in [
            shardkeep_backup::Error::UnknownPerson(custodian.clone()),
            shardkeep_backup::Error::PersonRevoked(custodian),
        ] {
            let status = Status::from(Error::Backup(error));
            assert_eq!(status.code(), Code::FailedPrecondition);
            assert!(status.message().contains("cust-0-contact"));
        }
    }

    #[test]
    fn every_decryption_or_signature_failure_is_told_alike() {
        let slot = shardkeep_types::NodeVersion {
            key_id: shardkeep_types::KeyId::new("wallet").unwrap(),
            node_id: shardkeep_types::NodeId::new("node-0").unwrap(),
            version: shardkeep_types::KeyVersion::new(1),
        }
        .slot(shardkeep_types::ShareIndex::new(3).unwrap());
        let approver = ActorId::new("sec-2").unwrap();
        for error in [
            shardkeep_backup::Error::ReceiptSignature(slot),
            shardkeep_backup::Error::ApprovalSignatureInvalid(approver.clone()),
            shardkeep_backup::Error::AuditReviewSignatureInvalid(approver.clone()),
            shardkeep_backup::Error::DestructionSignatureInvalid(approver),
            shardkeep_backup::Error::SessionDescriptorInvalid("signature"),
        ] {
            assert!(error.is_opaque_to_caller(), "{error}");
            let status = Status::from(Error::Backup(error));
            assert_eq!(
                (status.code(), status.message()),
                (Code::InvalidArgument, OPAQUE_REFUSAL)
            );
        }
    }

    #[test]
    fn failures_inside_the_service_are_opaque() {
        let status = Status::from(Error::TaskFailed);
        assert_eq!(
            (status.code(), status.message()),
            (Code::Internal, "internal error")
        );
        let status = Status::from(Error::TlsConfig("server key"));
        assert_eq!(
            (status.code(), status.message()),
            (Code::Internal, "internal error")
        );
    }
}

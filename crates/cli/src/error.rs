//! The one error type of the command, and the exit code each failure maps
//! to.

use std::io;
use std::path::PathBuf;

/// The documented exit codes (README, "Exit codes"). Scripts branch on
/// them; their numbers never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    /// The command did what it was asked.
    Ok = 0,
    /// The service refused the request (role, approvals, state, rate
    /// limit, a request it finds malformed or unverifiable), or the
    /// approver declined to sign.
    Refused = 1,
    /// The command line or the configuration is wrong.
    Usage = 2,
    /// Something did not verify here (a passphrase, a signature, a
    /// descriptor, a container, a request's hash, the service's own
    /// answer), or a recovery or drill failed at threshold.
    VerificationFailed = 3,
    /// The service cannot be reached: connection, TLS handshake,
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED`.
    Unavailable = 4,
    /// A local failure: a file that cannot be read or written, the
    /// terminal, an internal error of the service.
    Local = 5,
}

impl ExitCode {
    /// The code's stable name in JSON output.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Usage => "usage",
            Self::VerificationFailed => "verification-failed",
            Self::Unavailable => "unavailable",
            Self::Local => "local",
        }
    }

    /// The process exit status.
    pub(crate) fn status(self) -> std::process::ExitCode {
        // The discriminants are 0..=5.
        std::process::ExitCode::from(self as u8)
    }
}

/// Everything the command can fail with. Messages name files, ids and
/// rules, never a secret (a passphrase, a key, a share).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// The command line does not parse.
    #[error("{0}")]
    Usage(String),
    /// The configuration file is missing, malformed or incomplete for
    /// this command.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value given on the command line is not valid.
    #[error("--{flag}: {reason}")]
    Argument {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An input file cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An input file is larger than the format it holds allows.
    #[error("{path} is larger than a {what} can be ({max} bytes)")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// The cap.
        max: usize,
    },
    /// An output file cannot be written.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An output file exists already (never overwritten without
    /// `--force`).
    #[error("{0} exists already (--force replaces it)")]
    OutputExists(PathBuf),
    /// The passphrase cannot be read from the terminal or the passphrase
    /// file.
    #[error("cannot read the passphrase: {0}")]
    Passphrase(String),
    /// The two passphrases typed differ.
    #[error("the passphrases do not match")]
    PassphraseMismatch,
    /// The secrets file does not open with the passphrase given.
    #[error("{0} does not open with this passphrase")]
    WrongPassphrase(PathBuf),
    /// The secrets file opened but does not hold a person's secrets in this
    /// build's format.
    #[error("{path} is not a shardkeep person secrets file: {reason}")]
    SecretsInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The person's secrets hold no age identity: only a custodian's do.
    #[error("the secrets of {0} hold no custodian age identity (init --custodian makes one)")]
    NotACustodian(String),
    /// A carried file (request, descriptor, challenge, container) does not
    /// decode or verify here.
    #[error("{what}: {source}")]
    Verification {
        /// What was checked.
        what: &'static str,
        /// The check's failure.
        source: Box<shardkeep_backup::Error>,
    },
    /// The approval request's recomputed hash is not the one the approver
    /// was told to expect.
    #[error("the request's hash is {actual}, not the expected {expected}")]
    RequestHashMismatch {
        /// The hash expected (`--expect-hash`).
        expected: String,
        /// The request's hash, recomputed.
        actual: String,
    },
    /// The approval request the service made is not for the parameters
    /// asked for.
    #[error("the service's approval request has another {field} than the one asked for")]
    RequestDiffers {
        /// The first parameter that differs.
        field: &'static str,
    },
    /// An audit export or witness file cannot be used.
    #[error("{path}: {detail}")]
    AuditInput {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The audit log does not verify: a record changed, removed,
    /// reordered or inserted, a rewrite behind a checkpoint, a fork, a
    /// checkpoint not signed by the key.
    #[error("TAMPERED: {0}")]
    AuditTampered(String),
    /// The audit log is not anchored: no checkpoint, or it ends before a
    /// witnessed head.
    #[error("NOT ANCHORED: {0}")]
    AuditNotAnchored(String),
    /// The approver declined at the prompt: nothing was signed.
    #[error("not signed: declined at the prompt")]
    Declined,
    /// The terminal cannot be read.
    #[error("cannot read the terminal: {0}")]
    Terminal(io::Error),
    /// A local signing or sealing step failed.
    #[error("{what}: {source}")]
    Local {
        /// What failed.
        what: &'static str,
        /// Why.
        source: Box<shardkeep_backup::Error>,
    },
    /// Encrypting a file here failed.
    #[error("cannot encrypt {0}")]
    Encrypt(&'static str),
    /// The pinned service key cannot be used.
    #[error("the pinned service key: {0}")]
    ServiceKey(String),
    /// Making a part of a service failed.
    #[error("cannot make {what}: {detail}")]
    ServiceInit {
        /// The part.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Randomness,
    /// No connection to the service.
    #[error("cannot reach the service at {url}: {detail}")]
    Unreachable {
        /// The service's address.
        url: String,
        /// The transport's error.
        detail: String,
    },
    /// The service refused the request.
    #[error("the service refused ({code}): {message}")]
    Refused {
        /// The gRPC status code, e.g. `FAILED_PRECONDITION`.
        code: &'static str,
        /// The status message (never secret).
        message: String,
    },
    /// The service answered `UNAVAILABLE` or the call's deadline passed.
    #[error("the service is unavailable ({code}): {message}")]
    ServiceUnavailable {
        /// The gRPC status code.
        code: &'static str,
        /// The status message.
        message: String,
    },
    /// The service failed inside (`INTERNAL`, `UNKNOWN`, ...).
    #[error("the service failed ({code}): {message}")]
    ServiceFailed {
        /// The gRPC status code.
        code: &'static str,
        /// The status message.
        message: String,
    },
    /// The service's answer is not what the protocol promises, or
    /// contradicts the request.
    #[error("the service's answer does not check: {0}")]
    BadAnswer(&'static str),
    /// A step that cannot fail on valid input failed (serializing a
    /// report, a constant id).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The service process cannot start or serve (`serve`, `sidecar`).
    #[error("cannot serve: {what}: {detail}")]
    Serve {
        /// The part.
        what: &'static str,
        /// Why (names files and addresses, never a secret).
        detail: String,
    },
    /// A step of `demo` failed.
    #[error("demo: {step}: {detail}")]
    Demo {
        /// The step.
        step: String,
        /// Why (the failing command's own error message).
        detail: String,
    },
    /// The async runtime cannot start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
}

impl Error {
    /// [`Error::Verification`] of `what`, for `map_err`.
    pub(crate) fn verification(what: &'static str) -> impl FnOnce(shardkeep_backup::Error) -> Self {
        move |source| Self::Verification {
            what,
            source: Box::new(source),
        }
    }

    /// [`Error::Local`] of `what`, for `map_err`.
    pub(crate) fn local(what: &'static str) -> impl FnOnce(shardkeep_backup::Error) -> Self {
        move |source| Self::Local {
            what,
            source: Box::new(source),
        }
    }

    /// The exit code the failure maps to.
    pub(crate) const fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_)
            | Self::Config { .. }
            | Self::Argument { .. }
            | Self::OutputExists(_)
            | Self::PassphraseMismatch
            | Self::NotACustodian(_)
            | Self::ServiceKey(_) => ExitCode::Usage,
            Self::Refused { .. } | Self::Declined => ExitCode::Refused,
            Self::WrongPassphrase(_)
            | Self::SecretsInvalid { .. }
            | Self::FileTooLarge { .. }
            | Self::Verification { .. }
            | Self::RequestHashMismatch { .. }
            | Self::RequestDiffers { .. }
            | Self::BadAnswer(_)
            | Self::AuditInput { .. }
            | Self::AuditTampered(_)
            | Self::AuditNotAnchored(_) => ExitCode::VerificationFailed,
            Self::Unreachable { .. } | Self::ServiceUnavailable { .. } => ExitCode::Unavailable,
            Self::ReadFile { .. }
            | Self::WriteFile { .. }
            | Self::Passphrase(_)
            | Self::Terminal(_)
            | Self::Local { .. }
            | Self::Randomness
            | Self::Encrypt(_)
            | Self::ServiceInit { .. }
            | Self::ServiceFailed { .. }
            | Self::Internal(_)
            | Self::Runtime(_)
            | Self::Serve { .. }
            | Self::Demo { .. } => ExitCode::Local,
        }
    }

    /// The variant's stable name in JSON output.
    pub(crate) const fn kind(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::Config { .. } => "config",
            Self::Argument { .. } => "argument",
            Self::ReadFile { .. } => "read-file",
            Self::FileTooLarge { .. } => "file-too-large",
            Self::WriteFile { .. } => "write-file",
            Self::OutputExists(_) => "output-exists",
            Self::Passphrase(_) => "passphrase",
            Self::PassphraseMismatch => "passphrase-mismatch",
            Self::WrongPassphrase(_) => "wrong-passphrase",
            Self::SecretsInvalid { .. } => "secrets-invalid",
            Self::NotACustodian(_) => "not-a-custodian",
            Self::Verification { .. } => "verification",
            Self::RequestHashMismatch { .. } => "request-hash-mismatch",
            Self::RequestDiffers { .. } => "request-differs",
            Self::AuditInput { .. } => "audit-input",
            Self::AuditTampered(_) => "audit-tampered",
            Self::AuditNotAnchored(_) => "audit-not-anchored",
            Self::Declined => "declined",
            Self::Terminal(_) => "terminal",
            Self::Local { .. } => "local",
            Self::Randomness => "randomness",
            Self::Encrypt(_) => "encrypt",
            Self::ServiceInit { .. } => "service-init",
            Self::ServiceKey(_) => "service-key",
            Self::Unreachable { .. } => "unreachable",
            Self::Refused { .. } => "refused",
            Self::ServiceUnavailable { .. } => "service-unavailable",
            Self::ServiceFailed { .. } => "service-failed",
            Self::BadAnswer(_) => "bad-answer",
            Self::Internal(_) => "internal",
            Self::Runtime(_) => "runtime",
            Self::Serve { .. } => "serve",
            Self::Demo { .. } => "demo",
        }
    }

    /// The gRPC status code, when the service answered with one.
    pub(crate) const fn grpc_code(&self) -> Option<&'static str> {
        match self {
            Self::Refused { code, .. }
            | Self::ServiceUnavailable { code, .. }
            | Self::ServiceFailed { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let code = grpc_code_name(status.code());
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unauthenticated => Self::Refused { code, message },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                Self::ServiceUnavailable { code, message }
            }
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                Self::ServiceFailed { code, message }
            }
        }
    }
}

/// The canonical upper-case name of a gRPC status code.
const fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_refusals_unavailability_and_failures_map_to_their_exit_codes() {
        let refused = Error::from(tonic::Status::failed_precondition("approvals spent"));
        assert_eq!(refused.exit_code(), ExitCode::Refused);
        assert_eq!(refused.grpc_code(), Some("FAILED_PRECONDITION"));
        let denied = Error::from(tonic::Status::permission_denied("not an operator"));
        assert_eq!(denied.exit_code(), ExitCode::Refused);
        let down = Error::from(tonic::Status::unavailable("restarting"));
        assert_eq!(down.exit_code(), ExitCode::Unavailable);
        let internal = Error::from(tonic::Status::internal(""));
        assert_eq!(internal.exit_code(), ExitCode::Local);
        assert_eq!(internal.grpc_code(), Some("INTERNAL"));
    }

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        let codes = [
            (ExitCode::Ok, 0),
            (ExitCode::Refused, 1),
            (ExitCode::Usage, 2),
            (ExitCode::VerificationFailed, 3),
            (ExitCode::Unavailable, 4),
            (ExitCode::Local, 5),
        ];
        for (code, number) in codes {
            assert_eq!(code as u8, number, "{}", code.name());
        }
        let readme = include_str!("../README.md");
        for (code, number) in codes {
            let row = format!("| {number} | `{}` |", code.name());
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}

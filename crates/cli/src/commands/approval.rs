//! What every approved operation shares: asking the service for approval
//! of exactly some parameters (the request file an approver carries), and
//! reading an approved request file back to run its operation.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalRequest, ApprovalRequestHash,
    MAX_APPROVAL_REQUEST_LEN,
};
use shardkeep_grpc::proto;
use shardkeep_types::FreeText;

use super::{Context, VersionReport, answer32, proto_version, shown, when};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// Largest risk note hashed, in bytes.
const MAX_RISK_NOTE_LEN: usize = 1024 * 1024;

/// The SHA-256 of the risk note at `path`: what the approvers approve.
pub(super) fn risk_note_hash(path: &Path) -> Result<[u8; 32], Error> {
    let note = files::read_capped(path, "risk note", MAX_RISK_NOTE_LEN)?;
    Ok(Sha256::digest(&note).into())
}

/// A ticket named on the command line, checked.
pub(super) fn ticket<const MAX: usize>(text: &str) -> Result<FreeText<MAX>, Error> {
    FreeText::new(text).map_err(|_| Error::Argument {
        flag: "ticket",
        reason: "not a valid ticket (free text)".to_owned(),
    })
}

/// The wire form of an operation.
const fn wire_operation(operation: ApprovalOperation) -> proto::ApprovalOperation {
    match operation {
        ApprovalOperation::Recover => proto::ApprovalOperation::Recover,
        ApprovalOperation::Drill => proto::ApprovalOperation::Drill,
        ApprovalOperation::Delete => proto::ApprovalOperation::Delete,
        ApprovalOperation::PolicyChange => proto::ApprovalOperation::PolicyChange,
        ApprovalOperation::ApproverSetChange => proto::ApprovalOperation::ApproverSetChange,
    }
}

/// The wire form of approval parameters.
fn wire_params(params: &ApprovalParams) -> proto::ApprovalParams {
    proto::ApprovalParams {
        operation: wire_operation(params.operation).into(),
        version: params
            .subject
            .as_ref()
            .map(|subject| proto_version(&subject.version)),
        split_id: params
            .subject
            .as_ref()
            .map(|subject| subject.split_id.to_vec())
            .unwrap_or_default(),
        target: params
            .target
            .as_ref()
            .map(|target| target.as_str().to_owned())
            .unwrap_or_default(),
        allow_server_shares: params.allow_server_shares,
        slots: params
            .slots
            .iter()
            .map(|index| u32::from(index.get()))
            .collect(),
        change_hash: params
            .change_hash
            .map(|hash| hash.to_vec())
            .unwrap_or_default(),
        ticket: params.ticket.as_str().to_owned(),
        risk_note_hash: params.risk_note_hash.to_vec(),
    }
}

/// `recover request`, `drill request`, `delete request`, `policy request`.
#[derive(Debug, Serialize)]
struct RequestReport {
    command: &'static str,
    operation: String,
    /// Absent for a policy change.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<VersionReport>,
    /// A deletion's slots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slots: Vec<u8>,
    /// A policy change's policy hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    change_hash: Option<String>,
    request_hash: String,
    expires_at_unix: u64,
    out: String,
}

impl Report for RequestReport {
    fn human(&self, out: &mut String) {
        match &self.version {
            Some(version) => line!(
                out,
                "approval of {} {} requested: {}",
                self.operation,
                version,
                self.out
            ),
            None => line!(
                out,
                "approval of {} requested: {}",
                self.operation,
                self.out
            ),
        }
        if !self.slots.is_empty() {
            line!(out, "slots: {:?}", self.slots);
        }
        if let Some(hash) = &self.change_hash {
            line!(out, "change hash: {hash}");
        }
        line!(out, "request hash: {}", self.request_hash);
        line!(out, "it lapses at {}", when(self.expires_at_unix));
        line!(
            out,
            "hand the file to the approvers and tell them the hash out of band"
        );
    }
}

/// Asks the service for approval of exactly `asked`, checks the request
/// it returns carries these parameters and hashes to what it announces,
/// and writes it to `out`.
pub(super) async fn ask(
    context: &Context,
    command: &'static str,
    asked: &ApprovalParams,
    out: &Path,
    force: bool,
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    asked.validate().map_err(|source| Error::Argument {
        flag: "request",
        reason: source.to_string(),
    })?;
    // Refused before the service records a request nobody can carry.
    if !force && out.exists() {
        return Err(Error::OutputExists(out.to_owned()));
    }
    let mut client = client::connect(config.server()?).await?;
    let answer = client
        .request_approval(proto::RequestApprovalRequest {
            params: Some(wire_params(asked)),
        })
        .await?
        .into_inner();
    // The request the approvers will read must be the one asked for, and
    // hash to what the service says.
    let request = ApprovalRequest::decode(&answer.request).map_err(Error::verification(
        "the service's approval request does not decode",
    ))?;
    if let Some(field) = request.params.first_difference(asked) {
        return Err(Error::RequestDiffers { field });
    }
    let hash = request.hash().map_err(Error::verification(
        "the service's approval request does not encode",
    ))?;
    if hash.0 != answer32("request_hash", &answer.request_hash)? {
        return Err(Error::BadAnswer(
            "the request hash is not the request's hash",
        ));
    }
    files::write_new(out, &answer.request, force, Access::Public)?;
    context.output.report(&RequestReport {
        command,
        operation: asked.operation.to_string(),
        version: asked
            .subject
            .as_ref()
            .map(|subject| VersionReport::of(&subject.version)),
        slots: asked.slots.iter().map(|index| index.get()).collect(),
        change_hash: asked.change_hash.map(hex::encode),
        request_hash: hex::encode(hash.0),
        expires_at_unix: answer.expires_at_unix,
        out: shown(out),
    })?;
    Ok(ExitCode::Ok)
}

/// An approval request file read back to run its operation.
pub(super) struct Approved {
    pub(super) request: ApprovalRequest,
    pub(super) hash: ApprovalRequestHash,
}

/// What a change request (policy, approver set) names of its approval on
/// the wire: the request's hash, its ticket and its risk note hash; all
/// empty for a change that runs without one.
#[derive(Default)]
pub(super) struct ChangeApproval {
    pub(super) request_hash: Vec<u8>,
    pub(super) ticket: String,
    pub(super) risk_note_hash: Vec<u8>,
}

impl Approved {
    /// The approved change request at `path`, if one is given: a request
    /// for `operation` whose change hash is `change_hash` (the change run
    /// must be exactly the one approved), else refused before the service
    /// is asked.
    pub(super) fn read_change(
        path: Option<&Path>,
        operation: ApprovalOperation,
        change_hash: [u8; 32],
    ) -> Result<Option<Self>, Error> {
        let Some(path) = path else { return Ok(None) };
        let approved = Self::read(path, operation)?;
        // Public values: a plain comparison.
        if approved.request.params.change_hash != Some(change_hash) {
            return Err(Error::RequestDiffers {
                field: "change_hash",
            });
        }
        Ok(Some(approved))
    }

    /// The wire fields of `approved` (all empty for none).
    pub(super) fn change_approval(approved: Option<&Self>) -> ChangeApproval {
        approved.map_or_else(ChangeApproval::default, |approved| ChangeApproval {
            request_hash: approved.hash.0.to_vec(),
            ticket: approved.request.params.ticket.as_str().to_owned(),
            risk_note_hash: approved.request.params.risk_note_hash.to_vec(),
        })
    }

    /// Reads and decodes the request at `path`, refusing one for another
    /// operation than `operation`.
    pub(super) fn read(path: &Path, operation: ApprovalOperation) -> Result<Self, Error> {
        let bytes = files::read_capped(path, "approval request", MAX_APPROVAL_REQUEST_LEN)?;
        let request = ApprovalRequest::decode(&bytes)
            .map_err(Error::verification("the approval request does not decode"))?;
        let hash = request
            .hash()
            .map_err(Error::verification("the approval request does not encode"))?;
        if request.params.operation != operation {
            return Err(Error::Argument {
                flag: "request",
                reason: format!(
                    "it approves a {}, not a {operation}",
                    request.params.operation
                ),
            });
        }
        Ok(Self { request, hash })
    }

    /// The key version and split the request names.
    pub(super) fn subject(&self) -> Result<&shardkeep_backup::ApprovalSubject, Error> {
        self.request.params.subject.as_ref().ok_or(Error::Argument {
            flag: "request",
            reason: "it names no key version".to_owned(),
        })
    }
}

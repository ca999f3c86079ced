//! Deleting server shares: the operator asks for approval of exactly the
//! slots (`delete request`, the request flow recoveries use), soft-deletes
//! them on the approved request (a cooldown starts), and after the
//! cooldown destroys them (`--hard`: their slot KEKs are destroyed) and
//! writes the zero-retention certificate draft for compliance. `rollback`
//! restores soft-deleted shares before then.

use std::path::Path;

use serde::Serialize;
use shardkeep_backup::{ApprovalOperation, ApprovalParams, ApprovalSubject};
use shardkeep_grpc::proto;
use shardkeep_types::ShareIndex;

use super::approval::{self, Approved};
use super::{Context, VersionReport, hex32, node_version, proto_version, shown, when};
use crate::cli::{DeleteArgs, DeleteCommand, VersionArgs};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// Share indices named on the command line, checked.
fn indices(slots: &[u8]) -> Result<Vec<ShareIndex>, Error> {
    slots
        .iter()
        .map(|slot| {
            ShareIndex::new(*slot).ok_or(Error::Argument {
                flag: "slot",
                reason: "share indices start at 1".to_owned(),
            })
        })
        .collect()
}

pub(super) async fn run(context: &Context, args: DeleteArgs) -> Result<ExitCode, Error> {
    if let Some(DeleteCommand::Request { request, slots }) = args.command {
        let asked = ApprovalParams {
            operation: ApprovalOperation::Delete,
            subject: Some(ApprovalSubject {
                version: node_version(&request.version)?,
                split_id: hex32("split-id", &request.split_id)?,
            }),
            target: None,
            allow_server_shares: false,
            slots: indices(&slots)?,
            change_hash: None,
            ticket: approval::ticket(&request.ticket)?,
            risk_note_hash: approval::risk_note_hash(&request.risk_note)?,
        };
        return approval::ask(
            context,
            "delete request",
            &asked,
            &request.out,
            request.force,
        )
        .await;
    }
    let request = args.request.as_deref().ok_or(Error::Argument {
        flag: "request",
        reason: "the approved deletion request is needed".to_owned(),
    })?;
    match (args.hard, args.draft.as_deref()) {
        (true, Some(draft)) => hard(context, request, draft).await,
        _ => soft(context, request).await,
    }
}

/// `delete --request FILE`.
#[derive(Debug, Serialize)]
struct SoftDeleteReport {
    command: &'static str,
    request_hash: String,
    version: VersionReport,
    slots: Vec<u8>,
    deleted_at_unix: u64,
    cooldown_until_unix: u64,
}

impl Report for SoftDeleteReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} shares {:?} soft-deleted at {} (request {})",
            self.version,
            self.slots,
            when(self.deleted_at_unix),
            self.request_hash
        );
        line!(
            out,
            "`rollback` restores them; `delete --hard` destroys them from {}",
            when(self.cooldown_until_unix)
        );
    }
}

async fn soft(context: &Context, request: &Path) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let approved = Approved::read(request, ApprovalOperation::Delete)?;
    let params = &approved.request.params;
    let version = approved.subject()?.version.clone();
    let mut client = client::connect(config.server()?).await?;
    let deleted = client
        .soft_delete_shares(proto::SoftDeleteSharesRequest {
            version: Some(proto_version(&version)),
            slots: params
                .slots
                .iter()
                .map(|index| u32::from(index.get()))
                .collect(),
            approval_request_hash: approved.hash.0.to_vec(),
            ticket: params.ticket.as_str().to_owned(),
            risk_note_hash: params.risk_note_hash.to_vec(),
        })
        .await?
        .into_inner();
    context.output.report(&SoftDeleteReport {
        command: "delete",
        request_hash: hex::encode(approved.hash.0),
        version: VersionReport::of(&version),
        slots: params.slots.iter().map(|index| index.get()).collect(),
        deleted_at_unix: deleted.at_unix,
        cooldown_until_unix: deleted.cooldown_until_unix,
    })?;
    Ok(ExitCode::Ok)
}

/// `delete --hard --request FILE --draft FILE`.
#[derive(Debug, Serialize)]
struct HardDeleteReport {
    command: &'static str,
    request_hash: String,
    version: VersionReport,
    slots: Vec<u8>,
    draft: String,
    draft_len: usize,
}

impl Report for HardDeleteReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} shares {:?} destroyed (request {}); their slot KEKs are gone",
            self.version,
            self.slots,
            self.request_hash
        );
        line!(
            out,
            "zero-retention certificate draft ({} bytes) written to {}: hand it to compliance",
            self.draft_len,
            self.draft
        );
    }
}

async fn hard(context: &Context, request: &Path, draft: &Path) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let approved = Approved::read(request, ApprovalOperation::Delete)?;
    let version = approved.subject()?.version.clone();
    // Refused before the shares are destroyed: the draft must land.
    if draft.exists() {
        return Err(Error::OutputExists(draft.to_owned()));
    }
    let mut client = client::connect(config.server()?).await?;
    let destroyed = client
        .hard_delete_shares(proto::HardDeleteSharesRequest {
            version: Some(proto_version(&version)),
            approval_request_hash: approved.hash.0.to_vec(),
        })
        .await?
        .into_inner();
    files::write_new(
        draft,
        &destroyed.zero_retention_draft,
        false,
        Access::Public,
    )?;
    context.output.report(&HardDeleteReport {
        command: "delete --hard",
        request_hash: hex::encode(approved.hash.0),
        version: VersionReport::of(&version),
        slots: approved
            .request
            .params
            .slots
            .iter()
            .map(|index| index.get())
            .collect(),
        draft: shown(draft),
        draft_len: destroyed.zero_retention_draft.len(),
    })?;
    Ok(ExitCode::Ok)
}

/// `rollback`.
#[derive(Debug, Serialize)]
struct RollbackReport {
    command: &'static str,
    version: VersionReport,
    slots: Vec<u8>,
}

impl Report for RollbackReport {
    fn human(&self, out: &mut String) {
        line!(out, "{} shares {:?} restored", self.version, self.slots);
    }
}

pub(super) async fn rollback(
    context: &Context,
    version: &VersionArgs,
    slots: &[u8],
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let version = node_version(version)?;
    let slots: Vec<u8> = indices(slots)?.iter().map(|index| index.get()).collect();
    let mut client = client::connect(config.server()?).await?;
    client
        .rollback_deletion(proto::RollbackDeletionRequest {
            version: Some(proto_version(&version)),
            slots: slots.iter().copied().map(u32::from).collect(),
        })
        .await?;
    context.output.report(&RollbackReport {
        command: "rollback",
        version: VersionReport::of(&version),
        slots,
    })?;
    Ok(ExitCode::Ok)
}

//! Recovery and drill sessions: the operator asks for approval, starts the
//! approved session and submits the custodians' shares; the custodian
//! checks the session descriptor and encrypts their share to it (the
//! backup crate's `CustodianCredentials::recovery_submission`).

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalSubject, MAX_SEALED_SUBMISSION_LEN,
    MAX_SESSION_DESCRIPTOR_LEN, MAX_SUBMISSIONS_PER_CALL, SessionDescriptor,
};
use shardkeep_envelope::MAX_CONTAINER_LEN;
use shardkeep_grpc::proto;
use shardkeep_types::{FreeText, Timestamp};

use super::approval::{self, Approved};
use super::{
    Context, CustodianTool, VersionReport, enum_name, hex32, node_version, proto_version, shown,
    when,
};
use crate::cli::{
    DrillCommand, RecoverCommand, SessionRequestArgs, SessionSharesArgs, SessionStartArgs,
};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Output, Report, line};

pub(super) async fn recover(context: &Context, command: RecoverCommand) -> Result<ExitCode, Error> {
    match command {
        RecoverCommand::Request {
            request,
            target,
            allow_server_shares,
        } => {
            ask(
                context,
                &request,
                ApprovalOperation::Recover,
                Some(target),
                allow_server_shares,
            )
            .await
        }
        RecoverCommand::Start(args) => start(context, &args, ApprovalOperation::Recover).await,
        RecoverCommand::Shares(args) => shares(context, &args, "recover shares").await,
        RecoverCommand::Submit {
            descriptor,
            container,
            out,
            force,
        } => submit(context, &descriptor, &container, &out, force),
    }
}

pub(super) async fn drill(context: &Context, command: DrillCommand) -> Result<ExitCode, Error> {
    match command {
        DrillCommand::Request { request } => {
            ask(context, &request, ApprovalOperation::Drill, None, false).await
        }
        DrillCommand::Start(args) => start(context, &args, ApprovalOperation::Drill).await,
        DrillCommand::Shares(args) => shares(context, &args, "drill shares").await,
    }
}

/// Asks the service for approval of a recovery or drill of exactly these
/// parameters (the shared request flow) and writes the request.
async fn ask(
    context: &Context,
    args: &SessionRequestArgs,
    operation: ApprovalOperation,
    target: Option<String>,
    allow_server_shares: bool,
) -> Result<ExitCode, Error> {
    let version = node_version(&args.version)?;
    let asked = ApprovalParams {
        operation,
        subject: Some(ApprovalSubject {
            version,
            split_id: hex32("split-id", &args.split_id)?,
        }),
        target: target
            .as_deref()
            .map(FreeText::new)
            .transpose()
            .map_err(|_| Error::Argument {
                flag: "target",
                reason: "not a valid directory name (free text, at most 512 bytes)".to_owned(),
            })?,
        allow_server_shares,
        slots: Vec::new(),
        change_hash: None,
        ticket: approval::ticket(&args.ticket)?,
        risk_note_hash: approval::risk_note_hash(&args.risk_note)?,
    };
    let command = match operation {
        ApprovalOperation::Drill => "drill request",
        _ => "recover request",
    };
    approval::ask(context, command, &asked, &args.out, args.force).await
}

/// `recover start`, `drill start`.
#[derive(Debug, Serialize)]
struct StartReport {
    command: &'static str,
    session_id: String,
    version: VersionReport,
    threshold: u32,
    expires_at_unix: u64,
    descriptor: String,
}

impl Report for StartReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "session {} for {} started: {} shares needed, it ends at {}",
            self.session_id,
            self.version,
            self.threshold,
            when(self.expires_at_unix)
        );
        line!(
            out,
            "descriptor (signed by the service) written to {}: hand it to the custodians",
            self.descriptor
        );
    }
}

/// Starts the session `request_file` approves, checks the descriptor the
/// service signed against the pinned key, and writes it.
async fn start(
    context: &Context,
    args: &SessionStartArgs,
    operation: ApprovalOperation,
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let service_key = config.service_signer()?.key;
    let approved = Approved::read(&args.request, operation)?;
    let (request, hash) = (&approved.request, approved.hash);
    let subject = approved.subject()?;
    let version = proto_version(&subject.version);
    let ticket = request.params.ticket.as_str().to_owned();
    let risk_note_hash = request.params.risk_note_hash.to_vec();
    let mut client = client::connect(config.server()?).await?;
    let started = if operation == ApprovalOperation::Drill {
        client
            .start_drill(proto::StartDrillRequest {
                approval_request_hash: hash.0.to_vec(),
                version: Some(version),
                ticket,
                risk_note_hash,
            })
            .await?
    } else {
        client
            .start_recovery(proto::StartRecoveryRequest {
                approval_request_hash: hash.0.to_vec(),
                version: Some(version),
                target: request
                    .params
                    .target
                    .as_ref()
                    .map(|target| target.as_str().to_owned())
                    .unwrap_or_default(),
                allow_server_shares: request.params.allow_server_shares,
                ticket,
                risk_note_hash,
            })
            .await?
    }
    .into_inner();
    let descriptor = verified_descriptor(&started.descriptor, &service_key)?;
    // Public values: plain comparisons.
    if descriptor.session.0.as_slice() != started.session_id.as_slice()
        || descriptor.version != subject.version
        || descriptor.split_id != subject.split_id
    {
        return Err(Error::BadAnswer(
            "the descriptor names another session, version or split",
        ));
    }
    files::write_new(&args.out, &started.descriptor, args.force, Access::Public)?;
    context.output.report(&StartReport {
        command: if operation == ApprovalOperation::Drill {
            "drill start"
        } else {
            "recover start"
        },
        session_id: hex::encode(descriptor.session.0),
        version: VersionReport::of(&descriptor.version),
        threshold: started.threshold,
        expires_at_unix: descriptor.expires_at.as_unix_seconds(),
        descriptor: shown(&args.out),
    })?;
    Ok(ExitCode::Ok)
}

/// The descriptor, verified under the pinned service key.
fn verified_descriptor(
    bytes: &[u8],
    service_key: &ed25519_dalek::VerifyingKey,
) -> Result<SessionDescriptor, Error> {
    SessionDescriptor::decode_verify(bytes, service_key).map_err(Error::verification(
        "the session descriptor does not verify under the pinned service key",
    ))
}

/// One submission file sent by this run.
#[derive(Debug, Serialize)]
struct SubmittedReport {
    file: String,
    /// The call of this run that sent it (from 0).
    call: usize,
    /// Its position in that call (what a rejection names).
    position: usize,
}

/// One rejected submission (of the whole session, in the order rejected).
#[derive(Debug, Serialize)]
struct RejectedReport {
    /// Its position in the call that submitted it.
    position: u32,
    /// The share index it claims once it verified; 0 when unknown.
    index: u32,
    reason: String,
}

/// `recover shares`, `drill shares`.
#[derive(Debug, Serialize)]
struct SharesReport {
    command: &'static str,
    session_id: String,
    version: VersionReport,
    /// `waiting`, `recovered`, `drilled` or `failed`.
    state: String,
    success: bool,
    shares_received: u32,
    threshold: u32,
    received_indices: Vec<u32>,
    submitted: Vec<SubmittedReport>,
    rejected: Vec<RejectedReport>,
    /// The drill report as stored, when the drill ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    drill_report: Option<String>,
}

impl Report for SharesReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "session {} for {}: {} ({} of {} shares, indices {:?})",
            self.session_id,
            self.version,
            self.state,
            self.shares_received,
            self.threshold,
            self.received_indices
        );
        for submitted in &self.submitted {
            line!(
                out,
                "  sent {} (call {}, position {})",
                submitted.file,
                submitted.call,
                submitted.position
            );
        }
        for rejected in &self.rejected {
            line!(
                out,
                "  rejected: position {} of its call, index {}: {}",
                rejected.position,
                rejected.index,
                rejected.reason
            );
        }
        if let Some(report) = &self.drill_report {
            line!(out, "drill report:");
            out.push_str(report);
            if !report.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

/// A progress bar on the terminal (none with `--json` or without a
/// terminal).
fn progress(output: Output, threshold: u64) -> ProgressBar {
    if output.json() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(threshold), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} shares") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Submits the custodians' submissions, at most
/// [`MAX_SUBMISSIONS_PER_CALL`] per call, until the files run out or the
/// session ends.
async fn shares(
    context: &Context,
    args: &SessionSharesArgs,
    command: &'static str,
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let service_key = config.service_signer()?.key;
    let descriptor_bytes = files::read_capped(
        &args.descriptor,
        "session descriptor",
        MAX_SESSION_DESCRIPTOR_LEN,
    )?;
    let descriptor = verified_descriptor(&descriptor_bytes, &service_key)?;
    let mut submissions = Vec::with_capacity(args.submissions.len());
    for path in &args.submissions {
        submissions.push(files::read_capped(
            path,
            "recovery submission",
            MAX_SEALED_SUBMISSION_LEN,
        )?);
    }
    let mut client = client::connect(config.server()?).await?;
    let bar = progress(context.output, 0);
    bar.set_message(command);
    let mut last = None;
    let mut submitted = Vec::with_capacity(args.submissions.len());
    for (call, (chunk, paths)) in submissions
        .chunks(MAX_SUBMISSIONS_PER_CALL)
        .zip(args.submissions.chunks(MAX_SUBMISSIONS_PER_CALL))
        .enumerate()
    {
        let answer = match client
            .recover_mpc_share(proto::RecoverMpcShareRequest {
                session_id: descriptor.session.0.to_vec(),
                share_data: chunk.to_vec(),
            })
            .await
        {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                bar.abandon();
                return Err(status.into());
            }
        };
        submitted.extend(
            paths
                .iter()
                .enumerate()
                .map(|(position, path)| SubmittedReport {
                    file: shown(path),
                    call,
                    position,
                }),
        );
        bar.set_length(u64::from(answer.threshold));
        bar.set_position(u64::from(answer.shares_received));
        let state = answer.state();
        last = Some(answer);
        if state != proto::RecoveryState::Waiting {
            break;
        }
    }
    bar.finish_and_clear();
    let answer = last.ok_or(Error::Usage("no submission given".to_owned()))?;
    let state = answer.state();
    context.output.report(&SharesReport {
        command,
        session_id: hex::encode(descriptor.session.0),
        version: VersionReport::of(&descriptor.version),
        state: enum_name(state.as_str_name(), "RECOVERY_STATE_"),
        success: answer.success,
        shares_received: answer.shares_received,
        threshold: answer.threshold,
        received_indices: answer.received_indices,
        submitted,
        rejected: answer
            .rejected
            .iter()
            .map(|entry| RejectedReport {
                position: entry.position,
                index: entry.index,
                reason: enum_name(entry.reason().as_str_name(), "SHARE_REJECTION_REASON_"),
            })
            .collect(),
        drill_report: (!answer.drill_report.is_empty()).then_some(answer.drill_report),
    })?;
    Ok(if state == proto::RecoveryState::Failed {
        ExitCode::VerificationFailed
    } else {
        ExitCode::Ok
    })
}

/// `recover submit`.
#[derive(Debug, Serialize)]
struct SubmitReport {
    command: &'static str,
    custodian: String,
    person: String,
    session_id: String,
    version: VersionReport,
    expires_at_unix: u64,
    out: String,
}

impl Report for SubmitReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} ({}) encrypted the share of {} to session {} (ends {}): {}",
            self.person,
            self.custodian,
            self.version,
            self.session_id,
            when(self.expires_at_unix),
            self.out
        );
        line!(out, "hand it to the operator");
    }
}

/// The custodian's submission: the library checks the descriptor against
/// the pinned key, opens the container and encrypts to the session.
fn submit(
    context: &Context,
    descriptor: &Path,
    container: &Path,
    out: &Path,
    force: bool,
) -> Result<ExitCode, Error> {
    let config = CustodianTool::config(context)?;
    let service_key = config.service_signer()?.key;
    let descriptor_bytes =
        files::read_capped(descriptor, "session descriptor", MAX_SESSION_DESCRIPTOR_LEN)?;
    // Checked first, so that nothing is unlocked for a forged session.
    let session = verified_descriptor(&descriptor_bytes, &service_key)?;
    let container_bytes = files::read_capped(container, "container", MAX_CONTAINER_LEN)?;
    let custodian = CustodianTool::unlock(config)?;
    let credentials = custodian.credentials()?;
    let submission = credentials
        .recovery_submission(
            &descriptor_bytes,
            &service_key,
            Timestamp::now(),
            &container_bytes,
        )
        .map_err(Error::verification(
            "the share cannot be submitted to this session",
        ))?;
    files::write_new(out, &submission, force, Access::Public)?;
    context.output.report(&SubmitReport {
        command: "recover submit",
        custodian: credentials.custodian.as_str().to_owned(),
        person: credentials.person.as_str().to_owned(),
        session_id: hex::encode(session.session.0),
        version: VersionReport::of(&session.version),
        expires_at_unix: session.expires_at.as_unix_seconds(),
        out: shown(out),
    })?;
    Ok(ExitCode::Ok)
}

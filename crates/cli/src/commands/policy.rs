//! The split policy: `policy show` reads it; a security person sets the
//! first one directly, and changes it on an approved policy-change
//! request (`policy request`, the request flow recoveries use) naming the
//! new policy's hash, which this command computes from the settings.

use serde::Serialize;
use shardkeep_backup::{ApprovalOperation, ApprovalParams, Policy};
use shardkeep_grpc::proto;
use shardkeep_types::{Label, Threshold};

use super::approval::{self, Approved};
use super::{Context, when};
use crate::cli::{PolicyCommand, PolicySettingsArgs};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::output::{Report, line};

/// The policy named on the command line, checked as the service checks it.
pub(super) fn policy(args: &PolicySettingsArgs) -> Result<Policy, Error> {
    let threshold =
        Threshold::new(usize::from(args.threshold), usize::from(args.shares)).map_err(|error| {
            Error::Argument {
                flag: "threshold",
                reason: error.to_string(),
            }
        })?;
    let kek_provider = Label::new(&args.kek_provider).map_err(|_| Error::Argument {
        flag: "kek-provider",
        reason: "not a valid label".to_owned(),
    })?;
    Policy::new(threshold, args.server_shares, kek_provider).map_err(|error| Error::Argument {
        flag: "server-shares",
        reason: error.to_string(),
    })
}

/// `policy show`, `policy set`.
#[derive(Debug, Serialize)]
struct PolicyReport {
    command: &'static str,
    /// False before a policy is set.
    set: bool,
    threshold: u32,
    shares: u32,
    server_shares: u32,
    kek_provider: String,
    hash: String,
    set_at_unix: u64,
    set_by: String,
    /// `policy set` on an approved change: the request it consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_hash: Option<String>,
}

impl Report for PolicyReport {
    fn human(&self, out: &mut String) {
        if !self.set {
            line!(out, "no policy is set");
            return;
        }
        line!(
            out,
            "{} of {} shares, the server keeps {} under {}",
            self.threshold,
            self.shares,
            self.server_shares,
            self.kek_provider
        );
        line!(out, "policy hash: {}", self.hash);
        line!(out, "set by {} at {}", self.set_by, when(self.set_at_unix));
    }
}

impl PolicyReport {
    fn of(
        command: &'static str,
        answer: proto::GetPolicyResponse,
        request_hash: Option<String>,
    ) -> Self {
        let settings = answer.settings.unwrap_or_default();
        Self {
            command,
            set: !answer.hash.is_empty(),
            threshold: settings.threshold,
            shares: settings.shares,
            server_shares: settings.server_shares,
            kek_provider: settings.kek_provider,
            hash: hex::encode(&answer.hash),
            set_at_unix: answer.set_at_unix,
            set_by: answer.set_by,
            request_hash,
        }
    }
}

pub(super) async fn run(context: &Context, command: PolicyCommand) -> Result<ExitCode, Error> {
    match command {
        PolicyCommand::Show => {
            let config = context.config()?;
            let mut client = client::connect(config.server()?).await?;
            let answer = client
                .get_policy(proto::GetPolicyRequest {})
                .await?
                .into_inner();
            context
                .output
                .report(&PolicyReport::of("policy show", answer, None))?;
            Ok(ExitCode::Ok)
        }
        PolicyCommand::Request {
            settings,
            ticket,
            risk_note,
            out,
            force,
        } => {
            let asked = ApprovalParams {
                operation: ApprovalOperation::PolicyChange,
                subject: None,
                target: None,
                allow_server_shares: false,
                slots: Vec::new(),
                change_hash: Some(policy(&settings)?.hash()),
                ticket: approval::ticket(&ticket)?,
                risk_note_hash: approval::risk_note_hash(&risk_note)?,
            };
            approval::ask(context, "policy request", &asked, &out, force).await
        }
        PolicyCommand::Set { settings, request } => {
            let config = context.config()?;
            let policy = policy(&settings)?;
            let approved = Approved::read_change(
                request.as_deref(),
                ApprovalOperation::PolicyChange,
                policy.hash(),
            )?;
            let approval = Approved::change_approval(approved.as_ref());
            let mut client = client::connect(config.server()?).await?;
            let answer = client
                .set_policy(proto::SetPolicyRequest {
                    settings: Some(proto::PolicySettings {
                        threshold: u32::from(settings.threshold),
                        shares: u32::from(settings.shares),
                        server_shares: u32::from(settings.server_shares),
                        kek_provider: settings.kek_provider.clone(),
                    }),
                    approval_request_hash: approval.request_hash,
                    ticket: approval.ticket,
                    risk_note_hash: approval.risk_note_hash,
                })
                .await?
                .into_inner();
            if answer.hash != policy.hash() {
                return Err(Error::BadAnswer("the policy set is not the one asked for"));
            }
            context.output.report(&PolicyReport::of(
                "policy set",
                answer,
                approved.map(|approved| hex::encode(approved.hash.0)),
            ))?;
            Ok(ExitCode::Ok)
        }
    }
}

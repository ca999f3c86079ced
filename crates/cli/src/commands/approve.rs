//! `approve`: the approver reads the request itself (never only a hash),
//! sees every field, checks the hash it was told to expect, signs with
//! their approval key and submits over their own certificate.

use std::io::BufRead as _;

use serde::Serialize;
use shardkeep_backup::{
    ApprovalOperation, ApprovalRequest, ApproverSetChange, MAX_APPROVAL_REQUEST_LEN, Role,
    sign_approval,
};
use shardkeep_grpc::proto;

use super::{Context, VersionReport, hex32, policy, registry, shown, unlock, when};
use crate::cli::{ApproveArgs, ApproverRole, PolicySettingsArgs};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Output, Report, line};

/// One approval the request holds.
#[derive(Debug, Serialize)]
struct ApproverReport {
    person: String,
    role: String,
}

/// `approve`: every field of the request signed, then the outcome.
#[derive(Debug, Serialize)]
struct ApproveReport {
    command: &'static str,
    request_hash: String,
    deployment: String,
    operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<VersionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    allow_server_shares: bool,
    slots: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_hash: Option<String>,
    ticket: String,
    risk_note_hash: String,
    requester: String,
    created_at_unix: u64,
    expires_at_unix: u64,
    approver: String,
    role: &'static str,
    submitted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<String>,
    /// A policy change's new policy, as `--expect-policy` gave it and its
    /// hash checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    /// An approver-set change's registration, as `--expect-registration`
    /// gave it (checked against the change hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    registration: Option<String>,
    /// After submission: the approvals the request holds now.
    approvals: Vec<ApproverReport>,
    /// After submission: whether they satisfy the policy.
    satisfied: bool,
}

impl Report for ApproveReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} approved request {} as {}",
            self.approver,
            self.request_hash,
            self.role
        );
        if let Some(path) = &self.out {
            line!(out, "approval written to {path}");
        }
        if self.submitted {
            let holders: Vec<String> = self
                .approvals
                .iter()
                .map(|approval| format!("{} ({})", approval.person, approval.role))
                .collect();
            line!(out, "approvals now: {}", holders.join(", "));
            line!(
                out,
                "{}",
                if self.satisfied {
                    "the policy is satisfied: the operation may start"
                } else {
                    "more approvals are needed"
                }
            );
        }
    }
}

const fn role(role: ApproverRole) -> Role {
    match role {
        ApproverRole::Security => Role::Security,
        ApproverRole::BusinessOwner => Role::BusinessOwner,
    }
}

pub(super) async fn run(context: &Context, args: ApproveArgs) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let expected = args
        .expect_hash
        .as_deref()
        .map(|hash| hex32("expect-hash", hash))
        .transpose()?;
    let bytes = files::read_capped(&args.request, "approval request", MAX_APPROVAL_REQUEST_LEN)?;
    let request = ApprovalRequest::decode(&bytes)
        .map_err(Error::verification("the approval request does not decode"))?;
    let hash = request
        .hash()
        .map_err(Error::verification("the approval request does not encode"))?;
    // Public values: a plain comparison.
    if let Some(expected) = expected
        && expected != hash.0
    {
        return Err(Error::RequestHashMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(hash.0),
        });
    }
    let policy = expected_policy(&request, args.expect_policy.as_deref())?;
    let registration = expected_registration(&request, args.expect_registration.as_deref())?;
    let mut shown_request = format!(
        "{}  request hash:        {}\n  expires:             {}\n",
        request.describe(),
        hex::encode(hash.0),
        when(request.expires_at.as_unix_seconds())
    );
    if let Some(policy) = &policy {
        line!(&mut shown_request, "  new policy:          {policy}");
    }
    if let Some(registration) = &registration {
        line!(&mut shown_request, "  registers:           {registration}");
    }
    if args.yes {
        context.output.notice(&shown_request);
    } else {
        // Whoever is asked to sign reads the request first, in JSON mode
        // too.
        Output::terminal(&shown_request);
        confirm(&format!(
            "Sign this request as {} ({})? Type yes: ",
            config.person,
            role(args.role).name()
        ))?;
    }
    let secrets = unlock(&config)?;
    let signer = secrets.signer()?;
    // The library decodes the request again and signs its recomputed
    // hash: what is signed is what was shown.
    let approval = sign_approval(&bytes, &config.person, role(args.role), &signer)
        .map_err(Error::local("signing the approval"))?
        .encode();
    if let Some(out) = &args.out {
        files::write_new(out, &approval, false, Access::Public)?;
    }
    let (approvals, satisfied) = if args.no_submit {
        (Vec::new(), false)
    } else {
        let mut client = client::connect(config.server()?).await?;
        let state = client
            .submit_approval(proto::SubmitApprovalRequest { approval })
            .await?
            .into_inner();
        if state.request_hash != hash.0 {
            return Err(Error::BadAnswer(
                "the approval state is for another request",
            ));
        }
        let approvals = state
            .approvals
            .into_iter()
            .map(|approval| ApproverReport {
                person: approval.person,
                role: approval.role,
            })
            .collect();
        (approvals, state.satisfied)
    };
    let params = &request.params;
    context.output.report(&ApproveReport {
        command: "approve",
        request_hash: hex::encode(hash.0),
        deployment: request.deployment.as_str().to_owned(),
        operation: params.operation.to_string(),
        version: params
            .subject
            .as_ref()
            .map(|subject| VersionReport::of(&subject.version)),
        split_id: params
            .subject
            .as_ref()
            .map(|subject| hex::encode(subject.split_id)),
        target: params
            .target
            .as_ref()
            .map(|target| target.as_str().to_owned()),
        allow_server_shares: params.allow_server_shares,
        slots: params.slots.iter().map(ToString::to_string).collect(),
        change_hash: params.change_hash.map(hex::encode),
        ticket: params.ticket.as_str().to_owned(),
        risk_note_hash: hex::encode(params.risk_note_hash),
        requester: request.requester.as_str().to_owned(),
        created_at_unix: request.created_at.as_unix_seconds(),
        expires_at_unix: request.expires_at.as_unix_seconds(),
        approver: config.person.as_str().to_owned(),
        role: role(args.role).name(),
        submitted: !args.no_submit,
        out: args.out.as_deref().map(shown),
        policy,
        registration,
        approvals,
        satisfied,
    })?;
    Ok(ExitCode::Ok)
}

/// A policy change names only the new policy's hash: the approver states
/// the policy they approve (`--expect-policy`), and it must hash to the
/// request's change hash. The policy, readably, for a policy change.
fn expected_policy(
    request: &ApprovalRequest,
    given: Option<&str>,
) -> Result<Option<String>, Error> {
    let is_policy_change = request.params.operation == ApprovalOperation::PolicyChange;
    let text = match (is_policy_change, given) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(Error::Argument {
                flag: "expect-policy",
                reason: "the request is no policy change".to_owned(),
            });
        }
        (true, None) => {
            return Err(Error::Argument {
                flag: "expect-policy",
                reason: "a policy change names only the new policy's hash: give the policy \
                         (T/N/S/PROVIDER) to check it"
                    .to_owned(),
            });
        }
        (true, Some(text)) => text,
    };
    let malformed = || Error::Argument {
        flag: "expect-policy",
        reason: "not T/N/S/PROVIDER (e.g. 3/5/1/local-key-file)".to_owned(),
    };
    let mut parts = text.splitn(4, '/');
    let mut number = || -> Result<u8, Error> {
        parts
            .next()
            .and_then(|part| part.parse().ok())
            .ok_or_else(malformed)
    };
    let (threshold, shares, server_shares) = (number()?, number()?, number()?);
    let kek_provider = parts.next().ok_or_else(malformed)?.to_owned();
    let settings = PolicySettingsArgs {
        threshold,
        shares,
        server_shares,
        kek_provider,
    };
    // Public values: a plain comparison.
    if request.params.change_hash != Some(policy::policy(&settings)?.hash()) {
        return Err(Error::RequestDiffers {
            field: "change_hash",
        });
    }
    Ok(Some(format!(
        "{threshold} of {shares} shares, the server keeps {server_shares} under {}",
        settings.kek_provider
    )))
}

/// An approver-set change names only the registration's hash: the
/// approver gives the registration file the requester wrote
/// (`--expect-registration`), and it must hash to the request's change
/// hash. The registration, readably, for an approver-set change.
fn expected_registration(
    request: &ApprovalRequest,
    given: Option<&std::path::Path>,
) -> Result<Option<String>, Error> {
    let is_change = request.params.operation == ApprovalOperation::ApproverSetChange;
    let path = match (is_change, given) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(Error::Argument {
                flag: "expect-registration",
                reason: "the request is no approver-set change".to_owned(),
            });
        }
        (true, None) => {
            return Err(Error::Argument {
                flag: "expect-registration",
                reason: "an approver-set change names only the registration's hash: give the \
                         registration file `person request` wrote to check it"
                    .to_owned(),
            });
        }
        (true, Some(path)) => path,
    };
    let registration = registry::read_registration(path)?;
    // Public values: a plain comparison.
    if request.params.change_hash != Some(ApproverSetChange::Register(&registration).hash()) {
        return Err(Error::RequestDiffers {
            field: "change_hash",
        });
    }
    Ok(Some(registry::describe(&registration)))
}

/// Asks at the terminal; anything but `yes` declines.
fn confirm(prompt: &str) -> Result<(), Error> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(Error::Terminal)?;
    std::io::Write::write_all(&mut &tty, prompt.as_bytes()).map_err(Error::Terminal)?;
    let mut answer = String::new();
    // One short line: a longer answer is no "yes" either.
    std::io::Read::take(std::io::BufReader::new(&tty), 64)
        .read_line(&mut answer)
        .map_err(Error::Terminal)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Declined)
    }
}

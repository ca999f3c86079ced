//! `audit verify`: the audit crate's verifier over an exported log and its
//! witness files, offline.

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::Serialize;
use shardkeep_audit::{Finding, parse_export, read_witness, verify};

use super::{Context, shown};
use crate::cli::AuditCommand;
use crate::error::{Error, ExitCode};
use crate::files;
use crate::output::{Report, line};

use super::compliance::MAX_EXPORT_LEN;

/// `audit verify`.
#[derive(Debug, Serialize)]
struct VerifyReport {
    command: &'static str,
    export: String,
    log_id: String,
    records: u64,
    head_sequence: u64,
    head_hash: String,
    checkpoints: usize,
    /// The highest witnessed sequence: everything up to it is anchored.
    latest_checkpoint: u64,
    /// Records after it: not yet anchored.
    unwitnessed: u64,
}

impl Report for VerifyReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "ok: log {}, {} records, head {} {}, {} witnessed checkpoints (highest {}), {} records after it unwitnessed",
            self.log_id,
            self.records,
            self.head_sequence,
            self.head_hash,
            self.checkpoints,
            self.latest_checkpoint,
            self.unwitnessed
        );
    }
}

pub(super) fn run(context: &Context, command: AuditCommand) -> Result<ExitCode, Error> {
    let AuditCommand::Verify {
        export,
        witnesses,
        key,
    } = command
    else {
        return Err(Error::Internal("only audit verify runs offline"));
    };
    let key = super::hex32("key", &key)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| Error::Argument {
        flag: "key",
        reason: "not an ed25519 public key".to_owned(),
    })?;
    // The verifier reports no progress of its own: a spinner says it runs.
    let spinner = if context.output.json() {
        ProgressBar::hidden()
    } else {
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        spinner
    };
    spinner.set_message(format!("reading {}", export.display()));
    let bytes = files::read_capped(&export, "audit export", MAX_EXPORT_LEN)?;
    let parsed = parse_export(&bytes).map_err(|error| Error::AuditInput {
        path: export.clone(),
        detail: error.to_string(),
    })?;
    let mut checkpoints = Vec::new();
    for path in &witnesses {
        spinner.set_message(format!("reading {}", path.display()));
        checkpoints.extend(read_witness(path).map_err(|error| Error::AuditInput {
            path: path.clone(),
            detail: error.to_string(),
        })?);
    }
    spinner.set_message(format!(
        "verifying {} records against {} checkpoints",
        parsed.rows.len(),
        checkpoints.len()
    ));
    let verified = verify(&parsed, &checkpoints, &key);
    spinner.finish_and_clear();
    let verified = verified.map_err(|error| match error {
        shardkeep_audit::Error::Tampered(
            finding @ (Finding::NoWitness | Finding::Truncated { .. }),
        ) => Error::AuditNotAnchored(finding.to_string()),
        shardkeep_audit::Error::Tampered(finding) => Error::AuditTampered(finding.to_string()),
        other => Error::AuditInput {
            path: export.clone(),
            detail: other.to_string(),
        },
    })?;
    context.output.report(&VerifyReport {
        command: "audit verify",
        export: shown(&export),
        log_id: verified.log_id.to_string(),
        records: verified.records,
        head_sequence: verified.head.sequence,
        head_hash: hex::encode(verified.head.hash),
        checkpoints: verified.checkpoints,
        latest_checkpoint: verified.latest_checkpoint,
        unwitnessed: verified.unwitnessed,
    })?;
    Ok(ExitCode::Ok)
}

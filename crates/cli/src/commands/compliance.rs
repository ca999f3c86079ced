//! The compliance side of the service: `audit export` streams the audit
//! log's export to a file (what `audit verify` reads), `audit review`
//! signs and submits a review of an exported range, `checklist` shows a
//! version's procedure checklist.

use std::io::Write as _;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use shardkeep_audit::{AuditReview, MAX_FINDINGS_LEN, ReviewedRange, parse_export};
use shardkeep_grpc::proto;
use shardkeep_types::{FreeText, Timestamp};

use super::{Context, VersionReport, node_version, proto_version, shown, unlock};
use crate::cli::{AuditCommand, ChecklistArgs, ChecklistKindArg};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// Largest export written or read (1 GiB), as `audit verify` reads it.
pub(super) const MAX_EXPORT_LEN: usize = 1 << 30;

/// Largest checklist report shown (the service renders a few KiB).
const MAX_CHECKLIST_LEN: usize = 4 * 1024 * 1024;

pub(super) async fn audit(context: &Context, command: AuditCommand) -> Result<ExitCode, Error> {
    match command {
        AuditCommand::Export { out, from } => export(context, &out, from).await,
        AuditCommand::Review {
            export,
            first,
            last,
            findings,
        } => review(context, &export, first, last, &findings).await,
        AuditCommand::Verify { .. } => Err(Error::Internal("audit verify runs offline")),
    }
}

/// `audit export`.
#[derive(Debug, Serialize)]
struct ExportReport {
    command: &'static str,
    out: String,
    bytes: u64,
    log_id: String,
    records: usize,
    first_sequence: u64,
    last_sequence: u64,
}

impl Report for ExportReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "log {}: records {}..={} ({} records, {} bytes) written to {}",
            self.log_id,
            self.first_sequence,
            self.last_sequence,
            self.records,
            self.bytes,
            self.out
        );
        line!(
            out,
            "verify it with `audit verify --export {} --witness ...`",
            self.out
        );
    }
}

/// A byte counter on the terminal (hidden with `--json`).
fn byte_progress(context: &Context) -> ProgressBar {
    if context.output.json() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} exporting the audit log: {bytes}") {
        bar.set_style(style);
    }
    bar
}

async fn export(context: &Context, out: &Path, from: u64) -> Result<ExitCode, Error> {
    let config = context.config()?;
    // Checked before the service is asked (and again, race-free, when the
    // file is made): an export the service audited should land.
    if out.exists() {
        return Err(Error::OutputExists(out.to_owned()));
    }
    let mut client = client::connect(config.server()?).await?;
    let mut stream = client
        .export_audit(proto::ExportAuditRequest {
            from_sequence: from,
        })
        .await?
        .into_inner();
    // Never overwritten: an earlier export may be what a review names.
    let mut file = files::create(out, false, Access::Public)?;
    let bar = byte_progress(context);
    let streamed: Result<Vec<u8>, Error> = async {
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            if bytes.len().saturating_add(chunk.data.len()) > MAX_EXPORT_LEN {
                return Err(Error::BadAnswer("the export is over 1 GiB"));
            }
            file.write_all(&chunk.data)
                .map_err(|source| Error::WriteFile {
                    path: out.to_owned(),
                    source,
                })?;
            bytes.extend_from_slice(&chunk.data);
            bar.inc(u64::try_from(chunk.data.len()).unwrap_or(u64::MAX));
        }
        file.sync_all().map_err(|source| Error::WriteFile {
            path: out.to_owned(),
            source,
        })?;
        Ok(bytes)
    }
    .await;
    bar.finish_and_clear();
    // What was written must parse as an export: a cut stream or a
    // malformed answer leaves no file to be taken for the log.
    let parsed = streamed.and_then(|bytes| {
        parse_export(&bytes)
            .map(|parsed| (parsed, bytes.len()))
            .map_err(|_| Error::BadAnswer("the export does not parse"))
    });
    let (parsed, len) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            // Our own partial file; nothing else is removed.
            let _ = std::fs::remove_file(out);
            return Err(error);
        }
    };
    context.output.report(&ExportReport {
        command: "audit export",
        out: shown(out),
        bytes: u64::try_from(len).unwrap_or(u64::MAX),
        log_id: parsed.log_id.to_string(),
        records: parsed.rows.len(),
        first_sequence: parsed.rows.first().map_or(0, |row| row.sequence),
        last_sequence: parsed.rows.last().map_or(0, |row| row.sequence),
    })?;
    Ok(ExitCode::Ok)
}

/// `audit review`.
#[derive(Debug, Serialize)]
struct ReviewReport {
    command: &'static str,
    reviewer: String,
    log_id: String,
    first_sequence: u64,
    last_sequence: u64,
    head_hash: String,
    reviewers: Vec<String>,
    complete: bool,
}

impl Report for ReviewReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} reviewed log {} records {}..={} (head {})",
            self.reviewer,
            self.log_id,
            self.first_sequence,
            self.last_sequence,
            self.head_hash
        );
        line!(
            out,
            "reviewed by {}: {}",
            self.reviewers.join(", "),
            if self.complete {
                "complete, it can be archived"
            } else {
                "a second reviewer is needed"
            }
        );
    }
}

async fn review(
    context: &Context,
    export: &Path,
    first: Option<u64>,
    last: Option<u64>,
    findings: &str,
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let findings: FreeText<MAX_FINDINGS_LEN> =
        FreeText::new(findings).map_err(|_| Error::Argument {
            flag: "findings",
            reason: format!("not valid free text of at most {MAX_FINDINGS_LEN} bytes"),
        })?;
    let bytes = files::read_capped(export, "audit export", MAX_EXPORT_LEN)?;
    let parsed = parse_export(&bytes).map_err(|error| Error::AuditInput {
        path: export.to_owned(),
        detail: error.to_string(),
    })?;
    let (Some(head), Some(tail)) = (parsed.rows.first(), parsed.rows.last()) else {
        return Err(Error::Argument {
            flag: "export",
            reason: "it holds no record".to_owned(),
        });
    };
    let first = first.unwrap_or(head.sequence);
    let last = last.unwrap_or(tail.sequence);
    let reviewed = parsed
        .rows
        .iter()
        .find(|row| row.sequence == last)
        .filter(|_| first <= last && first >= head.sequence)
        .ok_or(Error::Argument {
            flag: "last",
            reason: format!(
                "the range {first}..={last} is not within the export's {}..={}",
                head.sequence, tail.sequence
            ),
        })?;
    let range = ReviewedRange {
        log_id: parsed.log_id,
        first,
        last,
        head_hash: reviewed.hash,
    };
    let secrets = unlock(&config)?;
    let signer = secrets.signer()?;
    let review = AuditReview::sign(
        range,
        secrets.person.clone(),
        findings,
        Timestamp::now(),
        &signer,
    )
    .map_err(|error| Error::AuditInput {
        path: export.to_owned(),
        detail: error.to_string(),
    })?;
    let mut client = client::connect(config.server()?).await?;
    let state = client
        .submit_audit_review(proto::SubmitAuditReviewRequest {
            review: review.encode(),
        })
        .await?
        .into_inner();
    // Public values: a plain comparison.
    if (state.first_sequence, state.last_sequence) != (first, last)
        || state.head_hash != reviewed.hash
    {
        return Err(Error::BadAnswer("the review state is for another range"));
    }
    context.output.report(&ReviewReport {
        command: "audit review",
        reviewer: secrets.person.as_str().to_owned(),
        log_id: parsed.log_id.to_string(),
        first_sequence: first,
        last_sequence: last,
        head_hash: hex::encode(reviewed.hash),
        reviewers: state.reviewers,
        complete: state.complete,
    })?;
    Ok(ExitCode::Ok)
}

/// One checklist item.
#[derive(Debug, Serialize, serde::Deserialize)]
struct ChecklistItem {
    id: String,
    title: String,
    /// `pass` or `fail`.
    outcome: String,
    /// What a failed item lacks.
    missing: Option<String>,
}

/// The service's rendering, as far as it is shown.
#[derive(Debug, serde::Deserialize)]
struct RenderedChecklist {
    items: Vec<ChecklistItem>,
}

/// `checklist`.
#[derive(Debug, Serialize)]
struct ChecklistReport {
    command: &'static str,
    version: VersionReport,
    kind: &'static str,
    passed: bool,
    items: Vec<ChecklistItem>,
    /// The report as the service rendered it (`shardkeep-checklist-v1`).
    report: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<String>,
}

impl Report for ChecklistReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} checklist of {}: {}",
            self.kind,
            self.version,
            if self.passed { "PASSED" } else { "NOT PASSED" }
        );
        for item in &self.items {
            match &item.missing {
                Some(missing) if item.outcome != "pass" => line!(
                    out,
                    "  [{}] {} {}: {missing}",
                    item.outcome,
                    item.id,
                    item.title
                ),
                _ => line!(out, "  [{}] {} {}", item.outcome, item.id, item.title),
            }
        }
        if let Some(html) = &self.html {
            line!(out, "HTML report written to {html}");
        }
        if let Some(path) = &self.out {
            line!(out, "report written to {path}");
        }
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One self-contained page: no script, no external resource, every value
/// from the service escaped.
fn html(title: &str, passed: bool, items: &[ChecklistItem]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    line!(&mut page, "<title>{}</title>", escape(title));
    page.push_str(
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style>\n</head>\n<body>\n",
    );
    line!(&mut page, "<h1>{}</h1>", escape(title));
    line!(
        &mut page,
        "<p>{}</p>",
        if passed { "PASSED" } else { "NOT PASSED" }
    );
    page.push_str("<table>\n<tr><th>Item</th><th>Title</th><th>Outcome</th></tr>\n");
    for item in items {
        line!(
            &mut page,
            "<tr data-item=\"{}\" data-outcome=\"{}\"><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(&item.id),
            escape(&item.outcome),
            escape(&item.id),
            escape(&item.title),
            escape(&item.outcome.to_ascii_uppercase()),
            item.missing
                .as_deref()
                .map(|missing| format!(": {}", escape(missing)))
                .unwrap_or_default()
        );
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

pub(super) async fn checklist(context: &Context, args: ChecklistArgs) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let version = node_version(&args.version)?;
    for path in [args.html.as_deref(), args.out.as_deref()]
        .into_iter()
        .flatten()
    {
        if path.exists() {
            return Err(Error::OutputExists(path.to_owned()));
        }
    }
    let (wire_kind, kind) = match args.kind {
        ChecklistKindArg::Generation => (proto::ChecklistKind::Generation, "generation"),
        ChecklistKindArg::Drill => (proto::ChecklistKind::Drill, "drill"),
        ChecklistKindArg::Deletion => (proto::ChecklistKind::Deletion, "deletion"),
    };
    let mut client = client::connect(config.server()?).await?;
    let answer = client
        .get_checklist_report(proto::GetChecklistReportRequest {
            version: Some(proto_version(&version)),
            kind: wire_kind.into(),
        })
        .await?
        .into_inner();
    if answer.report.len() > MAX_CHECKLIST_LEN {
        return Err(Error::BadAnswer("the checklist report is over its cap"));
    }
    let report: serde_json::Value = serde_json::from_str(&answer.report)
        .map_err(|_| Error::BadAnswer("the checklist report is not JSON"))?;
    let rendered: RenderedChecklist = serde_json::from_value(report.clone())
        .map_err(|_| Error::BadAnswer("the checklist report has no items"))?;
    // The verdict must be the items'.
    let all_pass = rendered.items.iter().all(|item| item.outcome == "pass");
    if all_pass != answer.passed || report.get("passed") != Some(&answer.passed.into()) {
        return Err(Error::BadAnswer(
            "the checklist's verdict contradicts its items",
        ));
    }
    let shown_version = VersionReport::of(&version);
    if let Some(path) = &args.html {
        let title = format!("shardkeep {kind} checklist: {shown_version}");
        let page = html(&title, answer.passed, &rendered.items);
        files::write_new(path, page.as_bytes(), false, Access::Public)?;
    }
    if let Some(path) = &args.out {
        files::write_new(path, answer.report.as_bytes(), false, Access::Public)?;
    }
    context.output.report(&ChecklistReport {
        command: "checklist",
        version: shown_version,
        kind,
        passed: answer.passed,
        items: rendered.items,
        report,
        html: args.html.as_deref().map(shown),
        out: args.out.as_deref().map(shown),
    })?;
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_the_service_stored() {
        let items = [ChecklistItem {
            id: "GEN-01".to_owned(),
            title: "<script>alert(1)</script>".to_owned(),
            outcome: "fail".to_owned(),
            missing: Some("\"quoted\" & <b>".to_owned()),
        }];
        let page = html("t<", false, &items);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&quot;quoted&quot; &amp; &lt;b&gt;"));
    }
}

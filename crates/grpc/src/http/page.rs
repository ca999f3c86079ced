//! The read-only status page: plain HTML, no script, no style sheet or
//! link to anything outside the page, every value escaped.
//!
//! One row per key version that is not retired, and per retired version
//! whose destruction statements are still outstanding, the versions
//! needing attention first (not recoverable, exposed, drill overdue,
//! deliveries or destruction statements outstanding), at most
//! [`MAX_STATUS_ROWS`]; the header holds the totals, the audit head and
//! the last witnessed checkpoint.

use core::fmt::Write as _;

use shardkeep_backup::{ExporterSnapshot, ExposureState, VersionStatus};
use shardkeep_storage::KeyVersionState;

/// Most version rows the page shows (the gRPC status call pages through
/// every version).
pub const MAX_STATUS_ROWS: usize = 1000;

/// `text` with the characters that mean something in HTML replaced by
/// their entities: safe in element content and in quoted attributes.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Whether a version needs someone to act.
fn needs_attention(status: &VersionStatus) -> bool {
    if matches!(status.state, KeyVersionState::Retired { .. }) {
        // Nothing to recover, drill or deliver any more: only the old
        // containers' destruction.
        return !status.outstanding_destructions.is_empty();
    }
    !status.recoverable
        || matches!(status.exposure, ExposureState::Exposed { .. })
        || status.next_drill.is_some_and(|due| due.overdue)
        || status.outstanding_deliveries > 0
        || !status.outstanding_destructions.is_empty()
}

fn exposure_text(exposure: &ExposureState) -> String {
    match exposure {
        ExposureState::Clear => "clear".to_owned(),
        ExposureState::Exposed { custodians } => format!(
            "exposed to {}",
            custodians
                .iter()
                .map(shardkeep_types::CustodianId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExposureState::UnknownGroup => "group key not registered".to_owned(),
        // Not active; and whatever a later state is called.
        _ => "n/a".to_owned(),
    }
}

fn last_drill_text(status: &VersionStatus) -> String {
    match status.last_drill {
        None => "never".to_owned(),
        Some(drill) => format!(
            "{} {}",
            drill.finished_at,
            if drill.passed { "passed" } else { "failed" }
        ),
    }
}

fn next_due_text(status: &VersionStatus) -> String {
    match status.next_drill {
        None => "n/a".to_owned(),
        Some(due) if due.overdue => format!("{} (overdue)", due.due_at),
        Some(due) => due.due_at.to_string(),
    }
}

fn pending_text(status: &VersionStatus) -> String {
    if matches!(status.state, KeyVersionState::Retired { .. }) {
        // A retired version's containers are no longer to be delivered.
        return "n/a".to_owned();
    }
    status.outstanding_deliveries.to_string()
}

fn destructions_text(status: &VersionStatus) -> String {
    if status.outstanding_destructions.is_empty() {
        return "0".to_owned();
    }
    format!(
        "{} ({})",
        status.outstanding_destructions.len(),
        status
            .outstanding_destructions
            .iter()
            .map(|outstanding| outstanding.custodian.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The page for `snapshot` of deployment `deployment`.
#[must_use]
pub fn render_status_page(deployment: &str, snapshot: &ExporterSnapshot) -> String {
    let metrics = &snapshot.metrics;
    let mut rows: Vec<&VersionStatus> = snapshot
        .versions
        .iter()
        .chain(&snapshot.retired_with_outstanding_destructions)
        .collect();
    // Those needing attention first; within each group, the order of key,
    // node and version.
    rows.sort_by(|a, b| (!needs_attention(a), &a.version).cmp(&(!needs_attention(b), &b.version)));
    let mut html = String::with_capacity(4096 + 512 * rows.len().min(MAX_STATUS_ROWS));
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">\n",
    );
    let deployment = escape_html(deployment);
    // `write!` into a String cannot fail.
    let _ = writeln!(html, "<title>shardkeep status: {deployment}</title>");
    html.push_str("</head>\n<body>\n");
    let _ = writeln!(html, "<h1>shardkeep status: {deployment}</h1>");
    let _ = writeln!(
        html,
        "<p id=\"as-of\">As of {}.</p>",
        escape_html(&metrics.at.to_string())
    );

    html.push_str("<table id=\"summary\">\n");
    let mut summary = |id: &str, label: &str, value: &str| {
        let _ = writeln!(
            html,
            "<tr data-field=\"{id}\"><th>{label}</th><td>{}</td></tr>",
            escape_html(value)
        );
    };
    summary(
        "versions",
        "Versions (not retired)",
        &metrics.totals.versions.to_string(),
    );
    summary(
        "recoverable",
        "Recoverable",
        &metrics.recoverable.to_string(),
    );
    summary(
        "pending-deliveries",
        "Pending deliveries",
        &metrics
            .delivery
            .assigned
            .saturating_sub(metrics.delivery.confirmed)
            .to_string(),
    );
    summary(
        "destructions-outstanding",
        "Outstanding destruction statements",
        &rows
            .iter()
            .map(|status| status.outstanding_destructions.len())
            .sum::<usize>()
            .to_string(),
    );
    summary(
        "audit-head",
        "Audit head",
        &format!(
            "sequence {}, hash {}",
            snapshot.audit_head.sequence,
            hex::encode(snapshot.audit_head.hash)
        ),
    );
    summary(
        "last-checkpoint",
        "Last witnessed checkpoint",
        &snapshot.last_checkpoint.as_ref().map_or_else(
            || "none".to_owned(),
            |checkpoint| {
                format!(
                    "sequence {}, hash {}, signed {} by {}",
                    checkpoint.sequence,
                    hex::encode(checkpoint.head_hash),
                    checkpoint.signed_at,
                    checkpoint.signer_id
                )
            },
        ),
    );
    html.push_str("</table>\n");

    html.push_str(
        "<h2>Key versions</h2>\n<table id=\"versions\">\n<thead><tr><th>Key</th><th>Node</th>\
         <th>Version</th><th>State</th><th>Coverage</th><th>Recoverable</th><th>Exposure</th>\
         <th>Last drill</th><th>Next drill due</th><th>Pending deliveries</th>\
         <th>Outstanding destruction statements</th></tr></thead>\n<tbody>\n",
    );
    for status in rows.iter().take(MAX_STATUS_ROWS) {
        let cells = [
            ("key", status.version.key_id.as_str().to_owned()),
            ("node", status.version.node_id.as_str().to_owned()),
            ("version", status.version.version.to_string()),
            ("state", state_text(&status.state)),
            (
                "coverage",
                format!(
                    "{}/{} confirmed",
                    status.external_confirmed, status.external_shares
                ),
            ),
            (
                "recoverable",
                if status.recoverable { "yes" } else { "no" }.to_owned(),
            ),
            ("exposure", exposure_text(&status.exposure)),
            ("last-drill", last_drill_text(status)),
            ("next-due", next_due_text(status)),
            ("pending", pending_text(status)),
            ("destructions", destructions_text(status)),
        ];
        let _ = write!(
            html,
            "<tr data-version=\"{}\" data-attention=\"{}\">",
            escape_html(&status.version.to_string()),
            needs_attention(status)
        );
        for (class, value) in cells {
            let _ = write!(html, "<td class=\"{class}\">{}</td>", escape_html(&value));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
    if rows.len() > MAX_STATUS_ROWS {
        let _ = writeln!(
            html,
            "<p id=\"truncated\">{} more versions are not shown (those needing attention come first).</p>",
            rows.len() - MAX_STATUS_ROWS
        );
    }

    html.push_str(
        "<h2>Delivery failures</h2>\n<table id=\"failures\">\n<thead><tr><th>Reason</th>\
         <th>Attempts</th></tr></thead>\n<tbody>\n",
    );
    for (reason, count) in &metrics.delivery.failure_reasons {
        let _ = writeln!(
            html,
            "<tr class=\"failure\"><td class=\"reason\">{}</td><td class=\"count\">{count}</td></tr>",
            escape_html(reason.as_str())
        );
    }
    html.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    html
}

fn state_text(state: &KeyVersionState) -> String {
    match state {
        KeyVersionState::Retiring { cooldown_until, .. } => {
            format!("retiring until {cooldown_until}")
        }
        other => other.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_html("node-1.eu:a_b"), "node-1.eu:a_b");
    }
}

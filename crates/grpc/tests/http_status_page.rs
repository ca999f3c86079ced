//! The status page of the metrics port, rendered by headless Chromium
//! (`--dump-dom`) from a service with real data: one row per version with
//! its coverage, recoverability, exposure, last drill and next due,
//! pending deliveries and outstanding destruction statements (a retired
//! re-split version whose statements are outstanding too), the versions
//! needing attention first; the header with the audit head and
//! the last witnessed checkpoint; and a delivery failure reason that is
//! markup shown as text, never run. Skipped without Chromium unless
//! `SHARDKEEP_REQUIRE_CHROMIUM` is set.
//!
//! The drill runs keydata's `self_test_peer` example: a narrowed run adds
//! `-p shardkeep-keydata --example self_test_peer` (or builds it first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod http_support;

use std::process::Command;

use http_support::{HOSTILE_REASON, Metered, populate, required_program, retire_a_resplit_version};
use shardkeep_grpc::http::escape_html;
use shardkeep_types::NodeId;

/// The text of the first `<td class="{class}">` in `row`.
fn cell<'a>(row: &'a str, class: &str) -> &'a str {
    row.split_once(&format!("<td class=\"{class}\">"))
        .unwrap_or_else(|| panic!("no {class} cell in {row}"))
        .1
        .split_once("</td>")
        .unwrap()
        .0
}

/// The rendered version rows: `data-version` and the row's markup.
fn version_rows(dom: &str) -> Vec<(&str, &str)> {
    dom.split("<tr data-version=\"")
        .skip(1)
        .map(|row| {
            let (version, rest) = row.split_once('"').unwrap();
            (version, rest.split_once("</tr>").unwrap().0)
        })
        .collect()
}

/// The text of the summary row `field`.
fn summary<'a>(dom: &'a str, field: &str) -> &'a str {
    let row = dom
        .split_once(&format!("<tr data-field=\"{field}\">"))
        .unwrap_or_else(|| panic!("no {field} row"))
        .1;
    row.split_once("<td>")
        .unwrap()
        .1
        .split_once("</td>")
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_each_version_row_in_chromium() {
    let Some(chromium) = required_program(
        &["chromium", "chromium-browser"],
        "SHARDKEEP_REQUIRE_CHROMIUM",
    ) else {
        return;
    };
    // Node ids are operator input, but the name rule keeps markup out.
    assert!(NodeId::new("<script>").is_err());

    let mut metered = Metered::start().await;
    let populated = populate(&metered).await;
    let retired = retire_a_resplit_version(&metered).await;

    let served_page = metered.get("/").await;
    assert_eq!(served_page.status, 200);
    assert_eq!(
        served_page.header("content-security-policy"),
        Some("default-src 'none'")
    );
    let html = &served_page.body;
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains(&escape_html(HOSTILE_REASON)));
    assert!(!html.contains("://") && !html.contains("href=") && !html.contains("src="));

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let url = format!("http://{}/", metered.metrics_addr);
    let dumped = tokio::task::spawn_blocking(move || {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.display()),
                "--dump-dom",
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    let dom = String::from_utf8(dumped.stdout).unwrap();

    // The operator's markup is text: no element came of it, the title is
    // the page's own.
    assert!(!dom.contains("<script"), "{dom}");
    assert!(!dom.contains("<b>"), "{dom}");
    assert!(
        dom.contains("<title>shardkeep status: test</title>"),
        "{dom}"
    );
    let reason = dom
        .split_once("<td class=\"reason\">")
        .unwrap()
        .1
        .split_once("</td>")
        .unwrap()
        .0;
    assert_eq!(
        reason,
        escape_html(HOSTILE_REASON)
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
    );

    // The versions needing attention come first: treasury (not
    // recoverable, deliveries pending, never drilled), vault v1 (retired,
    // its old containers' destruction statements outstanding) and vault
    // v2 (never drilled).
    let rows = version_rows(&dom);
    let versions: Vec<&str> = rows.iter().map(|(version, _)| *version).collect();
    assert_eq!(retired.to_string(), "vault/node-0/v1");
    assert_eq!(
        versions,
        [
            "treasury/node-0/v1",
            "vault/node-0/v1",
            "vault/node-0/v2",
            "wallet/node-0/v1"
        ],
        "{dom}"
    );
    let start = "2026-01-01T00:00:00.000Z";
    let expected = [
        [
            ("key", "treasury"),
            ("node", "node-0"),
            ("version", "v1"),
            ("state", "active"),
            ("coverage", "0/3 confirmed"),
            ("recoverable", "no"),
            ("exposure", "clear"),
            ("last-drill", "never"),
            ("next-due", &format!("{start} (overdue)")),
            ("pending", "3"),
            ("destructions", "0"),
        ],
        [
            ("key", "vault"),
            ("node", "node-0"),
            ("version", "v1"),
            ("state", "retired"),
            ("coverage", "0/3 confirmed"),
            ("recoverable", "no"),
            ("exposure", "n/a"),
            ("last-drill", "never"),
            ("next-due", "n/a"),
            ("pending", "n/a"),
            (
                "destructions",
                "3 (vault-cust-0, vault-cust-1, vault-cust-2)",
            ),
        ],
        [
            ("key", "vault"),
            ("node", "node-0"),
            ("version", "v2"),
            ("state", "active"),
            ("coverage", "3/3 confirmed"),
            ("recoverable", "yes"),
            ("exposure", "clear"),
            ("last-drill", "never"),
            ("next-due", &format!("{start} (overdue)")),
            ("pending", "0"),
            ("destructions", "0"),
        ],
        [
            ("key", "wallet"),
            ("node", "node-0"),
            ("version", "v1"),
            ("state", "active"),
            ("coverage", "3/3 confirmed"),
            ("recoverable", "yes"),
            ("exposure", "clear"),
            ("last-drill", &format!("{start} passed")),
            // The drill interval: 90 days.
            ("next-due", "2026-04-01T00:00:00.000Z"),
            ("pending", "0"),
            ("destructions", "0"),
        ],
    ];
    for ((version, row), cells) in rows.iter().zip(expected) {
        for (class, value) in cells {
            assert_eq!(cell(row, class), value, "{version} {class}");
        }
    }
    for (version, row) in &rows {
        let attention = *version != "wallet/node-0/v1";
        assert!(
            row.contains(&format!("data-attention=\"{attention}\"")),
            "{version}"
        );
    }

    // Retired versions are not counted among the versions, but their
    // outstanding statements are.
    assert_eq!(summary(&dom, "versions"), "3");
    assert_eq!(summary(&dom, "recoverable"), "2");
    assert_eq!(summary(&dom, "pending-deliveries"), "3");
    assert_eq!(summary(&dom, "destructions-outstanding"), "3");
    let head = summary(&dom, "audit-head");
    assert!(head.starts_with("sequence "), "{head}");
    let checkpoint = &populated.checkpoint;
    assert_eq!(
        summary(&dom, "last-checkpoint"),
        format!(
            "sequence {}, hash {}, signed {start} by checkpointer",
            checkpoint.sequence,
            hex::encode(checkpoint.head_hash)
        )
    );
    metered.stop_http().await.unwrap();
}

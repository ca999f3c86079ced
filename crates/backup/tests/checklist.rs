//! Checklists as computed reports on SQLite, both tss-lib groups: a
//! complete version passes every item; removing each piece of evidence from
//! the database fails the item that needs it; the HTML report, rendered by
//! headless Chromium, shows each item's row with its result and no markup
//! from stored text. `tests/postgres.rs` runs the complete version and a
//! removal on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stderr)] // A skipped test says so, like libtest's own lines.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::approvals::Fixture;
use common::checklist::{
    self as cases, Complete, HOSTILE_NAME, Removal, Tamper, checklist, wallet_version,
};
use common::{Harness, Protocol};
use rusqlite::Connection;
use shardkeep_backup::{ChecklistKind, Clock};
use shardkeep_storage::SqliteStorage;

/// The SQLite file of a test, opened past the storage layer.
struct SqliteFile(PathBuf);

impl SqliteFile {
    fn connect(&self) -> Connection {
        let connection = Connection::open(&self.0).unwrap();
        connection
            .execute_batch("PRAGMA foreign_keys = OFF")
            .unwrap();
        connection
    }

    /// A consistent copy of the database at `to`.
    fn snapshot(&self, to: &Path) -> Self {
        self.connect()
            .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
            .unwrap();
        Self(to.to_path_buf())
    }
}

impl Tamper for SqliteFile {
    async fn run(&self, table: &str, sql: &str) {
        let connection = self.connect();
        let triggers: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1")
            .unwrap()
            .query_map([table], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for trigger in triggers {
            connection
                .execute_batch(&format!("DROP TRIGGER \"{trigger}\""))
                .unwrap();
        }
        connection.execute_batch(sql).unwrap();
    }

    fn blob(&self, bytes: &[u8]) -> String {
        format!("X'{}'", hex::encode(bytes))
    }
}

async fn complete(protocol: Protocol) -> (Complete<SqliteStorage>, SqliteFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.sqlite");
    let storage = SqliteStorage::open(&path).await.unwrap();
    let complete = cases::complete(Fixture::new(storage, dir).await, protocol).await;
    (complete, SqliteFile(path))
}

/// A service over a copy of the complete version's database, at the same
/// time.
async fn copy_of(
    complete: &Complete<SqliteStorage>,
    file: &SqliteFile,
) -> (Harness<SqliteStorage>, SqliteFile) {
    let dir = tempfile::tempdir().unwrap();
    let copy = file.snapshot(&dir.path().join("copy.sqlite"));
    let storage = SqliteStorage::open(&copy.0).await.unwrap();
    let h = Harness::build(storage, dir, |keks| keks);
    h.clock.set(complete.r.f.h.clock.now());
    (h, copy)
}

#[tokio::test]
async fn a_complete_version_passes_and_each_removal_fails_its_item() {
    for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
        let (complete, file) = complete(protocol).await;
        cases::a_complete_version_passes(&complete).await;
        for removal in Removal::ALL {
            let (h, copy) = copy_of(&complete, &file).await;
            cases::removal_fails_its_item(&h, &copy, removal).await;
        }
        cases::checklists_are_authorized(&complete).await;
        cases::a_scheduled_drill_passes_its_approval_item(&complete).await;
        cases::a_deleted_version_passes_the_deletion_checklist(&complete).await;
    }
}

/// Chromium, or `None` (the test is skipped) when it is not installed and
/// `SHARDKEEP_REQUIRE_CHROMIUM` is not set; `scripts/test.sh` installs it
/// and sets it.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SHARDKEEP_REQUIRE_CHROMIUM").is_none(),
            "SHARDKEEP_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("chromium is not installed: the rendered-report test is skipped");
    }
    found
}

/// One item row of the rendered DOM: id, `data-outcome`, result text.
fn rendered_rows(dom: &str) -> Vec<(String, String, String)> {
    dom.split("<tr data-item=\"")
        .skip(1)
        .map(|row| {
            let (id, rest) = row.split_once('"').unwrap();
            let outcome = rest
                .split_once("data-outcome=\"")
                .unwrap()
                .1
                .split_once('"')
                .unwrap()
                .0;
            let text = rest
                .split_once("<td class=\"outcome\">")
                .unwrap()
                .1
                .split_once("</td>")
                .unwrap()
                .0;
            (id.to_owned(), outcome.to_owned(), text.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_html_report_renders_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (complete, file) = complete(Protocol::Ecdsa).await;
    let (h, copy) = copy_of(&complete, &file).await;
    Removal::Receipt.apply(&h, &copy).await;
    let report = checklist(&h, &wallet_version(), ChecklistKind::Generation).await;
    assert_eq!(report.failed(), ["GEN-08"]);
    let html = report.to_html();
    assert!(!html.contains("<script"));
    // Nothing outside the page: no address, no link, no script.
    assert!(!html.contains("://"));
    assert!(!html.contains("href="));
    assert!(!html.contains("url("));

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("checklist.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let profile = dir.path().join("profile");
    let run = |extra: &[String]| {
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.display()),
            ])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let dumped = run(&["--dump-dom".to_owned()]);
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    let dom = String::from_utf8(dumped.stdout).unwrap();
    let rows = rendered_rows(&dom);
    let ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "GEN-01", "GEN-02", "GEN-03", "GEN-04", "GEN-05", "GEN-06", "GEN-07", "GEN-08"
        ]
    );
    for (id, outcome, text) in &rows {
        if id == "GEN-08" {
            assert_eq!(outcome, "fail");
            assert_eq!(text, "FAIL: no confirmed receipt for share 4");
        } else {
            assert_eq!(outcome, "pass", "{id}");
            assert_eq!(text, "PASS", "{id}");
        }
    }
    // The hostile custodian name is text in the rendered page: no element
    // came out of it.
    assert!(!dom.contains("<script"), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{dom}"
    );
    assert!(html.contains(
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot; &lt;img src=x onerror=alert(1)&gt;"
    ));
    assert!(HOSTILE_NAME.starts_with("<script>"));

    // A picture of the page, kept for people (not asserted).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("checklist.png");
    let _ = run(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,900".to_owned(),
    ]);
}

//! The alert rules in `ops/prometheus/alerts.yml` pass `promtool check
//! rules` and their unit tests (`alerts_test.yml`: each alert firing on
//! series that break its rule and silent on series that keep it) pass
//! `promtool test rules`. Skipped without promtool unless
//! `SHARDKEEP_REQUIRE_PROMTOOL` is set (`scripts/test.sh` installs Debian's
//! `prometheus` and sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod http_support;

use std::process::Command;

use http_support::{ops_dir, required_program};

fn promtool(args: &[&str]) -> Option<String> {
    let promtool = required_program(&["promtool"], "SHARDKEEP_REQUIRE_PROMTOOL")?;
    let output = Command::new(promtool)
        .args(args)
        .current_dir(ops_dir().join("prometheus"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    Some(text)
}

#[test]
fn the_alert_rules_check() {
    if let Some(output) = promtool(&["check", "rules", "alerts.yml"]) {
        assert!(output.contains("SUCCESS: 6 rules found"), "{output}");
    }
}

#[test]
fn the_alert_rules_pass_their_unit_tests() {
    if let Some(output) = promtool(&["test", "rules", "alerts_test.yml"]) {
        assert!(output.contains("SUCCESS"), "{output}");
    }
}

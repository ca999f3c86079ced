//! `shardkeep demo --json`: the whole procedure against a real `shardkeep
//! serve` with the other parties as `shardkeep sidecar` processes, every
//! command of the command line with `--json` on both curves; both drills
//! and both recoveries pass (the recovered keystore is party 0's, under
//! node-0's KEK), each self-test reached the sidecars over mutual TLS,
//! the lifecycle after them holds (soft delete, rollback, re-split,
//! checklist, audit export, review and offline verification across a
//! restart, a revocation refused at the next call), and every server
//! stopped cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_drills_both_curves_against_served_sidecars() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_shardkeep"))
        .env_remove("SHARDKEEP_CONFIG")
        .env_remove("SHARDKEEP_PASSPHRASE_FILE")
        .args(["--json", "demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not one JSON document ({error}): {}; stderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["command"], "demo");
    assert_eq!(report["passed"], true);

    let drills = report["drills"].as_array().unwrap();
    let keys: Vec<&str> = drills
        .iter()
        .map(|drill| drill["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["demo-wallet-secp256k1", "demo-wallet-ed25519"]);
    for drill in drills {
        assert_eq!(drill["state"], "drilled", "{drill}");
        assert_eq!(drill["success"], true, "{drill}");
        let text = drill["drill_report"].as_str().unwrap();
        assert!(text.contains("result passed"), "{text}");
        assert!(text.contains("sandbox deleted"), "{text}");
    }

    let recoveries = report["recoveries"].as_array().unwrap();
    assert_eq!(recoveries.len(), 2);
    for recovery in recoveries {
        assert_eq!(recovery["state"], "recovered", "{recovery}");
        assert_eq!(recovery["success"], true, "{recovery}");
        assert_eq!(recovery["keystore_is_party_0"], true, "{recovery}");
        let keystore = dir.join(recovery["keystore"].as_str().unwrap());
        assert!(keystore.is_file(), "{}", keystore.display());
    }

    // The lifecycle after the recoveries, per curve and once.
    let lifecycle = &report["lifecycle"];
    let nodes = lifecycle["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for node in nodes {
        assert_eq!(node["inventory_confirmed"], true, "{node}");
        assert_eq!(node["hard_delete_waits"], true, "{node}");
        assert_eq!(node["soft_deleted"], true, "{node}");
        assert_eq!(node["rolled_back"], true, "{node}");
        assert_eq!(node["rotated_to"], 2, "{node}");
        assert_eq!(node["drill_checklist_passed"], true, "{node}");
    }
    let records = lifecycle["audit_records"].as_u64().unwrap();
    assert!(records > 50, "{lifecycle}");
    assert_eq!(lifecycle["audit_reviewed_to"], records);
    assert_eq!(lifecycle["restarted_cleanly"], true);
    // Anchored past everything the first export held (its review too).
    assert!(lifecycle["audit_anchored_to"].as_u64().unwrap() > records);
    assert_eq!(lifecycle["policy_hash"].as_str().unwrap().len(), 64);
    assert_eq!(lifecycle["revoked_refused"], true);

    // The service (twice: before and after its restart) and eight
    // sidecars (four other parties per curve), each its own process, all
    // stopped by SIGTERM with exit code 0.
    let servers = report["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 10);
    assert_eq!(
        servers
            .iter()
            .filter(|server| server["command"] == "sidecar")
            .count(),
        8
    );
    let codes = report["exit_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 9);
    for code in codes {
        assert_eq!(code[1], 0, "{code}");
    }

    // Every role acted through its own subcommand: the custodians signed
    // receipts and submitted their shares, the security person approved.
    let steps = report["steps"].as_array().unwrap();
    let by = |actor: &str, step: &str| {
        steps
            .iter()
            .filter(|s| s["actor"] == actor && s["step"].as_str().unwrap().starts_with(step))
            .count()
    };
    // A drill, a recovery and a deletion per curve for the security
    // person, the recoveries and deletions for the business owner.
    assert_eq!(by("sec-1", "approve"), 6);
    assert_eq!(by("biz-1", "approve"), 4);
    assert_eq!(
        by("backup-server", "stopped on SIGTERM with exit code 0"),
        1
    );

    // Every command of the command line ran, each its own process with
    // `--json` (the demo runs no other way).
    for command in [
        "init person",
        "init service",
        "person register",
        "person revoke",
        "entity register",
        "policy set",
        "policy show",
        "generate",
        "status",
        "list",
        "deliver record",
        "deliver confirm",
        "receipt sign",
        "inventory challenge",
        "inventory prove",
        "inventory confirm",
        "drill request",
        "drill start",
        "drill shares",
        "recover request",
        "recover start",
        "recover submit",
        "recover shares",
        "approve",
        "delete request",
        "delete --request",
        "rollback",
        "rotate",
        "checklist",
        "audit export",
        "audit review",
        "audit verify",
    ] {
        assert!(
            steps
                .iter()
                .any(|s| s["step"].as_str().unwrap().starts_with(command)),
            "{command} never ran"
        );
    }
    assert_eq!(by("demo-wallet-ed25519-cust-1-contact", "receipt sign"), 1);
    // Their share to the drill, and to the recovery.
    assert_eq!(
        by("demo-wallet-secp256k1-cust-2-contact", "recover submit"),
        2
    );

    // Each drill's and recovery's self-test went to the other parties' sidecar processes,
    // as node-0's server (the only process holding party 0's share).
    for curve in ["ecdsa", "eddsa"] {
        let answered = (1..5)
            .map(|party| {
                std::fs::read_to_string(dir.join(format!("side-{curve}-{party}.log")))
                    .unwrap()
                    .matches(r#"rpc{method="SelfTest" person="node-0-server"}"#)
                    .count()
            })
            .sum::<usize>();
        // Two rounds (commit, sign) per self-test, two self-tests.
        assert!(answered >= 4, "{curve}: {answered} SelfTest calls answered");
    }
}

#[test]
fn a_failed_step_fails_the_demo_with_its_error() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_shardkeep"))
        .env_remove("SHARDKEEP_CONFIG")
        .env_remove("SHARDKEEP_PASSPHRASE_FILE")
        .args([
            "--json",
            "demo",
            "--fixtures",
            "/nonexistent/fixtures",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(5), "{report}");
    assert_eq!(report["error"]["kind"], "read-file", "{report}");
    // The directory is kept (--dir), with the steps made before the failure.
    assert!(dir.join("svc/service.json").is_file());
}

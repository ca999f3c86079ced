//! The operator's remaining commands against a served backup over mutual
//! TLS, each with `--json`: generate from the node's keystore file and
//! rotate on both curves; the deletion steps on approved requests (soft
//! delete, rollback, soft delete again, a hard delete refused during the
//! cooldown); the audit log exported and verified, and reviewed; the
//! checklist; the policy shown and changed on approvals; and the refusals
//! (wrong role, tampered request file, existing output file). The drill a
//! deletion needs runs the other parties' sidecars (`cargo build -p
//! shardkeep-keydata --example self_test_peer` first).
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use shardkeep_audit::FileWitness;
use shardkeep_backup::{Role, container_hash};
use shardkeep_test_support::tss_lib::Protocol;
use shardkeep_types::{InMemorySigner, Signer as _, SignerId, Timestamp};
use support::{Person, Served, key_of, write_keystore};

/// The risk note every request names.
fn risk_note(served: &Served) -> String {
    let note = served.path("risk-note.txt");
    std::fs::write(
        &note,
        "retire the old server shares; custodians confirmed\n",
    )
    .unwrap();
    note.display().to_string()
}

/// `generate` (or `rotate` with `rotate`) of node 0 of `protocol`'s key
/// from its keystore file, the containers written to `out_dir`.
fn generate_args(
    served: &Served,
    protocol: Protocol,
    keystore: &str,
    custodians: &[Person],
    out_dir: &str,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--key",
        key_of(protocol),
        "--node",
        "node-0",
        "--key-version",
        "1",
        "--keystore",
        keystore,
        "--tss-degree",
        "2",
        "--parties",
        "5",
        "--out-dir",
        out_dir,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for custodian in custodians {
        args.push("--custodian".to_owned());
        args.push(format!(
            "{}={}",
            custodian.name.trim_end_matches("-contact"),
            custodian.name
        ));
    }
    let _ = served;
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Checks a `generate` or `rotate` report: the split, and each container
/// written to its file with the hash announced.
fn check_generated(generated: &Value, key: &str, version: u32, custodians: &[Person]) {
    assert_eq!(generated["version"]["key_id"], key);
    assert_eq!(generated["version"]["version"], version);
    assert_eq!(generated["threshold"], 3);
    assert_eq!(generated["shares"], 5);
    assert_eq!(generated["server_indices"], serde_json::json!([1, 2]));
    assert_eq!(generated["split_id"].as_str().unwrap().len(), 64);
    let containers = generated["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 3);
    for (i, (container, custodian)) in containers.iter().zip(custodians).enumerate() {
        assert_eq!(container["index"], i + 3);
        assert_eq!(container["person"], custodian.name.as_str());
        let bytes = std::fs::read(container["file"].as_str().unwrap()).unwrap();
        assert_eq!(
            container["container_hash"],
            hex::encode(container_hash(&bytes))
        );
    }
}

/// Records each container's delivery, has its custodian sign the receipt
/// offline, and confirms it.
fn deliver(
    served: &Served,
    operator: &Person,
    key: &str,
    generated: &Value,
    custodians: &[Person],
) {
    for (container, custodian) in generated["containers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(custodians)
    {
        let file = container["file"].as_str().unwrap();
        let index = container["index"].to_string();
        let slot = [
            "--key",
            key,
            "--node",
            "node-0",
            "--key-version",
            "1",
            "--index",
            &index,
        ];
        let mut args = vec!["deliver", "record", "--container", file];
        args.extend(slot);
        served.ok(operator, &args);
        let receipt = format!("{file}.receipt");
        served.ok(
            custodian,
            &["receipt", "sign", "--container", file, "--out", &receipt],
        );
        let mut args = vec!["deliver", "confirm", "--receipt", &receipt];
        args.extend(slot);
        served.ok(operator, &args);
    }
}

/// A drill of version 1 with the custodians' shares, approved by
/// `security`: what a deletion needs first.
fn drill(
    served: &Served,
    operator: &Person,
    security: &Person,
    key: &str,
    split_id: &str,
    generated: &Value,
    custodians: &[Person],
) {
    let note = risk_note(served);
    let request = served.path_str(&format!("{key}.drill.request"));
    let asked = served.ok(
        operator,
        &[
            "drill",
            "request",
            "--key",
            key,
            "--node",
            "node-0",
            "--key-version",
            "1",
            "--split-id",
            split_id,
            "--ticket",
            "CHG-7",
            "--risk-note",
            &note,
            "--out",
            &request,
        ],
    );
    served.approve(
        security,
        &request,
        asked["request_hash"].as_str().unwrap(),
        "security",
    );
    let descriptor = served.path_str(&format!("{key}.drill.descriptor"));
    served.ok(
        operator,
        &[
            "drill",
            "start",
            "--request",
            &request,
            "--out",
            &descriptor,
        ],
    );
    let mut shares = Vec::new();
    for (container, custodian) in generated["containers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(custodians)
    {
        let out = served.path_str(&format!("{}.drill.submission", custodian.name));
        served.ok(
            custodian,
            &[
                "recover",
                "submit",
                "--descriptor",
                &descriptor,
                "--container",
                container["file"].as_str().unwrap(),
                "--out",
                &out,
            ],
        );
        shares.push(out);
    }
    let mut args = vec!["drill", "shares", "--descriptor", &descriptor];
    args.extend(shares.iter().map(String::as_str));
    let drilled = served.ok(operator, &args);
    assert_eq!(drilled["state"], "drilled", "{drilled}");
}

/// `delete request` of version 1's server shares; the file and its hash.
fn delete_request(
    served: &Served,
    operator: &Person,
    key: &str,
    split_id: &str,
    name: &str,
) -> (String, String) {
    let note = risk_note(served);
    let out = served.path_str(name);
    let asked = served.ok(
        operator,
        &[
            "delete",
            "request",
            "--key",
            key,
            "--node",
            "node-0",
            "--key-version",
            "1",
            "--split-id",
            split_id,
            "--slot",
            "1",
            "--slot",
            "2",
            "--ticket",
            "CHG-8",
            "--risk-note",
            &note,
            "--out",
            &out,
        ],
    );
    assert_eq!(asked["command"], "delete request");
    assert_eq!(asked["operation"], "delete");
    assert_eq!(asked["slots"], serde_json::json!([1, 2]));
    (out, asked["request_hash"].as_str().unwrap().to_owned())
}

#[test]
fn generate_deliver_drill_delete_rollback_and_rotate_on_both_curves() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let business = served.approver("biz-1", Role::BusinessOwner);
    let security = served.approver("sec-2", Role::Security);
    let auditor = served.approver("aud-1", Role::Auditor);
    for protocol in Protocol::ALL {
        let key = key_of(protocol);
        let custodians: Vec<Person> = (0..3)
            .map(|i| served.custodian(&format!("{key}-c{i}")))
            .collect();
        let keystore = write_keystore(&served.path(&format!("{key}-node")), protocol, 1);
        let keystore = keystore.display().to_string();
        let out_dir = served.path_str(&format!("{key}-v1"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let args = generate_args(&served, protocol, &keystore, &custodians, &out_dir);

        // Not an operator: refused by the service, nothing written.
        let mut with_command = vec!["generate".to_owned()];
        with_command.extend(args.iter().cloned());
        let (code, refused) = served.run(&auditor, &strs(&with_command));
        assert_eq!(code, 1, "{refused}");
        assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);

        let generated = served.ok(&operator, &strs(&with_command));
        assert_eq!(generated["command"], "generate");
        check_generated(&generated, key, 1, &custodians);
        let split_id = generated["split_id"].as_str().unwrap().to_owned();

        // The containers are never overwritten: refused before the
        // service is asked.
        let first_container = generated["containers"][0]["file"].as_str().unwrap();
        let before = std::fs::read(first_container).unwrap();
        let (code, refused) = served.run(&operator, &strs(&with_command));
        assert_eq!(code, 2, "{refused}");
        assert_eq!(refused["error"]["kind"], "output-exists");
        assert_eq!(std::fs::read(first_container).unwrap(), before);

        deliver(&served, &operator, key, &generated, &custodians);
        drill(
            &served,
            &operator,
            &security,
            key,
            &split_id,
            &generated,
            &custodians,
        );

        // Soft delete on two approvals.
        let (request, hash) = delete_request(
            &served,
            &operator,
            key,
            &split_id,
            &format!("{key}.delete.1"),
        );
        let first = served.approve(&business, &request, &hash, "business-owner");
        assert_eq!(first["operation"], "delete");
        assert_eq!(first["slots"], serde_json::json!(["1", "2"]), "{first}");
        assert_eq!(first["satisfied"], false);
        let second = served.approve(&security, &request, &hash, "security");
        assert_eq!(second["satisfied"], true);
        // An auditor may not delete.
        let (code, refused) = served.run(&auditor, &["delete", "--request", &request]);
        assert_eq!(code, 1, "{refused}");
        assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
        let deleted = served.ok(&operator, &["delete", "--request", &request]);
        assert_eq!(deleted["command"], "delete");
        assert_eq!(deleted["request_hash"], hash.as_str());
        assert_eq!(deleted["slots"], serde_json::json!([1, 2]));
        assert!(
            deleted["cooldown_until_unix"].as_u64().unwrap()
                > deleted["deleted_at_unix"].as_u64().unwrap()
        );
        let listed = served.ok(&operator, &["list", "--key", key]);
        assert!(listed.to_string().contains("soft-deleted"), "{listed}");

        // Rolled back: the shares are active again.
        let rolled = served.ok(
            &operator,
            &[
                "rollback",
                "--key",
                key,
                "--node",
                "node-0",
                "--key-version",
                "1",
                "--slot",
                "1",
                "--slot",
                "2",
            ],
        );
        assert_eq!(rolled["command"], "rollback");
        assert_eq!(rolled["slots"], serde_json::json!([1, 2]));
        let listed = served.ok(&operator, &["list", "--key", key]);
        assert!(!listed.to_string().contains("soft-deleted"), "{listed}");

        // The spent request deletes nothing again.
        let (code, refused) = served.run(&operator, &["delete", "--request", &request]);
        assert_eq!(code, 1, "{refused}");

        // A new request, approved: soft-deleted again.
        let (request, hash) = delete_request(
            &served,
            &operator,
            key,
            &split_id,
            &format!("{key}.delete.2"),
        );
        served.approve(&business, &request, &hash, "business-owner");
        served.approve(&security, &request, &hash, "security");
        served.ok(&operator, &["delete", "--request", &request]);

        // The hard delete is refused during the cooldown; no draft is
        // written.
        let draft = served.path_str(&format!("{key}.zero-retention"));
        let (code, refused) = served.run(
            &operator,
            &["delete", "--hard", "--request", &request, "--draft", &draft],
        );
        assert_eq!(code, 1, "{refused}");
        assert_eq!(refused["error"]["grpc_code"], "FAILED_PRECONDITION");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cooldown"),
            "{refused}"
        );
        assert!(!std::path::Path::new(&draft).exists());
        // An existing draft file is refused before the service is asked.
        std::fs::write(&draft, "keep").unwrap();
        let (code, refused) = served.run(
            &operator,
            &["delete", "--hard", "--request", &request, "--draft", &draft],
        );
        assert_eq!(code, 2, "{refused}");
        assert_eq!(refused["error"]["kind"], "output-exists");
        assert_eq!(std::fs::read(&draft).unwrap(), b"keep");

        // A deletion request is no drill request, and a tampered one does
        // not decode.
        let (code, refused) = served.run(
            &operator,
            &[
                "drill",
                "start",
                "--request",
                &request,
                "--out",
                &served.path_str(&format!("{key}.wrong.descriptor")),
            ],
        );
        assert_eq!(code, 2, "{refused}");
        assert_eq!(refused["error"]["kind"], "argument");
        let mut tampered = std::fs::read(&request).unwrap();
        tampered[0] ^= 1;
        let tampered_file = served.path_str(&format!("{key}.delete.tampered"));
        std::fs::write(&tampered_file, tampered).unwrap();
        let (code, refused) = served.run(&operator, &["delete", "--request", &tampered_file]);
        assert_eq!(code, 3, "{refused}");
        assert_eq!(refused["error"]["kind"], "verification");

        // A re-split under new custodians: version 2, version 1 retires.
        let next: Vec<Person> = (0..3)
            .map(|i| served.custodian(&format!("{key}-n{i}")))
            .collect();
        let out_dir = served.path_str(&format!("{key}-v2"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut rotate = vec![
            "rotate".to_owned(),
            "--kind".to_owned(),
            "resplit".to_owned(),
        ];
        rotate.extend(generate_args(&served, protocol, &keystore, &next, &out_dir));
        let rotated = served.ok(&operator, &strs(&rotate));
        assert_eq!(rotated["command"], "rotate");
        assert_eq!(rotated["kind"], "resplit");
        assert_eq!(rotated["previous"]["version"], 1);
        assert!(rotated["cooldown_until_unix"].as_u64().unwrap() > 0);
        check_generated(&rotated, key, 2, &next);
    }
}

#[test]
fn the_audit_log_is_exported_verified_and_reviewed_and_the_checklist_shown() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let auditor = served.approver("aud-1", Role::Auditor);
    let compliance = served.approver("comp-1", Role::Compliance);
    let compliance_2 = served.approver("comp-2", Role::Compliance);
    served.generate(&operator, Protocol::Eddsa);

    // A witnessed checkpoint of the log so far.
    let witness = served.path("test.witness");
    let checkpoint_signer =
        InMemorySigner::from_seed(SignerId::new("audit-1").unwrap(), &[0xa1; 32]);
    served.runtime.block_on(async {
        let mut file = FileWitness::open(&witness).unwrap();
        shardkeep_audit::checkpoint(
            served.service.storage(),
            &checkpoint_signer,
            &mut file,
            Timestamp::now(),
        )
        .await
        .unwrap();
    });

    // An operator may not export.
    let export = served.path_str("audit.export");
    let (code, refused) = served.run(&operator, &["audit", "export", "--out", &export]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
    assert!(!std::path::Path::new(&export).exists());

    let exported = served.ok(&auditor, &["audit", "export", "--out", &export]);
    assert_eq!(exported["command"], "audit export");
    assert_eq!(exported["first_sequence"], 1);
    let records = exported["records"].as_u64().unwrap();
    assert!(records > 10, "{exported}");
    assert_eq!(exported["bytes"], std::fs::metadata(&export).unwrap().len());
    let bytes = std::fs::read(&export).unwrap();

    // What was exported is what `audit verify` reads.
    let verified = served.ok(
        &auditor,
        &[
            "audit",
            "verify",
            "--export",
            &export,
            "--witness",
            witness.to_str().unwrap(),
            "--key",
            &hex::encode(checkpoint_signer.verifying_key().to_bytes()),
        ],
    );
    assert_eq!(verified["records"], records);
    assert_eq!(verified["log_id"], exported["log_id"]);
    assert_eq!(verified["checkpoints"], 1);

    // Never overwritten.
    let (code, refused) = served.run(&auditor, &["audit", "export", "--out", &export]);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "output-exists");
    assert_eq!(std::fs::read(&export).unwrap(), bytes);

    // Two compliance reviews complete the range; an operator's is refused.
    let reviewed = served.ok(
        &compliance,
        &[
            "audit",
            "review",
            "--export",
            &export,
            "--findings",
            "no findings",
        ],
    );
    assert_eq!(reviewed["command"], "audit review");
    assert_eq!(reviewed["first_sequence"], 1);
    assert_eq!(reviewed["last_sequence"], records);
    assert_eq!(reviewed["reviewers"], serde_json::json!(["comp-1"]));
    assert_eq!(reviewed["complete"], false);
    let (code, refused) = served.run(
        &operator,
        &["audit", "review", "--export", &export, "--findings", "fine"],
    );
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
    let reviewed = served.ok(
        &compliance_2,
        &[
            "audit",
            "review",
            "--export",
            &export,
            "--findings",
            "agreed",
        ],
    );
    assert_eq!(
        reviewed["reviewers"],
        serde_json::json!(["comp-1", "comp-2"])
    );
    assert_eq!(reviewed["complete"], true);

    // The checklist, with its HTML page and the service's rendering.
    let key = key_of(Protocol::Eddsa);
    let html = served.path_str("generation.html");
    let json = served.path_str("generation.json");
    let checklist_args = [
        "checklist",
        "--key",
        key,
        "--node",
        "node-0",
        "--key-version",
        "1",
        "--kind",
        "generation",
        "--html",
        &html,
        "--out",
        &json,
    ];
    let (code, refused) = served.run(&operator, &checklist_args);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
    let checklist = served.ok(&compliance, &checklist_args);
    assert_eq!(checklist["command"], "checklist");
    assert_eq!(checklist["kind"], "generation");
    let items = checklist["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{checklist}");
    assert_eq!(
        checklist["passed"],
        items.iter().all(|item| item["outcome"] == "pass")
    );
    assert_eq!(checklist["report"]["format"], "shardkeep-checklist-v1");
    let page = std::fs::read_to_string(&html).unwrap();
    for item in items {
        assert!(
            page.contains(&format!("data-item=\"{}\"", item["id"].as_str().unwrap())),
            "{page}"
        );
    }
    let rendered: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rendered, checklist["report"]);
    let (code, refused) = served.run(&compliance, &checklist_args);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "output-exists");
}

#[test]
fn the_policy_is_shown_and_changed_on_approvals_only() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let security = served.approver("sec-2", Role::Security);
    let business = served.approver("biz-1", Role::BusinessOwner);

    let shown = served.ok(&operator, &["policy", "show"]);
    assert_eq!(shown["command"], "policy show");
    assert_eq!(shown["set"], true);
    assert_eq!(
        (
            &shown["threshold"],
            &shown["shares"],
            &shown["server_shares"]
        ),
        (&3.into(), &5.into(), &2.into())
    );
    assert_eq!(shown["kek_provider"], "local-key-file");
    assert_eq!(shown["set_by"], "sec-1");
    // Without --json: the same, as text.
    let text = served
        .command()
        .arg("--config")
        .arg(&operator.config)
        .args(["policy", "show"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("3 of 5 shares, the server keeps 2 under local-key-file"),
        "{text}"
    );
    assert!(
        text.contains(&format!("policy hash: {}", shown["hash"].as_str().unwrap())),
        "{text}"
    );

    let settings = [
        "--threshold",
        "3",
        "--shares",
        "5",
        "--server-shares",
        "1",
        "--kek-provider",
        "local-key-file",
    ];
    let note = risk_note(&served);
    let request = served.path_str("policy.request");
    let mut request_args = vec!["policy", "request"];
    request_args.extend(settings);
    request_args.extend(["--ticket", "CHG-9", "--risk-note", &note, "--out", &request]);

    // Only a security person asks for a policy change.
    let (code, refused) = served.run(&operator, &request_args);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
    assert!(!std::path::Path::new(&request).exists());

    let asked = served.ok(&security, &request_args);
    assert_eq!(asked["command"], "policy request");
    assert_eq!(asked["operation"], "policy-change");
    assert!(asked.get("version").is_none(), "{asked}");
    let change_hash = asked["change_hash"].as_str().unwrap().to_owned();
    let hash = asked["request_hash"].as_str().unwrap().to_owned();
    // An existing request file is kept.
    let (code, refused) = served.run(&security, &request_args);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "output-exists");

    // The approvers see the policy change and its hash. (The first
    // security person, bootstrapped in-process, approves in-process: two
    // approvers beside them cannot be registered without an approver-set
    // change.)
    let first = served.approve_as_bootstrap_security(&std::fs::read(&request).unwrap());
    assert!(!first.satisfied);
    // A business owner's key approving as security: refused by the service.
    let (code, refused) = served.run(
        &business,
        &[
            "approve",
            "--request",
            &request,
            "--role",
            "security",
            "--expect-hash",
            &hash,
            "--yes",
            "--expect-policy",
            "3/5/1/local-key-file",
        ],
    );
    assert_eq!(code, 1, "{refused}");
    // The approver must state the policy they approve: the request names
    // only its hash.
    let approve_policy = |policy: Option<&str>| {
        let mut args = vec![
            "approve",
            "--request",
            &request,
            "--role",
            "business-owner",
            "--expect-hash",
            &hash,
            "--yes",
        ];
        if let Some(policy) = policy {
            args.extend(["--expect-policy", policy]);
        }
        served.run(&business, &args)
    };
    let (code, refused) = approve_policy(None);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "argument");
    let (code, refused) = approve_policy(Some("3/5/2/local-key-file"));
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "request-differs");
    let (code, second) = approve_policy(Some("3/5/1/local-key-file"));
    assert_eq!(code, 0, "{second}");
    assert_eq!(
        second["policy"],
        "3 of 5 shares, the server keeps 1 under local-key-file"
    );
    assert_eq!(second["operation"], "policy-change");
    assert_eq!(second["change_hash"], change_hash.as_str());
    assert_eq!(second["satisfied"], true);

    let mut set_args = vec!["policy", "set"];
    set_args.extend(settings);
    // Without the request: a change needs approvals.
    let (code, refused) = served.run(&security, &set_args);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "FAILED_PRECONDITION");
    set_args.extend(["--request", &request]);
    // Other settings than approved: refused here.
    let mut other = set_args.clone();
    other[3] = "4";
    let (code, refused) = served.run(&security, &other);
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "request-differs");
    // A tampered request file does not decode.
    let mut tampered = std::fs::read(&request).unwrap();
    tampered[0] ^= 1;
    let tampered_file = served.path_str("policy.tampered");
    std::fs::write(&tampered_file, tampered).unwrap();
    let mut tampered_args = set_args.clone();
    *tampered_args.last_mut().unwrap() = &tampered_file;
    let (code, refused) = served.run(&security, &tampered_args);
    assert_eq!(code, 3, "{refused}");
    // An operator may not set it.
    let (code, refused) = served.run(&operator, &set_args);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");

    let set = served.ok(&security, &set_args);
    assert_eq!(set["command"], "policy set");
    assert_eq!(set["server_shares"], 1);
    assert_eq!(set["hash"], change_hash.as_str());
    assert_eq!(set["request_hash"], hash.as_str());
    assert_eq!(set["set_by"], "sec-2");
    let shown = served.ok(&operator, &["policy", "show"]);
    assert_eq!(shown["hash"], change_hash.as_str());
    // The approvals are spent.
    let (code, refused) = served.run(&security, &set_args);
    assert_eq!(code, 1, "{refused}");
}

//! Recovery and drill sessions through the command on both curves: the
//! operator asks for approval, the approvers read, check and sign the
//! request with their own keys and certificates, the operator starts the
//! session, each custodian checks the descriptor against the pinned
//! service key and encrypts their share to it offline, and the operator
//! submits the shares (one forged) until the node is rebuilt and
//! self-tested with the other parties' sidecars (keydata's
//! `self_test_peer` example: `cargo build -p shardkeep-keydata --example
//! self_test_peer` first). Then the refusals: tampered requests, forged
//! descriptors, an approver who is not one.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use shardkeep_backup::{Generated, Role};
use shardkeep_test_support::tss_lib::Protocol;
use support::{Person, Served, key_of};

/// The operator's request of `operation` (`recover` or `drill`) for
/// `protocol`'s version; the request file and its hash.
fn request(
    served: &Served,
    operator: &Person,
    generated: &Generated,
    protocol: Protocol,
    operation: &str,
) -> (String, String) {
    let key = key_of(protocol);
    let note = served.path("risk-note.txt");
    std::fs::write(&note, "node-0 lost its disk; recovering from custodians\n").unwrap();
    let out = served.path_str(&format!("{key}.{operation}.request"));
    let split_id = hex::encode(generated.split_id);
    let target = served.path_str(&format!("{key}-keystore"));
    let mut args = vec![
        operation,
        "request",
        "--key",
        key,
        "--node",
        "node-0",
        "--key-version",
        "1",
        "--split-id",
        &split_id,
        "--ticket",
        "INC-42",
        "--risk-note",
        note.to_str().unwrap(),
        "--out",
        &out,
    ];
    if operation == "recover" {
        args.extend(["--target", &target]);
    }
    let asked = served.ok(operator, &args);
    assert_eq!(asked["command"], format!("{operation} request"));
    assert_eq!(asked["version"]["key_id"], key);
    let hash = asked["request_hash"].as_str().unwrap().to_owned();
    (out, hash)
}

/// `approver` approves the request in `role`, checking its hash.
fn approve(served: &Served, approver: &Person, request: &str, hash: &str, role: &str) -> Value {
    let approved = served.approve(approver, request, hash, role);
    assert_eq!(approved["approver"], approver.name.as_str());
    // What was signed, field by field, as the operator asked for it.
    assert_eq!(approved["deployment"], "test");
    assert_eq!(approved["ticket"], "INC-42");
    assert_eq!(approved["requester"], "ops-1");
    let note = std::fs::read(served.path("risk-note.txt")).unwrap();
    assert_eq!(
        approved["risk_note_hash"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&note))
    );
    assert_eq!(approved["submitted"], true);
    approved
}

/// Each custodian's submission to the session `descriptor` describes.
fn submissions(served: &Served, custodians: &[Person], descriptor: &str) -> Vec<String> {
    custodians
        .iter()
        .map(|custodian| {
            let out = served.path_str(&format!("{}.submission", custodian.name));
            let container = served.path_str(&format!("{}.container", custodian.name));
            let _ = std::fs::remove_file(&out);
            let submitted = served.ok(
                custodian,
                &[
                    "recover",
                    "submit",
                    "--descriptor",
                    descriptor,
                    "--container",
                    &container,
                    "--out",
                    &out,
                ],
            );
            assert_eq!(submitted["person"], custodian.name.as_str());
            out
        })
        .collect()
}

#[test]
fn a_recovery_and_a_drill_run_through_the_command_on_both_curves() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let business = served.approver("biz-1", Role::BusinessOwner);
    let security = served.approver("sec-2", Role::Security);
    for protocol in Protocol::ALL {
        let key = key_of(protocol);
        let (generated, custodians) = served.generate(&operator, protocol);
        std::fs::create_dir_all(served.path(&format!("{key}-keystore"))).unwrap();

        // Recovery: two approvals, then the session.
        let (request_file, hash) = request(&served, &operator, &generated, protocol, "recover");
        let first = approve(&served, &business, &request_file, &hash, "business-owner");
        assert_eq!(first["satisfied"], false);
        assert_eq!(first["operation"], "recover");
        assert_eq!(
            first["target"],
            served.path_str(&format!("{key}-keystore")).as_str()
        );
        assert_eq!(first["split_id"], hex::encode(generated.split_id));
        let second = approve(&served, &security, &request_file, &hash, "security");
        assert_eq!(second["satisfied"], true);
        assert_eq!(second["approvals"].as_array().unwrap().len(), 2);

        let descriptor = served.path_str(&format!("{key}.recover.descriptor"));
        let started = served.ok(
            &operator,
            &[
                "recover",
                "start",
                "--request",
                &request_file,
                "--out",
                &descriptor,
            ],
        );
        assert_eq!(started["threshold"], 3);
        assert_eq!(started["version"]["key_id"], key);
        // The approvals are spent: the same request starts nothing again.
        let again = served.path_str(&format!("{key}.recover.descriptor.again"));
        let (code, replayed) = served.run(
            &operator,
            &[
                "recover",
                "start",
                "--request",
                &request_file,
                "--out",
                &again,
            ],
        );
        assert_eq!(code, 1, "{replayed}");
        assert_eq!(replayed["error"]["grpc_code"], "FAILED_PRECONDITION");

        let shares = submissions(&served, &custodians, &descriptor);
        // A forgery: custodian 1's submission with its last byte flipped.
        let mut forged = std::fs::read(&shares[1]).unwrap();
        *forged.last_mut().unwrap() ^= 1;
        let forged_file = served.path_str(&format!("{key}.forged.submission"));
        std::fs::write(&forged_file, forged).unwrap();

        let recovered = served.ok(
            &operator,
            &[
                "recover",
                "shares",
                "--descriptor",
                &descriptor,
                &forged_file,
                &shares[0],
                &shares[1],
                &shares[2],
            ],
        );
        assert_eq!(recovered["state"], "recovered", "{recovered}");
        assert_eq!(recovered["success"], true);
        assert_eq!(recovered["shares_received"], 3);
        assert_eq!(recovered["session_id"], started["session_id"]);
        let rejected = recovered["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{recovered}");
        assert_eq!(rejected[0]["position"], 0);
        assert_eq!(rejected[0]["reason"], "unreadable");
        assert_eq!(recovered["submitted"][0]["file"], forged_file.as_str());

        // Drill: one security approval, external shares only.
        let (request_file, hash) = request(&served, &operator, &generated, protocol, "drill");
        let approved = approve(&served, &security, &request_file, &hash, "security");
        assert_eq!(approved["satisfied"], true);
        let descriptor = served.path_str(&format!("{key}.drill.descriptor"));
        served.ok(
            &operator,
            &[
                "drill",
                "start",
                "--request",
                &request_file,
                "--out",
                &descriptor,
            ],
        );
        let shares = submissions(&served, &custodians, &descriptor);
        let mut args = vec!["drill", "shares", "--descriptor", &descriptor];
        args.extend(shares.iter().map(String::as_str));
        let drilled = served.ok(&operator, &args);
        assert_eq!(drilled["state"], "drilled", "{drilled}");
        assert_eq!(drilled["success"], true);
        assert!(
            drilled["drill_report"].as_str().unwrap().contains(key),
            "{drilled}"
        );
    }
}

#[test]
fn tampered_requests_forged_descriptors_and_false_approvers_are_refused() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let security = served.approver("sec-2", Role::Security);
    let (generated, custodians) = served.generate(&operator, Protocol::Ecdsa);
    let (request_file, hash) = request(&served, &operator, &generated, Protocol::Ecdsa, "drill");
    let bytes = std::fs::read(&request_file).unwrap();
    let approve_args = |file: &str| {
        vec![
            "approve".to_owned(),
            "--request".to_owned(),
            file.to_owned(),
            "--role".to_owned(),
            "security".to_owned(),
            "--expect-hash".to_owned(),
            hash.clone(),
            "--yes".to_owned(),
        ]
    };
    let run = |person: &Person, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        served.run(person, &args)
    };

    // The last byte (the expiry) changed: it decodes, but it is not the
    // request announced. Nothing is signed.
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let tampered_file = served.path_str("tampered.request");
    std::fs::write(&tampered_file, &tampered).unwrap();
    let (code, refused) = run(&security, &approve_args(&tampered_file));
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "request-hash-mismatch");

    // Cut short: it does not decode.
    let truncated_file = served.path_str("truncated.request");
    std::fs::write(&truncated_file, &bytes[..bytes.len() - 1]).unwrap();
    let (code, refused) = run(&security, &approve_args(&truncated_file));
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "verification");

    // The operator who asked cannot approve: the service refuses.
    let (code, refused) = run(&operator, &approve_args(&request_file));
    assert_eq!(code, 1, "{refused}");

    // The approver's wrong passphrase: nothing is signed or submitted.
    let wrong = served.path("wrong-passphrase");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let mut command = served.command();
    command.env("SHARDKEEP_PASSPHRASE_FILE", &wrong);
    let args = approve_args(&request_file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, refused) = Served::run_with(command, &security.config, &args);
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "wrong-passphrase");

    // The genuine request, approved (its first approval: none of the
    // refusals above submitted one); the drill starts.
    let (code, approved) = run(&security, &approve_args(&request_file));
    assert_eq!(code, 0, "{approved}");
    assert_eq!(approved["approvals"].as_array().unwrap().len(), 1);
    let descriptor = served.path_str("drill.descriptor");
    served.ok(
        &operator,
        &[
            "drill",
            "start",
            "--request",
            &request_file,
            "--out",
            &descriptor,
        ],
    );

    // A descriptor with one byte changed does not verify under the pinned
    // key: the custodian writes nothing (and is not even asked for the
    // passphrase).
    let mut forged = std::fs::read(&descriptor).unwrap();
    forged[20] ^= 1;
    let forged_descriptor = served.path_str("forged.descriptor");
    std::fs::write(&forged_descriptor, forged).unwrap();
    let container = served.path_str(&format!("{}.container", custodians[0].name));
    let out = served.path_str("forged.submission");
    // A wrong passphrase too: the descriptor's refusal comes first.
    let mut command = served.command();
    command.env("SHARDKEEP_PASSPHRASE_FILE", &wrong);
    let (code, refused) = Served::run_with(
        command,
        &custodians[0].config,
        &[
            "recover",
            "submit",
            "--descriptor",
            &forged_descriptor,
            "--container",
            &container,
            "--out",
            &out,
        ],
    );
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "verification");
    assert!(!served.path("forged.submission").exists());

    // A custodian who pinned another service key refuses the genuine one.
    let config = std::fs::read_to_string(&custodians[1].config).unwrap();
    let pinned = hex::encode(served.signer_key());
    let other = hex::encode(
        shardkeep_types::Signer::verifying_key(&shardkeep_types::InMemorySigner::from_seed(
            shardkeep_types::SignerId::new("other").unwrap(),
            &[9; 32],
        ))
        .to_bytes(),
    );
    std::fs::write(&custodians[1].config, config.replace(&pinned, &other)).unwrap();
    let container = served.path_str(&format!("{}.container", custodians[1].name));
    let (code, refused) = served.run(
        &custodians[1],
        &[
            "recover",
            "submit",
            "--descriptor",
            &descriptor,
            "--container",
            &container,
            "--out",
            &out,
        ],
    );
    assert_eq!(code, 3, "{refused}");
    assert!(!served.path("forged.submission").exists());

    // An existing output file is never overwritten.
    let container = served.path_str(&format!("{}.container", custodians[0].name));
    std::fs::write(&out, b"keep me").unwrap();
    let (code, refused) = served.run(
        &custodians[0],
        &[
            "recover",
            "submit",
            "--descriptor",
            &descriptor,
            "--container",
            &container,
            "--out",
            &out,
        ],
    );
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "output-exists");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
}

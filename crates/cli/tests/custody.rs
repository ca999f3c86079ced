//! The operator's status, listing, delivery and inventory commands against
//! a served backup over mutual TLS, and the custodian's offline receipt and
//! inventory proof, on both curves; every command with `--json`.
#![allow(clippy::unwrap_used)]

mod support;

use shardkeep_test_support::tss_lib::Protocol;
use support::{Served, key_of};

fn slot_args(key: &str, index: u32) -> Vec<String> {
    [
        "--key",
        key,
        "--node",
        "node-0",
        "--key-version",
        "1",
        "--index",
        &index.to_string(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn with<'a>(args: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(more.iter().map(String::as_str));
    all
}

#[test]
fn delivery_receipts_and_inventory_run_through_the_command_on_both_curves() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    for protocol in Protocol::ALL {
        let key = key_of(protocol);
        let (generated, custodians) = served.generate(&operator, protocol);

        let status = served.ok(&operator, &["status", "--key", key]);
        assert_eq!(status["command"], "status");
        let versions = status["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        let version = &versions[0];
        assert_eq!(version["version"]["key_id"], key);
        assert_eq!(version["version"]["version"], 1);
        assert_eq!(
            version["curve"],
            match protocol {
                Protocol::Ecdsa => "secp256k1",
                Protocol::Eddsa => "ed25519",
            }
        );
        assert_eq!(version["state"], "active");
        assert_eq!(
            (version["threshold"].as_u64(), version["shares"].as_u64()),
            (Some(3), Some(5))
        );
        assert_eq!(version["server_shares_held"], 2);
        assert_eq!(version["external_confirmed"], 0);
        assert_eq!(version["outstanding_deliveries"], 3);

        // One share per page, every page fetched.
        let listed = served.ok(
            &operator,
            &["list", "--key", key, "--page-size", "1", "--all"],
        );
        let shares = listed["shares"].as_array().unwrap();
        assert_eq!(shares.len(), 2);
        assert_eq!(listed["next_page_token"], "");
        for (share, server) in shares.iter().zip(&generated.server_shares) {
            assert_eq!(share["state"], "active");
            assert_eq!(share["index"], u32::from(server.index.get()));
            assert_eq!(share["kek_id"], server.kek_id.as_str());
        }
        // One page only: the token of the next.
        let first = served.ok(&operator, &["list", "--key", key, "--page-size", "1"]);
        assert_eq!(first["shares"].as_array().unwrap().len(), 1);
        assert_ne!(first["next_page_token"], "");

        for (i, (custodian, container)) in custodians.iter().zip(&generated.containers).enumerate()
        {
            let slot = slot_args(key, u32::from(container.index.get()));
            let container_file = served.path_str(&format!("{}.container", custodian.name));
            if i == 0 {
                // A first attempt failed; the retry is handed over.
                let failed = served.ok(
                    &operator,
                    &with(
                        &[
                            "deliver",
                            "record",
                            "--container",
                            &container_file,
                            "--failed",
                            "courier turned back",
                        ],
                        &slot,
                    ),
                );
                assert_eq!(failed["result"], "failed");
                assert_eq!(failed["failure_reason"], "courier turned back");
            }
            let recorded = served.ok(
                &operator,
                &with(
                    &["deliver", "record", "--container", &container_file],
                    &slot,
                ),
            );
            assert_eq!(recorded["result"], "sent");
            assert_eq!(
                recorded["container_hash"],
                hex::encode(container.container_hash)
            );

            // The custodian, offline: opens, verifies and signs.
            let receipt_file = served.path_str(&format!("{}.receipt", custodian.name));
            let signed = served.ok(
                custodian,
                &[
                    "receipt",
                    "sign",
                    "--container",
                    &container_file,
                    "--out",
                    &receipt_file,
                ],
            );
            assert_eq!(signed["command"], "receipt sign");
            assert_eq!(signed["person"], custodian.name.as_str());

            let confirmed = served.ok(
                &operator,
                &with(&["deliver", "confirm", "--receipt", &receipt_file], &slot),
            );
            assert_eq!(confirmed["received"], true);
            assert_eq!(confirmed["custodian"], container.custodian.as_str());
            assert_eq!(confirmed["person"], custodian.name.as_str());
            assert_eq!(confirmed["delivery_complete"], i == 2);
        }

        // Inventory of the first external slot: challenge, offline proof,
        // confirmation.
        let custodian = &custodians[0];
        let container = &generated.containers[0];
        let slot = slot_args(key, u32::from(container.index.get()));
        let challenge_file = served.path_str(&format!("{key}.challenge"));
        let challenged = served.ok(
            &operator,
            &with(&["inventory", "challenge", "--out", &challenge_file], &slot),
        );
        assert_eq!(challenged["custodian"], container.custodian.as_str());
        let proof_file = served.path_str(&format!("{key}.proof"));
        let container_file = served.path_str(&format!("{}.container", custodian.name));
        let proved = served.ok(
            custodian,
            &[
                "inventory",
                "prove",
                "--challenge",
                &challenge_file,
                "--container",
                &container_file,
                "--out",
                &proof_file,
            ],
        );
        assert_eq!(
            proved["challenge"]["slot"]["index"],
            u32::from(container.index.get())
        );
        let confirmed = served.ok(&operator, &["inventory", "confirm", "--proof", &proof_file]);
        assert_eq!(confirmed["custodian"], container.custodian.as_str());
        assert_eq!(confirmed["person"], custodian.name.as_str());
        assert_eq!(confirmed["slot"]["index"], u32::from(container.index.get()));

        let status = served.ok(&operator, &["status", "--key", key]);
        assert_eq!(status["versions"][0]["external_confirmed"], 3);
        assert_eq!(status["versions"][0]["deliveries_failed"], 1);
        assert_eq!(status["versions"][0]["outstanding_deliveries"], 0);
        assert_ne!(status["versions"][0]["last_inventory_at_unix"], 0);
    }
}

#[test]
fn a_custodian_refuses_another_custodians_container_and_a_wrong_passphrase() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    let (_, custodians) = served.generate(&operator, Protocol::Ecdsa);
    let theirs = served.path_str(&format!("{}.container", custodians[1].name));
    let out = served.path_str("receipt");

    // Sealed to another custodian: it does not open; nothing is written.
    let (code, refused) = served.run(
        &custodians[0],
        &["receipt", "sign", "--container", &theirs, "--out", &out],
    );
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["exit_name"], "verification-failed");
    assert_eq!(refused["error"]["kind"], "verification");
    assert!(!served.path("receipt").exists());

    // The right container, the wrong passphrase.
    let own = served.path_str(&format!("{}.container", custodians[0].name));
    let wrong = served.path("wrong-passphrase");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let mut command = served.command();
    command.env("SHARDKEEP_PASSPHRASE_FILE", &wrong);
    let (code, refused) = Served::run_with(
        command,
        &custodians[0].config,
        &["receipt", "sign", "--container", &own, "--out", &out],
    );
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "wrong-passphrase");
    assert!(!served.path("receipt").exists());

    // Without --json: text on standard output, nothing on standard error.
    let text = served
        .command()
        .arg("--config")
        .arg(&operator.config)
        .arg("status")
        .output()
        .unwrap();
    assert!(text.status.success());
    let shown = String::from_utf8(text.stdout).unwrap();
    assert!(
        shown.contains("wallet-secp256k1/node-0 v1 [active] secp256k1 3-of-5"),
        "{shown}"
    );
    assert!(text.stderr.is_empty());

    // A person without a registered certificate is refused by the service.
    let stranger = served.init("stranger", true, None);
    let (code, refused) = served.run(&stranger, &["status"]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "UNAUTHENTICATED");

    // Nothing listens there: unavailable.
    let config = std::fs::read_to_string(&operator.config).unwrap();
    let moved = config.replace(&format!(":{}", served.port), ":1");
    std::fs::write(&operator.config, moved).unwrap();
    let (code, refused) = served.run(&operator, &["status"]);
    assert_eq!(code, 4, "{refused}");
    assert_eq!(refused["error"]["kind"], "unreachable");
}

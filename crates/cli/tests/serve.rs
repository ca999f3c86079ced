//! `shardkeep serve` as an operator runs it: a service made by `init
//! service`, the real binary serving it over mutual TLS with its metrics
//! port; the security person registers everyone and sets the policy, the
//! operator backs up two key versions (ECDSA and EdDSA) from node 0's
//! keystore files and delivers one, the custodians sign receipts, a new
//! approver joins on an approved change checked against the registration
//! file, keys are rotated and persons and entities revoked, all through
//! the command line (`--json`); the metrics scraped, and SIGTERM ending
//! it with exit code 0. Two replicas
//! of one service serving one PostgreSQL database (a throwaway cluster)
//! at once. The refusals of a configuration that cannot be served.
//! (The drill and recovery through `sidecar` processes: `tests/demo.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use shardkeep_backup::{
    BackupService, PersonKeys, PersonRegistration, Role, RoleSet, ServiceConfig, ServiceParts,
    SystemClock,
};
use shardkeep_keydata::{KekKeystoreCodec, LocalPartySaveData};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_test_support::tss_lib::{Protocol, fixture_bytes};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion};
use support::{PASSPHRASE, TSS_GROUP, actor, key_of, text};
use zeroize::Zeroizing;

/// The test's directory, and the command run in it.
struct Site {
    dir: tempfile::TempDir,
    passphrase: PathBuf,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let passphrase = dir.path().join("passphrase");
        std::fs::write(&passphrase, PASSPHRASE).unwrap();
        Self { dir, passphrase }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shardkeep"));
        command
            .current_dir(self.dir.path())
            .env("SHARDKEEP_PASSPHRASE_FILE", &self.passphrase)
            .env_remove("SHARDKEEP_CONFIG");
        command
    }

    /// `shardkeep --json args...`: the exit code and the document.
    fn run(&self, args: &[&str]) -> (i32, Value) {
        let output = self.command().arg("--json").args(args).output().unwrap();
        let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "{args:?}: not one JSON document ({error}): {}; stderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), value)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let (code, value) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {value}");
        value
    }
}

/// A running `shardkeep serve`.
struct Serving {
    child: Child,
    listening: Value,
    stderr: PathBuf,
}

impl Serving {
    fn start(site: &Site, config: &Path) -> Self {
        let stderr = site.path("serve.stderr");
        let mut child = site
            .command()
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let listening: Value = serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!(
                "not a listening line ({error}): {line:?}; stderr: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        Self {
            child,
            listening,
            stderr,
        }
    }

    fn port(&self, field: &str) -> u16 {
        let addr: std::net::SocketAddr = self.listening[field].as_str().unwrap().parse().unwrap();
        addr.port()
    }

    /// SIGTERM, and the exit code.
    fn terminate(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().unwrap();
        (code, std::fs::read_to_string(&self.stderr).unwrap())
    }
}

/// `GET path` on the metrics port: the status line and body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn the_served_binary_answers_every_command_exposes_metrics_and_stops_on_sigterm() {
    let site = Site::new();
    let security = site.ok(&[
        "--config",
        "sec-1.json",
        "init",
        "person",
        "--person",
        "sec-1",
    ]);
    let made = site.ok(&[
        "init",
        "service",
        "--dir",
        "svc",
        "--tls-name",
        "localhost",
        "--client",
        "ops-1",
        "--client",
        "sec-1",
        "--client",
        "sec-2",
        "--client",
        "biz-1",
        "--bootstrap-security",
        "sec-1",
        "--bootstrap-approval-key",
        security["signing_key"].as_str().unwrap(),
    ]);
    let signer_key = made["signer_key"].as_str().unwrap().to_owned();
    let client = |person: &str| {
        made["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|client| client["person"] == person)
            .unwrap()
            .clone()
    };
    let svc = site.path("svc");
    let config_path = svc.join("service.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    // Any free ports (the listening line tells them); the witness outside
    // the database's directory; node 0's keystore KEK for both keys.
    config["listen"] = "127.0.0.1:0".into();
    config["metrics_listen"] = "127.0.0.1:0".into();
    config["witness"] = "../witness/audit.witness".into();
    std::fs::create_dir(site.path("witness")).unwrap();
    let kek = [0x4b_u8; 32];
    write_private(&svc.join("keys/node-0.kek"), hex::encode(kek).as_bytes());
    config["nodes"] = Protocol::ALL
        .iter()
        .map(|protocol| {
            serde_json::json!({
                "key_id": key_of(*protocol),
                "node_id": "node-0",
                "keystore_kek": { "id": "node-0-keystore", "file": "keys/node-0.kek" },
                "peers": [],
            })
        })
        .collect();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    // Three custodians per key, offline, pinning the service key.
    let custodian = |name: &str, entity: &str| {
        let person = site.ok(&[
            "--config",
            &format!("{name}.json"),
            "init",
            "person",
            "--person",
            name,
            "--custodian",
            entity,
            "--service-signer",
            "backup-server-1",
            "--service-key",
            &signer_key,
        ]);
        (
            name.to_owned(),
            entity.to_owned(),
            person["signing_key"].as_str().unwrap().to_owned(),
            person["age_recipient"].as_str().unwrap().to_owned(),
        )
    };
    let custodians: Vec<_> = Protocol::ALL
        .iter()
        .flat_map(|protocol| {
            (0..3).map(move |i| (*protocol, format!("{}-cust-{i}", key_of(*protocol))))
        })
        .map(|(protocol, entity)| (protocol, custodian(&format!("{entity}-contact"), &entity)))
        .collect();

    let serving = Serving::start(&site, Path::new("svc/service.json"));
    assert_eq!(serving.listening["command"], "serve");
    let grpc_port = serving.port("grpc");
    let metrics_port = serving.port("metrics");
    let url = format!("https://localhost:{grpc_port}");

    // Everyone else's configuration names the port the service listens
    // on; the security person's is given it.
    let with_server = |name: &str| {
        let issued = client(name);
        let person = site.ok(&[
            "--config",
            &format!("{name}.json"),
            "init",
            "person",
            "--person",
            name,
            "--server",
            &url,
            "--ca",
            "svc/tls/ca.pem",
            "--cert",
            issued["cert"].as_str().unwrap(),
            "--client-key",
            issued["key"].as_str().unwrap(),
            "--service-signer",
            "backup-server-1",
            "--service-key",
            &signer_key,
        ]);
        (
            person["signing_key"].as_str().unwrap().to_owned(),
            issued["fingerprint"].as_str().unwrap().to_owned(),
        )
    };
    let (_, ops_fingerprint) = with_server("ops-1");
    let (biz_key, biz_fingerprint) = with_server("biz-1");
    let (sec2_key, sec2_fingerprint) = with_server("sec-2");
    let sec_client = client("sec-1");
    let mut sec_config: Value =
        serde_json::from_slice(&std::fs::read(site.path("sec-1.json")).unwrap()).unwrap();
    sec_config["server"] = serde_json::json!({
        "url": url,
        "ca": "svc/tls/ca.pem",
        "cert": sec_client["cert"],
        "key": sec_client["key"],
    });
    std::fs::write(
        site.path("sec-1.json"),
        serde_json::to_vec_pretty(&sec_config).unwrap(),
    )
    .unwrap();
    let sec = |args: &[&str]| {
        let mut with = vec!["--config", "sec-1.json"];
        with.extend(args);
        site.ok(&with)
    };
    let sec_run = |args: &[&str]| {
        let mut with = vec!["--config", "sec-1.json"];
        with.extend(args);
        site.run(&with)
    };

    // The registry and the policy, by the security person over mTLS.
    let registered = sec(&[
        "person",
        "register",
        "--person",
        "ops-1",
        "--role",
        "operator",
        "--tls-fingerprint",
        &ops_fingerprint,
    ]);
    assert_eq!(registered["command"], "person register");
    assert_eq!(registered["roles"], serde_json::json!(["operator"]));
    assert_eq!(registered["registered_by"], "sec-1");
    // While no quorum besides sec-1 exists, approvers join directly.
    for (name, role, key, fingerprint) in [
        ("biz-1", "business-owner", &biz_key, &biz_fingerprint),
        ("sec-2", "security", &sec2_key, &sec2_fingerprint),
    ] {
        sec(&[
            "person",
            "register",
            "--person",
            name,
            "--role",
            role,
            "--approval-key",
            key,
            "--tls-fingerprint",
            fingerprint,
        ]);
    }
    for (_, (name, entity, signing_key, recipient)) in &custodians {
        sec(&[
            "person",
            "register",
            "--person",
            name,
            "--role",
            "custodian",
            "--receipt-key",
            signing_key,
            "--age-recipient",
            recipient,
        ]);
        let entity_made = sec(&[
            "entity",
            "register",
            "--entity",
            entity,
            "--contact",
            "the desk",
            "--member",
            name,
        ]);
        assert_eq!(entity_made["members"], serde_json::json!([name]));
    }
    let policy = sec(&[
        "policy",
        "set",
        "--threshold",
        "3",
        "--shares",
        "5",
        "--server-shares",
        "2",
        "--kek-provider",
        "local-key-file",
    ]);
    assert_eq!(policy["set"], true);

    // Both versions backed up by the operator from node 0's keystore
    // files.
    let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("node-0-keystore").unwrap(),
        &kek,
    ));
    let generated: Vec<(Protocol, Value)> = Protocol::ALL
        .into_iter()
        .map(|protocol| {
            let json = Zeroizing::new(fixture_bytes(protocol, 0).unwrap().to_vec());
            let data = LocalPartySaveData::from_json(&json).unwrap();
            let node_dir = site.path(&format!("{}-node", key_of(protocol)));
            std::fs::create_dir(&node_dir).unwrap();
            let keystore = shardkeep_keydata::write_keystore(
                &node_dir,
                &NodeVersion {
                    key_id: KeyId::new(key_of(protocol)).unwrap(),
                    node_id: NodeId::new("node-0").unwrap(),
                    version: KeyVersion::new(1),
                },
                &data,
                &codec,
                shardkeep_keydata::WriteMode::CreateNew,
            )
            .unwrap();
            let out_dir = format!("{}-v1", key_of(protocol));
            std::fs::create_dir(site.path(&out_dir)).unwrap();
            let keystore = keystore.display().to_string();
            let mut args = vec![
                "--config".to_owned(),
                "ops-1.json".to_owned(),
                "generate".to_owned(),
                "--key".to_owned(),
                key_of(protocol).to_owned(),
                "--node".to_owned(),
                "node-0".to_owned(),
                "--key-version".to_owned(),
                "1".to_owned(),
                "--keystore".to_owned(),
                keystore,
                "--tss-degree".to_owned(),
                TSS_GROUP.tss_degree.to_string(),
                "--parties".to_owned(),
                TSS_GROUP.parties.to_string(),
                "--out-dir".to_owned(),
                out_dir,
            ];
            for (_, (name, entity, _, _)) in custodians.iter().filter(|(of, _)| *of == protocol) {
                args.extend(["--custodian".to_owned(), format!("{entity}={name}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let made = site.ok(&args);
            assert_eq!(made["containers"].as_array().unwrap().len(), 3, "{made}");
            (protocol, made)
        })
        .collect();

    let status = site.ok(&["--config", "ops-1.json", "status"]);
    let versions = status["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{status}");
    for version in versions {
        assert_eq!(version["state"], "active");
        assert_eq!(version["outstanding_deliveries"], 3);
    }

    // The ECDSA version's three deliveries, received and confirmed.
    let (protocol, ecdsa) = &generated[0];
    let key = key_of(*protocol);
    for container in ecdsa["containers"].as_array().unwrap() {
        let name = container["person"].as_str().unwrap();
        let container_file = container["file"].as_str().unwrap();
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
        let mut record = vec![
            "--config",
            "ops-1.json",
            "deliver",
            "record",
            "--container",
            container_file,
        ];
        record.extend(slot);
        assert_eq!(site.ok(&record)["result"], "sent");
        let receipt_file = format!("{name}.receipt");
        site.ok(&[
            "--config",
            &format!("{name}.json"),
            "receipt",
            "sign",
            "--container",
            container_file,
            "--out",
            &receipt_file,
        ]);
        let mut confirm = vec![
            "--config",
            "ops-1.json",
            "deliver",
            "confirm",
            "--receipt",
            &receipt_file,
        ];
        confirm.extend(slot);
        assert_eq!(site.ok(&confirm)["received"], true);
    }
    let status = site.ok(&["--config", "ops-1.json", "status", "--key", key]);
    assert_eq!(status["versions"][0]["external_confirmed"], 3, "{status}");

    // A new approver, now that sec-2 and biz-1 form a quorum besides
    // sec-1: asked for, approved by both on the registration itself,
    // registered on the approved request.
    let new_approver = site.ok(&[
        "--config",
        "biz-2.json",
        "init",
        "person",
        "--person",
        "biz-2",
    ]);
    let biz2_key = new_approver["signing_key"].as_str().unwrap().to_owned();
    let registration = [
        "--person",
        "biz-2",
        "--role",
        "business-owner",
        "--approval-key",
        biz2_key.as_str(),
    ];
    let mut unapproved = vec!["person", "register"];
    unapproved.extend(registration);
    let (code, refused) = sec_run(&unapproved);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "FAILED_PRECONDITION");
    std::fs::write(site.path("risk.txt"), "a second business owner\n").unwrap();
    let mut request = vec!["person", "request"];
    request.extend(registration);
    request.extend([
        "--ticket",
        "CHG-1",
        "--risk-note",
        "risk.txt",
        "--out",
        "biz-2.request",
        "--registration-out",
        "biz-2.registration.json",
    ]);
    let asked = sec(&request);
    assert_eq!(asked["operation"], "approver-set-change", "{asked}");
    let hash = asked["request_hash"].as_str().unwrap().to_owned();
    let approve = |approver: &str, role: &str, registration_file: Option<&str>| {
        let mut args = vec![
            "--config",
            approver,
            "approve",
            "--request",
            "biz-2.request",
            "--role",
            role,
            "--expect-hash",
            &hash,
            "--yes",
        ];
        if let Some(file) = registration_file {
            args.extend(["--expect-registration", file]);
        }
        site.run(&args)
    };
    // Nobody approves a registration they were not shown...
    let (code, refused) = approve("sec-2.json", "security", None);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["kind"], "argument");
    // ...or one other than the request's: another approval key.
    let mut forged: Value =
        serde_json::from_slice(&std::fs::read(site.path("biz-2.registration.json")).unwrap())
            .unwrap();
    forged["approval_key"] = sec2_key.clone().into();
    std::fs::write(
        site.path("forged.registration.json"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    let (code, refused) = approve("sec-2.json", "security", Some("forged.registration.json"));
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "request-differs", "{refused}");
    let (code, approved) = approve("sec-2.json", "security", Some("biz-2.registration.json"));
    assert_eq!(code, 0, "{approved}");
    assert!(
        approved["registration"]
            .as_str()
            .unwrap()
            .contains(&biz2_key),
        "{approved}"
    );
    let (code, approved) = approve(
        "biz-1.json",
        "business-owner",
        Some("biz-2.registration.json"),
    );
    assert_eq!(code, 0, "{approved}");
    assert_eq!(approved["satisfied"], true, "{approved}");
    // The request names this registration only: another role is refused
    // before the service is asked.
    let mut other = vec!["person", "register", "--request", "biz-2.request"];
    other.extend([
        "--person",
        "biz-2",
        "--role",
        "security",
        "--approval-key",
        &biz2_key,
    ]);
    let (code, refused) = sec_run(&other);
    assert_eq!(code, 3, "{refused}");
    let mut approved_registration = vec!["person", "register", "--request", "biz-2.request"];
    approved_registration.extend(registration);
    let registered = sec(&approved_registration);
    assert_eq!(registered["request_hash"], hash.as_str());
    assert_eq!(registered["roles"], serde_json::json!(["business-owner"]));

    // New keys for biz-2; their first key never comes back.
    let replacement = site.ok(&[
        "--config",
        "biz-2-next.json",
        "init",
        "person",
        "--person",
        "biz-2-next",
    ]);
    let rotated = sec(&[
        "person",
        "rotate-keys",
        "--person",
        "biz-2",
        "--approval-key",
        replacement["signing_key"].as_str().unwrap(),
    ]);
    assert_eq!(rotated["key_epoch"], 2);
    let (code, refused) = sec_run(&[
        "person",
        "rotate-keys",
        "--person",
        "biz-2",
        "--approval-key",
        &biz2_key,
    ]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "FAILED_PRECONDITION");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rotated out"),
        "{refused}"
    );
    // An operator may not revoke; the security person may, once.
    let (code, refused) = site.run(&[
        "--config",
        "ops-1.json",
        "person",
        "revoke",
        "--person",
        "biz-2",
        "--reason",
        "test",
    ]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["grpc_code"], "PERMISSION_DENIED");
    let revoked = sec(&[
        "person",
        "revoke",
        "--person",
        "biz-2",
        "--reason",
        "test over",
    ]);
    assert_eq!(revoked["command"], "person revoke");
    let (code, _) = sec_run(&["person", "revoke", "--person", "biz-2", "--reason", "again"]);
    assert_eq!(code, 1);
    let (_, (_, entity, _, _)) = &custodians[5];
    let revoked = sec(&["entity", "revoke", "--entity", entity]);
    assert_eq!(revoked["id"], entity.as_str());
    let (code, _) = sec_run(&["entity", "revoke", "--entity", entity]);
    assert_eq!(code, 1);

    // The metrics port: the state, and the gRPC calls just made.
    let (status_line, health) = http_get(metrics_port, "/healthz");
    assert!(status_line.contains("200"), "{status_line}");
    assert!(health.contains("ok"), "{health}");
    let (status_line, metrics) = http_get(metrics_port, "/metrics");
    assert!(status_line.contains("200"), "{status_line}");
    assert!(metrics.contains("shardkeep_exporter_up 1"), "{metrics}");
    assert!(metrics.contains("shardkeep_versions 2"), "{metrics}");
    assert!(
        metrics.contains("shardkeep_delivery_confirmed_slots 3"),
        "{metrics}"
    );
    // The calls this test made, counted by method and code.
    for counted in [
        "method=\"infra.v1.BackupService/GetBackupStatus\",code=\"OK\"",
        "method=\"infra.v1.BackupService/RegisterPerson\",code=\"OK\"",
        "method=\"infra.v1.BackupService/RegisterPerson\",code=\"FAILED_PRECONDITION\"",
    ] {
        assert!(
            metrics.contains(&format!("shardkeep_grpc_requests_total{{{counted}}}")),
            "{counted}: {metrics}"
        );
    }

    let (code, log) = serving.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // The log names no secret: not the service signer's key file contents,
    // not the node's keystore KEK.
    let signer_file = std::fs::read(svc.join("keys/service-signer.key")).unwrap();
    assert!(!log.contains(&hex::encode(&signer_file)));
    assert!(!log.contains(&hex::encode(kek)));
}

/// Writes `bytes` to a new file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn a_sidecar_without_its_party_a_readable_kek_or_a_service_without_tls_is_refused() {
    let site = Site::new();
    site.ok(&["init", "service", "--dir", "svc"]);
    let config_path = site.path("svc/service.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["listen"] = "127.0.0.1:0".into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let refused = |command: &str| {
        let (code, value) = site.run(&["--config", "svc/service.json", command]);
        assert_eq!(code, 2, "{value}");
        assert_eq!(value["error"]["kind"], "config", "{value}");
        value["error"]["message"].as_str().unwrap().to_owned()
    };

    assert!(refused("sidecar").contains("no self_test"));
    // No certificates: never served in the clear.
    assert!(refused("serve").contains("no tls"));

    // A KEK file others can read is refused before it is read.
    let kek = site.path("svc/keys/party.kek");
    std::fs::write(&kek, "ab".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
        config["self_test"] = serde_json::json!({
            "keystore": "party.keydata.enc",
            "kek": { "id": "party-1-keystore", "file": "keys/party.kek" },
            "key_id": "wallet", "node_id": "node-1", "key_version": 1,
        });
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        assert!(refused("sidecar").contains("mode 0600"));
    }
}

/// Registers the first security person (by themselves: the bootstrap) and
/// the operator, with the certificate `init service` issued them, on
/// `backup`.
async fn register_operator<S: shardkeep_storage::Storage>(
    backup: &BackupService<S>,
    fingerprint: [u8; 32],
) {
    let sec = actor("sec-1");
    backup
        .register_person(
            &sec,
            PersonRegistration {
                id: sec.clone(),
                display_name: text("sec-1"),
                roles: [Role::Security].into_iter().collect::<RoleSet>(),
                keys: PersonKeys {
                    approval_key: Some(
                        shardkeep_types::Signer::verifying_key(
                            &shardkeep_types::InMemorySigner::from_seed(
                                shardkeep_types::SignerId::new("sec-1").unwrap(),
                                &[0x51; 32],
                            ),
                        )
                        .to_bytes(),
                    ),
                    ..PersonKeys::default()
                },
            },
        )
        .await
        .unwrap();
    backup
        .register_person(
            &sec,
            PersonRegistration {
                id: actor("ops-1"),
                display_name: text("ops-1"),
                roles: [Role::Operator].into_iter().collect::<RoleSet>(),
                keys: PersonKeys {
                    tls_fingerprint: Some(fingerprint),
                    ..PersonKeys::default()
                },
            },
        )
        .await
        .unwrap();
}

#[test]
fn two_replicas_serve_one_postgresql_database() {
    let cluster = shardkeep_storage::test_support::PostgresCluster::start().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(cluster.create_database("serve")).unwrap();
    let site = Site::new();
    let made = site.ok(&[
        "init",
        "service",
        "--dir",
        "svc",
        "--tls-name",
        "localhost",
        "--client",
        "ops-1",
    ]);
    let svc = site.path("svc");
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(svc.join("service.json")).unwrap()).unwrap();
    config["listen"] = "127.0.0.1:0".into();
    config["database"] = database.service_url.clone().into();
    for replica in ["r1", "r2"] {
        config["replica"] = replica.into();
        std::fs::write(
            svc.join(format!("service-{replica}.json")),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }
    runtime.block_on(async {
        let storage = shardkeep_storage::PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let backup = BackupService::new(ServiceParts::new(
            storage,
            ServiceConfig::new(Label::new("default").unwrap(), Label::new("r0").unwrap()),
            Arc::new(LocalKeyStore::open(svc.join("kek-store")).unwrap()),
            Arc::new(KeyFileSigner::open(svc.join("keys/service-signer.key")).unwrap()),
            Arc::new(SystemClock),
            Box::new(<rand::rngs::ChaCha20Rng as rand::SeedableRng>::from_seed(
                [3; 32],
            )),
        ))
        .unwrap();
        let fingerprint = hex::decode(made["clients"][0]["fingerprint"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        register_operator(&backup, fingerprint).await;
    });

    let client = &made["clients"][0];
    // Both replicas at once, each answering from the shared database.
    let servings: Vec<_> = ["r1", "r2"]
        .into_iter()
        .map(|replica| {
            (
                replica,
                Serving::start(&site, Path::new(&format!("svc/service-{replica}.json"))),
            )
        })
        .collect();
    for (replica, serving) in &servings {
        let config = format!("ops-1-{replica}.json");
        site.ok(&[
            "--config",
            &config,
            "init",
            "person",
            "--person",
            "ops-1",
            "--server",
            &format!("https://localhost:{}", serving.port("grpc")),
            "--ca",
            "svc/tls/ca.pem",
            "--cert",
            client["cert"].as_str().unwrap(),
            "--client-key",
            client["key"].as_str().unwrap(),
            "--force",
        ]);
        let status = site.ok(&["--config", &config, "status"]);
        assert_eq!(status["versions"].as_array().unwrap().len(), 0, "{status}");
    }
    for (_, serving) in servings {
        let (code, log) = serving.terminate();
        assert_eq!(code, 0, "{log}");
    }
    drop(cluster);
}

#[test]
fn sigterm_right_after_the_listening_line_stops_cleanly() {
    let site = Site::new();
    site.ok(&["init", "service", "--dir", "svc", "--tls-name", "localhost"]);
    let config_path = site.path("svc/service.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["listen"] = "127.0.0.1:0".into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    // The signal handlers are in place before the line is written: a
    // SIGTERM at once is a graceful stop, not the default action's death.
    for _ in 0..3 {
        let serving = Serving::start(&site, Path::new("svc/service.json"));
        let (code, log) = serving.terminate();
        assert_eq!(code, 0, "{log}");
    }
}

//! `shardkeep serve` as an operator runs it: a service made by `init
//! service`, its persons registered and two key versions (ECDSA and
//! EdDSA) backed up through the procedure on its files, then the real
//! binary serving them over mutual TLS with its metrics port; the
//! operator's and the custodians' commands against it (`--json`), the
//! metrics scraped, and SIGTERM ending it with exit code 0. Two replicas
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
    Armor, BackupService, EntityRegistration, ExternalCustodian, GenerateRequest, PersonKeys,
    PersonRegistration, PolicySettings, Role, RoleSet, SaveDataSource, ServiceConfig, ServiceParts,
    SystemClock,
};
use shardkeep_keydata::LocalPartySaveData;
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::SqliteStorage;
use shardkeep_test_support::tss_lib::{Protocol, fixture_bytes};
use shardkeep_types::{CustodianId, KeyId, Label, NodeId, Threshold};
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

/// The service's files, as `init service` made them, opened in this
/// process to register persons and back up (the registry's and generate's
/// commands are not the command line's yet).
async fn backup_on(svc: &Path, config: &Value) -> BackupService<SqliteStorage> {
    let path = |field: &str| svc.join(config[field].as_str().unwrap());
    let storage = SqliteStorage::open(path("database")).await.unwrap();
    BackupService::new(ServiceParts::new(
        storage,
        ServiceConfig::new(
            Label::new(config["deployment"].as_str().unwrap()).unwrap(),
            Label::new(config["replica"].as_str().unwrap()).unwrap(),
        ),
        Arc::new(LocalKeyStore::open(path("kek_store")).unwrap()),
        Arc::new(KeyFileSigner::open(path("signer_key")).unwrap()),
        Arc::new(SystemClock),
        Box::new(<rand::rngs::ChaCha20Rng as rand::SeedableRng>::from_seed(
            [9; 32],
        )),
    ))
    .unwrap()
}

#[test]
fn the_served_binary_answers_the_command_exposes_metrics_and_stops_on_sigterm() {
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
        "--bootstrap-security",
        "sec-1",
        "--bootstrap-approval-key",
        security["signing_key"].as_str().unwrap(),
    ]);
    let signer_key = made["signer_key"].as_str().unwrap().to_owned();
    let svc = site.path("svc");
    let config_path = svc.join("service.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    // Any free ports (the listening line tells them); the witness outside
    // the database's directory.
    config["listen"] = "127.0.0.1:0".into();
    config["metrics_listen"] = "127.0.0.1:0".into();
    config["witness"] = "../witness/audit.witness".into();
    std::fs::create_dir(site.path("witness")).unwrap();
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

    // The persons registered and both versions backed up, on the
    // service's own files; then this process lets go of them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let generated: Vec<_> = runtime.block_on(async {
        let backup = backup_on(&svc, &config).await;
        let sec = actor("sec-1");
        let fingerprint: [u8; 32] =
            hex::decode(made["clients"][0]["fingerprint"].as_str().unwrap())
                .unwrap()
                .try_into()
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
        backup
            .set_policy(
                &sec,
                PolicySettings {
                    threshold: Threshold::new(3, 5).unwrap(),
                    server_shares: 2,
                    kek_provider: Label::new("local-key-file").unwrap(),
                },
            )
            .await
            .unwrap();
        for (_, (name, entity, signing_key, recipient)) in &custodians {
            backup
                .register_person(
                    &sec,
                    PersonRegistration {
                        id: actor(name),
                        display_name: text(name),
                        roles: [Role::Custodian].into_iter().collect::<RoleSet>(),
                        keys: PersonKeys {
                            receipt_key: Some(
                                hex::decode(signing_key).unwrap().try_into().unwrap(),
                            ),
                            age_recipient: Some(recipient.clone()),
                            ..PersonKeys::default()
                        },
                    },
                )
                .await
                .unwrap();
            backup
                .register_entity(
                    &sec,
                    EntityRegistration {
                        id: CustodianId::new(entity.as_str()).unwrap(),
                        display_name: text(entity),
                        contact: text("the desk"),
                        members: vec![actor(name)],
                    },
                )
                .await
                .unwrap();
        }
        let mut generated = Vec::new();
        for protocol in Protocol::ALL {
            let json = Zeroizing::new(fixture_bytes(protocol, 0).unwrap().to_vec());
            let data = LocalPartySaveData::from_json(&json).unwrap();
            let made = backup
                .generate(
                    &actor("ops-1"),
                    GenerateRequest {
                        key_id: KeyId::new(key_of(protocol)).unwrap(),
                        node_id: NodeId::new("node-0").unwrap(),
                        save_data: SaveDataSource::Loaded(&data),
                        group: TSS_GROUP,
                        custodians: custodians
                            .iter()
                            .filter(|(of, _)| *of == protocol)
                            .map(|(_, (name, entity, _, _))| ExternalCustodian {
                                entity: CustodianId::new(entity.as_str()).unwrap(),
                                person: actor(name),
                            })
                            .collect(),
                        armor: Armor::Binary,
                    },
                )
                .await
                .unwrap();
            generated.push((protocol, made));
        }
        generated
    });
    drop(runtime);

    let serving = Serving::start(&site, Path::new("svc/service.json"));
    assert_eq!(serving.listening["command"], "serve");
    let grpc_port = serving.port("grpc");
    let metrics_port = serving.port("metrics");

    // The operator's configuration names the port the service listens on.
    let client = &made["clients"][0];
    site.ok(&[
        "--config",
        "ops-1.json",
        "init",
        "person",
        "--person",
        "ops-1",
        "--server",
        &format!("https://localhost:{grpc_port}"),
        "--ca",
        "svc/tls/ca.pem",
        "--cert",
        client["cert"].as_str().unwrap(),
        "--client-key",
        client["key"].as_str().unwrap(),
        "--service-signer",
        "backup-server-1",
        "--service-key",
        &signer_key,
    ]);
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
    for ((_, (name, _, _, _)), container) in custodians
        .iter()
        .filter(|(of, _)| of == protocol)
        .zip(&ecdsa.containers)
    {
        let container_file = format!("{name}.container");
        std::fs::write(site.path(&container_file), &container.container).unwrap();
        let index = container.index.get().to_string();
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
            &container_file,
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
            &container_file,
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
    assert!(
        metrics.contains(
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/GetBackupStatus\",code=\"OK\"}"
        ),
        "{metrics}"
    );

    let (code, log) = serving.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // The log names no secret: not the service signer's key file contents.
    let signer_file = std::fs::read(svc.join("keys/service-signer.key")).unwrap();
    assert!(!log.contains(&hex::encode(&signer_file)));
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

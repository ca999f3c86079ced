//! `init service` makes what a backup service starts from, and
//! `init person` what a person works with: a service built from exactly
//! those files (its key file, KEK store, database, certificates) serves
//! the command over mutual TLS, its first security person registered by
//! `init service` registers the operator, and the operator's `status`
//! works.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use shardkeep_backup::{
    BackupService, PersonKeys, PersonRegistration, Role, RoleSet, ServiceConfig, ServiceParts,
    SystemClock,
};
use shardkeep_grpc::{GrpcService, TlsIdentity};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::SqliteStorage;
use shardkeep_types::{Label, Signer as _};
use support::{Nodes, PASSPHRASE, actor, text};
use zeroize::Zeroizing;

fn shardkeep(dir: &Path, passphrase: &Path, args: &[&str]) -> (i32, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shardkeep"));
    command
        .current_dir(dir)
        .env("SHARDKEEP_PASSPHRASE_FILE", passphrase)
        .env_remove("SHARDKEEP_CONFIG");
    let output = command.arg("--json").args(args).output().unwrap();
    let value = serde_json::from_slice(&output.stdout).unwrap();
    (output.status.code().unwrap(), value)
}

#[test]
fn a_service_made_by_init_serves_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let passphrase = home.join("passphrase");
    std::fs::write(&passphrase, PASSPHRASE).unwrap();

    // The first security person's key, then the service.
    let (code, security) = shardkeep(
        home,
        &passphrase,
        &[
            "--config",
            "sec-1.json",
            "init",
            "person",
            "--person",
            "sec-1",
        ],
    );
    assert_eq!(code, 0, "{security}");
    let security_key = security["signing_key"].as_str().unwrap();
    let (code, made) = shardkeep(
        home,
        &passphrase,
        &[
            "init",
            "service",
            "--dir",
            "svc",
            "--deployment",
            "prod-eu",
            "--tls-name",
            "localhost",
            "--client",
            "ops-1",
            "--client",
            "sec-1",
            "--bootstrap-security",
            "sec-1",
            "--bootstrap-approval-key",
            security_key,
        ],
    );
    assert_eq!(code, 0, "{made}");
    assert_eq!(made["command"], "init service");
    assert_eq!(made["bootstrap_security"], "sec-1");
    assert_eq!(made["clients"].as_array().unwrap().len(), 2);
    // Made once: a second run refuses the existing directory.
    let (code, again) = shardkeep(home, &passphrase, &["init", "service", "--dir", "svc"]);
    assert_eq!(code, 2, "{again}");
    assert_eq!(again["error"]["kind"], "output-exists");

    // The service, from exactly those files.
    let svc = home.join("svc");
    let config: Value =
        serde_json::from_slice(&std::fs::read(svc.join("service.json")).unwrap()).unwrap();
    assert_eq!(config["format"], "shardkeep-service-config-v1");
    let path = |field: &str| svc.join(config[field].as_str().unwrap());
    let tls_path = |field: &str| svc.join(config["tls"][field].as_str().unwrap());
    let signer = KeyFileSigner::open(path("signer_key")).unwrap();
    assert_eq!(
        made["signer_key"],
        hex::encode(signer.verifying_key().to_bytes())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tls = TlsIdentity {
        server_chain_pem: std::fs::read(tls_path("server_cert")).unwrap(),
        server_key_pem: Zeroizing::new(std::fs::read(tls_path("server_key")).unwrap()),
        client_ca_pem: std::fs::read(tls_path("client_ca")).unwrap(),
    };
    let (service, port) = runtime.block_on(async {
        let storage = SqliteStorage::open(path("database")).await.unwrap();
        let keks = Arc::new(LocalKeyStore::open(path("kek_store")).unwrap());
        let parts = ServiceParts::new(
            storage,
            ServiceConfig::new(
                Label::new(config["deployment"].as_str().unwrap()).unwrap(),
                Label::new(config["replica"].as_str().unwrap()).unwrap(),
            ),
            keks,
            Arc::new(signer),
            Arc::new(SystemClock),
            Box::new(<rand::rngs::ChaCha20Rng as rand::SeedableRng>::from_seed(
                [7; 32],
            )),
        );
        let service = BackupService::new(parts).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let grpc = GrpcService::new(service.clone(), Arc::new(Nodes::new())).into_server();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .tls_config(tls.server_config())
                .unwrap()
                .add_service(grpc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        (service, port)
    });

    // The operator, with the client certificate init issued; the
    // bootstrapped security person registers them.
    let client = &made["clients"][0];
    assert_eq!(client["person"], "ops-1");
    let url = format!("https://localhost:{port}");
    let signer_key = made["signer_key"].as_str().unwrap();
    let (code, operator) = shardkeep(
        home,
        &passphrase,
        &[
            "--config",
            "ops-1.json",
            "init",
            "person",
            "--person",
            "ops-1",
            "--server",
            &url,
            "--ca",
            "svc/tls/ca.pem",
            "--cert",
            client["cert"].as_str().unwrap(),
            "--client-key",
            client["key"].as_str().unwrap(),
            "--service-signer",
            "backup-server-1",
            "--service-key",
            signer_key,
        ],
    );
    assert_eq!(code, 0, "{operator}");
    let fingerprint: [u8; 32] = hex::decode(client["fingerprint"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    runtime
        .block_on(service.register_person(
            &actor("sec-1"),
            PersonRegistration {
                id: actor("ops-1"),
                display_name: text("ops-1"),
                roles: [Role::Operator].into_iter().collect::<RoleSet>(),
                keys: PersonKeys {
                    tls_fingerprint: Some(fingerprint),
                    ..PersonKeys::default()
                },
            },
        ))
        .unwrap();
    let (code, status) = shardkeep(home, &passphrase, &["--config", "ops-1.json", "status"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["versions"].as_array().unwrap().len(), 0);
}

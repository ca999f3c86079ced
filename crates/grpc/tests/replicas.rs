//! Two service processes on one PostgreSQL database, as replicas behind a
//! load balancer run: recoveries, status calls and the audit appends they
//! make interleave across both; afterwards no audit record is lost or
//! duplicated and the chain verifies against a witnessed checkpoint; a
//! session one replica started is refused by the other
//! (`SessionOnOtherReplica`); a rate limit holds across both (the counters
//! live in the database).
//!
//! A replica is this test binary run again with `SHARDKEEP_REPLICA` set
//! (`harness = false`): it opens the database, serves the service over
//! mutual TLS on a loopback port it prints, and runs until it is killed.
//! Recoveries self-test with keydata's `self_test_peer` example processes
//! (`cargo test --workspace` builds it; a narrowed run adds
//! `-p shardkeep-keydata --example self_test_peer`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "a test binary with its own main: a failure is the test's, and it reports like libtest"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{
    Approver, Client, FixtureParty0, Issued, SessionOrder, TestCa, TestCustodian, actor,
    approved_request, party0_codec, save_data_of, text,
};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    Armor, BackupService, EntityRegistration, ExternalCustodian, FixedClock, GenerateRequest,
    Generated, PersonKeys, PersonRegistration, RateLimit, Role, RoleSet, SaveDataSource,
    ServiceConfig, ServiceParts,
};
use shardkeep_grpc::proto::{GetBackupStatusRequest, RecoverMpcShareRequest, RecoveryState};
use shardkeep_grpc::{GrpcService, ServerConfig, TlsIdentity, serve_on};
use shardkeep_keydata::{keystore_path, load_keystore};
use shardkeep_kms::LocalKeyStore;
use shardkeep_storage::PostgresStorage;
use shardkeep_storage::test_support::PostgresCluster;
use shardkeep_test_support::tss_lib::Protocol;
use shardkeep_types::{InMemorySigner, KekId, KeyId, Label, NodeId, Signer, SignerId};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Set in a replica process: the directory holding its inputs.
const REPLICA_ENV: &str = "SHARDKEEP_REPLICA";
/// Status and listing calls per person per window, across the replicas.
const INSPECT_LIMIT: u32 = 30;
/// Status calls made while the recoveries run.
const INTERLEAVED_STATUS_CALLS: u32 = 20;

/// The key each protocol's fixture is backed up under (see
/// [`common::fixture_protocol`]).
fn key_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Ecdsa => "wallet-ecdsa",
        Protocol::Eddsa => "wallet-eddsa",
    }
}

fn service_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("backup-server-1").unwrap(), &[0x5e; 32])
}

/// The service as every process builds it on the shared database and key
/// store: `replica` names it among the replicas.
fn service(storage: PostgresStorage, kms: &Path, replica: &str) -> BackupService<PostgresStorage> {
    let mut config = ServiceConfig::new(Label::new("test").unwrap(), Label::new(replica).unwrap());
    config.inspect_limit = RateLimit {
        max: INSPECT_LIMIT,
        window: Duration::from_secs(86_400),
    };
    config.recovery_attempt_limit = RateLimit {
        max: 1_000,
        window: Duration::from_secs(86_400),
    };
    // Each process its own randomness (session ids, one-time identities).
    let mut rng_seed = [0u8; 32];
    rng_seed[..replica.len()].copy_from_slice(replica.as_bytes());
    let parts = ServiceParts::new(
        storage,
        config,
        Arc::new(LocalKeyStore::open_or_create(kms, KekId::new("master-1").unwrap()).unwrap()),
        Arc::new(service_signer()),
        Arc::new(FixedClock::new(common::start_time())),
        Box::new(ChaCha20Rng::from_seed(rng_seed)),
    );
    BackupService::new(parts).unwrap()
}

/// A replica process: serves until killed.
fn replica_main(dir: &Path) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let replica = read("replica");
    let runtime = shardkeep_test_support::runtime::multi_thread();
    runtime.block_on(async {
        let storage = PostgresStorage::connect(&read("database_url"))
            .await
            .unwrap();
        let service = service(storage, &dir.join("../kms"), &replica);
        let tls = TlsIdentity {
            server_chain_pem: read("server.pem").into_bytes(),
            server_key_pem: Zeroizing::new(read("server.key").into_bytes()),
            client_ca_pem: read("ca.pem").into_bytes(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap().port());
        let config = ServerConfig::new(listener.local_addr().unwrap(), tls);
        let grpc = GrpcService::new(service, Arc::new(FixtureParty0::new()));
        // Serves until the test kills this process.
        serve_on(listener, config, grpc, core::future::pending())
            .await
            .unwrap();
    });
}

/// A replica process, killed when dropped.
struct Replica {
    child: Child,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(REPLICA_ENV, dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("replica said {line:?}"))
            .parse()
            .unwrap();
        Self { child, port }
    }
}

/// What the parent process sets up on the shared database.
struct Deployment {
    admin: BackupService<PostgresStorage>,
    ca: TestCa,
    operator: Issued,
    approvers: Vec<(&'static str, Role, Issued, Arc<InMemorySigner>)>,
    backups: Vec<(Protocol, Generated, Vec<TestCustodian>)>,
}

async fn deploy(admin: BackupService<PostgresStorage>) -> Deployment {
    let security = actor("sec-1");
    let ca = TestCa::new("shardkeep replicas CA");
    let operator = ca.client("ops-1");
    let mut seed = 0u8;
    let mut key = || {
        seed += 1;
        InMemorySigner::from_seed(SignerId::new("person-key").unwrap(), &[seed; 32])
    };
    let person =
        |id: &str, role: Role, tls: Option<[u8; 32]>, approval: [u8; 32]| PersonRegistration {
            id: actor(id),
            display_name: text(id),
            roles: [role].into_iter().collect::<RoleSet>(),
            keys: PersonKeys {
                approval_key: Some(approval),
                tls_fingerprint: tls,
                ..PersonKeys::default()
            },
        };
    let registrations = [
        person(
            "sec-1",
            Role::Security,
            None,
            key().verifying_key().to_bytes(),
        ),
        person(
            "ops-1",
            Role::Operator,
            Some(operator.fingerprint.0),
            key().verifying_key().to_bytes(),
        ),
    ];
    for registration in registrations {
        admin
            .register_person(&security, registration)
            .await
            .unwrap();
    }
    let mut approvers = Vec::new();
    for (name, role) in [("biz-1", Role::BusinessOwner), ("sec-2", Role::Security)] {
        let cert = ca.client(name);
        let signer = key();
        admin
            .register_person(
                &security,
                person(
                    name,
                    role,
                    Some(cert.fingerprint.0),
                    signer.verifying_key().to_bytes(),
                ),
            )
            .await
            .unwrap();
        approvers.push((name, role, cert, Arc::new(signer)));
    }
    admin
        .set_policy(&security, common::hybrid_policy())
        .await
        .unwrap();
    let mut backups = Vec::new();
    for protocol in Protocol::ALL {
        let mut custodians = Vec::new();
        for i in 0..3 {
            let name = format!("{}-cust-{i}", key_of(protocol));
            let contact = actor(&format!("{name}-contact"));
            let identity = shardkeep_envelope::deps::age::x25519::Identity::generate();
            let receipt_key = key();
            let mut registration = person(
                contact.as_str(),
                Role::Custodian,
                None,
                key().verifying_key().to_bytes(),
            );
            registration.keys.receipt_key = Some(receipt_key.verifying_key().to_bytes());
            registration.keys.age_recipient = Some(identity.to_public().to_string());
            admin
                .register_person(&security, registration)
                .await
                .unwrap();
            let entity = shardkeep_types::CustodianId::new(&name).unwrap();
            admin
                .register_entity(
                    &security,
                    EntityRegistration {
                        id: entity.clone(),
                        display_name: text(&name),
                        contact: text("custody desk"),
                        members: vec![contact.clone()],
                    },
                )
                .await
                .unwrap();
            custodians.push(TestCustodian {
                entity,
                person: contact,
                identity,
                receipt_key,
            });
        }
        let data = save_data_of(protocol, 0);
        let generated = admin
            .generate(
                &actor("ops-1"),
                GenerateRequest {
                    key_id: KeyId::new(key_of(protocol)).unwrap(),
                    node_id: NodeId::new("node-0").unwrap(),
                    save_data: SaveDataSource::Loaded(&data),
                    group: common::TSS_GROUP,
                    custodians: custodians
                        .iter()
                        .map(|custodian| ExternalCustodian {
                            entity: custodian.entity.clone(),
                            person: custodian.person.clone(),
                        })
                        .collect(),
                    armor: Armor::Binary,
                },
            )
            .await
            .unwrap();
        backups.push((protocol, generated, custodians));
    }
    Deployment {
        admin,
        ca,
        operator,
        approvers,
        backups,
    }
}

async fn client(ca: &TestCa, identity: &Issued, port: u16) -> Client {
    Client::new(
        common::connect(ca, port, Some(identity.identity()))
            .await
            .unwrap(),
    )
}

/// One recovery: approved over `approve_on`, started on `start_on`, a
/// submission to `other` refused there, then submitted where it started.
/// Returns the keystore directory.
async fn recover(
    deployment: &Deployment,
    backup: &(Protocol, Generated, Vec<TestCustodian>),
    start_on: u16,
    other: u16,
    dir: &Path,
) -> PathBuf {
    let (protocol, generated, custodians) = backup;
    let keystore_dir = dir.join(format!("keystore-{}", key_of(*protocol)));
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let order = SessionOrder::recovery(generated, &keystore_dir, "INC-9");
    let mut operator = client(&deployment.ca, &deployment.operator, start_on).await;
    // The approvers reach the other replica.
    let mut approvers = Vec::new();
    for (name, role, cert, key) in &deployment.approvers {
        approvers.push(Approver {
            name: actor(name),
            role: *role,
            key: key.clone(),
            client: client(&deployment.ca, cert, other).await,
        });
    }
    let approval_request_hash =
        approved_request(&mut operator, order.approval_params(), &mut approvers).await;
    let started = operator
        .start_recovery(order.start_recovery(approval_request_hash))
        .await
        .unwrap()
        .into_inner();
    let shares = common::submissions(
        custodians,
        generated,
        &started.descriptor,
        &service_signer(),
        common::start_time(),
    );
    let elsewhere = client(&deployment.ca, &deployment.operator, other)
        .await
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id.clone(),
            share_data: shares.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::FailedPrecondition);
    assert!(
        elsewhere.message().contains("replica"),
        "{}",
        elsewhere.message()
    );
    let done = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: shares,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state(), RecoveryState::Recovered);
    keystore_dir
}

/// Status calls alternating between the replicas until one is refused;
/// returns how many were answered.
async fn status_calls(deployment: &Deployment, ports: [u16; 2], at_most: u32) -> u32 {
    let mut clients = [
        client(&deployment.ca, &deployment.operator, ports[0]).await,
        client(&deployment.ca, &deployment.operator, ports[1]).await,
    ];
    for call in 0..at_most {
        let replica = usize::try_from(call % 2).unwrap();
        match clients[replica]
            .get_backup_status(GetBackupStatusRequest::default())
            .await
        {
            Ok(page) => assert_eq!(page.into_inner().versions.len(), 2),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                return call;
            }
        }
    }
    at_most
}

fn replicas_interleave_on_one_postgresql() {
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let dir = tempfile::tempdir().unwrap();
    let database = runtime
        .block_on(cluster.create_database("replicas"))
        .unwrap();
    let admin = runtime.block_on(async {
        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        service(storage, &dir.path().join("kms"), "admin")
    });
    let deployment = runtime.block_on(deploy(admin));

    let server_cert = deployment.ca.server();
    let replicas: Vec<Replica> = ["r1", "r2"]
        .iter()
        .map(|name| {
            let inputs = dir.path().join(name);
            std::fs::create_dir_all(&inputs).unwrap();
            for (file, contents) in [
                ("replica", name.to_string()),
                ("database_url", database.service_url.clone()),
                ("server.pem", server_cert.cert_pem.clone()),
                ("server.key", server_cert.key_pem.clone()),
                ("ca.pem", deployment.ca.pem.clone()),
            ] {
                std::fs::write(inputs.join(file), contents).unwrap();
            }
            Replica::spawn(&inputs)
        })
        .collect();
    let ports = [replicas[0].port, replicas[1].port];

    // Interleaved: the ECDSA node recovers through r1, the EdDSA node
    // through r2, while status calls alternate between them.
    let (keystores, answered) = runtime.block_on(async {
        tokio::join!(
            async {
                tokio::join!(
                    recover(
                        &deployment,
                        &deployment.backups[0],
                        ports[0],
                        ports[1],
                        dir.path()
                    ),
                    recover(
                        &deployment,
                        &deployment.backups[1],
                        ports[1],
                        ports[0],
                        dir.path()
                    ),
                )
            },
            status_calls(&deployment, ports, INTERLEAVED_STATUS_CALLS),
        )
    });
    assert_eq!(answered, INTERLEAVED_STATUS_CALLS);
    for ((protocol, generated, _), keystore_dir) in
        deployment.backups.iter().zip([keystores.0, keystores.1])
    {
        let loaded = load_keystore(
            &keystore_path(&keystore_dir, &generated.version),
            &generated.version,
            &party0_codec(),
        )
        .unwrap();
        assert!(bool::from(loaded.ct_eq(&save_data_of(*protocol, 0))));
    }

    // The limit counts the calls of both replicas: the rest of it is
    // answered, whichever replica is asked, and then both refuse.
    let rest = runtime.block_on(status_calls(&deployment, ports, INSPECT_LIMIT));
    assert_eq!(answered + rest, INSPECT_LIMIT);
    for port in ports {
        let refused = runtime
            .block_on(async {
                client(&deployment.ca, &deployment.operator, port)
                    .await
                    .get_backup_status(GetBackupStatusRequest::default())
                    .await
            })
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    }

    // The audit log: every record once, the chain whole from genesis to a
    // witnessed checkpoint.
    let signer = service_signer();
    let witness = dir.path().join("audit.witness");
    let storage = deployment.admin.storage();
    runtime.block_on(async {
        let mut file = shardkeep_audit::FileWitness::open(&witness).unwrap();
        shardkeep_audit::checkpoint(storage, &signer, &mut file, common::start_time())
            .await
            .unwrap();
        let mut exported = Vec::new();
        shardkeep_audit::export(storage, &mut exported)
            .await
            .unwrap();
        let export = shardkeep_audit::parse_export(&exported).unwrap();
        let checkpoints = shardkeep_audit::read_witness(&witness).unwrap();
        let verified =
            shardkeep_audit::verify(&export, &checkpoints, &signer.verifying_key()).unwrap();
        assert_eq!(verified.unwitnessed, 0);
        assert_eq!(verified.records, export.rows.len() as u64);
        let records: Vec<shardkeep_audit::AuditRecord> = export
            .rows
            .iter()
            .map(|row| shardkeep_audit::AuditRecord::decode(&row.record).unwrap())
            .collect();
        // Each answered status call once (the refused ones are anomalies),
        // and each recovery's close once.
        let inspections = records
            .iter()
            .filter(|record| record.event == shardkeep_audit::EventType::Inspect)
            .count();
        assert_eq!(inspections, usize::try_from(INSPECT_LIMIT).unwrap());
        for (_, generated, _) in &deployment.backups {
            let closes = records
                .iter()
                .filter(|record| {
                    record.event == shardkeep_audit::EventType::Recover
                        && record.key_id.as_ref() == Some(&generated.version.key_id)
                        && record.outcome == shardkeep_audit::Outcome::Success
                        && record.threshold.is_some()
                        && record.detail.is_some()
                })
                .count();
            assert_eq!(closes, 1, "{}", generated.version);
        }
    });
    drop(replicas);
}

fn main() {
    if let Some(dir) = std::env::var_os(REPLICA_ENV) {
        replica_main(Path::new(&dir));
        return;
    }
    println!("\nrunning 1 test");
    replicas_interleave_on_one_postgresql();
    println!("test replicas_interleave_on_one_postgresql ... ok\n");
    println!("test result: ok. 1 passed; 0 failed\n");
}

//! What the command's tests share: the backup service on SQLite served
//! over mutual TLS on loopback with a throwaway CA made at run time (the
//! server side is a trimmed copy of the gRPC crate's test harness,
//! `crates/grpc/tests/common`, which a test of another package cannot
//! reach), node recovery targets whose other parties run in their own
//! processes (keydata's `self_test_peer` example), and a runner of the
//! built `shardkeep` binary that reads its `--json` output.
//!
//! The service's clock is the system's: the custodian's tool checks a
//! session's expiry and stamps receipts with the real time.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use shardkeep_backup::{
    Armor, BackupService, EntityRegistration, ExternalCustodian, GenerateRequest, Generated,
    PersonKeys, PersonRegistration, PolicySettings, Role, RoleSet, SaveDataSource, ServiceConfig,
    ServiceParts, SystemClock, TssGroup,
};
use shardkeep_grpc::{CertificateFingerprint, GrpcService, RecoveryTargets, TlsIdentity};
use shardkeep_keydata::{
    KekKeystoreCodec, KeystoreCodec, LocalPartySaveData, RemotePeers, SelfTestPeers,
};
use shardkeep_kms::LocalKeyStore;
use shardkeep_storage::SqliteStorage;
use shardkeep_test_support::peer_process::{PeerProcesses, example_path};
use shardkeep_test_support::tss_lib::{PARTIES, Protocol, fixture_bytes, fixture_path, share_id};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemoryKek, InMemorySigner, KekId, KeyId, Label, NodeId,
    NodeVersion, Signer, SignerId, Threshold,
};
use zeroize::Zeroizing;

/// The tss-lib fixtures' group: 5 parties, polynomial degree 2.
pub const TSS_GROUP: TssGroup = TssGroup {
    tss_degree: 2,
    parties: 5,
};

/// The service's envelope and session signer id.
pub const SERVICE_SIGNER: &str = "backup-server-1";

/// Every passphrase of the tests (through `SHARDKEEP_PASSPHRASE_FILE`).
pub const PASSPHRASE: &str = "correct horse battery staple";

pub fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

pub fn text<const MAX: usize>(text: &str) -> FreeText<MAX> {
    FreeText::new(text).unwrap()
}

/// The group key the tests back up on `protocol`'s curve.
pub fn key_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Ecdsa => "wallet-secp256k1",
        Protocol::Eddsa => "wallet-ed25519",
    }
}

/// A throwaway CA that issues the server's and the clients' certificates.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub pem: String,
}

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub fingerprint: CertificateFingerprint,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            params,
            key,
        }
    }

    fn issue(
        &self,
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: CertificateFingerprint::of_der(cert.der()),
        }
    }

    pub fn server(&self) -> Issued {
        self.issue(
            vec!["localhost".to_owned()],
            "backup server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    pub fn client(&self, person: &str) -> Issued {
        self.issue(Vec::new(), person, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Node 0 of each test key: its keystore codec, and the fixture's other
/// parties of its curve, each in its own process.
pub struct Nodes {
    codec: Arc<KekKeystoreCodec<InMemoryKek>>,
}

impl Nodes {
    pub fn new() -> Self {
        let mut rng = ChaCha20Rng::from_seed([0x4b; 32]);
        Self {
            codec: Arc::new(KekKeystoreCodec::new(InMemoryKek::generate(
                KekId::new("node-0-keystore").unwrap(),
                &mut rng,
            ))),
        }
    }
}

fn protocol_of(version: &NodeVersion) -> Protocol {
    if version.key_id.as_str() == key_of(Protocol::Eddsa) {
        Protocol::Eddsa
    } else {
        Protocol::Ecdsa
    }
}

impl RecoveryTargets for Nodes {
    fn codec(
        &self,
        _version: &NodeVersion,
    ) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, shardkeep_grpc::Error> {
        Ok(self.codec.clone())
    }

    fn peers(
        &self,
        version: &NodeVersion,
    ) -> Result<Box<dyn SelfTestPeers + Send>, shardkeep_grpc::Error> {
        let protocol = protocol_of(version);
        let program = example_path("self_test_peer")
            .expect("build it first: cargo build -p shardkeep-keydata --example self_test_peer");
        let mut processes = PeerProcesses::spawn_each((1..PARTIES).map(|party| {
            (
                share_id(protocol, party).unwrap(),
                program.clone(),
                [fixture_path(protocol, party)],
            )
        }))
        .unwrap();
        Ok(Box::new(RemotePeers::new(
            move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?),
        )))
    }
}

/// The server's audit checkpoint signer.
pub fn server_audit_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-server").unwrap(), &[0xa5; 32])
}

/// Node 0's keystore file of `protocol`'s key, written by the node's codec
/// (the one the served targets read with) for `version`, in `dir`.
pub fn write_keystore(dir: &Path, protocol: Protocol, version: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let json = Zeroizing::new(fixture_bytes(protocol, 0).unwrap().to_vec());
    let data = LocalPartySaveData::from_json(&json).unwrap();
    shardkeep_keydata::write_keystore(
        dir,
        &NodeVersion {
            key_id: KeyId::new(key_of(protocol)).unwrap(),
            node_id: NodeId::new("node-0").unwrap(),
            version: shardkeep_types::KeyVersion::new(version),
        },
        &data,
        Nodes::new().codec.as_ref(),
        shardkeep_keydata::WriteMode::CreateNew,
    )
    .unwrap()
}

/// A person as the command line made them: their configuration file and
/// the public values `init` printed.
pub struct Person {
    pub name: String,
    pub config: PathBuf,
    pub signing_key: [u8; 32],
    pub age_recipient: Option<String>,
    pub cert: Option<Issued>,
}

/// The backup service on SQLite, served over mutual TLS on loopback, with
/// a bootstrapped security person and the hybrid policy (3 of 5, 2 server
/// shares under local key file KEKs).
pub struct Served {
    pub runtime: tokio::runtime::Runtime,
    pub service: BackupService<SqliteStorage>,
    pub signer: Arc<InMemorySigner>,
    pub ca: TestCa,
    pub port: u16,
    pub security: ActorId,
    pub dir: tempfile::TempDir,
    pub passphrase_file: PathBuf,
}

impl Served {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        let signer = Arc::new(InMemorySigner::from_seed(
            SignerId::new(SERVICE_SIGNER).unwrap(),
            &[0x5e; 32],
        ));
        let ca = TestCa::new("shardkeep test CA");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        let server_cert = ca.server();
        let tls = TlsIdentity {
            server_chain_pem: server_cert.cert_pem.clone().into_bytes(),
            server_key_pem: Zeroizing::new(server_cert.key_pem.clone().into_bytes()),
            client_ca_pem: ca.pem.clone().into_bytes(),
        };
        let (service, port) = runtime.block_on(async {
            let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
                .await
                .unwrap();
            let keks = Arc::new(
                LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-1").unwrap())
                    .unwrap(),
            );
            let config = ServiceConfig::new(Label::new("test").unwrap(), Label::new("r1").unwrap());
            let parts = ServiceParts::new(
                storage,
                config,
                keks,
                signer.clone(),
                Arc::new(SystemClock),
                Box::new(ChaCha20Rng::from_seed([42; 32])),
            );
            let service = BackupService::new(parts).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // The server's own audit checkpoints (a hard delete signs one).
            let witness =
                shardkeep_audit::FileWitness::open(dir.path().join("server.witness")).unwrap();
            let grpc = GrpcService::new(service.clone(), Arc::new(Nodes::new()))
                .with_checkpoints(Arc::new(server_audit_signer()), witness)
                .into_server();
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
        let served = Self {
            runtime,
            service,
            signer,
            ca,
            port,
            security: actor("sec-1"),
            dir,
            passphrase_file,
        };
        let bootstrap = PersonRegistration {
            id: served.security.clone(),
            display_name: text("sec-1"),
            roles: [Role::Security].into_iter().collect::<RoleSet>(),
            keys: PersonKeys {
                approval_key: Some(
                    InMemorySigner::from_seed(SignerId::new("sec-1").unwrap(), &[0x51; 32])
                        .verifying_key()
                        .to_bytes(),
                ),
                ..PersonKeys::default()
            },
        };
        served
            .runtime
            .block_on(served.service.register_person(&served.security, bootstrap))
            .unwrap();
        served
            .runtime
            .block_on(served.service.set_policy(
                &served.security,
                PolicySettings {
                    threshold: Threshold::new(3, 5).unwrap(),
                    server_shares: 2,
                    kek_provider: Label::new("local-key-file").unwrap(),
                },
            ))
            .unwrap();
        served
    }

    /// The bootstrapped security person's approval of `request` (their key
    /// is the support's, not a command line person's), submitted
    /// in-process.
    pub fn approve_as_bootstrap_security(&self, request: &[u8]) -> shardkeep_backup::ApprovalState {
        let signer = InMemorySigner::from_seed(SignerId::new("sec-1").unwrap(), &[0x51; 32]);
        let approval =
            shardkeep_backup::sign_approval(request, &self.security, Role::Security, &signer)
                .unwrap();
        self.runtime
            .block_on(
                self.service
                    .submit_approval(&self.security, &approval.encode()),
            )
            .unwrap()
    }

    /// The service's pinned signing key.
    pub fn signer_key(&self) -> [u8; 32] {
        self.signer.verifying_key().to_bytes()
    }

    /// The built binary, with the passphrase file set and no inherited
    /// configuration.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shardkeep"));
        command
            .current_dir(self.dir.path())
            .env("SHARDKEEP_PASSPHRASE_FILE", &self.passphrase_file)
            .env_remove("SHARDKEEP_CONFIG");
        command
    }

    /// Runs `shardkeep --json --config <person's> args...`; the exit code
    /// and the JSON document on standard output.
    pub fn run(&self, person: &Person, args: &[&str]) -> (i32, Value) {
        Self::run_with(self.command(), &person.config, args)
    }

    /// Runs `command --json --config <config> args...`.
    pub fn run_with(mut command: Command, config: &Path, args: &[&str]) -> (i32, Value) {
        let output = command
            .arg("--json")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!(
                "{args:?}: stdout is not one JSON document ({error}): {stdout:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), value)
    }

    /// Like [`Served::run`], asserting exit code 0.
    pub fn ok(&self, person: &Person, args: &[&str]) -> Value {
        let (code, value) = self.run(person, args);
        assert_eq!(code, 0, "{args:?} failed: {value}");
        value
    }

    /// `approver` approves the request file `request` in `role`, checking
    /// its hash; the command's report.
    pub fn approve(&self, approver: &Person, request: &str, hash: &str, role: &str) -> Value {
        let approved = self.ok(
            approver,
            &[
                "approve",
                "--request",
                request,
                "--role",
                role,
                "--expect-hash",
                hash,
                "--yes",
            ],
        );
        assert_eq!(approved["request_hash"], hash);
        approved
    }

    /// A path in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `shardkeep init` for `name`: a client certificate of the CA when
    /// `tls`, the custodian entity when given, the pinned service key.
    pub fn init(&self, name: &str, tls: bool, custodian: Option<&str>) -> Person {
        let home = self.path(name);
        std::fs::create_dir_all(&home).unwrap();
        let config = home.join("shardkeep.json");
        let service_key = hex::encode(self.signer.verifying_key().to_bytes());
        let mut args: Vec<String> = vec![
            "init".into(),
            "person".into(),
            "--person".into(),
            name.into(),
            "--service-signer".into(),
            SERVICE_SIGNER.into(),
            "--service-key".into(),
            service_key,
        ];
        let cert = tls.then(|| {
            let cert = self.ca.client(name);
            std::fs::write(home.join("client.pem"), &cert.cert_pem).unwrap();
            std::fs::write(home.join("client.key.pem"), &cert.key_pem).unwrap();
            args.extend([
                "--server".into(),
                format!("https://localhost:{}", self.port),
                "--ca".into(),
                "../ca.pem".into(),
                "--cert".into(),
                "client.pem".into(),
                "--client-key".into(),
                "client.key.pem".into(),
            ]);
            cert
        });
        if let Some(custodian) = custodian {
            args.extend(["--custodian".into(), custodian.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, value) = Self::run_with(self.command(), &config, &args);
        assert_eq!(code, 0, "init {name}: {value}");
        assert_eq!(value["command"], "init person");
        assert_eq!(value["person"], name);
        let signing_key: [u8; 32] = hex::decode(value["signing_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        Person {
            name: name.to_owned(),
            config,
            signing_key,
            age_recipient: value["age_recipient"].as_str().map(str::to_owned),
            cert,
        }
    }

    /// Registers `person` (as `init` made them) with `roles`: their signing
    /// key as a custodian's receipt key or anyone else's approval key (one
    /// key never serves both), their age recipient, their certificate's
    /// fingerprint.
    pub fn register(&self, person: &Person, roles: &[Role]) {
        let custodian = roles.contains(&Role::Custodian);
        let registration = PersonRegistration {
            id: actor(&person.name),
            display_name: text(&person.name),
            roles: roles.iter().copied().collect::<RoleSet>(),
            keys: PersonKeys {
                approval_key: (!custodian).then_some(person.signing_key),
                receipt_key: custodian.then_some(person.signing_key),
                age_recipient: person.age_recipient.clone(),
                tls_fingerprint: person.cert.as_ref().map(|cert| cert.fingerprint.0),
            },
        };
        self.runtime
            .block_on(self.service.register_person(&self.security, registration))
            .unwrap();
    }

    /// `init` and registration of an operator.
    pub fn operator(&self, name: &str) -> Person {
        let person = self.init(name, true, None);
        self.register(&person, &[Role::Operator]);
        person
    }

    /// `init` and registration of an approver in `role`.
    pub fn approver(&self, name: &str, role: Role) -> Person {
        let person = self.init(name, true, None);
        self.register(&person, &[role]);
        person
    }

    /// `init` of a custodian person (no certificate: they work offline),
    /// registration, and their entity.
    pub fn custodian(&self, entity: &str) -> Person {
        let name = format!("{entity}-contact");
        let person = self.init(&name, false, Some(entity));
        self.register(&person, &[Role::Custodian]);
        self.runtime
            .block_on(self.service.register_entity(
                &self.security,
                EntityRegistration {
                    id: CustodianId::new(entity).unwrap(),
                    display_name: text(entity),
                    contact: text(&format!("{entity} desk, +1 555 0100")),
                    members: vec![actor(&name)],
                },
            ))
            .unwrap();
        person
    }

    /// Three custodians, and a
    /// backup by `operator` of party 0's share on `protocol`'s curve; each
    /// custodian's container written to `<custodian>.container`.
    pub fn generate(&self, operator: &Person, protocol: Protocol) -> (Generated, Vec<Person>) {
        let key = key_of(protocol);
        let custodians: Vec<Person> = (0..3)
            .map(|i| self.custodian(&format!("{key}-cust-{i}")))
            .collect();
        let json = Zeroizing::new(fixture_bytes(protocol, 0).unwrap().to_vec());
        let data = LocalPartySaveData::from_json(&json).unwrap();
        let generated = self
            .runtime
            .block_on(
                self.service.generate(
                    &actor(&operator.name),
                    GenerateRequest {
                        key_id: KeyId::new(key).unwrap(),
                        node_id: NodeId::new("node-0").unwrap(),
                        save_data: SaveDataSource::Loaded(&data),
                        group: TSS_GROUP,
                        custodians: custodians
                            .iter()
                            .map(|custodian| ExternalCustodian {
                                entity: CustodianId::new(
                                    custodian.name.trim_end_matches("-contact"),
                                )
                                .unwrap(),
                                person: actor(&custodian.name),
                            })
                            .collect(),
                        armor: Armor::Binary,
                    },
                ),
            )
            .unwrap();
        for (custodian, container) in custodians.iter().zip(&generated.containers) {
            std::fs::write(
                self.path(&format!("{}.container", custodian.name)),
                &container.container,
            )
            .unwrap();
        }
        (generated, custodians)
    }
}

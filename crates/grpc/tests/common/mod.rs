//! What the gRPC tests share: a backup service on SQLite with real
//! components (local KEK store, in-memory envelope signer, fixed clock,
//! seeded generator), a throwaway CA with server and client certificates
//! made at run time, persons registered with their certificates'
//! fingerprints, the service served over mutual TLS on loopback, and
//! approvers who approve a recovery, drill or deletion over their own
//! certificates.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use shardkeep_backup::{
    Armor, BackupService, EntityRegistration, ExternalCustodian, FixedClock, GenerateRequest,
    Generated, PersonKeys, PersonRegistration, PolicySettings, Role, RoleSet, SaveDataSource,
    ServiceConfig, ServiceParts, TssGroup, sign_approval,
};
use shardkeep_grpc::proto::backup_service_client::BackupServiceClient;
use shardkeep_grpc::proto::{
    self, RequestApprovalRequest, StartDrillRequest, StartRecoveryRequest, SubmitApprovalRequest,
    SubmitApprovalResponse,
};
use shardkeep_grpc::{
    CertificateFingerprint, GrpcService, RecoveryTargets, ServerConfig, TlsIdentity,
};
use shardkeep_keydata::{KeystoreCodec, LocalPartySaveData, SelfTestPeers};
use shardkeep_kms::LocalKeyStore;
use shardkeep_storage::SqliteStorage;
use shardkeep_test_support::tss_lib::{Protocol, fixture_bytes};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemorySigner, KekId, KeyId, Label, NodeId, NodeVersion,
    Signer, SignerId, Threshold, Timestamp,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use zeroize::Zeroizing;

/// The tss-lib fixtures' group: 5 parties, polynomial degree 2.
pub const TSS_GROUP: TssGroup = TssGroup {
    tss_degree: 2,
    parties: 5,
};

pub fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

pub fn text<const MAX: usize>(text: &str) -> FreeText<MAX> {
    FreeText::new(text).unwrap()
}

/// Party `party`'s secp256k1 save data from the tss-lib fixtures.
pub fn save_data(party: usize) -> LocalPartySaveData {
    save_data_of(Protocol::Ecdsa, party)
}

/// Party `party`'s save data of `protocol` from the tss-lib fixtures.
pub fn save_data_of(protocol: Protocol, party: usize) -> LocalPartySaveData {
    let json = Zeroizing::new(fixture_bytes(protocol, party).unwrap().to_vec());
    LocalPartySaveData::from_json(&json).unwrap()
}

/// A custodian entity with one person acting for it, and the secrets that
/// person keeps (their age identity and receipt key).
pub struct TestCustodian {
    pub entity: CustodianId,
    pub person: ActorId,
    pub identity: shardkeep_envelope::deps::age::x25519::Identity,
    pub receipt_key: InMemorySigner,
}

impl TestCustodian {
    pub fn choice(&self) -> ExternalCustodian {
        ExternalCustodian {
            entity: self.entity.clone(),
            person: self.person.clone(),
        }
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

impl Issued {
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
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

    /// The server's certificate, for `localhost`.
    pub fn server(&self) -> Issued {
        self.issue(
            vec!["localhost".to_owned()],
            "backup server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `person`.
    pub fn client(&self, person: &str) -> Issued {
        self.issue(Vec::new(), person, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server's TLS identity: a new [`server`](Self::server)
    /// certificate, and this CA for its clients.
    pub fn server_tls(&self) -> TlsIdentity {
        let server_cert = self.server();
        TlsIdentity {
            server_chain_pem: server_cert.cert_pem.into_bytes(),
            server_key_pem: Zeroizing::new(server_cert.key_pem.into_bytes()),
            client_ca_pem: self.pem.clone().into_bytes(),
        }
    }
}

/// No node's recovery target is served here: the status and refusal tests
/// never reach a recovery at threshold.
pub struct NoTargets;

impl RecoveryTargets for NoTargets {
    fn codec(
        &self,
        version: &NodeVersion,
    ) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, shardkeep_grpc::Error> {
        Err(shardkeep_grpc::Error::NoRecoveryTarget(version.clone()))
    }

    fn peers(
        &self,
        version: &NodeVersion,
    ) -> Result<Box<dyn SelfTestPeers + Send>, shardkeep_grpc::Error> {
        Err(shardkeep_grpc::Error::NoRecoveryTarget(version.clone()))
    }
}

/// Node 0's keystore codec, and no peers: a session accepts shares here,
/// and a generate reads the keystore, but a recovery at threshold fails
/// its self-test.
pub struct CodecOnly(pub Arc<shardkeep_keydata::KekKeystoreCodec<shardkeep_types::InMemoryKek>>);

impl CodecOnly {
    /// A fresh codec under a seeded in-memory KEK.
    pub fn new() -> Self {
        let mut rng = ChaCha20Rng::from_seed([0x4c; 32]);
        Self(Arc::new(shardkeep_keydata::KekKeystoreCodec::new(
            shardkeep_types::InMemoryKek::generate(
                KekId::new("node-0-keystore").unwrap(),
                &mut rng,
            ),
        )))
    }
}

impl RecoveryTargets for CodecOnly {
    fn codec(
        &self,
        _version: &NodeVersion,
    ) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, shardkeep_grpc::Error> {
        Ok(self.0.clone())
    }

    fn peers(
        &self,
        version: &NodeVersion,
    ) -> Result<Box<dyn SelfTestPeers + Send>, shardkeep_grpc::Error> {
        Err(shardkeep_grpc::Error::NoRecoveryTarget(version.clone()))
    }
}

/// Party 0's keystore codec: a seeded in-memory KEK, the same in every
/// process (a replica process writes what the test process loads).
pub fn party0_codec() -> shardkeep_keydata::KekKeystoreCodec<shardkeep_types::InMemoryKek> {
    shardkeep_keydata::KekKeystoreCodec::new(shardkeep_types::InMemoryKek::generate(
        KekId::new("node-0-keystore").unwrap(),
        &mut ChaCha20Rng::from_seed([0x4b; 32]),
    ))
}

/// The tss-lib fixture a key is backed up from: EdDSA when its id ends with
/// `eddsa`, ECDSA otherwise.
pub fn fixture_protocol(version: &NodeVersion) -> Protocol {
    if version.key_id.as_str().ends_with("eddsa") {
        Protocol::Eddsa
    } else {
        Protocol::Ecdsa
    }
}

/// Party 0 of a tss-lib fixture recovers: [`party0_codec`], and the
/// fixture's other parties answering the self-test each from its own
/// process (keydata's `self_test_peer` example; this process loads none of
/// their secrets, which the procedure checks).
pub struct FixtureParty0 {
    pub codec: Arc<shardkeep_keydata::KekKeystoreCodec<shardkeep_types::InMemoryKek>>,
}

impl FixtureParty0 {
    pub fn new() -> Self {
        Self {
            codec: Arc::new(party0_codec()),
        }
    }
}

impl RecoveryTargets for FixtureParty0 {
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
        use shardkeep_test_support::tss_lib::{PARTIES, fixture_path, share_id};
        let protocol = fixture_protocol(version);
        let program = shardkeep_test_support::peer_process::example_path("self_test_peer").unwrap();
        let mut processes = shardkeep_test_support::peer_process::PeerProcesses::spawn_each(
            (1..PARTIES).map(|party| {
                (
                    share_id(protocol, party).unwrap(),
                    program.clone(),
                    [fixture_path(protocol, party)],
                )
            }),
        )
        .unwrap();
        Ok(Box::new(shardkeep_keydata::RemotePeers::new(
            move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?),
        )))
    }
}

/// A backup service on SQLite served over mutual TLS on loopback.
pub struct Served {
    pub service: BackupService<SqliteStorage>,
    pub clock: Arc<FixedClock>,
    /// The service's envelope and session descriptor signer.
    pub signer: Arc<InMemorySigner>,
    pub ca: TestCa,
    pub addr: SocketAddr,
    pub security: ActorId,
    pub operator: ActorId,
    /// The operator's client certificate (registered).
    pub operator_cert: Issued,
    pub dir: tempfile::TempDir,
    /// The service's count of refusals at the edge.
    pub edge: shardkeep_grpc::EdgeRefusals,
    next_seed: std::sync::atomic::AtomicU8,
    shutdown: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: std::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), shardkeep_grpc::Error>>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

/// 2026-01-01T00:00:00Z.
pub fn start_time() -> Timestamp {
    Timestamp::from_unix_seconds(1_767_225_600).unwrap()
}

impl Served {
    /// A service with a bootstrapped security person and an operator whose
    /// client certificate is registered, served on a fresh loopback port.
    pub async fn start(targets: Arc<dyn RecoveryTargets>) -> Self {
        Self::start_with(targets, |grpc| grpc).await
    }

    /// As [`start`](Self::start), with the gRPC service configured by
    /// `configure` before it is served.
    pub async fn start_with(
        targets: Arc<dyn RecoveryTargets>,
        configure: impl FnOnce(GrpcService<SqliteStorage>) -> GrpcService<SqliteStorage>,
    ) -> Self {
        Self::start_full(targets, configure, |_| {}).await
    }

    /// As [`start`](Self::start), with the procedure's configuration
    /// changed by `service_config` first.
    pub async fn start_configured(
        targets: Arc<dyn RecoveryTargets>,
        service_config: impl FnOnce(&mut ServiceConfig),
    ) -> Self {
        Self::start_all(targets, service_config, |grpc| grpc, |_| {}).await
    }

    /// As [`start_with`](Self::start_with), with the server's
    /// configuration changed by `server_config` too.
    pub async fn start_full(
        targets: Arc<dyn RecoveryTargets>,
        configure: impl FnOnce(GrpcService<SqliteStorage>) -> GrpcService<SqliteStorage>,
        server_config: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        Self::start_all(targets, |_| {}, configure, server_config).await
    }

    async fn start_all(
        targets: Arc<dyn RecoveryTargets>,
        service_config: impl FnOnce(&mut ServiceConfig),
        configure: impl FnOnce(GrpcService<SqliteStorage>) -> GrpcService<SqliteStorage>,
        server_config: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
            .await
            .unwrap();
        let clock = Arc::new(FixedClock::new(start_time()));
        let keks = Arc::new(
            LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-1").unwrap()).unwrap(),
        );
        let signer = Arc::new(InMemorySigner::from_seed(
            SignerId::new("backup-server-1").unwrap(),
            &[0x5e; 32],
        ));
        let mut config = ServiceConfig::new(Label::new("test").unwrap(), Label::new("r1").unwrap());
        service_config(&mut config);
        let parts = ServiceParts::new(
            storage,
            config,
            keks,
            signer.clone(),
            clock.clone(),
            Box::new(ChaCha20Rng::from_seed([42; 32])),
        );
        let service = BackupService::new(parts).unwrap();

        let ca = TestCa::new("shardkeep test client CA");
        let tls = ca.server_tls();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let grpc = configure(GrpcService::new(service.clone(), targets));
        let edge = grpc.edge_refusals();
        let mut config = ServerConfig::new(addr, tls);
        server_config(&mut config);
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(shardkeep_grpc::serve_on(listener, config, grpc, async {
            let _ = signal.await;
        }));

        let operator_cert = ca.client("ops-1");
        let served = Self {
            service,
            clock,
            signer,
            ca,
            addr,
            security: actor("sec-1"),
            operator: actor("ops-1"),
            operator_cert,
            dir,
            edge,
            next_seed: std::sync::atomic::AtomicU8::new(1),
            shutdown: std::sync::Mutex::new(Some(shutdown)),
            server: std::sync::Mutex::new(Some(server)),
        };
        served
            .service
            .register_person(
                &served.security,
                served.person(&served.security, &[Role::Security], None),
            )
            .await
            .unwrap();
        served
            .service
            .register_person(
                &served.security,
                served.person(
                    &served.operator,
                    &[Role::Operator],
                    Some(served.operator_cert.fingerprint),
                ),
            )
            .await
            .unwrap();
        served
    }

    /// Signals the server to shut down.
    pub fn shut_down(&self) {
        if let Some(shutdown) = self.shutdown.lock().unwrap().take() {
            shutdown.send(()).unwrap();
        }
    }

    /// What the server returned, once it has.
    pub async fn server_result(&self) -> Result<(), shardkeep_grpc::Error> {
        let server = self.server.lock().unwrap().take().unwrap();
        server.await.unwrap()
    }

    /// A channel over mutual TLS with the operator's certificate.
    pub async fn operator_channel(&self) -> Channel {
        self.channel(Some(self.operator_cert.identity()))
            .await
            .unwrap()
    }

    fn seed(&self) -> u8 {
        self.next_seed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// A fresh ed25519 signer (seeded, distinct per call).
    pub fn signing_key(&self) -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("person-key").unwrap(), &[self.seed(); 32])
    }

    /// A registration with a fresh approval key and, if given, the TLS
    /// fingerprint of the person's client certificate.
    pub fn person(
        &self,
        id: &ActorId,
        roles: &[Role],
        tls: Option<CertificateFingerprint>,
    ) -> PersonRegistration {
        PersonRegistration {
            id: id.clone(),
            display_name: text(id.as_str()),
            roles: roles.iter().copied().collect::<RoleSet>(),
            keys: PersonKeys {
                approval_key: Some(self.signing_key().verifying_key().to_bytes()),
                tls_fingerprint: tls.map(|fingerprint| fingerprint.0),
                ..PersonKeys::default()
            },
        }
    }

    /// Registers `name` with `roles` and a client certificate of the CA;
    /// returns the certificate.
    pub async fn register_client(&self, name: &str, roles: &[Role]) -> Issued {
        let cert = self.ca.client(name);
        self.service
            .register_person(
                &self.security,
                self.person(&actor(name), roles, Some(cert.fingerprint)),
            )
            .await
            .unwrap();
        cert
    }

    /// Registers `name` with `roles`, an approval key and a client
    /// certificate; returns both.
    pub async fn register_signing_client(
        &self,
        name: &str,
        roles: &[Role],
    ) -> (Issued, InMemorySigner) {
        let key = self.signing_key();
        let cert = self.ca.client(name);
        let mut registration = self.person(&actor(name), roles, Some(cert.fingerprint));
        registration.keys.approval_key = Some(key.verifying_key().to_bytes());
        self.service
            .register_person(&self.security, registration)
            .await
            .unwrap();
        (cert, key)
    }

    /// Registers approver `name` with `role` (an approval key and a client
    /// certificate); returns them with a client over that certificate.
    pub async fn register_approver(&self, name: &str, role: Role) -> Approver {
        let (cert, key) = self.register_signing_client(name, &[role]).await;
        Approver {
            name: actor(name),
            role,
            key: Arc::new(key),
            client: self.client(Some(cert.identity())).await.unwrap(),
        }
    }

    /// Custodian `custodian`'s submission of `container` to `descriptor`
    /// (see [`submission`]).
    pub fn submission(
        &self,
        custodian: &TestCustodian,
        descriptor: &[u8],
        container: &[u8],
    ) -> Vec<u8> {
        submission(
            custodian,
            descriptor,
            self.signer.as_ref(),
            shardkeep_backup::Clock::now(self.clock.as_ref()),
            container,
        )
    }

    /// Each custodian's submission of their container of `generated` to
    /// `descriptor` (see [`submissions`]).
    pub fn submissions(
        &self,
        custodians: &[TestCustodian],
        generated: &Generated,
        descriptor: &[u8],
    ) -> Vec<Vec<u8>> {
        submissions(
            custodians,
            generated,
            descriptor,
            self.signer.as_ref(),
            shardkeep_backup::Clock::now(self.clock.as_ref()),
        )
    }

    /// A client of the operator's certificate.
    pub async fn operator_client(&self) -> BackupServiceClient<Channel> {
        self.client(Some(self.operator_cert.identity()))
            .await
            .unwrap()
    }

    /// A client over mutual TLS presenting `identity` (none: no client
    /// certificate at all).
    pub async fn client(
        &self,
        identity: Option<Identity>,
    ) -> Result<BackupServiceClient<Channel>, tonic::transport::Error> {
        Ok(BackupServiceClient::new(self.channel(identity).await?)
            .max_encoding_message_size(usize::MAX)
            .max_decoding_message_size(usize::MAX))
    }

    /// A channel over mutual TLS presenting `identity`.
    pub async fn channel(
        &self,
        identity: Option<Identity>,
    ) -> Result<Channel, tonic::transport::Error> {
        connect(&self.ca, self.addr.port(), identity).await
    }

    /// Registers a custodian person (age recipient and receipt key) and an
    /// entity for them.
    pub async fn custodian(&self, name: &str) -> TestCustodian {
        let person = actor(&format!("{name}-contact"));
        let identity = shardkeep_envelope::deps::age::x25519::Identity::generate();
        let receipt_key = self.signing_key();
        let mut registration = self.person(&person, &[Role::Custodian], None);
        registration.keys.receipt_key = Some(receipt_key.verifying_key().to_bytes());
        registration.keys.age_recipient = Some(identity.to_public().to_string());
        self.service
            .register_person(&self.security, registration)
            .await
            .unwrap();
        let entity = CustodianId::new(name).unwrap();
        self.service
            .register_entity(
                &self.security,
                EntityRegistration {
                    id: entity.clone(),
                    display_name: text(name),
                    contact: text(&format!("{name} desk, +1 555 0100")),
                    members: vec![person.clone()],
                },
            )
            .await
            .unwrap();
        TestCustodian {
            entity,
            person,
            identity,
            receipt_key,
        }
    }

    /// Sets the hybrid policy (3 of 5, 2 on the server, local key file
    /// KEKs) as the first policy.
    pub async fn set_hybrid_policy(&self) {
        self.service
            .set_policy(&self.security, hybrid_policy())
            .await
            .unwrap();
    }

    /// Hybrid mode (3 of 5, 2 on the server, local key file KEKs), three
    /// custodians, and a backup of party 0's secp256k1 share of `key`.
    pub async fn generate_hybrid(&self, key: &str) -> (Generated, Vec<TestCustodian>) {
        self.generate_hybrid_of(key, Protocol::Ecdsa, 0).await
    }

    /// [`generate_hybrid`](Self::generate_hybrid) of party `party`'s share
    /// of `protocol`'s fixture.
    pub async fn generate_hybrid_of(
        &self,
        key: &str,
        protocol: Protocol,
        party: usize,
    ) -> (Generated, Vec<TestCustodian>) {
        let policy_set = self
            .service
            .current_policy(&self.security)
            .await
            .unwrap()
            .is_some();
        if !policy_set {
            self.set_hybrid_policy().await;
        }
        let mut custodians = Vec::new();
        for i in 0..3 {
            custodians.push(self.custodian(&format!("{key}-cust-{i}")).await);
        }
        let data = save_data_of(protocol, party);
        let generated = self
            .service
            .generate(
                &self.operator,
                GenerateRequest {
                    key_id: KeyId::new(key).unwrap(),
                    node_id: NodeId::new("node-0").unwrap(),
                    save_data: SaveDataSource::Loaded(&data),
                    group: TSS_GROUP,
                    custodians: custodians.iter().map(TestCustodian::choice).collect(),
                    armor: Armor::Binary,
                },
            )
            .await
            .unwrap();
        (generated, custodians)
    }
}

/// The hybrid policy: 3 of 5, 2 on the server, local key file KEKs.
pub fn hybrid_policy() -> PolicySettings {
    PolicySettings {
        threshold: Threshold::new(3, 5).unwrap(),
        server_shares: 2,
        kek_provider: Label::new("local-key-file").unwrap(),
    }
}

/// A channel over mutual TLS to the server on loopback `port`, its
/// certificate checked against `ca`, presenting `identity` (none: no
/// client certificate at all).
pub async fn connect(
    ca: &TestCa,
    port: u16,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(channel)
}

/// Custodian `custodian`'s submission of `container` to `descriptor` at
/// `now`, made as their tool makes it (the descriptor verified against
/// `service`'s key).
pub fn submission(
    custodian: &TestCustodian,
    descriptor: &[u8],
    service: &dyn Signer,
    now: Timestamp,
    container: &[u8],
) -> Vec<u8> {
    let identities = [custodian.identity.clone()];
    shardkeep_backup::CustodianCredentials {
        custodian: &custodian.entity,
        person: &custodian.person,
        identities: &identities,
        receipt_signer: &custodian.receipt_key,
    }
    .recovery_submission(descriptor, &service.verifying_key(), now, container)
    .unwrap()
}

/// Each of `custodians`' submission of their container of `generated` (in
/// the same order) to `descriptor`, as [`submission`] makes it.
pub fn submissions(
    custodians: &[TestCustodian],
    generated: &Generated,
    descriptor: &[u8],
    service: &dyn Signer,
    now: Timestamp,
) -> Vec<Vec<u8>> {
    custodians
        .iter()
        .zip(&generated.containers)
        .map(|(custodian, container)| {
            submission(custodian, descriptor, service, now, &container.container)
        })
        .collect()
}

/// Share `index` of `version` as the wire names it.
pub fn wire_slot(version: &NodeVersion, index: shardkeep_types::ShareIndex) -> proto::ShareSlot {
    proto::ShareSlot {
        version: Some(wire_version(version)),
        index: u32::from(index.get()),
    }
}

/// A client of the backup service.
pub type Client = BackupServiceClient<Channel>;

/// `version` as the wire names it.
pub fn wire_version(version: &NodeVersion) -> proto::NodeVersion {
    proto::NodeVersion {
        key_id: version.key_id.as_str().to_owned(),
        node_id: version.node_id.as_str().to_owned(),
        version: version.version.get(),
    }
}

/// A person who approves: their name, role and approval key, and a client
/// over their own certificate.
pub struct Approver {
    pub name: ActorId,
    pub role: Role,
    pub key: Arc<InMemorySigner>,
    pub client: Client,
}

impl Approver {
    /// Their signed approval of `request` (an approval request's bytes),
    /// encoded.
    pub fn sign(&self, request: &[u8]) -> Vec<u8> {
        sign_approval(request, &self.name, self.role, self.key.as_ref())
            .unwrap()
            .encode()
    }

    /// Signs `request` and submits the approval over their own
    /// certificate; returns the request's state after it.
    pub async fn approve(&mut self, request: &[u8]) -> SubmitApprovalResponse {
        let approval = self.sign(request);
        self.client
            .submit_approval(SubmitApprovalRequest { approval })
            .await
            .unwrap()
            .into_inner()
    }
}

/// `client` asks for approval of `params`; each of `approvers` approves,
/// in order, and together they satisfy the policy (checked). Returns the
/// request's hash.
pub async fn approved_request<'a>(
    client: &mut Client,
    params: proto::ApprovalParams,
    approvers: impl IntoIterator<Item = &'a mut Approver>,
) -> Vec<u8> {
    let asked = client
        .request_approval(RequestApprovalRequest {
            params: Some(params),
        })
        .await
        .unwrap()
        .into_inner();
    let mut satisfied = false;
    for approver in approvers {
        satisfied = approver.approve(&asked.request).await.satisfied;
    }
    assert!(satisfied, "the approvals do not satisfy the policy");
    asked.request_hash
}

/// What an operator names for a recovery or a drill, the same in its
/// approval request and in the request that starts it: the version, its
/// split, the keystore directory (none for a drill), the ticket and the
/// risk note's hash.
pub struct SessionOrder {
    pub operation: proto::ApprovalOperation,
    pub version: proto::NodeVersion,
    pub split_id: Vec<u8>,
    pub target: String,
    pub ticket: String,
    pub risk_note_hash: Vec<u8>,
}

impl SessionOrder {
    /// A recovery of `generated` into `keystore_dir` under `ticket` (the
    /// risk note's hash is `0x77` repeated).
    pub fn recovery(generated: &Generated, keystore_dir: &Path, ticket: &str) -> Self {
        Self {
            operation: proto::ApprovalOperation::Recover,
            version: wire_version(&generated.version),
            split_id: generated.split_id.to_vec(),
            target: keystore_dir.display().to_string(),
            ticket: ticket.to_owned(),
            risk_note_hash: vec![0x77; 32],
        }
    }

    /// A drill of `generated` under `ticket`, the risk note's hash `risk`
    /// repeated.
    pub fn drill(generated: &Generated, ticket: &str, risk: u8) -> Self {
        Self {
            operation: proto::ApprovalOperation::Drill,
            version: wire_version(&generated.version),
            split_id: generated.split_id.to_vec(),
            target: String::new(),
            ticket: ticket.to_owned(),
            risk_note_hash: vec![risk; 32],
        }
    }

    /// What its approval request asks for.
    pub fn approval_params(&self) -> proto::ApprovalParams {
        proto::ApprovalParams {
            operation: self.operation.into(),
            version: Some(self.version.clone()),
            split_id: self.split_id.clone(),
            target: self.target.clone(),
            ticket: self.ticket.clone(),
            risk_note_hash: self.risk_note_hash.clone(),
            ..proto::ApprovalParams::default()
        }
    }

    /// The recovery's start, on the approval request `approval_request_hash`
    /// (server shares not allowed).
    pub fn start_recovery(&self, approval_request_hash: Vec<u8>) -> StartRecoveryRequest {
        StartRecoveryRequest {
            approval_request_hash,
            version: Some(self.version.clone()),
            target: self.target.clone(),
            allow_server_shares: false,
            ticket: self.ticket.clone(),
            risk_note_hash: self.risk_note_hash.clone(),
        }
    }

    /// The drill's start, on the approval request `approval_request_hash`.
    pub fn start_drill(&self, approval_request_hash: Vec<u8>) -> StartDrillRequest {
        StartDrillRequest {
            approval_request_hash,
            version: Some(self.version.clone()),
            ticket: self.ticket.clone(),
            risk_note_hash: self.risk_note_hash.clone(),
        }
    }
}

/// The request that backs up `keystore` (written for version 1 of
/// `wallet/node-0`) to `custodians`, as the tss-lib fixtures' group, in
/// binary containers.
pub fn generate_request(
    keystore: &Path,
    custodians: &[TestCustodian],
) -> proto::GenerateBackupRequest {
    proto::GenerateBackupRequest {
        key_id: "wallet".into(),
        node_id: "node-0".into(),
        keystore_path: keystore.to_str().unwrap().into(),
        keystore_written_for: Some(proto::NodeVersion {
            key_id: "wallet".into(),
            node_id: "node-0".into(),
            version: 1,
        }),
        tss_degree: TSS_GROUP.tss_degree.into(),
        parties: TSS_GROUP.parties.into(),
        custodians: custodians
            .iter()
            .map(|custodian| proto::ExternalCustodian {
                entity: custodian.entity.as_str().into(),
                person: custodian.person.as_str().into(),
            })
            .collect(),
        armor: false,
    }
}

//! What the backup service tests share: the tss-lib fixtures (through
//! `shardkeep-test-support`'s one loader), a service on a given storage with
//! real components (the local KEK store, an in-memory envelope signer, a
//! fixed clock, a seeded generator), registered persons and custodians, and
//! receipts.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod approvals;
pub mod approver_set;
pub mod audit_review;
pub mod checklist;
pub mod deletion;
pub mod inspect;
pub mod recovery;
pub mod rotation;
pub mod scenario;

use std::sync::{Arc, OnceLock};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    Armor, BackupService, CustodianCredentials, EntityRegistration, ExternalCustodian, FixedClock,
    GenerateRequest, Generated, PersonKeys, PersonRegistration, PolicySettings, Role, RoleSet,
    SaveDataSource, ServiceConfig, ServiceParts, TssGroup,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{Receipt, ReceiptStatus};
use shardkeep_keydata::LocalPartySaveData;
use shardkeep_kms::{LocalKeyStore, SlotKekProvider};
use shardkeep_storage::{AuditStore, Storage, Transaction};
pub use shardkeep_test_support::tss_lib::Protocol;
use shardkeep_test_support::tss_lib::fixture_bytes;
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, InMemorySigner, KekId, KeyId, Label, NodeId,
    Signer, SignerId, Threshold, Timestamp,
};
use zeroize::Zeroizing;

/// The tss-lib fixtures' group: 5 parties, polynomial degree 2 (3 sign).
pub const TSS_GROUP: TssGroup = TssGroup {
    tss_degree: 2,
    parties: 5,
};

/// The save data JSON of `party` (0 to 4), in a buffer wiped on drop, read
/// through the workspace's one fixture loader.
pub fn fixture_json(protocol: Protocol, party: usize) -> Zeroizing<Vec<u8>> {
    fixture_bytes(protocol, party).unwrap()
}

/// The parsed save data of `party`.
/// Held for reading while a recovery or drill of party 0 self-tests, and
/// for writing while a test holds another party's save data in this
/// process: the service refuses to self-test with other parties' secrets
/// of the group loaded (`Error::OtherPartySecretsLoaded`), and the tests
/// of a binary run in parallel.
pub fn other_party_secrets() -> &'static tokio::sync::RwLock<()> {
    static LOCK: OnceLock<tokio::sync::RwLock<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::RwLock::new(()))
}

pub fn save_data(protocol: Protocol, party: usize) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&fixture_json(protocol, party)).unwrap()
}

pub fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

pub fn text<const MAX: usize>(text: &str) -> FreeText<MAX> {
    FreeText::new(text).unwrap()
}

/// 2026-01-01T00:00:00Z.
pub fn start_time() -> Timestamp {
    Timestamp::from_unix_seconds(1_767_225_600).unwrap()
}

/// The service's envelope and descriptor signer (from a fixed seed: a
/// process that reopens a harness's database signs with it too).
pub fn service_signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("backup-server-1").unwrap(), &[0x5e; 32])
}

/// A custodian entity with one person acting for it, and the secrets that
/// person keeps (their age identity and receipt key).
pub struct TestCustodian {
    pub entity: CustodianId,
    pub person: ActorId,
    pub identity: age::x25519::Identity,
    pub receipt_key: InMemorySigner,
}

impl TestCustodian {
    pub fn choice(&self) -> ExternalCustodian {
        ExternalCustodian {
            entity: self.entity.clone(),
            person: self.person.clone(),
        }
    }

    /// What this custodian's tool acts with, holding `identities` (this
    /// custodian's own, or others beside it).
    pub fn credentials<'a>(
        &'a self,
        identities: &'a [age::x25519::Identity],
    ) -> CustodianCredentials<'a> {
        CustodianCredentials {
            custodian: &self.entity,
            person: &self.person,
            identities,
            receipt_signer: &self.receipt_key,
        }
    }

    /// A receipt for `envelope_id` signed with this custodian's key.
    pub fn receipt(&self, envelope_id: EnvelopeId, at: Timestamp) -> Vec<u8> {
        sign_receipt(&self.entity, envelope_id, &self.receipt_key, at)
    }
}

/// A receipt naming `custodian`, signed by `key`.
pub fn sign_receipt(
    custodian: &CustodianId,
    envelope_id: EnvelopeId,
    key: &dyn Signer,
    at: Timestamp,
) -> Vec<u8> {
    Receipt {
        custodian_id: custodian.clone(),
        envelope_id,
        status: ReceiptStatus::Received,
        timestamp: at,
    }
    .sign(key)
    .unwrap()
}

/// A service over `storage` with the real local KEK store in a temporary
/// directory, an in-memory envelope signer, a fixed clock and a seeded
/// generator; a bootstrapped security person and an operator.
pub struct Harness<S: Storage> {
    pub service: BackupService<S>,
    pub clock: Arc<FixedClock>,
    pub keks: Arc<LocalKeyStore>,
    pub signer: Arc<InMemorySigner>,
    pub security: ActorId,
    pub operator: ActorId,
    pub dir: tempfile::TempDir,
    next_seed: std::sync::atomic::AtomicU8,
}

impl<S: Storage> Harness<S> {
    /// A service with a bootstrapped security person and an operator.
    pub async fn new(storage: S, dir: tempfile::TempDir) -> Self {
        Self::with_config(storage, dir, |_| {}).await
    }

    /// As [`Harness::new`], with the configuration changed by `configure`
    /// (rate limits, anomaly thresholds).
    pub async fn with_config(
        storage: S,
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Self {
        let harness = Self::build_with(storage, dir, configure, |keks| keks);
        harness.bootstrap().await;
        harness
    }

    /// A service whose KEK provider is `wrap` of the local key store, with
    /// an empty registry.
    pub fn build(
        storage: S,
        dir: tempfile::TempDir,
        wrap: impl FnOnce(Arc<LocalKeyStore>) -> Arc<dyn SlotKekProvider>,
    ) -> Self {
        Self::build_with(storage, dir, |_| {}, wrap)
    }

    fn build_with(
        storage: S,
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut ServiceConfig),
        wrap: impl FnOnce(Arc<LocalKeyStore>) -> Arc<dyn SlotKekProvider>,
    ) -> Self {
        let clock = Arc::new(FixedClock::new(start_time()));
        let keks = Arc::new(
            LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-1").unwrap()).unwrap(),
        );
        let signer = Arc::new(service_signer());
        let mut config = ServiceConfig::new(Label::new("test").unwrap(), Label::new("r1").unwrap());
        configure(&mut config);
        let parts = ServiceParts::new(
            storage,
            config,
            wrap(keks.clone()),
            signer.clone(),
            clock.clone(),
            Box::new(ChaCha20Rng::from_seed([42; 32])),
        );
        Self {
            service: BackupService::new(parts).unwrap(),
            clock,
            keks,
            signer,
            security: actor("sec-1"),
            operator: actor("ops-1"),
            dir,
            next_seed: std::sync::atomic::AtomicU8::new(1),
        }
    }

    /// Another instance of the service on the same storage, keys, signer
    /// and clock, named `replica` (a second replica, or this one after a
    /// restart when named like it).
    pub fn replica(&self, replica: &str) -> BackupService<S>
    where
        S: Clone,
    {
        let config = ServiceConfig::new(Label::new("test").unwrap(), Label::new(replica).unwrap());
        let parts = ServiceParts::new(
            self.service.storage().clone(),
            config,
            self.keks.clone(),
            self.signer.clone(),
            self.clock.clone(),
            Box::new(ChaCha20Rng::from_seed([43; 32])),
        );
        BackupService::new(parts).unwrap()
    }

    /// Registers the security person (bootstrap) and the operator.
    pub async fn bootstrap(&self) {
        self.service
            .register_person(
                &self.security,
                self.person(&self.security, &[Role::Security]),
            )
            .await
            .unwrap();
        self.service
            .register_person(
                &self.security,
                self.person(&self.operator, &[Role::Operator]),
            )
            .await
            .unwrap();
    }

    /// The service's clock.
    pub fn clock_now(&self) -> Timestamp {
        shardkeep_backup::Clock::now(self.clock.as_ref())
    }

    fn seed(&self) -> u8 {
        self.next_seed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// A registration with a fresh approval key and no other key.
    pub fn person(&self, id: &ActorId, roles: &[Role]) -> PersonRegistration {
        PersonRegistration {
            id: id.clone(),
            display_name: text(id.as_str()),
            roles: roles.iter().copied().collect::<RoleSet>(),
            keys: PersonKeys {
                approval_key: Some(self.signing_key().verifying_key().to_bytes()),
                ..PersonKeys::default()
            },
        }
    }

    /// A fresh ed25519 signer (seeded, distinct per call).
    pub fn signing_key(&self) -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("person-key").unwrap(), &[self.seed(); 32])
    }

    /// Changes the policy in force as the procedure demands: the security
    /// person asks, a second security person (`change-sec`) and a business
    /// owner (`change-biz`), registered here, approve.
    pub async fn change_policy(
        &self,
        settings: PolicySettings,
    ) -> Result<shardkeep_backup::CurrentPolicy, shardkeep_backup::Error> {
        let policy = shardkeep_backup::Policy::new(
            settings.threshold,
            settings.server_shares,
            settings.kek_provider.clone(),
        )?;
        let params = shardkeep_backup::ApprovalParams {
            operation: shardkeep_storage::ApprovalOperation::PolicyChange,
            subject: None,
            target: None,
            allow_server_shares: false,
            slots: Vec::new(),
            change_hash: Some(policy.hash()),
            ticket: text("CHG-1"),
            risk_note_hash: [0x3c; 32],
        };
        let request = self
            .service
            .request_approval(&self.security, params)
            .await?;
        let encoded = request.encode()?;
        for (name, role) in [
            ("change-sec", Role::Security),
            ("change-biz", Role::BusinessOwner),
        ] {
            let approver = actor(name);
            let key = self.signing_key();
            let mut registration = self.person(&approver, &[role]);
            registration.keys.approval_key = Some(key.verifying_key().to_bytes());
            self.service
                .register_person(&self.security, registration)
                .await?;
            let approval = shardkeep_backup::sign_approval(&encoded, &approver, role, &key)?;
            self.service
                .submit_approval(&approver, &approval.encode())
                .await?;
        }
        self.service
            .set_policy_approved(
                &self.security,
                settings,
                &request.hash()?,
                text("CHG-1"),
                [0x3c; 32],
            )
            .await
    }

    /// Delivers every container of `generated`, and confirms the first
    /// `receipts` of them, a minute apart, each with its custodian's
    /// receipt (`custodians` in container order).
    pub async fn deliver_and_confirm(
        &self,
        generated: &Generated,
        custodians: &[TestCustodian],
        receipts: usize,
    ) {
        for (i, (container, custodian)) in generated.containers.iter().zip(custodians).enumerate() {
            let slot = generated.version.slot(container.index);
            self.service
                .deliver(
                    &self.operator,
                    shardkeep_backup::DeliveryReport {
                        slot: slot.clone(),
                        container_hash: container.container_hash,
                        result: shardkeep_backup::DeliveryResult::Sent,
                    },
                )
                .await
                .unwrap();
            if i < receipts {
                self.clock.advance(std::time::Duration::from_secs(60));
                let receipt = custodian.receipt(container.envelope_id, self.clock_now());
                self.service
                    .confirm(&self.operator, &slot, &receipt)
                    .await
                    .unwrap();
            }
        }
    }

    /// Registers a custodian person (age recipient and receipt key) and an
    /// entity for them.
    pub async fn custodian(&self, name: &str) -> TestCustodian {
        self.custodian_shown_as(name, name, &format!("{name} desk, +1 555 0100"))
            .await
    }

    /// [`custodian`](Self::custodian), its entity shown with
    /// `display_name` and `contact`.
    pub async fn custodian_shown_as(
        &self,
        name: &str,
        display_name: &str,
        contact: &str,
    ) -> TestCustodian {
        let person = actor(&format!("{name}-contact"));
        let identity = age::x25519::Identity::generate();
        let receipt_key = self.signing_key();
        let mut registration = self.person(&person, &[Role::Custodian]);
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
                    display_name: text(display_name),
                    contact: text(contact),
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

    /// `count` custodians named `{prefix}-{i}`.
    pub async fn custodians(&self, prefix: &str, count: usize) -> Vec<TestCustodian> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            out.push(self.custodian(&format!("{prefix}-{i}")).await);
        }
        out
    }

    /// Sets hybrid mode: 3 of 5, 2 on the server, local key file KEKs.
    pub async fn hybrid_policy(&self) {
        self.service
            .set_policy(
                &self.security,
                PolicySettings {
                    threshold: Threshold::new(3, 5).unwrap(),
                    server_shares: 2,
                    kek_provider: Label::new("local-key-file").unwrap(),
                },
            )
            .await
            .unwrap();
    }

    /// Generates a backup of `party`'s share of `key`.
    pub async fn generate(
        &self,
        protocol: Protocol,
        key: &str,
        party: usize,
        custodians: &[&TestCustodian],
    ) -> Result<Generated, shardkeep_backup::Error> {
        let _other_party = if party == 0 {
            None
        } else {
            Some(other_party_secrets().write().await)
        };
        let data = save_data(protocol, party);
        self.service
            .generate(
                &self.operator,
                request(
                    key,
                    party,
                    SaveDataSource::Loaded(&data),
                    custodians,
                    Armor::Binary,
                ),
            )
            .await
    }

    /// The audit log verifies: checkpointed now to the witness file
    /// `witness` under `key`, exported, and verified against every
    /// checkpoint of that witness (the chain recomputed from genesis, each
    /// checkpoint's signature checked, nothing left unwitnessed). Every
    /// scenario ends with it.
    pub async fn verify_audit_with(&self, key: &InMemorySigner, witness: &std::path::Path) {
        let storage = self.service.storage();
        let mut file = shardkeep_audit::FileWitness::open(witness).unwrap();
        shardkeep_audit::checkpoint(storage, key, &mut file, self.clock_now())
            .await
            .unwrap();
        let mut exported = Vec::new();
        shardkeep_audit::export(storage, &mut exported)
            .await
            .unwrap();
        let export = shardkeep_audit::parse_export(&exported).unwrap();
        let checkpoints = shardkeep_audit::read_witness(witness).unwrap();
        let verified =
            shardkeep_audit::verify(&export, &checkpoints, &key.verifying_key()).unwrap();
        assert_eq!(verified.unwitnessed, 0);
        assert_eq!(verified.records, export.rows.len() as u64);
    }

    /// [`verify_audit_with`](Self::verify_audit_with) the service's signer
    /// and a witness file in the harness's directory.
    pub async fn verify_audit(&self) {
        let witness = self.dir.path().join("harness.witness");
        self.verify_audit_with(&self.signer, &witness).await;
    }

    /// Every audit record, decoded, in order.
    pub async fn audit_records(&self) -> Vec<shardkeep_audit::AuditRecord> {
        let mut tx = self.service.storage().begin_read_only().await.unwrap();
        let rows = tx.read_audit(1, 10_000).await.unwrap();
        tx.rollback().await.unwrap();
        rows.iter()
            .map(|row| shardkeep_audit::AuditRecord::decode(&row.record).unwrap())
            .collect()
    }
}

/// A generate request for `party` of `key` (node `node-{party}`).
pub fn request<'a>(
    key: &str,
    party: usize,
    save_data: SaveDataSource<'a>,
    custodians: &[&TestCustodian],
    armor: Armor,
) -> GenerateRequest<'a> {
    GenerateRequest {
        key_id: KeyId::new(key).unwrap(),
        node_id: NodeId::new(format!("node-{party}")).unwrap(),
        save_data,
        group: TSS_GROUP,
        custodians: custodians.iter().map(|c| c.choice()).collect(),
        armor,
    }
}

//! The deployment the benches measure on: a service on SQLite with the
//! local key store, a security person, a business owner (both with approval
//! keys), an operator, three custodians (each in an entity of their own,
//! with a receipt key and an age identity) and the hybrid policy (3 of 5, 2
//! server shares).
#![allow(
    dead_code,
    reason = "each bench uses its own part of the deployment (generate never proves inventory)"
)]

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    BackupService, EntityRegistration, ExternalCustodian, FixedClock, PersonKeys,
    PersonRegistration, PolicySettings, Role, ServiceConfig, ServiceParts,
};
use shardkeep_envelope::deps::age;
use shardkeep_kms::LocalKeyStore;
use shardkeep_storage::SqliteStorage;
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemorySigner, KekId, Label, Signer, SignerId, Threshold,
    Timestamp,
};

pub(crate) fn actor(name: &str) -> ActorId {
    ActorId::new(name).unwrap()
}

/// A custodian: its entity and person, and the secrets the person keeps.
pub(crate) struct Custodian {
    pub entity: CustodianId,
    pub person: ActorId,
    pub identity: age::x25519::Identity,
    pub receipt_key: InMemorySigner,
}

impl Custodian {
    /// How generate names this custodian.
    pub(crate) fn external(&self) -> ExternalCustodian {
        ExternalCustodian {
            entity: self.entity.clone(),
            person: self.person.clone(),
        }
    }
}

pub(crate) struct Deployment {
    pub runtime: tokio::runtime::Runtime,
    pub service: BackupService<SqliteStorage>,
    pub security: ActorId,
    /// The security person's approval key.
    pub security_key: InMemorySigner,
    pub business_owner: ActorId,
    /// The business owner's approval key.
    pub business_key: InMemorySigner,
    pub operator: ActorId,
    /// The key the service signs envelopes and session descriptors with.
    pub service_key: InMemorySigner,
    pub custodians: Vec<Custodian>,
    /// The service's fixed clock.
    pub now: Timestamp,
    pub dir: tempfile::TempDir,
}

/// The deployment, with `configure` applied to the service's default
/// configuration first.
pub(crate) fn deployment(configure: impl FnOnce(&mut ServiceConfig)) -> Deployment {
    let runtime = shardkeep_test_support::runtime::current_thread();
    let dir = tempfile::tempdir().unwrap();
    let storage = runtime
        .block_on(SqliteStorage::open(dir.path().join("bench.sqlite")))
        .unwrap();
    let keks =
        LocalKeyStore::create(dir.path().join("kms"), KekId::new("master").unwrap()).unwrap();
    let signer = service_key();
    let mut config = ServiceConfig::new(Label::new("bench").unwrap(), Label::new("r1").unwrap());
    configure(&mut config);
    let now = Timestamp::from_unix_seconds(1_767_225_600).unwrap();
    let parts = ServiceParts::new(
        storage,
        config,
        Arc::new(keks),
        Arc::new(signer),
        Arc::new(FixedClock::new(now)),
        Box::new(ChaCha20Rng::from_seed([1; 32])),
    );
    let service = BackupService::new(parts).unwrap();
    let security = actor("sec");
    let business_owner = actor("biz");
    let operator = actor("ops");
    let person = |id: &ActorId, role: Role, keys: PersonKeys| PersonRegistration {
        id: id.clone(),
        display_name: FreeText::new(id.as_str()).unwrap(),
        roles: [role].into_iter().collect(),
        keys,
    };
    let approver = |seed: u8| PersonKeys {
        approval_key: Some(key(seed).verifying_key().to_bytes()),
        ..PersonKeys::default()
    };
    let custodians = runtime.block_on(async {
        service
            .register_person(&security, person(&security, Role::Security, approver(10)))
            .await
            .unwrap();
        service
            .register_person(&security, person(&operator, Role::Operator, approver(11)))
            .await
            .unwrap();
        service
            .register_person(
                &security,
                person(&business_owner, Role::BusinessOwner, approver(12)),
            )
            .await
            .unwrap();
        let mut custodians = Vec::new();
        for i in 0..3u8 {
            let id = actor(&format!("custodian-{i}"));
            let identity = age::x25519::Identity::generate();
            let receipt_key = key(20 + i);
            let keys = PersonKeys {
                receipt_key: Some(receipt_key.verifying_key().to_bytes()),
                age_recipient: Some(identity.to_public().to_string()),
                ..PersonKeys::default()
            };
            service
                .register_person(&security, person(&id, Role::Custodian, keys))
                .await
                .unwrap();
            let entity = CustodianId::new(format!("entity-{i}")).unwrap();
            service
                .register_entity(
                    &security,
                    EntityRegistration {
                        id: entity.clone(),
                        display_name: FreeText::new("entity").unwrap(),
                        contact: FreeText::new("desk").unwrap(),
                        members: vec![id.clone()],
                    },
                )
                .await
                .unwrap();
            custodians.push(Custodian {
                entity,
                person: id,
                identity,
                receipt_key,
            });
        }
        service
            .set_policy(
                &security,
                PolicySettings {
                    threshold: Threshold::new(3, 5).unwrap(),
                    server_shares: 2,
                    kek_provider: Label::new("local-key-file").unwrap(),
                },
            )
            .await
            .unwrap();
        custodians
    });
    Deployment {
        runtime,
        service,
        security,
        security_key: key(10),
        business_owner,
        business_key: key(12),
        operator,
        service_key: service_key(),
        custodians,
        now,
        dir,
    }
}

/// A person's key, from its seed.
fn key(seed: u8) -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("k").unwrap(), &[seed; 32])
}

/// The service's envelope and descriptor signer.
fn service_key() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("backup-server").unwrap(), &[3; 32])
}

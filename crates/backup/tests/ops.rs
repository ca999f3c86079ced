//! The operations of the backup service on SQLite: the end-to-end scenario,
//! then every refusal in its own test with its own error, and the attacks
//! (containers for the wrong person, receipts from the wrong key or for the
//! wrong envelope, envelopes of another split, altered stored references).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{
    Harness, Protocol, TestCustodian, actor, fixture_json, request, save_data, sign_receipt, text,
};
use shardkeep_audit::{EventType, Outcome};
use shardkeep_backup::{
    Armor, DeliveryReport, DeliveryResult, EntityRegistration, Error, ExternalCustodian,
    PersonKeys, PolicySettings, Role, RoleSet, SaveDataSource, TssGroup, VerifiedSplit,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    Binding, ContainerError, EnvelopeParams, VerifiedEnvelope, open_x25519_container,
};
use shardkeep_keydata::LocalPartySaveData;
use shardkeep_kms::{DestroyReport, KekPin, LocalKeyStore, SlotKekProvider};
use shardkeep_sss_core::{Curve, Ed25519};
use shardkeep_storage::{
    CustodyStore, KeyVersionStore, SlotKekStore, SqliteStorage, Storage, Transaction,
};
use shardkeep_types::{
    CustodianId, KeyEncryptionKey, KeyId, Label, NodeId, ShareIndex, ShareSlot, Signer, Threshold,
};

async fn sqlite_storage(dir: &tempfile::TempDir) -> SqliteStorage {
    SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap()
}

/// A service on SQLite with a security person and an operator.
async fn harness() -> Harness<SqliteStorage> {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite_storage(&dir).await;
    Harness::new(storage, dir).await
}

/// A service on SQLite with the hybrid policy and three custodians.
async fn ready() -> (Harness<SqliteStorage>, Vec<TestCustodian>) {
    let h = harness().await;
    let custodians = h.custodians("escrow", 3).await;
    h.hybrid_policy().await;
    (h, custodians)
}

fn refs(custodians: &[TestCustodian]) -> Vec<&TestCustodian> {
    custodians.iter().collect()
}

fn denials(records: &[shardkeep_audit::AuditRecord]) -> usize {
    records
        .iter()
        .filter(|r| r.event == EventType::AccessDenied)
        .count()
}

#[tokio::test]
async fn end_to_end_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite_storage(&dir).await;
    common::scenario::end_to_end(storage, dir).await;
}

// ----- registry -----

#[tokio::test]
async fn the_first_person_registers_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite_storage(&dir).await;
    let h = Harness::build(storage, dir, |keks| keks);
    let error = h
        .service
        .register_person(&actor("someone"), h.person(&h.security, &[Role::Security]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::BootstrapNotSelf { .. }), "{error}");
    assert!(h.audit_records().await.is_empty());
}

#[tokio::test]
async fn the_first_person_holds_the_security_role() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite_storage(&dir).await;
    let h = Harness::build(storage, dir, |keks| keks);
    let error = h
        .service
        .register_person(&h.operator, h.person(&h.operator, &[Role::Operator]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::BootstrapWithoutSecurity(_)),
        "{error}"
    );
}

#[tokio::test]
async fn only_a_security_person_registers_others() {
    let h = harness().await;
    let error = h
        .service
        .register_person(&h.operator, h.person(&actor("eve"), &[Role::Security]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::MissingRole {
                role: Role::Security,
                ..
            }
        ),
        "{error}"
    );
    // The refusal is audited; the registration is not there.
    let records = h.audit_records().await;
    assert_eq!(denials(&records), 1);
    let later = h
        .service
        .register_person(&h.security, h.person(&actor("eve"), &[Role::Operator]))
        .await;
    assert!(later.is_ok());
}

#[tokio::test]
async fn an_unregistered_actor_is_refused_and_audited() {
    let (h, custodians) = ready().await;
    let data = save_data(Protocol::Eddsa, 0);
    let error = h
        .service
        .generate(
            &actor("mallory"),
            request(
                "wallet",
                0,
                SaveDataSource::Loaded(&data),
                &refs(&custodians),
                Armor::Binary,
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnknownPerson(_)), "{error}");
    let records = h.audit_records().await;
    let denial = records.last().unwrap();
    assert_eq!(denial.event, EventType::AccessDenied);
    assert_eq!(denial.operator, actor("mallory"));
    assert!(matches!(denial.outcome, Outcome::Failure { .. }));
}

#[tokio::test]
async fn a_revoked_person_is_refused_at_once() {
    let (h, custodians) = ready().await;
    h.service
        .revoke_person(&h.security, &h.operator, text("left the company"))
        .await
        .unwrap();
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PersonRevoked(_)), "{error}");
}

#[tokio::test]
async fn a_key_of_another_person_is_refused() {
    let h = harness().await;
    let mallory = actor("mallory");
    let mut registration = h.person(&mallory, &[Role::Operator]);
    // The operator's approval key.
    registration.keys = h.person(&h.operator, &[]).keys;
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let operator = shardkeep_storage::RegistryStore::person(&mut tx, &h.operator)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    registration.keys.approval_key = operator.keys.approval_key;
    let error = h
        .service
        .register_person(&h.security, registration)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::KeyInUse { .. }), "{error}");
}

#[tokio::test]
async fn a_weak_receipt_key_is_refused() {
    let h = harness().await;
    let mut registration = h.person(&actor("carol"), &[Role::Custodian]);
    // The identity point: small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    registration.keys.receipt_key = Some(identity);
    let error = h
        .service
        .register_person(&h.security, registration)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::WeakKey {
                key: "receipt key",
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_non_canonical_age_recipient_is_refused() {
    let h = harness().await;
    let mut registration = h.person(&actor("carol"), &[Role::Custodian]);
    registration.keys.age_recipient = Some(
        age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .to_uppercase(),
    );
    let error = h
        .service
        .register_person(&h.security, registration)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidAgeRecipient { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn entity_members_are_registered_active_custodians() {
    let h = harness().await;
    let entity = |members: Vec<shardkeep_types::ActorId>| EntityRegistration {
        id: CustodianId::new("escrow").unwrap(),
        display_name: text("Escrow Ltd"),
        contact: text("escrow desk"),
        members,
    };
    let unknown = h
        .service
        .register_entity(&h.security, entity(vec![actor("nobody")]))
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownPerson(_)), "{unknown}");
    let not_custodian = h
        .service
        .register_entity(&h.security, entity(vec![h.operator.clone()]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            not_custodian,
            Error::MissingRole {
                role: Role::Custodian,
                ..
            }
        ),
        "{not_custodian}"
    );
    let twice = h
        .service
        .register_entity(
            &h.security,
            entity(vec![h.operator.clone(), h.operator.clone()]),
        )
        .await
        .unwrap_err();
    assert!(matches!(twice, Error::InvalidMembers { .. }), "{twice}");
    let none = h
        .service
        .register_entity(&h.security, entity(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(none, Error::InvalidMembers { .. }), "{none}");
}

#[tokio::test]
async fn a_person_acts_for_one_entity() {
    let h = harness().await;
    let custodian = h.custodian("escrow").await;
    let error = h
        .service
        .register_entity(
            &h.security,
            EntityRegistration {
                id: CustodianId::new("cold-backup").unwrap(),
                display_name: text("Cold backup"),
                contact: text("vault"),
                members: vec![custodian.person.clone()],
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::PersonInOtherEntity { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn nobody_changes_their_own_roles() {
    let h = harness().await;
    let error = h
        .service
        .set_person_roles(
            &h.security,
            &h.security,
            [Role::Security, Role::BusinessOwner].into_iter().collect(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::OwnRolesChange(_)), "{error}");
}

#[tokio::test]
async fn the_last_security_person_stays() {
    let h = harness().await;
    let second = actor("sec-2");
    h.service
        .register_person(&h.security, h.person(&second, &[Role::Security]))
        .await
        .unwrap();
    // sec-2 revokes sec-1: sec-2 remains.
    h.service
        .revoke_person(&second, &h.security, text("rotation of duties"))
        .await
        .unwrap();
    let error = h
        .service
        .set_person_roles(&second, &second, RoleSet::EMPTY)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::OwnRolesChange(_)), "{error}");
    let error = h
        .service
        .revoke_person(&second, &second, text("leaving"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::LastSecurityPerson(_)), "{error}");
    // The revoked sec-1 can do nothing any more.
    let error = h
        .service
        .register_person(&h.security, h.person(&actor("x"), &[Role::Operator]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PersonRevoked(_)), "{error}");
}

#[tokio::test]
async fn roles_change_takes_effect_at_once() {
    let (h, custodians) = ready().await;
    h.service
        .set_person_roles(
            &h.security,
            &h.operator,
            [Role::Auditor].into_iter().collect(),
        )
        .await
        .unwrap();
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::MissingRole {
                role: Role::Operator,
                ..
            }
        ),
        "{error}"
    );
    let records = h.audit_records().await;
    assert!(records.iter().any(|r| r.event == EventType::Roles));
}

// ----- policy -----

fn settings(t: usize, n: usize, server_shares: u8) -> PolicySettings {
    PolicySettings {
        threshold: Threshold::new(t, n).unwrap(),
        server_shares,
        kek_provider: Label::new("local-key-file").unwrap(),
    }
}

#[tokio::test]
async fn a_policy_the_server_could_recover_alone_is_refused() {
    let h = harness().await;
    let error = h
        .service
        .set_policy(&h.security, settings(3, 5, 3))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::PolicyServerShares { server: 3, t: 3 }),
        "{error}"
    );
    assert_eq!(h.service.current_policy(&h.operator).await.unwrap(), None);
}

#[tokio::test]
async fn a_policy_the_custodians_could_not_recover_is_refused() {
    let h = harness().await;
    let error = h
        .service
        .set_policy(&h.security, settings(3, 4, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::PolicyExternalShares { external: 2, t: 3 }),
        "{error}"
    );
}

#[tokio::test]
async fn a_policy_with_more_shares_than_one_generate_audits_is_refused() {
    let h = harness().await;
    let error = h
        .service
        .set_policy(&h.security, settings(3, 65, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::PolicyTooManyShares { n: 65, .. }),
        "{error}"
    );
}

/// Once a policy is in force, one security person alone cannot change it
/// (the threshold, the server's share count or the key wrapping provider):
/// the change needs approvals, the refusal is audited, and the policy in
/// force stays; the approved change then takes.
#[tokio::test]
async fn a_policy_in_force_changes_only_with_approvals() {
    let h = harness().await;
    let first = h
        .service
        .set_policy(&h.security, settings(3, 5, 2))
        .await
        .unwrap();
    for changed in [settings(2, 5, 1), settings(3, 5, 1), {
        let mut other_provider = settings(3, 5, 2);
        other_provider.kek_provider = Label::new("pkcs11").unwrap();
        other_provider
    }] {
        let error = h
            .service
            .set_policy(&h.security, changed)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::PolicyChangeNeedsApproval { current } if current == first.hash),
            "{error}"
        );
        let refused = h.audit_records().await.pop().unwrap();
        assert_eq!(refused.event, EventType::Policy);
        assert!(matches!(refused.outcome, Outcome::Failure { .. }));
        assert_eq!(
            h.service
                .current_policy(&h.operator)
                .await
                .unwrap()
                .unwrap()
                .hash,
            first.hash
        );
    }
    let changed = h.change_policy(settings(3, 5, 1)).await.unwrap();
    assert_ne!(changed.hash, first.hash);
    assert_eq!(
        h.service
            .current_policy(&h.operator)
            .await
            .unwrap()
            .unwrap()
            .hash,
        changed.hash
    );
    h.verify_audit().await;
}

#[tokio::test]
async fn only_security_sets_the_policy() {
    let h = harness().await;
    let error = h
        .service
        .set_policy(&h.operator, settings(3, 5, 2))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MissingRole { .. }), "{error}");
}

#[tokio::test]
async fn generate_needs_a_policy() {
    let h = harness().await;
    let custodians = h.custodians("escrow", 3).await;
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoPolicy), "{error}");
}

// ----- generate: custodians and the exposure rule -----

#[tokio::test]
async fn the_exposure_rule_refuses_a_custodian_that_could_rebuild_the_group_key() {
    let (h, custodians) = ready().await;
    // The tss-lib group signs with 3 of 5 (degree 2). The same three
    // custodians for two nodes is allowed: with the server each could
    // rebuild two Xi, not three.
    for party in 0..2 {
        h.generate(Protocol::Eddsa, "wallet", party, &refs(&custodians))
            .await
            .unwrap();
    }
    let error = h
        .generate(Protocol::Eddsa, "wallet", 2, &refs(&custodians))
        .await
        .unwrap_err();
    match &error {
        Error::Exposure {
            key_id,
            custodian,
            nodes,
            allowed,
        } => {
            assert_eq!(key_id.as_str(), "wallet");
            assert_eq!(custodian, &custodians[0].entity);
            assert_eq!((*nodes, *allowed), (3, 2));
        }
        other => panic!("expected an exposure refusal, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("disjoint custodian sets"), "{message}");
    assert!(message.contains("zero retention"), "{message}");
    // Nothing of node-2 was stored, and no KEK was made for it.
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let versions = tx
        .key_versions(
            &KeyId::new("wallet").unwrap(),
            &NodeId::new("node-2").unwrap(),
        )
        .await
        .unwrap();
    assert!(versions.is_empty());
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn the_exposure_rule_allows_disjoint_custodian_sets() {
    let (h, first) = ready().await;
    let second = h.custodians("vault", 3).await;
    for party in 0..2 {
        h.generate(Protocol::Ecdsa, "wallet", party, &refs(&first))
            .await
            .unwrap();
    }
    // Node 2 goes to another set: every custodian still reaches two nodes.
    let third = h
        .generate(Protocol::Ecdsa, "wallet", 2, &refs(&second))
        .await
        .unwrap();
    assert_eq!(third.containers.len(), 3);
    // Another group key counts separately.
    h.generate(Protocol::Eddsa, "other-wallet", 0, &refs(&first))
        .await
        .unwrap();
}

#[tokio::test]
async fn zero_retention_keeps_every_custodian_below_the_threshold() {
    let h = harness().await;
    let custodians = h.custodians("escrow", 5).await;
    h.service
        .set_policy(&h.security, settings(3, 5, 0))
        .await
        .unwrap();
    // Without server shares no custodian reaches t with the server: the same
    // five custodians may hold every node of the group.
    for party in 0..5 {
        let generated = h
            .generate(Protocol::Eddsa, "wallet", party, &refs(&custodians))
            .await
            .unwrap();
        assert!(generated.server_shares.is_empty());
        assert_eq!(generated.containers.len(), 5);
    }
}

#[tokio::test]
async fn the_same_entity_twice_is_refused() {
    let (h, custodians) = ready().await;
    let twice = [&custodians[0], &custodians[1], &custodians[0]];
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &twice)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DuplicateCustodian(_)), "{error}");
}

#[tokio::test]
async fn a_revoked_entity_gets_no_share() {
    let (h, custodians) = ready().await;
    h.service
        .revoke_entity(&h.security, &custodians[1].entity)
        .await
        .unwrap();
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::EntityRevoked(_)), "{error}");
}

#[tokio::test]
async fn a_revoked_custodian_person_gets_no_share() {
    let (h, custodians) = ready().await;
    h.service
        .revoke_person(&h.security, &custodians[2].person, text("left escrow"))
        .await
        .unwrap();
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PersonRevoked(_)), "{error}");
}

#[tokio::test]
async fn an_unregistered_entity_gets_no_share() {
    let (h, custodians) = ready().await;
    let data = save_data(Protocol::Eddsa, 0);
    let mut req = request(
        "wallet",
        0,
        SaveDataSource::Loaded(&data),
        &refs(&custodians),
        Armor::Binary,
    );
    req.custodians[2] = ExternalCustodian {
        entity: CustodianId::new("ghost").unwrap(),
        person: actor("ghost-contact"),
    };
    let error = h.service.generate(&h.operator, req).await.unwrap_err();
    assert!(matches!(error, Error::UnknownEntity(_)), "{error}");
}

#[tokio::test]
async fn a_person_of_another_entity_is_refused() {
    let (h, custodians) = ready().await;
    let data = save_data(Protocol::Eddsa, 0);
    let mut req = request(
        "wallet",
        0,
        SaveDataSource::Loaded(&data),
        &refs(&custodians),
        Armor::Binary,
    );
    let outsider = h.custodian("outsider").await;
    req.custodians[0].person = outsider.person.clone();
    let error = h.service.generate(&h.operator, req).await.unwrap_err();
    assert!(matches!(error, Error::NotEntityMember { .. }), "{error}");
}

#[tokio::test]
async fn a_custodian_without_an_age_recipient_is_refused() {
    let (h, mut custodians) = ready().await;
    // A custodian whose person registered a receipt key only.
    let person = actor("keyless-contact");
    let mut registration = h.person(&person, &[Role::Custodian]);
    registration.keys.receipt_key = Some(h.signing_key().verifying_key().to_bytes());
    h.service
        .register_person(&h.security, registration)
        .await
        .unwrap();
    let entity = CustodianId::new("keyless").unwrap();
    h.service
        .register_entity(
            &h.security,
            EntityRegistration {
                id: entity.clone(),
                display_name: text("Keyless"),
                contact: text("desk"),
                members: vec![person.clone()],
            },
        )
        .await
        .unwrap();
    custodians[2].entity = entity;
    custodians[2].person = person;
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::MissingPersonKey {
                key: "age recipient",
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_custodian_count_is_the_policys() {
    let (h, custodians) = ready().await;
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians[..2]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::CustodianCount {
                expected: 3,
                got: 2
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_active_node_is_not_generated_again() {
    let (h, custodians) = ready().await;
    let first = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap();
    let error = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    match error {
        Error::ActiveVersionExists(version) => assert_eq!(version, first.version),
        other => panic!("expected ActiveVersionExists, got {other}"),
    }
}

#[tokio::test]
async fn a_group_registered_with_other_parameters_is_refused() {
    let (h, custodians) = ready().await;
    h.generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap();
    // Another degree for the same group key.
    let data = save_data(Protocol::Eddsa, 1);
    let mut req = request(
        "wallet",
        1,
        SaveDataSource::Loaded(&data),
        &refs(&custodians),
        Armor::Binary,
    );
    req.group = TssGroup {
        tss_degree: 3,
        parties: 5,
    };
    let error = h.service.generate(&h.operator, req).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::GroupMismatch {
                field: "tss-lib degree",
                ..
            }
        ),
        "{error}"
    );
    // Another curve's node under the same group key.
    let error = h
        .generate(Protocol::Ecdsa, "wallet", 1, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::GroupMismatch { field: "curve", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn tss_parameters_must_fit_the_save_data() {
    let (h, custodians) = ready().await;
    let data = save_data(Protocol::Eddsa, 0);
    let mut req = request(
        "wallet",
        0,
        SaveDataSource::Loaded(&data),
        &refs(&custodians),
        Armor::Binary,
    );
    req.group = TssGroup {
        tss_degree: 2,
        parties: 4,
    };
    let error = h.service.generate(&h.operator, req).await.unwrap_err();
    assert!(matches!(error, Error::InvalidGroup { .. }), "{error}");
}

/// Save data whose `Xi` is not the party's own: `Xi·G != BigXj[self]`.
fn save_data_with_foreign_xi(protocol: Protocol) -> LocalPartySaveData {
    let json = String::from_utf8(fixture_json(protocol, 0).to_vec()).unwrap();
    let start = json.find("\"Xi\"").unwrap();
    let value_start = start + json[start..].find(':').unwrap() + 1;
    let value_len = json[value_start..].find(',').unwrap();
    let forged = format!(
        "{}12345678901234567890{}",
        &json[..value_start],
        &json[value_start + value_len..]
    );
    LocalPartySaveData::from_json(forged.as_bytes()).unwrap()
}

#[tokio::test]
async fn inconsistent_save_data_is_not_backed_up() {
    let (h, custodians) = ready().await;
    for protocol in Protocol::ALL {
        let data = save_data_with_foreign_xi(protocol);
        let key = format!("wallet-{}", protocol.dir());
        let error = h
            .service
            .generate(
                &h.operator,
                request(
                    &key,
                    0,
                    SaveDataSource::Loaded(&data),
                    &refs(&custodians),
                    Armor::Binary,
                ),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::PublicShareMismatch(_)), "{error}");
    }
    let records = h.audit_records().await;
    assert!(!records.iter().any(|r| r.event == EventType::Generate));
}

/// A KEK provider that fails the `fail_at`-th creation and records every
/// KEK it created, around the real local key store.
#[derive(Debug)]
struct FailingKeks {
    inner: Arc<LocalKeyStore>,
    fail_at: usize,
    created: Mutex<Vec<(ShareSlot, KekPin)>>,
}

impl SlotKekProvider for FailingKeks {
    fn slot_kek_id(&self, slot: &ShareSlot) -> shardkeep_types::KekId {
        self.inner.slot_kek_id(slot)
    }

    fn create_slot_kek(
        &self,
        slot: &ShareSlot,
    ) -> Result<(Box<dyn KeyEncryptionKey>, KekPin), shardkeep_kms::Error> {
        let mut created = self.created.lock().unwrap();
        if created.len() + 1 == self.fail_at {
            return Err(shardkeep_kms::Error::Randomness);
        }
        let (kek, pin) = SlotKekProvider::create_slot_kek(self.inner.as_ref(), slot)?;
        created.push((slot.clone(), pin.clone()));
        Ok((kek, pin))
    }

    fn open_slot_kek(
        &self,
        slot: &ShareSlot,
        pin: &KekPin,
    ) -> Result<Box<dyn KeyEncryptionKey>, shardkeep_kms::Error> {
        SlotKekProvider::open_slot_kek(self.inner.as_ref(), slot, pin)
    }

    fn destroy_slot_kek(
        &self,
        slot: &ShareSlot,
        pin: &KekPin,
    ) -> Result<DestroyReport, shardkeep_kms::Error> {
        SlotKekProvider::destroy_slot_kek(self.inner.as_ref(), slot, pin)
    }
}

#[tokio::test]
async fn a_failed_generate_destroys_the_keks_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite_storage(&dir).await;
    let failing = Arc::new(Mutex::new(None::<Arc<FailingKeks>>));
    let slot_for_wrap = failing.clone();
    let h = Harness::build(storage, dir, move |keks| {
        let wrapper = Arc::new(FailingKeks {
            inner: keks,
            fail_at: 2,
            created: Mutex::new(Vec::new()),
        });
        *slot_for_wrap.lock().unwrap() = Some(wrapper.clone());
        wrapper
    });
    h.bootstrap().await;
    let custodians = h.custodians("escrow", 3).await;
    h.hybrid_policy().await;
    let error = h
        .generate(Protocol::Ecdsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Kms(_)), "{error}");
    let wrapper = failing.lock().unwrap().clone().unwrap();
    let created = wrapper.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "the first slot's KEK was created");
    // The attack on crypto-shredding: a KEK left behind by a failed
    // generate. It is gone: its pin opens nothing.
    let (slot, pin) = &created[0];
    assert!(matches!(
        h.keks.open_slot_kek(slot, pin),
        Err(shardkeep_kms::Error::SlotKekNotFound { .. })
    ));
    // And nothing of the version was stored.
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    assert!(
        tx.key_versions(&slot.key_id, &slot.node_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.slot_kek(slot).await.unwrap(), None);
    tx.rollback().await.unwrap();
    assert!(
        !h.audit_records()
            .await
            .iter()
            .any(|r| r.event == EventType::Generate)
    );
}

// ----- containers -----

#[tokio::test]
async fn a_container_opens_only_with_its_custodians_identity() {
    let (h, custodians) = ready().await;
    for protocol in Protocol::ALL {
        let key = format!("wallet-{}", protocol.dir());
        let generated = h
            .generate(protocol, &key, 0, &refs(&custodians))
            .await
            .unwrap();
        for container in &generated.containers {
            for custodian in &custodians {
                let opened = open_x25519_container(
                    &container.container,
                    std::slice::from_ref(&custodian.identity),
                    h.service.trusted_signers(),
                );
                if custodian.entity == container.custodian {
                    assert_eq!(opened.unwrap().envelope().id(), container.envelope_id);
                } else {
                    assert!(matches!(
                        opened,
                        Err(shardkeep_envelope::Error::Container(
                            ContainerError::NoMatchingIdentity
                        ))
                    ));
                }
            }
            // Nor with an identity the server could have made for itself.
            let stranger = age::x25519::Identity::generate();
            assert!(
                open_x25519_container(
                    &container.container,
                    &[stranger],
                    h.service.trusted_signers()
                )
                .is_err()
            );
        }
    }
}

// ----- deliver and confirm -----

/// A generated EdDSA node and its custodians.
async fn generated() -> (
    Harness<SqliteStorage>,
    Vec<TestCustodian>,
    shardkeep_backup::Generated,
) {
    let (h, custodians) = ready().await;
    let generated = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap();
    (h, custodians, generated)
}

async fn confirmed_at(
    h: &Harness<SqliteStorage>,
    slot: &ShareSlot,
) -> Option<shardkeep_types::Timestamp> {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let entry = tx.custody_entry(slot).await.unwrap();
    tx.rollback().await.unwrap();
    entry.confirmed_at
}

#[tokio::test]
async fn a_delivery_of_another_container_is_refused() {
    let (h, _, generated) = generated().await;
    let container = &generated.containers[0];
    let error = h
        .service
        .deliver(
            &h.operator,
            DeliveryReport {
                slot: generated.version.slot(container.index),
                container_hash: generated.containers[1].container_hash,
                result: DeliveryResult::Sent,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ContainerMismatch(_)), "{error}");
}

#[tokio::test]
async fn a_server_slot_is_not_delivered() {
    let (h, _, generated) = generated().await;
    let error = h
        .service
        .deliver(
            &h.operator,
            DeliveryReport {
                slot: generated.version.slot(ShareIndex::new(1).unwrap()),
                container_hash: [0; 32],
                result: DeliveryResult::Sent,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotExternalSlot(_)), "{error}");
}

#[tokio::test]
async fn a_receipt_signed_by_another_key_is_refused() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let stranger = h.signing_key();
    let receipt = sign_receipt(
        &custodians[0].entity,
        container.envelope_id,
        &stranger,
        h.clock_now(),
    );
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReceiptSignature(_)), "{error}");
    assert!(error.is_opaque_to_caller());
    assert_eq!(confirmed_at(&h, &slot).await, None);
    // The refusal is audited.
    let last = h.audit_records().await.pop().unwrap();
    assert_eq!(last.event, EventType::Confirm);
    assert!(matches!(last.outcome, Outcome::Failure { .. }));
}

#[tokio::test]
async fn a_receipt_for_another_envelope_is_refused() {
    let (h, custodians, generated) = generated().await;
    let slot = generated.version.slot(generated.containers[0].index);
    // The right custodian, its own key, but the envelope of another slot.
    let receipt = custodians[0].receipt(generated.containers[1].envelope_id, h.clock_now());
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReceiptWrongEnvelope(_)), "{error}");
    assert_eq!(confirmed_at(&h, &slot).await, None);
}

#[tokio::test]
async fn a_receipt_signed_with_another_custodians_registered_key_is_refused() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    // Custodian 1 signs a receipt for custodian 0's envelope, naming
    // custodian 0: its key is registered, but not to this slot's person.
    let forged = sign_receipt(
        &custodians[0].entity,
        container.envelope_id,
        &custodians[1].receipt_key,
        h.clock_now(),
    );
    let error = h
        .service
        .confirm(&h.operator, &slot, &forged)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReceiptSignature(_)), "{error}");
    // Or naming itself.
    let own_name = custodians[1].receipt(container.envelope_id, h.clock_now());
    let error = h
        .service
        .confirm(&h.operator, &slot, &own_name)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ReceiptWrongCustodian { .. }),
        "{error}"
    );
    assert_eq!(confirmed_at(&h, &slot).await, None);
}

#[tokio::test]
async fn a_revoked_persons_receipt_is_refused() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let receipt = custodians[0].receipt(container.envelope_id, h.clock_now());
    h.service
        .revoke_person(&h.security, &custodians[0].person, text("key compromised"))
        .await
        .unwrap();
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PersonRevoked(_)), "{error}");
}

#[tokio::test]
async fn a_revoked_entitys_receipt_is_refused() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let receipt = custodians[0].receipt(container.envelope_id, h.clock_now());
    h.service
        .revoke_entity(&h.security, &custodians[0].entity)
        .await
        .unwrap();
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::EntityRevoked(_)), "{error}");
}

#[tokio::test]
async fn after_a_key_rotation_only_the_current_receipt_key_counts() {
    let (h, custodians, generated) = generated().await;
    // Slot 3 is confirmed under the first key.
    let first = &generated.containers[0];
    h.service
        .confirm(
            &h.operator,
            &generated.version.slot(first.index),
            &custodians[0].receipt(first.envelope_id, h.clock_now()),
        )
        .await
        .unwrap();
    // Then every custodian rotates its receipt key.
    h.clock.advance(std::time::Duration::from_secs(3600));
    let mut new_keys = Vec::new();
    for custodian in &custodians {
        let new_key = h.signing_key();
        let mut tx = h.service.storage().begin_read_only().await.unwrap();
        let current = shardkeep_storage::RegistryStore::person(&mut tx, &custodian.person)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let keys = PersonKeys {
            receipt_key: Some(new_key.verifying_key().to_bytes()),
            ..current.keys
        };
        let epoch = h
            .service
            .rotate_person_keys(&h.security, &custodian.person, keys)
            .await
            .unwrap();
        assert_eq!(epoch, 2);
        new_keys.push(new_key);
    }
    let second = &generated.containers[1];
    let slot = generated.version.slot(second.index);
    let old = custodians[1].receipt(second.envelope_id, h.clock_now());
    let error = h
        .service
        .confirm(&h.operator, &slot, &old)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReceiptSignature(_)), "{error}");
    h.service
        .confirm(
            &h.operator,
            &slot,
            &sign_receipt(
                &custodians[1].entity,
                second.envelope_id,
                &new_keys[1],
                h.clock_now(),
            ),
        )
        .await
        .unwrap();
    let third = &generated.containers[2];
    let last = h
        .service
        .confirm(
            &h.operator,
            &generated.version.slot(third.index),
            &sign_receipt(
                &custodians[2].entity,
                third.envelope_id,
                &new_keys[2],
                h.clock_now(),
            ),
        )
        .await
        .unwrap();
    // The certificate checks each receipt under the key of its time: the
    // first under the old key, the others under the new ones.
    assert!(last.certificate.unwrap().is_complete());
    assert!(
        h.service
            .delivery_certificate(&h.operator, &generated.version)
            .await
            .unwrap()
            .is_complete()
    );
}

#[tokio::test]
async fn a_slot_is_confirmed_once() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let receipt = custodians[0].receipt(container.envelope_id, h.clock_now());
    h.service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap();
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::AlreadyConfirmed(_)), "{error}");
}

#[tokio::test]
async fn only_an_operator_or_the_slots_custodian_submits_its_receipt() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let receipt = custodians[0].receipt(container.envelope_id, h.clock_now());
    let error = h
        .service
        .confirm(&custodians[1].person, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotSlotCustodian { .. }), "{error}");
    assert_eq!(denials(&h.audit_records().await), 1);
    h.service
        .confirm(&custodians[0].person, &slot, &receipt)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_receipt_is_recorded_and_does_not_confirm() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    let slot = generated.version.slot(container.index);
    let failed = shardkeep_envelope::Receipt {
        custodian_id: custodians[0].entity.clone(),
        envelope_id: container.envelope_id,
        status: shardkeep_envelope::ReceiptStatus::Failed(text("container does not open")),
        timestamp: h.clock_now(),
    }
    .sign(&custodians[0].receipt_key)
    .unwrap();
    let confirmation = h
        .service
        .confirm(&h.operator, &slot, &failed)
        .await
        .unwrap();
    assert!(confirmation.certificate.is_none());
    assert_eq!(confirmed_at(&h, &slot).await, None);
}

#[tokio::test]
async fn no_certificate_before_every_share_is_confirmed() {
    let (h, custodians, generated) = generated().await;
    let container = &generated.containers[0];
    h.service
        .confirm(
            &h.operator,
            &generated.version.slot(container.index),
            &custodians[0].receipt(container.envelope_id, h.clock_now()),
        )
        .await
        .unwrap();
    let error = h
        .service
        .delivery_certificate(&h.operator, &generated.version)
        .await
        .unwrap_err();
    match error {
        Error::DeliveryIncomplete { missing, .. } => {
            let missing: Vec<u8> = missing.iter().map(|index| index.get()).collect();
            assert_eq!(missing, [4, 5]);
        }
        other => panic!("expected DeliveryIncomplete, got {other}"),
    }
}

// ----- the stored reference is what later checks use -----

#[tokio::test]
async fn an_envelope_with_other_commitments_is_not_trusted() {
    let (h, custodians, generated) = generated().await;
    let version = &generated.version;
    let container = &generated.containers[0];
    let slot = version.slot(container.index);
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let reference = tx.split_reference(version).await.unwrap();
    tx.rollback().await.unwrap();
    let split = VerifiedSplit::verify(version, &reference, h.service.trusted_signers()).unwrap();

    // The custodian's own envelope, from its container.
    let opened = open_x25519_container(
        &container.container,
        std::slice::from_ref(&custodians[0].identity),
        h.service.trusted_signers(),
    )
    .unwrap();
    split
        .check_envelope(opened.envelope(), container.index)
        .unwrap();

    // Its commitments altered in place (the custodian, or whoever holds the
    // decrypted container, edits them): the envelope no longer verifies.
    let commitments = match opened.envelope().header().commitments() {
        shardkeep_envelope::CurveCommitments::Ed25519(c) => c.to_bytes(),
        other => panic!("expected ed25519, got {other:?}"),
    };
    let mut bytes = plain_envelope_bytes(&custodians[0], &container.container);
    VerifiedEnvelope::decode_verify(&bytes, h.service.trusted_signers()).unwrap();
    let at = bytes
        .windows(commitments.len())
        .position(|w| w == commitments.as_slice())
        .unwrap();
    bytes[at + Ed25519::POINT_LEN] ^= 1;
    assert!(VerifiedEnvelope::decode_verify(&bytes, h.service.trusted_signers()).is_err());

    // The strongest forgery: an envelope of the same share with other
    // commitments, validly signed by the service's own key (a re-split of
    // the same Xi). Signature and binding hold; the stored commitments do
    // not.
    let data = save_data(Protocol::Eddsa, 0);
    let xi = data.secret_share::<Ed25519>().unwrap();
    let mut rng = <rand::rngs::ChaCha20Rng as rand::SeedableRng>::from_seed([9; 32]);
    let (other_commitments, other_shares) =
        shardkeep_sss_core::split(&xi, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
    let binding = Binding::new(
        split.binding().curve(),
        split.binding().group_public_key().to_vec(),
        split.binding().party_id().to_vec(),
        split.binding().public_share().to_vec(),
        *split.binding().archive_hash(),
    )
    .unwrap();
    let forged = EnvelopeParams {
        node_version: version.clone(),
        created_at: h.clock_now(),
        binding,
    }
    .plain(
        &other_commitments,
        &other_shares[usize::from(container.index.get() - 1)],
        h.signer.as_ref(),
    )
    .unwrap();
    let forged = VerifiedEnvelope::decode_verify_bound(
        forged.as_bytes(),
        h.service.trusted_signers(),
        &slot,
        split.binding(),
    )
    .unwrap();
    let error = split.check_envelope(&forged, container.index).unwrap_err();
    assert!(matches!(error, Error::EnvelopeNotOfSplit { .. }), "{error}");

    // At receipt time: the custodian's receipt for the forged envelope is
    // refused, since the custody map names the delivered envelope.
    let receipt = custodians[0].receipt(forged.id(), h.clock_now());
    let error = h
        .service
        .confirm(&h.operator, &slot, &receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReceiptWrongEnvelope(_)), "{error}");
    assert_eq!(confirmed_at(&h, &slot).await, None);
}

/// The plain envelope inside a binary container, as its custodian reads
/// it with the stock age tool: contents = magic (8), version (1), envelope
/// length (u16), envelope, archive.
fn plain_envelope_bytes(custodian: &TestCustodian, container: &[u8]) -> Vec<u8> {
    let contents = age::decrypt(&custodian.identity, container).unwrap();
    assert_eq!(&contents[..8], shardkeep_envelope::CONTAINER_MAGIC);
    let len = usize::from(u16::from_be_bytes([contents[9], contents[10]]));
    contents[11..11 + len].to_vec()
}

#[tokio::test]
async fn an_altered_stored_reference_is_refused() {
    let (h, _, generated) = generated().await;
    let version = &generated.version;
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let reference = tx.split_reference(version).await.unwrap();
    tx.rollback().await.unwrap();
    let trusted = h.service.trusted_signers();
    VerifiedSplit::verify(version, &reference, trusted).unwrap();

    let refused =
        |reference: &shardkeep_storage::SplitReference, version| match VerifiedSplit::verify(
            version, reference, trusted,
        ) {
            Err(Error::SplitReferenceInvalid { why, .. }) => why,
            other => panic!("expected SplitReferenceInvalid, got {other:?}"),
        };
    // Other commitments (C_1 replaced by C_0).
    let mut commitments = reference.clone();
    let point = Ed25519::POINT_LEN;
    let c0 = commitments.commitments[..point].to_vec();
    commitments.commitments[point..2 * point].copy_from_slice(&c0);
    assert_eq!(
        refused(&commitments, version),
        "commitments do not hash to the split id"
    );
    // A column that disagrees with what was signed.
    let mut server = reference.clone();
    server.server_shares = 3;
    assert_eq!(refused(&server, version), "server shares");
    let mut policy = reference.clone();
    policy.policy_hash[0] ^= 1;
    assert_eq!(refused(&policy, version), "policy hash");
    // The binding of another version.
    let mut other = version.clone();
    other.version = shardkeep_types::KeyVersion::new(2);
    assert_eq!(refused(&reference, &other), "key version");
    // A flipped bit in the signed binding.
    let mut binding = reference.clone();
    // A byte of the archive hash, before the signer id (1 + 15 bytes) and
    // the signature (64).
    let archive_hash_byte = binding.binding.len() - 64 - 16 - 5;
    binding.binding[archive_hash_byte] ^= 1;
    assert_eq!(refused(&binding, version), "signature");
    // Signed by a key this service does not trust.
    let stranger = shardkeep_types::InMemorySigner::from_seed(
        shardkeep_types::SignerId::new("backup-server-1").unwrap(),
        &[1; 32],
    );
    let mut resigned = reference.binding.clone();
    resigned.truncate(resigned.len() - 64);
    let mut message = shardkeep_backup::SPLIT_BINDING_TAG.to_vec();
    message.extend_from_slice(&resigned);
    resigned.extend_from_slice(&stranger.sign(&message).unwrap().to_bytes());
    let mut foreign = reference.clone();
    foreign.binding = resigned;
    assert_eq!(refused(&foreign, version), "signature");
}

//! The registry over the service, and the attacks it must stop: only a
//! security person registers, rotates and revokes; a rotated-out
//! certificate and a revoked person are refused on a connection opened
//! before the change; a new approver needs an approved approver-set change
//! once a quorum exists, and an approval of one registration never
//! registers another, nor twice.

mod common;

use std::sync::Arc;

use common::{NoTargets, Served, actor, approved_request};
use shardkeep_backup::{ApproverSetChange, PersonKeys, PersonRegistration, Role};
use shardkeep_grpc::proto::{
    self, ApprovalOperation, ApprovalParams, GetBackupStatusRequest, RegisterEntityRequest,
    RegisterPersonRequest, RevokeEntityRequest, RevokePersonRequest, RotatePersonKeysRequest,
};
use shardkeep_types::{FreeText, Signer as _};
use tonic::Code;

/// The wire form of a registration (no approval).
fn wire(registration: &PersonRegistration) -> RegisterPersonRequest {
    let bytes = |key: Option<[u8; 32]>| key.map(|key| key.to_vec()).unwrap_or_default();
    RegisterPersonRequest {
        person: registration.id.as_str().to_owned(),
        display_name: registration.display_name.as_str().to_owned(),
        roles: registration
            .roles
            .iter()
            .map(|role| role.name().to_owned())
            .collect(),
        keys: Some(proto::PersonKeys {
            receipt_key: bytes(registration.keys.receipt_key),
            approval_key: bytes(registration.keys.approval_key),
            age_recipient: registration.keys.age_recipient.clone().unwrap_or_default(),
            tls_fingerprint: bytes(registration.keys.tls_fingerprint),
        }),
        ..RegisterPersonRequest::default()
    }
}

fn tls_only(fingerprint: [u8; 32]) -> proto::PersonKeys {
    proto::PersonKeys {
        tls_fingerprint: fingerprint.to_vec(),
        ..proto::PersonKeys::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_person_registers_rotates_and_revokes_and_each_takes_effect_at_once() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let security = served.register_client("sec-2", &[Role::Security]).await;
    let mut sec = served.client(Some(security.identity())).await.unwrap();
    let mut operator = served.operator_client().await;

    // An operator may not register anyone, not even themselves again.
    let first = served.ca.client("ops-2");
    let registration = RegisterPersonRequest {
        person: "ops-2".into(),
        display_name: "second operator".into(),
        roles: vec!["operator".into()],
        keys: Some(tls_only(first.fingerprint.0)),
        ..RegisterPersonRequest::default()
    };
    let refused = operator
        .register_person(registration.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unregistered = served.client(Some(first.identity())).await.unwrap();
    let refused = unregistered
        .clone()
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Malformed requests name their field; nothing is registered.
    let mut bad_role = registration.clone();
    bad_role.roles = vec!["root".into()];
    let mut twice = registration.clone();
    twice.roles = vec!["operator".into(), "operator".into()];
    let mut short_key = registration.clone();
    short_key.keys = Some(proto::PersonKeys {
        approval_key: vec![7; 31],
        ..tls_only(first.fingerprint.0)
    });
    let mut bad_id = registration.clone();
    bad_id.person = "ops 2".into();
    for (request, field) in [
        (bad_role, "roles"),
        (twice, "roles"),
        (short_key, "keys.approval_key"),
        (bad_id, "person"),
    ] {
        let refused = sec.register_person(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(field), "{refused:?}");
    }

    // Registered by the security person: the certificate works at once.
    let registered = sec
        .register_person(registration.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.person, "ops-2");
    assert_eq!(registered.roles, ["operator"]);
    assert_eq!(registered.key_epoch, 1);
    assert_eq!(registered.registered_by, "sec-2");
    let mut old_connection = served.client(Some(first.identity())).await.unwrap();
    old_connection
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap();
    // Once only.
    let again = sec.register_person(registration).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    // A key already someone's is refused: the operator's certificate.
    let stolen = sec
        .register_person(RegisterPersonRequest {
            person: "ops-3".into(),
            display_name: "ops-3".into(),
            roles: vec!["operator".into()],
            keys: Some(tls_only(served.operator_cert.fingerprint.0)),
            ..RegisterPersonRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::FailedPrecondition, "{stolen:?}");

    // New keys: the old certificate is refused on the connection it
    // already has open, the new one works.
    let second = served.ca.client("ops-2");
    let rotated = sec
        .rotate_person_keys(RotatePersonKeysRequest {
            person: "ops-2".into(),
            keys: Some(tls_only(second.fingerprint.0)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.key_epoch, 2);
    let refused = old_connection
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let mut current = served.client(Some(second.identity())).await.unwrap();
    current
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap();
    // The old key can never come back, to them or anyone.
    let reused = sec
        .rotate_person_keys(RotatePersonKeysRequest {
            person: "ops-2".into(),
            keys: Some(tls_only(first.fingerprint.0)),
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition, "{reused:?}");

    // Revoked: the open connection's next request is refused.
    let refused = operator
        .revoke_person(RevokePersonRequest {
            person: "ops-2".into(),
            reason: "left the team".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    current
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap();
    sec.revoke_person(RevokePersonRequest {
        person: "ops-2".into(),
        reason: "left the team".into(),
    })
    .await
    .unwrap();
    let refused = current
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let twice = sec
        .revoke_person(RevokePersonRequest {
            person: "ops-2".into(),
            reason: "again".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");

    // Every change is in the audit log, by the security person.
    let mut records = Vec::new();
    shardkeep_audit::export_json_lines(served.service.storage(), &mut records)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&records);
    assert!(text.contains("person ops-2"));
    assert!(text.contains("left the team"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_are_registered_for_custodians_only_and_revoked() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let security = served.register_client("sec-2", &[Role::Security]).await;
    let mut sec = served.client(Some(security.identity())).await.unwrap();
    let receipt_key = served.signing_key();
    let identity = shardkeep_envelope::deps::age::x25519::Identity::generate();
    sec.register_person(RegisterPersonRequest {
        person: "vault-a-contact".into(),
        display_name: "Vault A desk".into(),
        roles: vec!["custodian".into()],
        keys: Some(proto::PersonKeys {
            receipt_key: receipt_key.verifying_key().to_bytes().to_vec(),
            age_recipient: identity.to_public().to_string(),
            ..proto::PersonKeys::default()
        }),
        ..RegisterPersonRequest::default()
    })
    .await
    .unwrap();
    let entity = |members: Vec<&str>| RegisterEntityRequest {
        entity: "vault-a".into(),
        display_name: "Vault A".into(),
        contact: "+1 555 0100".into(),
        members: members.into_iter().map(str::to_owned).collect(),
    };

    // The operator is no custodian: refused as a member.
    let refused = sec
        .register_entity(entity(vec!["ops-1"]))
        .await
        .unwrap_err();
    assert_ne!(refused.code(), Code::Ok);
    assert!(refused.message().contains("ops-1"), "{refused:?}");
    let refused = sec.register_entity(entity(vec![])).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let too_many = RegisterEntityRequest {
        members: vec!["vault-a-contact".to_owned(); 65],
        ..entity(vec![])
    };
    let refused = sec.register_entity(too_many).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let registered = sec
        .register_entity(entity(vec!["vault-a-contact"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.entity, "vault-a");
    assert_eq!(registered.members, ["vault-a-contact"]);
    let again = sec
        .register_entity(entity(vec!["vault-a-contact"]))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    let mut operator = served.operator_client().await;
    let refused = operator
        .revoke_entity(RevokeEntityRequest {
            entity: "vault-a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    sec.revoke_entity(RevokeEntityRequest {
        entity: "vault-a".into(),
    })
    .await
    .unwrap();
    let twice = sec
        .revoke_entity(RevokeEntityRequest {
            entity: "vault-a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_approver_takes_an_approved_change_of_exactly_their_registration_once() {
    let served = Served::start(Arc::new(NoTargets)).await;
    // The bootstrap security person asks (given a client certificate);
    // two approvers whose keys this test holds, registered while no
    // quorum besides the asker existed, now form one without them.
    let requester_cert = served.ca.client("sec-1");
    served
        .service
        .rotate_person_keys(
            &served.security,
            &served.security,
            PersonKeys {
                approval_key: Some(served.signing_key().verifying_key().to_bytes()),
                tls_fingerprint: Some(requester_cert.fingerprint.0),
                ..PersonKeys::default()
            },
        )
        .await
        .unwrap();
    let mut approvers = [
        served.register_approver("sec-2", Role::Security).await,
        served.register_approver("biz-1", Role::BusinessOwner).await,
    ];
    let mut requester = served
        .client(Some(requester_cert.identity()))
        .await
        .unwrap();

    let approver_key = served.signing_key().verifying_key().to_bytes();
    let registration = PersonRegistration {
        id: actor("biz-2"),
        display_name: FreeText::new("second business owner").unwrap(),
        roles: [Role::BusinessOwner].into_iter().collect(),
        keys: PersonKeys {
            approval_key: Some(approver_key),
            ..PersonKeys::default()
        },
    };

    // Without approval: refused, and audited.
    let refused = requester
        .register_person(wire(&registration))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    // Asked for exactly this registration, approved by both approvers.
    let risk_note_hash = [0x3c; 32];
    let change = ApproverSetChange::Register(&registration);
    let request_hash = approved_request(
        &mut requester,
        ApprovalParams {
            operation: ApprovalOperation::ApproverSetChange.into(),
            change_hash: change.hash().to_vec(),
            ticket: "CHG-42".into(),
            risk_note_hash: risk_note_hash.to_vec(),
            ..ApprovalParams::default()
        },
        &mut approvers,
    )
    .await;
    let approved = |request: RegisterPersonRequest| RegisterPersonRequest {
        approval_request_hash: request_hash.clone(),
        ticket: "CHG-42".into(),
        risk_note_hash: risk_note_hash.to_vec(),
        ..request
    };

    // The approval names this registration: another key, another role or
    // another person is refused, and the request is not spent by it.
    let mut other_key = wire(&registration);
    other_key.keys.as_mut().unwrap().approval_key =
        served.signing_key().verifying_key().to_bytes().to_vec();
    let mut other_role = wire(&registration);
    other_role.roles = vec!["security".into()];
    let mut other_person = wire(&registration);
    other_person.person = "biz-3".into();
    for request in [other_key, other_role, other_person] {
        let refused = requester
            .register_person(approved(request))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    }

    let registered = requester
        .register_person(approved(wire(&registration)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.person, "biz-2");
    assert_eq!(registered.roles, ["business-owner"]);

    // Spent: it registers nobody else.
    let mut next = registration.clone();
    next.id = actor("biz-3");
    next.keys.approval_key = Some(served.signing_key().verifying_key().to_bytes());
    let replayed = requester
        .register_person(approved(wire(&next)))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::FailedPrecondition, "{replayed:?}");
}

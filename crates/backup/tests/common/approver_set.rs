//! Approver-set changes under a quorum of current approvers, generic over
//! the storage backend: refused without an approved request, refused on a
//! request for another change or without a full quorum, refused when an
//! approver was revoked after approving; done on a full quorum. Changes
//! that leave the approver set alone need no approval. The audit chain
//! links after each case.

use shardkeep_audit::{EventType, Outcome};
use shardkeep_backup::{ApproverSetChange, Error, Role, RoleSet};
use shardkeep_storage::{RegistryStore, Storage, Transaction};
use shardkeep_types::Signer;

use super::approvals::Fixture;
use super::{actor, text};

async fn registered<S: Storage>(f: &Fixture<S>, name: &str) -> bool {
    let mut tx = f.h.service.storage().begin_read_only().await.unwrap();
    let found = tx.person(&actor(name)).await.is_ok();
    tx.rollback().await.unwrap();
    found
}

async fn roles<S: Storage>(f: &Fixture<S>, name: &str) -> RoleSet {
    let mut tx = f.h.service.storage().begin_read_only().await.unwrap();
    let roles = tx.person(&actor(name)).await.unwrap().roles;
    tx.rollback().await.unwrap();
    roles
}

async fn assert_last_refused<S: Storage>(f: &Fixture<S>, event: EventType) {
    let last = f.h.audit_records().await.pop().unwrap();
    assert_eq!(last.event, event);
    assert!(matches!(last.outcome, Outcome::Failure { .. }));
}

/// A new security person, or an approving role given or taken, is refused
/// without an approved request while a quorum of other approvers exists;
/// a request approved by one approver only, or approved for another change,
/// does not do either; a full quorum does.
pub async fn approver_set_change_without_quorum_is_refused<S: Storage>(f: Fixture<S>) {
    let h = &f.h;
    let newcomer = h.person(&actor("sec-4"), &[Role::Security]);
    let error = h
        .service
        .register_person(&h.security, newcomer.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ApproverSetChangeUnapproved(person) if *person == actor("sec-4")),
        "{error:?}"
    );
    assert_last_refused(&f, EventType::Register).await;
    assert!(!registered(&f, "sec-4").await);

    // One approval is not a quorum.
    let change = ApproverSetChange::Register(&newcomer);
    let request = h
        .service
        .request_approval(
            &h.security,
            change.approval_params(text("CHG-9"), [0x9c; 32]),
        )
        .await
        .unwrap();
    let bytes = request.encode().unwrap();
    f.approve(&bytes, "sec-2", Role::Security).await.unwrap();
    let approval = shardkeep_backup::ChangeApproval {
        request: request.hash().unwrap(),
        ticket: text("CHG-9"),
        risk_note_hash: [0x9c; 32],
    };
    let error = h
        .service
        .register_person_approved(&h.security, newcomer.clone(), &approval)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ApprovalMissing { .. }), "{error:?}");
    assert_last_refused(&f, EventType::Register).await;
    assert!(!registered(&f, "sec-4").await);

    // The request approved for sec-4 with these keys does not register
    // sec-4 with another approval key.
    f.approve(&bytes, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    let mut swapped = newcomer.clone();
    swapped.keys.approval_key = Some(h.signing_key().verifying_key().to_bytes());
    let error = h
        .service
        .register_person_approved(&h.security, swapped, &approval)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::ApprovalParametersMismatch {
                field: "change_hash",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!registered(&f, "sec-4").await);
    // The change it names, on its full quorum, goes through.
    h.service
        .register_person_approved(&h.security, newcomer, &approval)
        .await
        .unwrap();
    assert!(registered(&f, "sec-4").await);
    let last = h.audit_records().await.pop().unwrap();
    assert_eq!(last.event, EventType::Register);
    assert!(
        last.detail
            .as_ref()
            .is_some_and(|d| d.as_str().contains("sec-2 (security)")
                && d.as_str().contains("biz-1 (business-owner)")),
        "{:?}",
        last.detail
    );

    // Giving or taking an approving role: refused without approval.
    let owner_too: RoleSet = [Role::Security, Role::BusinessOwner].into_iter().collect();
    let error = h
        .service
        .set_person_roles(&h.security, &actor("sec-2"), owner_too)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ApproverSetChangeUnapproved(_)),
        "{error:?}"
    );
    assert_last_refused(&f, EventType::Roles).await;
    let error = h
        .service
        .set_person_roles(&h.security, &actor("biz-1"), RoleSet::EMPTY)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ApproverSetChangeUnapproved(_)),
        "{error:?}"
    );
    assert_eq!(
        roles(&f, "biz-1").await,
        [Role::BusinessOwner].into_iter().collect()
    );
    // Taking the role on a quorum's approval.
    let person = actor("biz-1");
    let approval = f
        .approved_change(&ApproverSetChange::Roles {
            person: &person,
            from: [Role::BusinessOwner].into_iter().collect(),
            to: RoleSet::EMPTY,
        })
        .await;
    h.service
        .set_person_roles_approved(&h.security, &person, RoleSet::EMPTY, &approval)
        .await
        .unwrap();
    assert_eq!(roles(&f, "biz-1").await, RoleSet::EMPTY);

    // A role change that leaves the approver set alone needs none.
    let operator_too: RoleSet = [Role::Security, Role::Operator].into_iter().collect();
    h.service
        .set_person_roles(&h.security, &actor("sec-3"), operator_too)
        .await
        .unwrap();
    assert_eq!(roles(&f, "sec-3").await, operator_too);
    h.verify_audit().await;
}

/// An approval given by an approver revoked since does not count: the
/// change is refused naming them, and nothing changes.
pub async fn revoked_approvers_approval_is_refused<S: Storage>(f: Fixture<S>) {
    let h = &f.h;
    let newcomer = h.person(&actor("biz-2"), &[Role::BusinessOwner]);
    let change = ApproverSetChange::Register(&newcomer);
    let request = h
        .service
        .request_approval(
            &h.security,
            change.approval_params(text("CHG-9"), [0x9c; 32]),
        )
        .await
        .unwrap();
    let bytes = request.encode().unwrap();
    f.approve(&bytes, "sec-2", Role::Security).await.unwrap();
    f.approve(&bytes, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    h.service
        .revoke_person(&h.security, &actor("biz-1"), text("left the company"))
        .await
        .unwrap();
    let approval = shardkeep_backup::ChangeApproval {
        request: request.hash().unwrap(),
        ticket: text("CHG-9"),
        risk_note_hash: [0x9c; 32],
    };
    let error = h
        .service
        .register_person_approved(&h.security, newcomer, &approval)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ApproverRevoked(approver) if *approver == actor("biz-1")),
        "{error:?}"
    );
    assert_last_refused(&f, EventType::Register).await;
    assert!(!registered(&f, "biz-2").await);
    h.verify_audit().await;
}

//! Approval cases, generic over the storage backend: the policy change
//! under approvals end to end, then every refusal with its own error.

use std::time::Duration;

use shardkeep_audit::{EventType, Outcome};
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalRequestHash, ApprovalSubject, ApproverSetChange,
    ChangeApproval, Error, Policy, PolicySettings, Role, sign_approval,
};
use shardkeep_storage::Storage;
use shardkeep_types::{
    ActorId, InMemorySigner, KeyId, KeyVersion, Label, NodeId, NodeVersion, ShareIndex, Signer,
    SignerId, Threshold,
};

use super::{Harness, actor, text};

/// A service with, besides `sec-1` (security) and `ops-1` (operator):
/// `sec-2` and `sec-3` (security), `biz-1` (business owner), `both-1`
/// (security and business owner), each with a known approval key.
pub struct Fixture<S: Storage> {
    pub h: Harness<S>,
    keys: Vec<(ActorId, InMemorySigner)>,
}

/// The approvers a [`Fixture`] registers, with their roles.
const APPROVERS: [(&str, &[Role]); 4] = [
    ("sec-2", &[Role::Security]),
    ("sec-3", &[Role::Security]),
    ("biz-1", &[Role::BusinessOwner]),
    ("both-1", &[Role::Security, Role::BusinessOwner]),
];

/// The approval key a [`Fixture`] registers for `name` (from a fixed seed:
/// a process that reopens the fixture's database signs with it too).
pub fn approver_key(name: &str) -> InMemorySigner {
    let at = APPROVERS
        .iter()
        .position(|(approver, _)| *approver == name)
        .unwrap();
    let seed = 0xa0 + u8::try_from(at).unwrap();
    InMemorySigner::from_seed(SignerId::new("approval").unwrap(), &[seed; 32])
}

impl<S: Storage> Fixture<S> {
    pub async fn new(storage: S, dir: tempfile::TempDir) -> Self {
        Self::with_harness(Harness::new(storage, dir).await).await
    }

    /// The approvers registered in `h`, a bootstrapped harness.
    pub async fn with_harness(h: Harness<S>) -> Self {
        let mut fixture = Self {
            h,
            keys: Vec::new(),
        };
        for (name, roles) in APPROVERS {
            let id = actor(name);
            let signer = approver_key(name);
            let mut registration = fixture.h.person(&id, roles);
            registration.keys.approval_key = Some(signer.verifying_key().to_bytes());
            // sec-2 and sec-3 join before the registry holds a quorum
            // without sec-1; the others on their approval.
            if fixture.keys.len() < 2 {
                fixture
                    .h
                    .service
                    .register_person(&fixture.h.security, registration)
                    .await
                    .unwrap();
            } else {
                let approval = fixture
                    .approved_change(&ApproverSetChange::Register(&registration))
                    .await;
                fixture
                    .h
                    .service
                    .register_person_approved(&fixture.h.security, registration, &approval)
                    .await
                    .unwrap();
            }
            fixture.keys.push((id, signer));
        }
        fixture
    }

    /// The approver-set change `change`, asked by `sec-1` and approved by
    /// `sec-2` and `sec-3`.
    pub async fn approved_change(&self, change: &ApproverSetChange<'_>) -> ChangeApproval {
        let request = self
            .h
            .service
            .request_approval(
                &self.h.security,
                change.approval_params(text("CHG-9"), [0x9c; 32]),
            )
            .await
            .unwrap();
        let bytes = request.encode().unwrap();
        self.approve(&bytes, "sec-2", Role::Security).await.unwrap();
        self.approve(&bytes, "sec-3", Role::Security).await.unwrap();
        ChangeApproval {
            request: request.hash().unwrap(),
            ticket: text("CHG-9"),
            risk_note_hash: [0x9c; 32],
        }
    }

    pub fn key(&self, name: &str) -> &InMemorySigner {
        &self
            .keys
            .iter()
            .find(|(id, _)| id.as_str() == name)
            .unwrap()
            .1
    }

    /// Asks for a policy change to [`new_settings`], as `sec-1`.
    async fn request_policy_change(&self) -> (Vec<u8>, ApprovalRequestHash) {
        let request = self
            .h
            .service
            .request_approval(&self.h.security, policy_params())
            .await
            .unwrap();
        (request.encode().unwrap(), request.hash().unwrap())
    }

    /// An approval request of `params`, asked by the operator and approved
    /// by the business owner `biz-1` and the security person `sec-2`.
    pub async fn operator_request_approved(&self, params: ApprovalParams) -> ApprovalRequestHash {
        let request = self
            .h
            .service
            .request_approval(&self.h.operator, params)
            .await
            .unwrap();
        let bytes = request.encode().unwrap();
        self.approve(&bytes, "biz-1", Role::BusinessOwner)
            .await
            .unwrap();
        self.approve(&bytes, "sec-2", Role::Security).await.unwrap();
        request.hash().unwrap()
    }

    /// `name` signs `request` as `role` with their registered key and
    /// submits it.
    pub async fn approve(
        &self,
        request: &[u8],
        name: &str,
        role: Role,
    ) -> Result<shardkeep_backup::ApprovalState, Error> {
        let approval = sign_approval(request, &actor(name), role, self.key(name)).unwrap();
        self.h
            .service
            .submit_approval(&actor(name), &approval.encode())
            .await
    }

    async fn change_policy(
        &self,
        hash: &ApprovalRequestHash,
    ) -> Result<shardkeep_backup::CurrentPolicy, Error> {
        self.h
            .service
            .set_policy_approved(
                &self.h.security,
                new_settings(),
                hash,
                text("CHG-7"),
                [0x5c; 32],
            )
            .await
    }

    async fn last_record(&self) -> shardkeep_audit::AuditRecord {
        self.h.audit_records().await.pop().unwrap()
    }
}

fn new_settings() -> PolicySettings {
    PolicySettings {
        threshold: Threshold::new(3, 5).unwrap(),
        server_shares: 1,
        kek_provider: Label::new("local-key-file").unwrap(),
    }
}

fn policy_params() -> ApprovalParams {
    let settings = new_settings();
    let policy = Policy::new(
        settings.threshold,
        settings.server_shares,
        settings.kek_provider,
    )
    .unwrap();
    ApprovalParams {
        operation: ApprovalOperation::PolicyChange,
        subject: None,
        target: None,
        allow_server_shares: false,
        slots: Vec::new(),
        change_hash: Some(policy.hash()),
        ticket: text("CHG-7"),
        risk_note_hash: [0x5c; 32],
    }
}

fn assert_refusal_audited(record: &shardkeep_audit::AuditRecord, event: EventType) {
    assert_eq!(record.event, event);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));
}

pub async fn policy_change_with_approvals<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    let state = f.approve(&request, "sec-2", Role::Security).await.unwrap();
    assert!(!state.satisfied);
    f.h.clock.advance(Duration::from_secs(1));
    let state = f
        .approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    assert!(state.satisfied);
    assert_eq!(state.operation, ApprovalOperation::PolicyChange);
    assert_eq!(
        state.approvals,
        [
            (actor("sec-2"), Role::Security),
            (actor("biz-1"), Role::BusinessOwner)
        ]
    );
    let current = f.change_policy(&hash).await.unwrap();
    assert_eq!(current.policy.server_shares(), 1);
    let events: Vec<EventType> =
        f.h.audit_records()
            .await
            .iter()
            .map(|record| record.event)
            .collect();
    assert!(events.ends_with(&[
        EventType::ApprovalRequest,
        EventType::Approve,
        EventType::Approve,
        EventType::Policy
    ]));
    // A second security person is as good as a business owner.
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    f.approve(&request, "sec-3", Role::Security).await.unwrap();
    f.change_policy(&hash).await.unwrap();
}

pub async fn missing_approval_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalMissing { .. })
    ));
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalMissing { .. })
    ));
    assert_refusal_audited(&f.last_record().await, EventType::Policy);
    // An unknown request is refused too.
    assert!(matches!(
        f.change_policy(&ApprovalRequestHash([7; 32])).await,
        Err(Error::ApprovalRequestUnknown(_))
    ));
    // Nothing was consumed: the request still works once approved.
    f.approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    f.change_policy(&hash).await.unwrap();
}

pub async fn expired_approval_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    f.approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    f.h.clock.advance(Duration::from_secs(24 * 60 * 60));
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalExpired { .. })
    ));
    assert!(matches!(
        f.approve(&request, "sec-3", Role::Security).await,
        Err(Error::ApprovalExpired { .. })
    ));
    assert_refusal_audited(&f.last_record().await, EventType::Approve);
}

pub async fn replayed_approval_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    f.approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    f.change_policy(&hash).await.unwrap();
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalReplayed(h)) if h == hash
    ));
    assert!(matches!(
        f.approve(&request, "sec-3", Role::Security).await,
        Err(Error::ApprovalReplayed(_))
    ));
}

pub async fn self_approval_is_refused<S: Storage>(f: Fixture<S>) {
    // sec-2 asks, then signs their own request.
    let request =
        f.h.service
            .request_approval(&actor("sec-2"), policy_params())
            .await
            .unwrap()
            .encode()
            .unwrap();
    assert!(matches!(
        f.approve(&request, "sec-2", Role::Security).await,
        Err(Error::SelfApproval(a)) if a.as_str() == "sec-2"
    ));
    assert_refusal_audited(&f.last_record().await, EventType::Approve);
}

pub async fn same_approver_twice_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "both-1", Role::Security).await.unwrap();
    assert!(matches!(
        f.approve(&request, "both-1", Role::BusinessOwner).await,
        Err(Error::SameApproverTwice(a)) if a.as_str() == "both-1"
    ));
    assert!(matches!(
        f.approve(&request, "both-1", Role::Security).await,
        Err(Error::SameApproverTwice(_))
    ));
    // One person never counts twice.
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalMissing { .. })
    ));
}

pub async fn wrong_role_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, _) = f.request_policy_change().await;
    // biz-1 does not hold security.
    assert!(matches!(
        f.approve(&request, "biz-1", Role::Security).await,
        Err(Error::ApproverWrongRole {
            role: Role::Security,
            ..
        })
    ));
    // A drill takes security approvals only.
    let drill =
        f.h.service
            .request_approval(&f.h.operator, drill_params())
            .await
            .unwrap()
            .encode()
            .unwrap();
    assert!(matches!(
        f.approve(&drill, "biz-1", Role::BusinessOwner).await,
        Err(Error::ApproverWrongRole {
            role: Role::BusinessOwner,
            ..
        })
    ));
    f.approve(&drill, "sec-2", Role::Security).await.unwrap();
}

pub async fn revoked_approver_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    f.approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    f.h.service
        .revoke_person(&f.h.security, &actor("biz-1"), text("left the company"))
        .await
        .unwrap();
    // Registration is checked again when the approvals are used.
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApproverRevoked(a)) if a.as_str() == "biz-1"
    ));
    f.h.service
        .revoke_person(&f.h.security, &actor("sec-3"), text("left"))
        .await
        .unwrap();
    assert!(matches!(
        f.approve(&request, "sec-3", Role::Security).await,
        Err(Error::ApproverRevoked(_))
    ));
}

pub async fn bad_signature_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    // Signed with sec-3's key, submitted as sec-2's approval.
    let forged = sign_approval(&request, &actor("sec-2"), Role::Security, f.key("sec-3")).unwrap();
    assert!(matches!(
        f.h.service
            .submit_approval(&actor("sec-2"), &forged.encode())
            .await,
        Err(Error::ApprovalSignatureInvalid(a)) if a.as_str() == "sec-2"
    ));
    // A good signature altered in one bit.
    let mut altered =
        sign_approval(&request, &actor("sec-2"), Role::Security, f.key("sec-2")).unwrap();
    altered.signature[0] ^= 1;
    assert!(matches!(
        f.h.service
            .submit_approval(&actor("sec-2"), &altered.encode())
            .await,
        Err(Error::ApprovalSignatureInvalid(_))
    ));
    // Someone else submitting it.
    let good = sign_approval(&request, &actor("sec-2"), Role::Security, f.key("sec-2")).unwrap();
    assert!(matches!(
        f.h.service
            .submit_approval(&actor("sec-3"), &good.encode())
            .await,
        Err(Error::ApprovalNotSubmitter { .. })
    ));
    assert_refusal_audited(&f.last_record().await, EventType::Approve);
    assert!(matches!(
        f.change_policy(&hash).await,
        Err(Error::ApprovalMissing { .. })
    ));
}

pub async fn approval_for_other_parameters_is_refused<S: Storage>(f: Fixture<S>) {
    let (request, hash) = f.request_policy_change().await;
    f.approve(&request, "sec-2", Role::Security).await.unwrap();
    f.approve(&request, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    let service = &f.h.service;
    // Another policy.
    let mut other = new_settings();
    other.server_shares = 2;
    assert!(matches!(
        service
            .set_policy_approved(&f.h.security, other, &hash, text("CHG-7"), [0x5c; 32])
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "change_hash",
            ..
        })
    ));
    // Another ticket, another risk note.
    assert!(matches!(
        service
            .set_policy_approved(
                &f.h.security,
                new_settings(),
                &hash,
                text("CHG-8"),
                [0x5c; 32]
            )
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "ticket",
            ..
        })
    ));
    assert!(matches!(
        service
            .set_policy_approved(&f.h.security, new_settings(), &hash, text("CHG-7"), [0; 32])
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "risk_note_hash",
            ..
        })
    ));
    // Run by someone other than the requester.
    assert!(matches!(
        service
            .set_policy_approved(
                &actor("sec-3"),
                new_settings(),
                &hash,
                text("CHG-7"),
                [0x5c; 32]
            )
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "requester",
            ..
        })
    ));
    // A drill's approvals for a policy change.
    let drill = service
        .request_approval(&f.h.operator, drill_params())
        .await
        .unwrap();
    let drill_bytes = drill.encode().unwrap();
    f.approve(&drill_bytes, "sec-2", Role::Security)
        .await
        .unwrap();
    assert!(matches!(
        service
            .set_policy_approved(
                &f.h.security,
                new_settings(),
                &drill.hash().unwrap(),
                text("CHG-7"),
                [0x5c; 32]
            )
            .await,
        Err(Error::ApprovalParametersMismatch { .. })
    ));
    // None of these used the request.
    f.change_policy(&hash).await.unwrap();
}

fn drill_params() -> ApprovalParams {
    ApprovalParams {
        operation: ApprovalOperation::Drill,
        subject: Some(ApprovalSubject {
            version: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-1").unwrap(),
                version: KeyVersion::new(1),
            },
            split_id: [0x77; 32],
        }),
        target: Some(text("/tmp/drill")),
        allow_server_shares: false,
        slots: Vec::new(),
        change_hash: None,
        ticket: text("DRILL-1"),
        risk_note_hash: [0x11; 32],
    }
}

pub async fn requests_are_checked_and_authorized<S: Storage>(f: Fixture<S>) {
    let service = &f.h.service;
    // Operators ask for operations on shares, security for changes.
    assert!(matches!(
        service
            .request_approval(&f.h.operator, policy_params())
            .await,
        Err(Error::MissingRole { .. })
    ));
    assert!(matches!(
        service
            .request_approval(&f.h.security, drill_params())
            .await,
        Err(Error::MissingRole { .. })
    ));
    let mut delete = drill_params();
    delete.operation = ApprovalOperation::Delete;
    assert!(matches!(
        service
            .request_approval(&f.h.operator, delete.clone())
            .await,
        Err(Error::ApprovalParamsInvalid { .. })
    ));
    delete.target = None;
    delete.slots = vec![ShareIndex::new(2).unwrap(), ShareIndex::new(5).unwrap()];
    let request = service
        .request_approval(&f.h.operator, delete)
        .await
        .unwrap();
    assert_eq!(request.deployment.as_str(), "test");
    assert_eq!(request.requester, f.h.operator);
    assert_eq!(
        request.expires_at,
        request
            .created_at
            .checked_add(Duration::from_secs(24 * 60 * 60))
            .unwrap()
    );
    // Delete needs a business owner and a security person.
    let bytes = request.encode().unwrap();
    let state = f.approve(&bytes, "sec-2", Role::Security).await.unwrap();
    assert!(!state.satisfied);
    let state = f
        .approve(&bytes, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    assert!(state.satisfied);
}

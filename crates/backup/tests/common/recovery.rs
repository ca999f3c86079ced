//! Recovery session cases, generic over the storage backend: a session
//! started on consumed approvals, at most one open per key version, idle
//! sessions wiped, sessions on another replica, and the custodian's checks
//! of the descriptor.

use std::time::Duration;

use shardkeep_audit::{EventType, Outcome};
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalRequestHash, ApprovalSubject, Error, Generated,
    RecoveryParams, Role, SessionDescriptor, prepare_recovery_submission,
};
use shardkeep_storage::Storage;
use shardkeep_types::Signer;

use super::approvals::Fixture;
use super::{Protocol, TestCustodian, actor, text};

/// A hybrid 3-of-5 backup of party 0 (node `node-0`) of `wallet`, with
/// three custodians, on the approval fixture's registry.
pub struct Recovery<S: Storage> {
    pub f: Fixture<S>,
    pub custodians: Vec<TestCustodian>,
    pub generated: Generated,
    pub protocol: Protocol,
}

impl<S: Storage> Recovery<S> {
    pub async fn new(f: Fixture<S>, protocol: Protocol) -> Self {
        f.h.hybrid_policy().await;
        let custodians = f.h.custodians("cust", 3).await;
        let refs: Vec<&TestCustodian> = custodians.iter().collect();
        let generated = f.h.generate(protocol, "wallet", 0, &refs).await.unwrap();
        Self {
            f,
            custodians,
            generated,
            protocol,
        }
    }

    /// The recovery of node-0 into its keystore directory, external shares
    /// only.
    pub fn params(&self) -> RecoveryParams {
        RecoveryParams {
            version: self.generated.version.clone(),
            target: text(&self.f.h.dir.path().join("keystore").display().to_string()),
            allow_server_shares: false,
            ticket: text("INC-42"),
            risk_note_hash: [0x77; 32],
        }
    }

    /// The approval request of `params`, asked by the operator and
    /// approved by `biz-1` and `sec-2`.
    pub async fn approved(&self, params: &RecoveryParams) -> ApprovalRequestHash {
        let h = &self.f.h;
        let request = h
            .service
            .request_approval(
                &h.operator,
                ApprovalParams {
                    operation: ApprovalOperation::Recover,
                    subject: Some(ApprovalSubject {
                        version: params.version.clone(),
                        split_id: self.generated.split_id,
                    }),
                    target: Some(params.target.clone()),
                    allow_server_shares: params.allow_server_shares,
                    slots: Vec::new(),
                    change_hash: None,
                    ticket: params.ticket.clone(),
                    risk_note_hash: params.risk_note_hash,
                },
            )
            .await
            .unwrap();
        let bytes = request.encode().unwrap();
        self.f
            .approve(&bytes, "biz-1", Role::BusinessOwner)
            .await
            .unwrap();
        self.f
            .approve(&bytes, "sec-2", Role::Security)
            .await
            .unwrap();
        request.hash().unwrap()
    }

    /// Starts a session on fresh approvals of [`Recovery::params`].
    pub async fn start(&self) -> Result<SessionDescriptor, Error> {
        let params = self.params();
        let hash = self.approved(&params).await;
        self.f
            .h
            .service
            .start_recovery(&self.f.h.operator, &hash, params)
            .await
    }

    /// Custodian `i`'s submission of its container to `descriptor`.
    pub fn submission(&self, i: usize, descriptor: &[u8]) -> Result<Vec<u8>, Error> {
        let custodian = &self.custodians[i];
        prepare_recovery_submission(
            descriptor,
            &self.f.h.signer.verifying_key(),
            self.f.h.clock_now(),
            &self.generated.containers[i].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        )
    }
}

pub async fn a_session_starts_on_consumed_approvals<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let params = r.params();
    let hash = r.approved(&params).await;
    let descriptor = h
        .service
        .start_recovery(&h.operator, &hash, params.clone())
        .await
        .unwrap();
    let verified =
        SessionDescriptor::decode_verify(descriptor.as_bytes(), &h.signer.verifying_key()).unwrap();
    assert_eq!(verified, descriptor);
    assert_eq!(descriptor.version, r.generated.version);
    assert_eq!(descriptor.split_id, r.generated.split_id);
    assert_eq!(descriptor.operation, ApprovalOperation::Recover);
    assert_eq!(descriptor.request, hash);
    assert_eq!(
        descriptor.approvals,
        [
            (actor("biz-1"), Role::BusinessOwner),
            (actor("sec-2"), Role::Security)
        ]
    );
    assert!(descriptor.recipient.starts_with("age1"));
    assert_eq!(descriptor.started_at, h.clock_now());
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Recover);
    assert_eq!(record.outcome, Outcome::Success);
    assert!(
        record
            .detail
            .as_ref()
            .unwrap()
            .as_str()
            .contains(&descriptor.session.to_string())
    );

    let progress = h
        .service
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap();
    assert_eq!(progress.threshold, 3);
    assert!(progress.received.is_empty());
    assert_eq!(progress.version, r.generated.version);

    // The approvals were consumed: once the session is gone, they cannot
    // start another.
    h.clock.advance(Duration::from_secs(16 * 60));
    assert!(matches!(
        h.service
            .start_recovery(&h.operator, &hash, params.clone())
            .await,
        Err(Error::ApprovalReplayed(replayed)) if replayed == hash
    ));
    // Approvals for other parameters start nothing.
    let mut other = params.clone();
    other.allow_server_shares = true;
    let hash = r.approved(&params).await;
    assert!(matches!(
        h.service.start_recovery(&h.operator, &hash, other).await,
        Err(Error::ApprovalParametersMismatch {
            field: "allow_server_shares",
            ..
        })
    ));
    h.service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
}

pub async fn a_second_active_session_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let first = r.start().await.unwrap();
    let params = r.params();
    let hash = r.approved(&params).await;
    let error = h
        .service
        .start_recovery(&h.operator, &hash, params.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::RecoverySessionActive(version) if *version == r.generated.version),
        "{error:?}"
    );
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::AccessDenied);
    // The refused start consumed nothing: once the first session lapsed,
    // the same approvals start a new one, and the first is closed.
    h.clock.advance(Duration::from_secs(15 * 60));
    let second = h
        .service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
    assert_ne!(second.session, first.session);
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &first.session).await,
        Err(Error::RecoverySessionClosed(id)) if id == first.session
    ));
}

pub async fn an_expired_session_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let session = descriptor.session;
    // Activity keeps it alive: 10 + 10 minutes, never 15 idle.
    for _ in 0..2 {
        h.clock.advance(Duration::from_secs(10 * 60));
        h.service
            .recovery_progress(&h.operator, &session)
            .await
            .unwrap();
    }
    h.clock.advance(Duration::from_secs(15 * 60));
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &session).await,
        Err(Error::RecoverySessionExpired { session: id, .. }) if id == session
    ));
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Recover);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &session).await,
        Err(Error::RecoverySessionClosed(id)) if id == session
    ));
    // A custodian refuses a descriptor whose session ended (the approval
    // request's expiry, 24 hours on).
    h.clock.advance(Duration::from_secs(24 * 60 * 60));
    assert!(matches!(
        r.submission(0, descriptor.as_bytes()),
        Err(Error::SessionDescriptorExpired(at)) if at == descriptor.expires_at
    ));
    // The timer's sweep wipes lapsed sessions and closes them.
    let h = &r.f.h;
    let params = r.params();
    let hash = r.approved(&params).await;
    let next = h
        .service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
    assert_eq!(h.service.expire_recovery_sessions().await.unwrap(), 0);
    h.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(h.service.expire_recovery_sessions().await.unwrap(), 1);
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &next.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
}

pub async fn a_session_on_another_replica_is_refused<S: Storage + Clone>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let other = h.replica("r2");
    let error = other
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::SessionOnOtherReplica { session, replica }
                if *session == descriptor.session && replica.as_str() == "r1"
        ),
        "{error:?}"
    );
    // The session is untouched on its own replica.
    h.service
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap();
    // An unknown session is its own error.
    assert!(matches!(
        other
            .recovery_progress(&h.operator, &shardkeep_backup::RecoverySessionId([0; 16]))
            .await,
        Err(Error::RecoverySessionUnknown(_))
    ));
    // The same replica restarted: its memory lost the session, which is
    // closed as abandoned; a new one can start.
    let restarted = h.replica("r1");
    assert!(matches!(
        restarted
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionLost(id)) if id == descriptor.session
    ));
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
    r.start().await.unwrap();
}

pub async fn the_custodian_checks_the_descriptor<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let bytes = descriptor.as_bytes();
    let submission = r.submission(0, bytes).unwrap();
    assert!(!submission.is_empty());

    // A descriptor with a bad signature.
    let mut forged = bytes.to_vec();
    *forged.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        r.submission(0, &forged),
        Err(Error::SessionDescriptorInvalid("signature"))
    ));
    // A descriptor changed anywhere (here: the recipient) does not verify.
    let mut changed = bytes.to_vec();
    let at = changed
        .windows(4)
        .position(|window| window == b"age1")
        .unwrap();
    changed[at + 10] ^= 0x01;
    assert!(matches!(
        r.submission(0, &changed),
        Err(Error::SessionDescriptorInvalid(_))
    ));
    // Pinned to another key.
    let other = h.signing_key();
    let custodian = &r.custodians[0];
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &other.verifying_key(),
            h.clock_now(),
            &r.generated.containers[0].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::SessionDescriptorInvalid("signature"))
    ));
    // A container this identity cannot open.
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &h.signer.verifying_key(),
            h.clock_now(),
            &r.generated.containers[1].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::ContainerUnreadable)
    ));
    // A descriptor for another envelope: another node's container.
    let refs: Vec<&TestCustodian> = r.custodians.iter().collect();
    let node1 = h.generate(r.protocol, "wallet", 1, &refs).await.unwrap();
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &h.signer.verifying_key(),
            h.clock_now(),
            &node1.containers[0].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::SessionDescriptorMismatch { field: "node" })
    ));
}

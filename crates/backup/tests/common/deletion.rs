//! Deletion and zero retention, generic over the storage backend and the
//! KEK provider: soft delete, rollback, hard delete with each slot KEK
//! destroyed (and the sealed share no longer opening), the certificate
//! verified offline; then every refusal with its own error. The audit log
//! is verified against its witness after every scenario.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shardkeep_audit::{EventType, FileWitness, Outcome};
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalRequestHash, ApprovalSubject, DeletionParams, Error,
    Generated, Role, ShredMethod, ZeroRetentionDraft, immediate_delete_hash, sign_zero_retention,
    verify_zero_retention_certificate,
};
use shardkeep_envelope::VerifiedEnvelope;
use shardkeep_kms::{KekPin, SlotKekProvider};
use shardkeep_storage::{
    ApprovalStore, DrillOutcome, DrillReport, DrillStore, SealedShareStore, SlotDeletionStore,
    SlotKekStore, SlotState, Storage, Transaction,
};
use shardkeep_types::{ActorId, InMemorySigner, ShareIndex, ShareSlot, Signer, SignerId};

use super::approvals::Fixture;
use super::{Harness, Protocol, TestCustodian, actor, text};

/// What a scenario starts from.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// How many of the three external shares are confirmed by receipt.
    pub receipts: usize,
    /// Whether a passed external-only drill is recorded.
    pub drill: bool,
}

impl Setup {
    pub const READY: Self = Self {
        receipts: 3,
        drill: true,
    };
}

/// A version (3 of 5, slots of 2 server shares) ready for deletion as far
/// as `Setup` says, a compliance person, and the keys of the audit
/// checkpoints and of the certificate.
pub struct Deletable<S: Storage> {
    pub f: Fixture<S>,
    pub generated: Generated,
    pub custodians: Vec<TestCustodian>,
    pub compliance: ActorId,
    pub compliance_key: InMemorySigner,
    pub audit_key: InMemorySigner,
    pub issuer: InMemorySigner,
    pub witness: PathBuf,
}

impl<S: Storage> Deletable<S> {
    pub async fn new(h: Harness<S>, setup: Setup) -> Self {
        h.bootstrap().await;
        let f = Fixture::with_harness(h).await;
        let h = &f.h;
        h.hybrid_policy().await;
        let custodians = h.custodians("cust", 3).await;
        let chosen: Vec<&TestCustodian> = custodians.iter().collect();
        let generated = h
            .generate(Protocol::Eddsa, "key-del", 0, &chosen)
            .await
            .unwrap();
        Self::prepare(f, custodians, generated, setup).await
    }

    /// Delivers and confirms the version's containers, records the drill,
    /// and registers the compliance person, as `setup` says.
    pub async fn prepare(
        f: Fixture<S>,
        custodians: Vec<TestCustodian>,
        generated: Generated,
        setup: Setup,
    ) -> Self {
        let h = &f.h;
        h.deliver_and_confirm(&generated, &custodians, setup.receipts)
            .await;
        if setup.drill {
            // The drill's report as a drill stores it (the drill itself
            // is run by the recovery tests).
            let started_at = h.clock_now();
            h.clock.advance(Duration::from_secs(600));
            let mut tx = h.service.storage().begin().await.unwrap();
            tx.record_drill(&DrillReport {
                target: generated.version.clone(),
                started_at,
                finished_at: h.clock_now(),
                operator: h.operator.clone(),
                shares_used: generated.containers.iter().map(|c| c.index).collect(),
                outcome: DrillOutcome::Passed,
                report: b"drill from the external shares; sandbox deleted".to_vec(),
            })
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let compliance = actor("comp-1");
        let compliance_key =
            InMemorySigner::from_seed(SignerId::new("approval").unwrap(), &[0xc0; 32]);
        let mut registration = h.person(&compliance, &[Role::Compliance]);
        registration.keys.approval_key = Some(compliance_key.verifying_key().to_bytes());
        h.service
            .register_person(&h.security, registration)
            .await
            .unwrap();
        let witness = h.dir.path().join("witness.log");
        Self {
            f,
            generated,
            custodians,
            compliance,
            compliance_key,
            audit_key: InMemorySigner::from_seed(SignerId::new("audit-1").unwrap(), &[0x0a; 32]),
            issuer: InMemorySigner::from_seed(
                SignerId::new("zero-retention-1").unwrap(),
                &[0x2c; 32],
            ),
            witness,
        }
    }

    pub fn h(&self) -> &Harness<S> {
        &self.f.h
    }

    /// The server-held slots' indices.
    pub fn server(&self) -> Vec<ShareIndex> {
        self.generated
            .server_shares
            .iter()
            .map(|share| share.index)
            .collect()
    }

    pub fn slot(&self, index: ShareIndex) -> ShareSlot {
        self.generated.version.slot(index)
    }

    /// A delete request of `slots`, approved by a business owner and a
    /// security person.
    pub async fn approved(&self, slots: &[ShareIndex]) -> ApprovalRequestHash {
        self.f
            .operator_request_approved(self.approval_params(slots))
            .await
    }

    fn approval_params(&self, slots: &[ShareIndex]) -> ApprovalParams {
        ApprovalParams {
            operation: ApprovalOperation::Delete,
            subject: Some(ApprovalSubject {
                version: self.generated.version.clone(),
                split_id: self.generated.split_id,
            }),
            target: None,
            allow_server_shares: false,
            slots: slots.to_vec(),
            change_hash: None,
            ticket: text("DEL-42"),
            risk_note_hash: [0xd3; 32],
        }
    }

    pub fn params(&self, request: ApprovalRequestHash) -> DeletionParams {
        DeletionParams {
            version: self.generated.version.clone(),
            slots: self.server(),
            request,
            ticket: text("DEL-42"),
            risk_note_hash: [0xd3; 32],
        }
    }

    /// Soft-deletes every server slot on fresh approvals; returns the
    /// request.
    pub async fn soft_delete(&self) -> Result<ApprovalRequestHash, Error> {
        let request = self.approved(&self.server()).await;
        self.h()
            .service
            .soft_delete(&self.h().operator, &self.params(request))
            .await
            .map(|_| request)
    }

    pub async fn hard_delete(
        &self,
        request: &ApprovalRequestHash,
    ) -> Result<ZeroRetentionDraft, Error> {
        let mut witness = FileWitness::open(&self.witness).unwrap();
        self.h()
            .service
            .hard_delete(
                &self.h().operator,
                &self.generated.version,
                request,
                &self.audit_key,
                &mut witness,
            )
            .await
    }

    pub async fn state(&self, index: ShareIndex) -> SlotState {
        let mut tx = self.h().service.storage().begin_read_only().await.unwrap();
        let state = tx.slot_state(&self.slot(index)).await.unwrap();
        tx.rollback().await.unwrap();
        state
    }

    /// The slot's sealed envelope (a copy an attacker might keep) and its
    /// KEK pin.
    pub async fn sealed(&self, index: ShareIndex) -> (Vec<u8>, KekPin) {
        let slot = self.slot(index);
        let mut tx = self.h().service.storage().begin_read_only().await.unwrap();
        let sealed = tx.load_sealed_share(&slot).await.unwrap();
        let kek = tx.slot_kek(&slot).await.unwrap().unwrap();
        tx.rollback().await.unwrap();
        (
            sealed.envelope,
            KekPin {
                kek_id: kek.kek_id,
                fingerprint: kek.fingerprint,
            },
        )
    }

    /// The version's server slots: held, soft-deleted, hard-deleted (the
    /// status's coverage).
    pub async fn coverage(&self) -> (u8, u8, u8) {
        let page = self
            .h()
            .service
            .status(
                &self.h().operator,
                &shardkeep_backup::StatusQuery {
                    key_id: Some(self.generated.version.key_id.clone()),
                    node_id: Some(self.generated.version.node_id.clone()),
                    ..shardkeep_backup::StatusQuery::default()
                },
            )
            .await
            .unwrap();
        let status = page
            .versions
            .iter()
            .find(|status| status.version == self.generated.version)
            .unwrap();
        (
            status.server_shares_held,
            status.server_shares_soft_deleted,
            status.server_shares_hard_deleted,
        )
    }

    /// The last audit record: a failed `event`.
    pub async fn assert_refusal_audited(&self, event: EventType) {
        let record = self.h().audit_records().await.pop().unwrap();
        assert_eq!(record.event, event);
        assert!(
            matches!(record.outcome, Outcome::Failure { .. }),
            "{record:?}"
        );
    }

    /// The audit log verifies against the witness the hard deletes
    /// checkpoint to.
    pub async fn verify_audit(&self) {
        self.h()
            .verify_audit_with(&self.audit_key, &self.witness)
            .await;
    }
}

/// Soft delete, rollback, soft delete again, hard delete after the
/// cooldown: every KEK destroyed (a kept copy of the sealed share no
/// longer opens), the certificate issued and verified offline, refused
/// after any changed byte, naming `method`.
pub async fn zero_retention_end_to_end<S: Storage>(
    h: Harness<S>,
    keks: Arc<dyn SlotKekProvider>,
    method: ShredMethod,
) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let server = d.server();
    assert_eq!(server.len(), 2);
    let mut kept = Vec::new();
    for index in &server {
        let (envelope, pin) = d.sealed(*index).await;
        // Before: the kept envelope opens under the pinned KEK.
        let opened = VerifiedEnvelope::decode_verify(&envelope, h.service.trusted_signers())
            .unwrap()
            .open(keks.open_slot_kek(&d.slot(*index), &pin).unwrap().as_ref());
        assert!(opened.is_ok());
        kept.push((*index, envelope, pin));
    }

    // Soft delete, then roll back inside the cooldown.
    assert_eq!(d.coverage().await, (2, 0, 0));
    let first = d.soft_delete().await.unwrap();
    for index in &server {
        assert!(matches!(
            d.state(*index).await,
            SlotState::SoftDeleted { .. }
        ));
    }
    assert_eq!(d.coverage().await, (0, 2, 0));
    assert!(matches!(
        d.hard_delete(&first).await,
        Err(Error::DeletionCooldown { .. })
    ));
    d.assert_refusal_audited(EventType::HardDelete).await;
    h.clock.advance(Duration::from_secs(3600));
    h.service
        .rollback_deletion(&h.operator, &d.generated.version, &server)
        .await
        .unwrap();
    for index in &server {
        assert_eq!(d.state(*index).await, SlotState::Active);
    }
    let records = h.audit_records().await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event == EventType::Rollback)
            .count(),
        2
    );
    // The used approvals never serve again.
    assert!(matches!(
        h.service.soft_delete(&h.operator, &d.params(first)).await,
        Err(Error::ApprovalReplayed(_))
    ));

    // Soft delete again; hard delete once the cooldown is over.
    let second = d.soft_delete().await.unwrap();
    h.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let draft = d.hard_delete(&second).await.unwrap();
    for index in &server {
        assert!(matches!(
            d.state(*index).await,
            SlotState::HardDeleted { .. }
        ));
    }
    assert_eq!(d.coverage().await, (0, 0, 2));
    // The attack: the kept sealed share cannot be opened any more.
    for (index, envelope, pin) in &kept {
        let slot = d.slot(*index);
        assert!(matches!(
            keks.open_slot_kek(&slot, pin),
            Err(shardkeep_kms::Error::SlotKekNotFound { .. })
        ));
        // Nor under any key the provider hands out now.
        let (fresh, fresh_pin) = keks.create_slot_kek(&slot).unwrap();
        let envelope =
            VerifiedEnvelope::decode_verify(envelope, h.service.trusted_signers()).unwrap();
        assert!(envelope.open(fresh.as_ref()).is_err());
        keks.destroy_slot_kek(&slot, &fresh_pin).unwrap();
        let mut tx = h.service.storage().begin_read_only().await.unwrap();
        let kek = tx.slot_kek(&slot).await.unwrap().unwrap();
        assert!(kek.destroyed_at.is_some());
        assert!(tx.load_sealed_share(&slot).await.is_err());
        tx.rollback().await.unwrap();
    }
    // Rollback after the hard delete is refused.
    assert!(matches!(
        h.service
            .rollback_deletion(&h.operator, &d.generated.version, &server)
            .await,
        Err(Error::SlotState {
            state: "hard-deleted",
            ..
        })
    ));
    d.assert_refusal_audited(EventType::Rollback).await;

    // The compliance sign-off, the certificate, verified offline.
    let body = draft.body();
    assert_eq!(body.method, method);
    assert!(body.describe().contains(method.name()));
    let sign_off =
        sign_zero_retention(body, &d.compliance, &d.compliance_key, h.clock_now()).unwrap();
    // Only the compliance person themselves may hand it in.
    assert!(
        h.service
            .issue_zero_retention_certificate(&h.operator, &draft, &sign_off, &d.issuer)
            .await
            .is_err()
    );
    let bytes = h
        .service
        .issue_zero_retention_certificate(&d.compliance, &draft, &sign_off, &d.issuer)
        .await
        .unwrap();
    let certificate = verify_zero_retention_certificate(&bytes, &d.issuer.verifying_key()).unwrap();
    assert_eq!(&certificate.body, body);
    assert_eq!(certificate.body.method, method);
    let slots: Vec<ShareIndex> = certificate.body.slots.iter().map(|s| s.index).collect();
    assert_eq!(slots, server);
    for ((_, _, pin), slot) in kept.iter().zip(&certificate.body.slots) {
        assert_eq!(slot.kek_id, pin.kek_id);
        assert_eq!(slot.fingerprint, pin.fingerprint);
    }
    assert_eq!(certificate.body.receipts.len(), 3);
    assert_eq!(certificate.body.request, second);
    assert_eq!(certificate.body.approvals.len(), 2);
    assert!(certificate.checkpoint_verifies(&d.audit_key.verifying_key()));
    assert!(certificate.body.checkpoint.sequence >= certificate.body.deletion_records.1);
    let witnessed = shardkeep_audit::read_witness(&d.witness).unwrap();
    assert!(witnessed.contains(&certificate.body.checkpoint));
    // Refused under another key and after any changed byte.
    assert!(verify_zero_retention_certificate(&bytes, &d.audit_key.verifying_key()).is_err());
    for at in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[at] ^= 0xff;
        assert!(
            verify_zero_retention_certificate(&changed, &d.issuer.verifying_key()).is_err(),
            "byte {at} changed was accepted"
        );
    }
    let records = h.audit_records().await;
    let last = records.last().unwrap();
    assert_eq!(last.event, EventType::ZeroRetention);
    assert_eq!(last.outcome, Outcome::Success);
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event == EventType::HardDelete && r.outcome == Outcome::Success)
            .count(),
        2
    );
    // The deletion checklist, computed from what the operations stored,
    // passes every item.
    let report = h
        .service
        .checklist(
            &d.compliance,
            &shardkeep_backup::ChecklistQuery {
                version: d.generated.version.clone(),
                kind: shardkeep_backup::ChecklistKind::Deletion,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.items.len(), 8);
    assert!(report.passed(), "{:#?}", report.items);
    d.verify_audit().await;
}

/// An approved delete request that is unused after a refusal.
async fn assert_unused<S: Storage>(d: &Deletable<S>, request: &ApprovalRequestHash) {
    let mut tx = d.h().service.storage().begin_read_only().await.unwrap();
    assert_eq!(
        tx.approval_request(request).await.unwrap().consumed_at,
        None
    );
    tx.rollback().await.unwrap();
}

/// Soft-deletes on fresh approvals, expecting `refused`; nothing changes.
async fn soft_delete_refused<S: Storage>(d: &Deletable<S>, refused: impl Fn(&Error) -> bool) {
    let request = d.approved(&d.server()).await;
    let error = d
        .h()
        .service
        .soft_delete(&d.h().operator, &d.params(request))
        .await
        .unwrap_err();
    assert!(refused(&error), "{error:?}");
    d.assert_refusal_audited(EventType::SoftDelete).await;
    assert_unused(d, &request).await;
    for index in d.server() {
        assert_eq!(d.state(index).await, SlotState::Active);
    }
}

pub async fn hard_delete_before_the_cooldown_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let request = d.soft_delete().await.unwrap();
    d.h().clock.advance(Duration::from_secs(7 * 24 * 3600 - 1));
    assert!(matches!(
        d.hard_delete(&request).await,
        Err(Error::DeletionCooldown { .. })
    ));
    d.assert_refusal_audited(EventType::HardDelete).await;
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::SoftDeleted { .. }
        ));
        d.sealed_kek_live(index).await;
    }
    d.verify_audit().await;
}

/// A version retired by a re-split: its retirement soft-deleted its server
/// shares under no request, which a hard delete cannot use; an approved
/// delete request takes them over (its cooldown starting then), and the
/// hard delete after that cooldown destroys their KEKs: active, retiring,
/// retired and soft-deleted, hard-deleted.
pub async fn a_retired_versions_server_shares_are_hard_deleted<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let data = super::save_data(Protocol::Eddsa, 0);
    let chosen: Vec<&TestCustodian> = d.custodians.iter().collect();
    let generate = super::request(
        "key-del",
        0,
        shardkeep_backup::SaveDataSource::Loaded(&data),
        &chosen,
        shardkeep_backup::Armor::Binary,
    );
    let rotated = h
        .service
        .rotate(
            &h.operator,
            shardkeep_backup::RotateRequest {
                kind: shardkeep_backup::RotationKind::Resplit,
                generate,
            },
        )
        .await
        .unwrap();
    h.deliver_and_confirm(&rotated.generated, &d.custodians, d.custodians.len())
        .await;
    h.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        h.service.retire_due(&h.operator).await.unwrap(),
        vec![d.generated.version.clone()]
    );
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::SoftDeleted { .. }
        ));
    }
    // Soft-deleted by the retirement, under no request: no hard delete.
    let request = d.approved(&d.server()).await;
    assert!(matches!(
        d.hard_delete(&request).await,
        Err(Error::DeletionRequestMismatch { .. })
    ));
    // The approved soft delete takes the slots over, with a new cooldown.
    let request = d.soft_delete().await.unwrap();
    let taken_over = h.clock_now();
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::SoftDeleted { at, .. } if at == taken_over
        ));
    }
    h.clock.advance(Duration::from_secs(7 * 24 * 3600 - 1));
    assert!(matches!(
        d.hard_delete(&request).await,
        Err(Error::DeletionCooldown { .. })
    ));
    h.clock.advance(Duration::from_secs(1));
    let draft = d.hard_delete(&request).await.unwrap();
    assert_eq!(draft.body().slots.len(), 2);
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::HardDeleted { .. }
        ));
    }
    d.verify_audit().await;
}

impl<S: Storage> Deletable<S> {
    /// The slot's KEK is recorded live and still opens.
    async fn sealed_kek_live(&self, index: ShareIndex) {
        let slot = self.slot(index);
        let mut tx = self.h().service.storage().begin_read_only().await.unwrap();
        let kek = tx.slot_kek(&slot).await.unwrap().unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(kek.destroyed_at, None);
        let pin = KekPin {
            kek_id: kek.kek_id,
            fingerprint: kek.fingerprint,
        };
        assert!(self.h().keks.open_slot_kek(&slot, &pin).is_ok());
    }
}

pub async fn zero_retention_without_a_passed_drill_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(
        h,
        Setup {
            receipts: 3,
            drill: false,
        },
    )
    .await;
    soft_delete_refused(&d, |e| matches!(e, Error::DeletionWithoutDrill(_))).await;
    // A drill that used a server share does not count.
    let h = d.h();
    let started_at = h.clock_now();
    let mut tx = h.service.storage().begin().await.unwrap();
    tx.record_drill(&DrillReport {
        target: d.generated.version.clone(),
        started_at,
        finished_at: started_at,
        operator: h.operator.clone(),
        shares_used: vec![
            d.server()[0],
            d.generated.containers[0].index,
            d.generated.containers[1].index,
        ],
        outcome: DrillOutcome::Passed,
        report: b"drill with a server share".to_vec(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    soft_delete_refused(&d, |e| matches!(e, Error::DeletionWithoutDrill(_))).await;
    d.verify_audit().await;
}

pub async fn zero_retention_with_fewer_than_t_receipts_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(
        h,
        Setup {
            receipts: 2,
            drill: true,
        },
    )
    .await;
    soft_delete_refused(&d, |e| {
        matches!(
            e,
            Error::DeletionTooFewConfirmed {
                confirmed: 2,
                needed: 3,
                ..
            }
        )
    })
    .await;
    d.verify_audit().await;
}

/// A revoked custodian's receipt no longer counts: refused at the soft
/// delete, and at the hard delete when revoked in between (the version is
/// exposed; the slots stay soft-deleted, their KEKs live).
pub async fn zero_retention_with_a_revoked_custodian_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let request = d.soft_delete().await.unwrap();
    h.service
        .revoke_entity(&h.security, &d.custodians[0].entity)
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert!(matches!(
        d.hard_delete(&request).await,
        Err(Error::DeletionTooFewConfirmed { confirmed: 2, .. })
    ));
    d.assert_refusal_audited(EventType::HardDelete).await;
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::SoftDeleted { .. }
        ));
        d.sealed_kek_live(index).await;
    }
    h.service
        .rollback_deletion(&h.operator, &d.generated.version, &d.server())
        .await
        .unwrap();
    soft_delete_refused(&d, |e| {
        matches!(e, Error::DeletionTooFewConfirmed { confirmed: 2, .. })
    })
    .await;
    d.verify_audit().await;
}

/// An open drill session (its sandbox may exist) blocks the deletion.
pub async fn zero_retention_with_an_open_session_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let params = ApprovalParams {
        operation: ApprovalOperation::Drill,
        subject: Some(ApprovalSubject {
            version: d.generated.version.clone(),
            split_id: d.generated.split_id,
        }),
        target: None,
        allow_server_shares: false,
        slots: Vec::new(),
        change_hash: None,
        ticket: text("DRL-1"),
        risk_note_hash: [0xd5; 32],
    };
    let request = h
        .service
        .request_approval(&h.operator, params)
        .await
        .unwrap();
    d.f.approve(&request.encode().unwrap(), "sec-2", Role::Security)
        .await
        .unwrap();
    h.service
        .start_drill(
            &h.operator,
            &request.hash().unwrap(),
            shardkeep_backup::DrillParams {
                version: d.generated.version.clone(),
                ticket: text("DRL-1"),
                risk_note_hash: [0xd5; 32],
            },
        )
        .await
        .unwrap();
    soft_delete_refused(&d, |e| matches!(e, Error::DeletionSessionOpen { .. })).await;
    d.verify_audit().await;
}

/// A request naming other slots than the soft delete is refused by the
/// approval check; a slot that is not server-held by the deletion.
pub async fn deletion_of_other_slots_is_refused<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let one = d.approved(&d.server()[..1]).await;
    assert!(matches!(
        h.service.soft_delete(&h.operator, &d.params(one)).await,
        Err(Error::ApprovalParametersMismatch { field: "slots", .. })
    ));
    let external = d.generated.containers[0].index;
    let request = d.approved(&[external]).await;
    let mut params = d.params(request);
    params.slots = vec![external];
    assert!(matches!(
        h.service.soft_delete(&h.operator, &params).await,
        Err(Error::NotServerSlot(_))
    ));
    assert_unused(&d, &request).await;
    d.verify_audit().await;
}

/// A revoked custodian exposes the version; the answer without a reshare:
/// an immediate hard delete under its own approvals (a delete request whose
/// change hash marks it immediate), refused while nothing is exposed and
/// under a plain delete approval.
pub async fn an_exposed_version_is_hard_deleted_at_once<S: Storage>(h: Harness<S>) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let server = d.server();
    let immediate = |request| {
        let mut params = d.params(request);
        params.slots.clone_from(&server);
        params
    };
    let approved_immediate = async || {
        let mut params = d.approval_params(&server);
        params.change_hash = Some(immediate_delete_hash(&d.generated.version));
        d.f.operator_request_approved(params).await
    };
    let run = async |request| {
        let mut witness = FileWitness::open(&d.witness).unwrap();
        h.service
            .hard_delete_exposed(&h.operator, &immediate(request), &d.audit_key, &mut witness)
            .await
    };

    // Nothing exposed yet: refused, the approvals stay unused.
    let early = approved_immediate().await;
    assert!(matches!(run(early).await, Err(Error::VersionNotExposed(_))));
    d.assert_refusal_audited(EventType::HardDelete).await;
    assert_unused(&d, &early).await;
    // An immediate approval never serves a soft delete.
    assert!(matches!(
        h.service.soft_delete(&h.operator, &d.params(early)).await,
        Err(Error::ApprovalParametersMismatch {
            field: "change_hash",
            ..
        })
    ));

    let kept: Vec<_> = {
        let mut kept = Vec::new();
        for index in &server {
            kept.push((*index, d.sealed(*index).await.1));
        }
        kept
    };
    h.service
        .revoke_entity(&h.security, &d.custodians[0].entity)
        .await
        .unwrap();
    // A plain delete approval does not authorise it.
    let plain = d.approved(&server).await;
    assert!(matches!(
        run(plain).await,
        Err(Error::ApprovalParametersMismatch {
            field: "change_hash",
            ..
        })
    ));
    let draft = run(approved_immediate().await).await.unwrap();
    for (index, pin) in &kept {
        assert!(matches!(
            d.state(*index).await,
            SlotState::HardDeleted { .. }
        ));
        assert!(matches!(
            h.keks.open_slot_kek(&d.slot(*index), pin),
            Err(shardkeep_kms::Error::SlotKekNotFound { .. })
        ));
    }
    let body = draft.body();
    assert_eq!(body.receipts.len(), 2);
    for slot in &body.slots {
        assert_eq!(slot.soft_deleted_at, slot.hard_deleted_at);
    }
    let sign_off =
        sign_zero_retention(body, &d.compliance, &d.compliance_key, h.clock_now()).unwrap();
    let bytes = h
        .service
        .issue_zero_retention_certificate(&d.compliance, &draft, &sign_off, &d.issuer)
        .await
        .unwrap();
    let certificate = verify_zero_retention_certificate(&bytes, &d.issuer.verifying_key()).unwrap();
    assert_eq!(certificate.body.method, ShredMethod::FileDelete);
    d.verify_audit().await;
}

/// A witness that cannot take a checkpoint (its disk is full).
struct FailingWitness;

impl shardkeep_audit::Witness for FailingWitness {
    async fn append(
        &mut self,
        _checkpoint: &shardkeep_audit::Checkpoint,
    ) -> Result<(), shardkeep_audit::Error> {
        Err(shardkeep_audit::Error::Io(std::io::Error::other(
            "witness disk full",
        )))
    }

    async fn read(
        &mut self,
        _log: &shardkeep_types::AuditLogId,
    ) -> Result<Vec<shardkeep_audit::Checkpoint>, shardkeep_audit::Error> {
        Ok(Vec::new())
    }
}

/// The witness fails after the hard delete committed: run again, the hard
/// delete destroys and writes nothing more and returns the certificate's
/// body for the same slots with a checkpoint that was witnessed.
pub async fn a_hard_delete_whose_witness_failed_completes_when_run_again<S: Storage>(
    h: Harness<S>,
) {
    let d = Deletable::new(h, Setup::READY).await;
    let h = d.h();
    let request = d.soft_delete().await.unwrap();
    h.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let failed = h
        .service
        .hard_delete(
            &h.operator,
            &d.generated.version,
            &request,
            &d.audit_key,
            &mut FailingWitness,
        )
        .await;
    assert!(matches!(failed, Err(Error::Audit(_))), "{failed:?}");
    for index in d.server() {
        assert!(matches!(
            d.state(index).await,
            SlotState::HardDeleted { .. }
        ));
    }
    let records = h.audit_records().await.len();
    h.clock.advance(Duration::from_secs(60));
    let draft = d.hard_delete(&request).await.unwrap();
    assert_eq!(h.audit_records().await.len(), records);
    let body = draft.body();
    let slots: Vec<ShareIndex> = body.slots.iter().map(|s| s.index).collect();
    assert_eq!(slots, d.server());
    assert_eq!(body.method, ShredMethod::FileDelete);
    let witnessed = shardkeep_audit::read_witness(&d.witness).unwrap();
    assert_eq!(witnessed, vec![body.checkpoint.clone()]);
    // A request that hard-deleted nothing does not rebuild a body.
    let other = d.approved(&d.server()).await;
    assert!(d.hard_delete(&other).await.is_err());
    d.verify_audit().await;
}

/// Zero retention after a drill that really ran (the custodians' shares
/// submitted to a drill session, regenerated into a sandbox, self-tested
/// with the other parties' processes): the certificate names that drill's
/// report by its hash.
pub async fn zero_retention_after_a_real_drill<S: Storage>(storage: S, dir: tempfile::TempDir) {
    use super::recovery::{Recovery, codec};
    use shardkeep_backup::evidence_hash;

    let r = Recovery::new(Fixture::new(storage, dir).await, Protocol::Eddsa).await;
    let h = &r.f.h;
    let hash = r.drill_approved(false).await;
    let descriptor = h
        .service
        .start_drill(&h.operator, &hash, r.drill_params())
        .await
        .unwrap();
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let report = r.submit(&descriptor, &submissions, &codec()).await.unwrap();
    assert!(report.succeeded());
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let drills = tx.drill_reports(&r.generated.version).await.unwrap();
    tx.rollback().await.unwrap();
    let [drill] = drills.as_slice() else {
        panic!("one drill: {drills:?}");
    };

    let d = Deletable::prepare(
        r.f,
        r.custodians,
        r.generated,
        Setup {
            receipts: 3,
            drill: false,
        },
    )
    .await;
    let request = d.soft_delete().await.unwrap();
    d.h().clock.advance(Duration::from_secs(7 * 24 * 3600));
    let draft = d.hard_delete(&request).await.unwrap();
    let body = draft.body();
    assert_eq!(body.drill.started_at, drill.started_at);
    assert_eq!(body.drill.shares_used, drill.shares_used);
    assert_eq!(
        body.drill.report_hash,
        evidence_hash("drill-report", &drill.report)
    );
    let sign_off =
        sign_zero_retention(body, &d.compliance, &d.compliance_key, d.h().clock_now()).unwrap();
    let bytes = d
        .h()
        .service
        .issue_zero_retention_certificate(&d.compliance, &draft, &sign_off, &d.issuer)
        .await
        .unwrap();
    verify_zero_retention_certificate(&bytes, &d.issuer.verifying_key()).unwrap();
    d.verify_audit().await;
}

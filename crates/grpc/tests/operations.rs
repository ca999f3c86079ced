//! The operations beside recovery over real mutual TLS: generate and
//! rotate (reading the node's keystore through its codec), the deletion
//! steps, the audit export and review, the checklist report and the
//! policy. Each is called for real and refused for a caller without its
//! role.
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Served, TestCustodian, actor, generate_request, save_data, text};
use shardkeep_backup::{Policy, Role, container_hash};
use shardkeep_grpc::EXPORT_CHUNK_SIZE;
use shardkeep_grpc::proto::{
    self, ExportAuditRequest, GetChecklistReportRequest, GetPolicyRequest, HardDeleteSharesRequest,
    RollbackDeletionRequest, RotateBackupRequest, SetPolicyRequest, SoftDeleteSharesRequest,
    SubmitAuditReviewRequest,
};
use shardkeep_keydata::WriteMode;
use shardkeep_types::{InMemorySigner, KeyId, KeyVersion, Label, NodeId, NodeVersion, Threshold};
use tonic::Code;
use tonic::transport::Channel;

type Client = proto::backup_service_client::BackupServiceClient<Channel>;

fn wire_version(key: &str, version: u32) -> proto::NodeVersion {
    proto::NodeVersion {
        key_id: key.into(),
        node_id: "node-0".into(),
        version,
    }
}

fn hybrid_settings() -> proto::PolicySettings {
    proto::PolicySettings {
        threshold: 3,
        shares: 5,
        server_shares: 2,
        kek_provider: "local-key-file".into(),
    }
}

async fn custodians(served: &Served, prefix: &str) -> Vec<TestCustodian> {
    let mut custodians = Vec::new();
    for i in 0..3 {
        custodians.push(served.custodian(&format!("{prefix}-{i}")).await);
    }
    custodians
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_set_then_a_backup_is_generated_and_rotated_from_the_nodes_keystore() {
    let targets = common::CodecOnly::new();
    let codec = targets.0.clone();
    let served = Served::start(Arc::new(targets)).await;
    let security = served.register_client("sec-2", &[Role::Security]).await;
    let mut security: Client = served.client(Some(security.identity())).await.unwrap();
    let mut operator = served.operator_client().await;

    // The first policy, set directly by a security person; an operator may
    // not, and a change needs approvals.
    let none = operator
        .get_policy(GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(none.settings.is_none());
    assert_code(
        operator
            .set_policy(SetPolicyRequest {
                settings: Some(hybrid_settings()),
                ..SetPolicyRequest::default()
            })
            .await,
        Code::PermissionDenied,
        "an operator sets the policy",
    );
    let set = security
        .set_policy(SetPolicyRequest {
            settings: Some(hybrid_settings()),
            ..SetPolicyRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let expected = Policy::new(
        Threshold::new(3, 5).unwrap(),
        2,
        Label::new("local-key-file").unwrap(),
    )
    .unwrap();
    assert_eq!(set.hash, expected.hash());
    assert_eq!(set.set_by, "sec-2");
    let read = operator
        .get_policy(GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, set);
    assert_code(
        security
            .set_policy(SetPolicyRequest {
                settings: Some(proto::PolicySettings {
                    server_shares: 1,
                    ..hybrid_settings()
                }),
                ..SetPolicyRequest::default()
            })
            .await,
        Code::FailedPrecondition,
        "a policy change without approvals",
    );
    assert_code(
        security
            .set_policy(SetPolicyRequest {
                settings: Some(proto::PolicySettings {
                    threshold: 6,
                    ..hybrid_settings()
                }),
                ..SetPolicyRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "t above n",
    );

    // The node's keystore, as the node wrote it.
    let keystore_dir = served.dir.path().join("node-0");
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let written_for = NodeVersion {
        key_id: KeyId::new("wallet").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    };
    let keystore = shardkeep_keydata::write_keystore(
        &keystore_dir,
        &written_for,
        &save_data(0),
        codec.as_ref(),
        WriteMode::CreateNew,
    )
    .unwrap();
    let first = custodians(&served, "first").await;

    // Refusals first: nothing is made by any of them.
    assert_code(
        security
            .generate_backup(generate_request(&keystore, &first))
            .await,
        Code::PermissionDenied,
        "a security person generates",
    );
    let mut relative = generate_request(&keystore, &first);
    relative.keystore_path = "node-0/wallet.keydata.enc".into();
    let refused = operator.generate_backup(relative).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (
            Code::InvalidArgument,
            "invalid keystore_path: not an absolute path"
        )
    );
    // The file read for another version than it was written for: the
    // codec refuses it, told opaquely.
    let mut other_version = generate_request(&keystore, &first);
    other_version.keystore_written_for = Some(wire_version("wallet", 2));
    let refused = operator.generate_backup(other_version).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::InvalidArgument, "cannot verify or decrypt")
    );

    let generated = operator
        .generate_backup(generate_request(&keystore, &first))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(generated.version, Some(wire_version("wallet", 1)));
    assert_eq!((generated.threshold, generated.shares), (3, 5));
    assert_eq!(generated.server_indices, [1, 2]);
    assert_eq!(generated.split_id.len(), 32);
    let indices: Vec<u32> = generated.containers.iter().map(|c| c.index).collect();
    assert_eq!(indices, [3, 4, 5]);
    for container in &generated.containers {
        assert_eq!(
            container.container_hash,
            container_hash(&container.container)
        );
    }
    // Each container opens for its custodian only.
    let trusted = served.service.trusted_signers();
    let open = |custodian: &TestCustodian| {
        shardkeep_envelope::open_x25519_container(
            &generated.containers[0].container,
            std::slice::from_ref(&custodian.identity),
            trusted,
        )
    };
    assert!(open(&first[0]).is_ok(), "its custodian opens the container");
    assert!(open(&first[1]).is_err(), "another custodian does not");

    // A second generate of the node is refused: it has an active version.
    assert_code(
        operator
            .generate_backup(generate_request(&keystore, &first))
            .await,
        Code::FailedPrecondition,
        "a second active version",
    );

    // Rotation: the same save data is a re-split, not a reshare.
    let second = custodians(&served, "second").await;
    let rotate = |kind: proto::RotationKind| RotateBackupRequest {
        kind: kind.into(),
        generate: Some(generate_request(&keystore, &second)),
    };
    assert_code(
        operator
            .rotate_backup(rotate(proto::RotationKind::Reshare))
            .await,
        Code::InvalidArgument,
        "a reshare with the same Xi",
    );
    assert_code(
        operator
            .rotate_backup(rotate(proto::RotationKind::Unspecified))
            .await,
        Code::InvalidArgument,
        "no kind",
    );
    assert_code(
        security
            .rotate_backup(rotate(proto::RotationKind::Resplit))
            .await,
        Code::PermissionDenied,
        "a security person rotates",
    );
    let rotated = operator
        .rotate_backup(rotate(proto::RotationKind::Resplit))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.previous, Some(wire_version("wallet", 1)));
    assert!(rotated.cooldown_until_unix > common::start_time().as_unix_seconds());
    let generated = rotated.generated.unwrap();
    assert_eq!(generated.version, Some(wire_version("wallet", 2)));
    assert_eq!(generated.containers.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_steps_reach_the_procedure_and_are_refused_as_it_refuses() {
    let witness_dir = tempfile::tempdir().unwrap();
    let witness = shardkeep_audit::FileWitness::open(witness_dir.path().join("witness")).unwrap();
    let audit_signer = Arc::new(InMemorySigner::from_seed(
        shardkeep_types::SignerId::new("audit-1").unwrap(),
        &[0xa5; 32],
    ));
    let served = Served::start_with(Arc::new(common::NoTargets), move |grpc| {
        grpc.with_checkpoints(audit_signer, witness)
    })
    .await;
    let (generated, _) = served.generate_hybrid("wallet").await;
    let version = Some(wire_version("wallet", generated.version.version.get()));
    let auditor = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor: Client = served.client(Some(auditor.identity())).await.unwrap();
    let mut operator = served.operator_client().await;

    let soft_delete = SoftDeleteSharesRequest {
        version: version.clone(),
        slots: vec![1, 2],
        approval_request_hash: vec![9; 32],
        ticket: "CHG-7".into(),
        risk_note_hash: vec![3; 32],
    };
    assert_code(
        auditor.soft_delete_shares(soft_delete.clone()).await,
        Code::PermissionDenied,
        "an auditor deletes",
    );
    let refused = operator
        .soft_delete_shares(SoftDeleteSharesRequest {
            slots: vec![2, 1],
            ..soft_delete.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (
            Code::InvalidArgument,
            "invalid slots: must be strictly increasing"
        )
    );
    // No receipt confirmed yet: the procedure's precondition refuses,
    // nothing is deleted.
    let refused = operator.soft_delete_shares(soft_delete).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("external shares confirmed"),
        "{refused:?}"
    );

    let rollback = RollbackDeletionRequest {
        version: version.clone(),
        slots: vec![1],
    };
    assert_code(
        auditor.rollback_deletion(rollback.clone()).await,
        Code::PermissionDenied,
        "an auditor rolls back",
    );
    // The slot is active: nothing to roll back.
    assert_code(
        operator.rollback_deletion(rollback).await,
        Code::FailedPrecondition,
        "a rollback of an active slot",
    );

    let hard_delete = HardDeleteSharesRequest {
        version,
        approval_request_hash: vec![9; 32],
    };
    assert_code(
        auditor.hard_delete_shares(hard_delete.clone()).await,
        Code::PermissionDenied,
        "an auditor hard-deletes",
    );
    // Nothing was soft-deleted under that request.
    let refused = operator.hard_delete_shares(hard_delete).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("did not authorise this deletion"),
        "{refused:?}"
    );

    let listing = operator
        .list_backup_shares(proto::ListBackupSharesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listing
            .shares
            .iter()
            .all(|share| share.state() == proto::SlotState::Active),
        "every refusal left the shares as they were"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_delete_on_a_server_without_a_witness_is_a_failed_precondition() {
    let served = Served::start(Arc::new(common::NoTargets)).await;
    let mut operator = served.operator_client().await;
    let refused = operator
        .hard_delete_shares(HardDeleteSharesRequest {
            version: Some(wire_version("wallet", 1)),
            approval_request_hash: vec![9; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("no audit checkpoint"),
        "{refused:?}"
    );
}

async fn export(client: &mut Client, from_sequence: u64) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = client
        .export_audit(ExportAuditRequest { from_sequence })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.data.len() <= EXPORT_CHUNK_SIZE);
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_exported_to_an_auditor_and_reviewed_by_compliance() {
    let served = Served::start(Arc::new(common::NoTargets)).await;
    served.generate_hybrid("wallet").await;
    let auditor = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor: Client = served.client(Some(auditor.identity())).await.unwrap();
    let (compliance, compliance_key) = served
        .register_signing_client("comp-1", &[Role::Compliance])
        .await;
    let mut compliance: Client = served.client(Some(compliance.identity())).await.unwrap();
    let mut operator = served.operator_client().await;

    assert_code(
        export(&mut operator, 0).await,
        Code::PermissionDenied,
        "an operator exports the audit log",
    );
    let whole = shardkeep_audit::parse_export(&export(&mut auditor, 0).await.unwrap()).unwrap();
    assert!(whole.rows.len() > 3);
    assert_eq!(whole.rows[0].sequence, 1);
    // The export verifies as a chain.
    for pair in whole.rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let tail = shardkeep_audit::parse_export(&export(&mut compliance, 3).await.unwrap()).unwrap();
    assert_eq!(tail.log_id, whole.log_id);
    assert_eq!(tail.rows[0], whole.rows[2]);

    // A compliance person reviews the range exported.
    let last = whole.rows.last().unwrap();
    let range = shardkeep_audit::ReviewedRange {
        log_id: whole.log_id,
        first: 1,
        last: last.sequence,
        head_hash: last.hash,
    };
    let at = common::start_time();
    let review = shardkeep_audit::AuditReview::sign(
        range,
        actor("comp-1"),
        text("no findings"),
        at,
        &compliance_key,
    )
    .unwrap();
    let state = compliance
        .submit_audit_review(SubmitAuditReviewRequest {
            review: review.encode(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (state.first_sequence, state.last_sequence),
        (1, last.sequence)
    );
    assert_eq!(state.head_hash, last.hash);
    assert_eq!(state.reviewers, ["comp-1"]);
    assert!(!state.complete);
    // The same review again is a replay.
    assert_code(
        compliance
            .submit_audit_review(SubmitAuditReviewRequest {
                review: review.encode(),
            })
            .await,
        Code::FailedPrecondition,
        "a replayed review",
    );
    // An operator's review: not a compliance person.
    let by_operator = shardkeep_audit::AuditReview::sign(
        range,
        actor("ops-1"),
        text("fine"),
        at,
        &served.signing_key(),
    )
    .unwrap();
    assert_code(
        operator
            .submit_audit_review(SubmitAuditReviewRequest {
                review: by_operator.encode(),
            })
            .await,
        Code::PermissionDenied,
        "an operator reviews",
    );
    assert_code(
        compliance
            .submit_audit_review(SubmitAuditReviewRequest {
                review: b"not a review".to_vec(),
            })
            .await,
        Code::InvalidArgument,
        "bytes that are no review",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checklist_report_is_evaluated_for_an_auditor_only() {
    let served = Served::start(Arc::new(common::NoTargets)).await;
    let (generated, _) = served.generate_hybrid("wallet").await;
    let auditor = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor: Client = served.client(Some(auditor.identity())).await.unwrap();
    let mut operator = served.operator_client().await;
    let request = |version: u32, kind: proto::ChecklistKind| GetChecklistReportRequest {
        version: Some(wire_version("wallet", version)),
        kind: kind.into(),
    };
    let version = generated.version.version.get();

    let report = auditor
        .get_checklist_report(request(version, proto::ChecklistKind::Generation))
        .await
        .unwrap()
        .into_inner();
    assert!(report.report.contains("GEN-01"), "{}", report.report);
    assert!(
        report.report.contains("\"generation\""),
        "{}",
        report.report
    );
    assert_code(
        operator
            .get_checklist_report(request(version, proto::ChecklistKind::Generation))
            .await,
        Code::PermissionDenied,
        "an operator reads a checklist",
    );
    assert_code(
        auditor
            .get_checklist_report(request(version + 1, proto::ChecklistKind::Generation))
            .await,
        Code::NotFound,
        "a version never made",
    );
    assert_code(
        auditor
            .get_checklist_report(request(version, proto::ChecklistKind::Unspecified))
            .await,
        Code::InvalidArgument,
        "no checklist kind",
    );
}

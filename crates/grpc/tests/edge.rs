//! Refusals at the edge that reach the procedure: a share made for one
//! session sent to another, a session past its expiry, and a burst over
//! the rate limit (refused, and recorded as an anomaly); and the refusals
//! that never reach it (unknown and revoked certificates), counted and
//! reported within a budget.
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Approver, Client, NoTargets, Served, SessionOrder, TestCustodian, actor, approved_request,
};
use shardkeep_backup::{Generated, RateLimit, Role};
use shardkeep_grpc::proto::{
    self, RecoverMpcShareRequest, RecoveryState, ShareRejectionReason, StartRecoveryResponse,
    SubmitApprovalRequest,
};
use shardkeep_types::Timestamp;
use tonic::Code;

/// A backup of `key` and a drill of it started on `approver`'s approval.
async fn drill(
    served: &Served,
    operator: &mut Client,
    approver: &mut Approver,
    key: &str,
) -> (Generated, Vec<TestCustodian>, StartRecoveryResponse) {
    let (generated, custodians) = served.generate_hybrid(key).await;
    let order = SessionOrder::drill(&generated, "DRILL-9", 0x67);
    let approval_request_hash =
        approved_request(operator, order.approval_params(), [approver]).await;
    let started = operator
        .start_drill(order.start_drill(approval_request_hash))
        .await
        .unwrap()
        .into_inner();
    (generated, custodians, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_made_for_session_a_and_sent_to_session_b_is_rejected_opaquely() {
    let served = Served::start(Arc::new(common::CodecOnly::new())).await;
    let mut operator = served.operator_client().await;
    let mut approver = served.register_approver("sec-2", Role::Security).await;
    let (generated_a, custodians_a, session_a) =
        drill(&served, &mut operator, &mut approver, "wallet-a").await;
    let (_, _, session_b) = drill(&served, &mut operator, &mut approver, "wallet-b").await;

    // Custodian 0 of wallet-a hands in their share, made for session A.
    let for_a = served.submission(
        &custodians_a[0],
        &session_a.descriptor,
        &generated_a.containers[0].container,
    );
    let sent_to_b = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: session_b.session_id.clone(),
            share_data: vec![for_a.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent_to_b.shares_received, 0);
    assert_eq!(sent_to_b.state(), RecoveryState::Waiting);
    assert_eq!(sent_to_b.rejected.len(), 1);
    let rejected = &sent_to_b.rejected[0];
    assert_eq!(
        (rejected.position, rejected.index, rejected.reason()),
        (0, 0, ShareRejectionReason::Unreadable)
    );

    // The same bytes are a good share of session A: only the session was
    // wrong.
    let sent_to_a = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: session_a.session_id,
            share_data: vec![for_a],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent_to_a.shares_received, 1);
    assert!(sent_to_a.rejected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_sent_after_the_session_expired_is_refused() {
    let served = Served::start(Arc::new(common::CodecOnly::new())).await;
    let mut operator = served.operator_client().await;
    let mut approver = served.register_approver("sec-2", Role::Security).await;
    let (generated, custodians, session) =
        drill(&served, &mut operator, &mut approver, "wallet").await;
    // Made while the session is open, sent once it has lapsed.
    let share = served.submission(
        &custodians[0],
        &session.descriptor,
        &generated.containers[0].container,
    );
    let expires_at = Timestamp::from_unix_seconds(session.expires_at_unix).unwrap();
    served.clock.set(expires_at);
    served.clock.advance(Duration::from_secs(1));

    let refused = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: session.session_id.clone(),
            share_data: vec![share],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("expired"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_inspect_limit_is_resource_exhausted_and_an_anomaly() {
    let served = Served::start_configured(Arc::new(NoTargets), |config| {
        config.inspect_limit = RateLimit {
            max: 5,
            window: Duration::from_secs(60),
        };
    })
    .await;
    let anomalies = || async {
        served
            .service
            .metrics_snapshot()
            .await
            .unwrap()
            .anomalies
            .iter()
            .find(|(kind, _)| kind.as_str() == "rate-limited")
            .map_or(0, |(_, count)| *count)
    };
    assert_eq!(anomalies().await, 0);
    let mut operator = served.operator_client().await;
    for _ in 0..5 {
        operator
            .get_backup_status(proto::GetBackupStatusRequest::default())
            .await
            .unwrap();
    }
    let refused = operator
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(anomalies().await >= 1, "the burst is recorded");
    // Listing counts against the same limit.
    let refused = operator
        .list_backup_shares(proto::ListBackupSharesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_revoked_certificates_are_counted_and_reported_within_a_budget() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let stranger = served.ca.client("stranger");
    let mut stranger = served.client(Some(stranger.identity())).await.unwrap();
    let attempts = shardkeep_grpc::EDGE_REPORTS_PER_WINDOW + 5;
    for _ in 0..attempts {
        let refused = stranger
            .get_backup_status(proto::GetBackupStatusRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let counts = served.edge.counts();
    assert_eq!(counts.unknown_certificate, attempts);
    assert_eq!(counts.reported, shardkeep_grpc::EDGE_REPORTS_PER_WINDOW);
    assert_eq!(counts.suppressed, 5);

    // A person revoked while connected: counted as such, and (the budget
    // spent) not reported one by one.
    let cert = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor = served.client(Some(cert.identity())).await.unwrap();
    auditor
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap();
    served
        .service
        .revoke_person(&served.security, &actor("aud-1"), common::text("left"))
        .await
        .unwrap();
    let refused = auditor
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let counts = served.edge.counts();
    assert_eq!(counts.revoked_person, 1);
    assert_eq!(counts.suppressed, 6);
    assert_eq!(counts.total(), attempts + 1);
    // The registered operator is no edge refusal.
    served
        .operator_client()
        .await
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap();
    assert_eq!(served.edge.counts().total(), attempts + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_longer_than_its_format_is_refused_by_name_before_it_is_decoded() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let mut operator = served.operator_client().await;
    let long = vec![0x41; 70 * 1024];
    let field_refusal = |refused: tonic::Status, field: &str| {
        assert_eq!(
            (refused.code(), refused.message()),
            (
                Code::InvalidArgument,
                format!("invalid {field}: longer than its format allows").as_str()
            )
        );
    };
    field_refusal(
        operator
            .submit_approval(SubmitApprovalRequest {
                approval: long.clone(),
            })
            .await
            .unwrap_err(),
        "approval",
    );
    field_refusal(
        operator
            .confirm_inventory(proto::ConfirmInventoryRequest {
                proof: long.clone(),
            })
            .await
            .unwrap_err(),
        "proof",
    );
    field_refusal(
        operator
            .submit_audit_review(proto::SubmitAuditReviewRequest {
                review: long.clone(),
            })
            .await
            .unwrap_err(),
        "review",
    );
    field_refusal(
        operator
            .confirm_receipt(proto::ConfirmReceiptRequest {
                slot: Some(proto::ShareSlot {
                    version: Some(proto::NodeVersion {
                        key_id: "wallet".into(),
                        node_id: "node-0".into(),
                        version: 1,
                    }),
                    index: 3,
                }),
                receipt: long,
            })
            .await
            .unwrap_err(),
        "receipt",
    );
    // The message says nothing of the bytes sent.
    let refused = operator
        .submit_approval(SubmitApprovalRequest {
            approval: vec![0x41; 70 * 1024],
        })
        .await
        .unwrap_err();
    assert!(!refused.message().contains("AAAA"));
}

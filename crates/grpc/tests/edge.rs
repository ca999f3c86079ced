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
use shardkeep_audit::{AuditRecord, EventType, Outcome};
use shardkeep_backup::{
    CERTIFICATE_ANOMALIES_PER_WINDOW, CERTIFICATE_ANOMALY_WINDOW, Generated, RateLimit, Role,
};
use shardkeep_grpc::http::HttpState;
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

/// The records of the audit log, decoded, read straight from storage.
async fn audit_records(served: &Served) -> Vec<AuditRecord> {
    let mut bytes = Vec::new();
    shardkeep_audit::export(served.service.storage(), &mut bytes)
        .await
        .unwrap();
    shardkeep_audit::parse_export(&bytes)
        .unwrap()
        .rows
        .iter()
        .map(|row| AuditRecord::decode(&row.record).unwrap())
        .collect()
}

/// How many anomalies of `kind` are recorded.
async fn anomalies_of(served: &Served, kind: &str) -> u64 {
    served
        .service
        .metrics_snapshot()
        .await
        .unwrap()
        .anomalies
        .iter()
        .find(|(recorded, _)| recorded.as_str() == kind)
        .map_or(0, |(_, count)| *count)
}

async fn export_audit(client: &mut Client, from_sequence: u64) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = client
        .export_audit(proto::ExportAuditRequest { from_sequence })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_export_is_audited_rate_limited_and_refused_without_the_role() {
    let served = Served::start_configured(Arc::new(NoTargets), |config| {
        config.inspect_limit = RateLimit {
            max: 3,
            window: Duration::from_secs(60),
        };
    })
    .await;
    let auditor = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor = served.client(Some(auditor.identity())).await.unwrap();
    let mut operator = served.operator_client().await;

    // An export leaves a record naming the exporter, and the copy taken
    // carries it.
    let exported =
        shardkeep_audit::parse_export(&export_audit(&mut auditor, 0).await.unwrap()).unwrap();
    let last = AuditRecord::decode(&exported.rows.last().unwrap().record).unwrap();
    assert_eq!(
        (last.event, last.operator.as_str(), last.outcome.clone()),
        (EventType::Inspect, "aud-1", Outcome::Success)
    );
    assert!(
        last.detail
            .as_ref()
            .is_some_and(|detail| detail.as_str().contains("audit export")),
        "{last:?}"
    );
    let exports_by = |records: &[AuditRecord], person: &str| {
        records
            .iter()
            .filter(|record| {
                record.operator.as_str() == person
                    && record.event == EventType::Inspect
                    && record
                        .detail
                        .as_ref()
                        .is_some_and(|detail| detail.as_str().contains("audit export"))
            })
            .count()
    };
    assert_eq!(exports_by(&audit_records(&served).await, "aud-1"), 1);

    // A burst over the inspect limit: refused, an anomaly, and the export
    // not made.
    export_audit(&mut auditor, 2).await.unwrap();
    export_audit(&mut auditor, 0).await.unwrap();
    assert_eq!(anomalies_of(&served, "rate-limited").await, 0);
    let refused = export_audit(&mut auditor, 0).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(anomalies_of(&served, "rate-limited").await, 1);
    assert_eq!(exports_by(&audit_records(&served).await, "aud-1"), 3);

    // A person without the role: refused, and audited as access denied.
    let refused = export_audit(&mut operator, 0).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let records = audit_records(&served).await;
    let denied = records.last().unwrap();
    assert_eq!(denied.event, EventType::AccessDenied, "{denied:?}");
    assert_eq!(denied.operator, served.operator);
    assert!(matches!(denied.outcome, Outcome::Failure { .. }));
    assert_eq!(exports_by(&records, served.operator.as_str()), 0);
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
async fn unknown_and_revoked_certificates_are_durable_anomalies_one_per_fingerprint_per_window() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let exporter = HttpState::with_min_refresh_interval(served.service.clone(), Duration::ZERO);
    let stranger = served.ca.client("stranger");
    let mut client = served.client(Some(stranger.identity())).await.unwrap();
    for _ in 0..5 {
        let refused = client
            .get_backup_status(proto::GetBackupStatusRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    // One durable record for the flood, naming the certificate by its
    // fingerprint.
    assert_eq!(anomalies_of(&served, "unknown-certificate").await, 1);
    let records = audit_records(&served).await;
    let recorded: Vec<&AuditRecord> = records
        .iter()
        .filter(|record| {
            record.event == EventType::AccessDenied
                && matches!(&record.outcome, Outcome::Failure { reason }
                    if reason.as_str().contains(&stranger.fingerprint.to_string()))
        })
        .collect();
    assert_eq!(recorded.len(), 1, "{records:?}");
    assert!(
        recorded[0]
            .detail
            .as_ref()
            .is_some_and(|detail| detail.as_str() == "anomaly: unknown-certificate")
    );
    // Another certificate is another record.
    let other = served.ca.client("other");
    let mut other = served.client(Some(other.identity())).await.unwrap();
    other
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anomalies_of(&served, "unknown-certificate").await, 2);

    // A revoked person's certificate, under its own kind.
    let cert = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor = served.client(Some(cert.identity())).await.unwrap();
    served
        .service
        .revoke_person(&served.security, &actor("aud-1"), common::text("left"))
        .await
        .unwrap();
    for _ in 0..3 {
        auditor
            .get_backup_status(proto::GetBackupStatusRequest::default())
            .await
            .unwrap_err();
    }
    assert_eq!(anomalies_of(&served, "revoked-certificate").await, 1);

    // The metrics port shows them by kind.
    let metrics = exporter.encode_metrics().await;
    for line in [
        "shardkeep_access_anomalies_total{kind=\"unknown-certificate\"} 2",
        "shardkeep_access_anomalies_total{kind=\"revoked-certificate\"} 1",
    ] {
        assert!(
            metrics.lines().any(|sample| sample == line),
            "{line}\n{metrics}"
        );
    }

    // The database bounds them too, whichever replica asks: once per
    // fingerprint per window, and a budget per window over all of them.
    let service = &served.service;
    let fresh = [0x5a; 32];
    assert!(
        service
            .record_certificate_refusal(&fresh, None)
            .await
            .unwrap()
    );
    assert!(
        !service
            .record_certificate_refusal(&fresh, None)
            .await
            .unwrap()
    );
    served.clock.advance(CERTIFICATE_ANOMALY_WINDOW);
    assert!(
        service
            .record_certificate_refusal(&fresh, None)
            .await
            .unwrap()
    );
    served.clock.advance(CERTIFICATE_ANOMALY_WINDOW);
    let mut written = 0;
    for i in 0..CERTIFICATE_ANOMALIES_PER_WINDOW + 10 {
        let mut fingerprint = [0u8; 32];
        fingerprint[..4].copy_from_slice(&i.to_be_bytes());
        if service
            .record_certificate_refusal(&fingerprint, None)
            .await
            .unwrap()
        {
            written += 1;
        }
    }
    assert_eq!(written, CERTIFICATE_ANOMALIES_PER_WINDOW);
    assert_eq!(
        anomalies_of(&served, "unknown-certificate").await,
        4 + u64::from(CERTIFICATE_ANOMALIES_PER_WINDOW)
    );
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

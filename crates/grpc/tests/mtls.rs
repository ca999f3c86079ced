//! The service over real mutual TLS on loopback: a registered person's
//! certificate reads status and listings; no certificate, an unknown one,
//! a revoked person's (revoked while connected) and an oversized message
//! are refused.

mod common;

use std::sync::Arc;

use common::{NoTargets, Served, text};
use shardkeep_backup::Role;
use shardkeep_grpc::proto::{
    GetBackupStatusRequest, ListBackupSharesRequest, RecoverMpcShareRequest,
};
use shardkeep_types::Signer;
use tonic::Code;

fn status_request() -> GetBackupStatusRequest {
    GetBackupStatusRequest::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_certificate_reads_status_and_pages_the_share_listing() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let (generated, _) = served.generate_hybrid("wallet-1").await;
    let mut client = served.operator_client().await;

    let status = client
        .get_backup_status(status_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.versions.len(), 1);
    let version = &status.versions[0];
    let wire = version.version.as_ref().unwrap();
    assert_eq!(wire.key_id, "wallet-1");
    assert_eq!(wire.node_id, "node-0");
    assert_eq!(wire.version, generated.version.version.get());
    assert_eq!((version.threshold, version.shares), (3, 5));
    assert_eq!(version.curve, "secp256k1");
    assert_eq!(version.server_shares_held, 2);
    assert_eq!(version.external_shares, 3);
    assert_eq!(version.outstanding_deliveries, 3);
    assert!(!version.recoverable, "no receipt is confirmed yet");
    assert!(status.next_page_token.is_empty());

    // Page size 1 over the two server shares: two pages, in index order.
    let first = client
        .list_backup_shares(ListBackupSharesRequest {
            key_id: "wallet-1".into(),
            page_size: 1,
            ..ListBackupSharesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.shares.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_backup_shares(ListBackupSharesRequest {
            key_id: "wallet-1".into(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..ListBackupSharesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.shares.len(), 1);
    assert!(second.next_page_token.is_empty());
    let indices: Vec<u32> = [&first, &second]
        .iter()
        .map(|page| page.shares[0].slot.as_ref().unwrap().index)
        .collect();
    assert_eq!(indices, [1, 2]);
    let expected: Vec<Vec<u8>> = generated
        .server_shares
        .iter()
        .map(|share| share.envelope_id.as_bytes().to_vec())
        .collect();
    assert_eq!(
        vec![
            first.shares[0].envelope_id.clone(),
            second.shares[0].envelope_id.clone()
        ],
        expected
    );

    // A token is bound to its query.
    let other_query = client
        .list_backup_shares(ListBackupSharesRequest {
            key_id: "wallet-2".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..ListBackupSharesRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other_query.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_name_is_invalid_argument() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let mut client = served.operator_client().await;
    let refused = client
        .get_backup_status(GetBackupStatusRequest {
            key_id: "no spaces allowed".into(),
            ..GetBackupStatusRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.message(), "invalid key_id: not a valid name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let served = Served::start(Arc::new(NoTargets)).await;
    // The handshake fails (TLS 1.2: at once; TLS 1.3: the server's alert
    // arrives with the first request).
    let outcome = match served.client(None).await {
        Err(_) => None,
        Ok(mut client) => Some(client.get_backup_status(status_request()).await),
    };
    match outcome {
        None => {}
        Some(Err(status)) => assert_ne!(status.code(), Code::Ok),
        Some(Ok(_)) => panic!("a client without a certificate was served"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_the_ca_that_no_person_registered_is_unauthenticated() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let stranger = served.ca.client("stranger");
    let mut client = served.client(Some(stranger.identity())).await.unwrap();
    let refused = client
        .get_backup_status(status_request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refused.message(), "client certificate not accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_ca_fails_the_handshake() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let other_ca = common::TestCa::new("another CA");
    let foreign = other_ca.client("ops-1");
    let outcome = match served.client(Some(foreign.identity())).await {
        Err(_) => None,
        Ok(mut client) => Some(client.get_backup_status(status_request()).await),
    };
    match outcome {
        None => {}
        Some(Err(status)) => assert_ne!(status.code(), Code::Ok),
        Some(Ok(_)) => panic!("a certificate of another CA was served"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_revoked_while_connected_is_refused_at_the_next_request() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let auditor = served.register_client("audit-1", &[Role::Auditor]).await;
    let mut client = served.client(Some(auditor.identity())).await.unwrap();
    client.get_backup_status(status_request()).await.unwrap();

    served
        .service
        .revoke_person(
            &served.security,
            &common::actor("audit-1"),
            text("left the company"),
        )
        .await
        .unwrap();

    // Same client, same connection: refused.
    let refused = client
        .get_backup_status(status_request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = client
        .list_backup_shares(ListBackupSharesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // The operator's certificate on its own connection still works.
    let mut operator = served.operator_client().await;
    operator.get_backup_status(status_request()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_an_inspect_role_is_permission_denied() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let owner = served
        .register_client("owner-1", &[Role::BusinessOwner])
        .await;
    let mut client = served.client(Some(owner.identity())).await.unwrap();
    let refused = client
        .get_backup_status(status_request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_four_mib_is_refused_before_it_is_read() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let mut client = served.operator_client().await;
    let oversized = RecoverMpcShareRequest {
        session_id: vec![0; 16],
        share_data: vec![vec![0xa5; 5 * 1024 * 1024]],
    };
    let refused = client.recover_mpc_share(oversized).await.unwrap_err();
    // tonic refuses a message over the decoding limit with OUT_OF_RANGE.
    assert_eq!(refused.code(), Code::OutOfRange);

    // Under the cap the same request is read and reaches the procedure,
    // which does not know the session.
    let under_cap = RecoverMpcShareRequest {
        session_id: vec![0; 16],
        share_data: vec![vec![0xa5; 3 * 1024 * 1024]],
    };
    let refused = client.recover_mpc_share(under_cap).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_the_old_certificate_is_refused_and_the_new_one_accepted() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let auditor = served.register_client("audit-1", &[Role::Auditor]).await;
    let mut old_client = served.client(Some(auditor.identity())).await.unwrap();
    old_client
        .get_backup_status(status_request())
        .await
        .unwrap();

    let renewed = served.ca.client("audit-1");
    let mut keys = served
        .person(
            &common::actor("audit-1"),
            &[Role::Auditor],
            Some(renewed.fingerprint),
        )
        .keys;
    keys.approval_key = Some(served.signing_key().verifying_key().to_bytes());
    served
        .service
        .rotate_person_keys(&served.security, &common::actor("audit-1"), keys)
        .await
        .unwrap();

    // The open connection with the old certificate: refused at once.
    let refused = old_client
        .get_backup_status(status_request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut new_client = served.client(Some(renewed.identity())).await.unwrap();
    new_client
        .get_backup_status(status_request())
        .await
        .unwrap();
}

//! The node self-test over gRPC: each other party's server answers
//! `SelfTest` from its own save data (a `SelfTestSidecar`), and party 0
//! self-tests through `RemotePeers` over `GrpcPeerTransport`, holding no
//! other party's secret. Callers without the operator role, requests for
//! another party, malformed requests and servers without a party are
//! refused.
//!
//! The procedure's own recovery refuses to self-test while other parties'
//! secrets are loaded in its process, so a whole recovery against these
//! sidecars needs them in other processes (other servers); here party 0's
//! self-test runs directly against them.
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{NoTargets, Served, save_data};
use shardkeep_backup::Role;
use shardkeep_grpc::proto::SelfTestRequest;
use shardkeep_grpc::{GrpcPeerTransport, SelfTestSidecar};
use shardkeep_keydata::RemotePeers;
use shardkeep_sss_core::Threshold;
use shardkeep_test_support::tss_lib::{PARTIES, TSS_LIB_THRESHOLD};
use tonic::Code;

/// A server answering the self-test for `party`.
async fn sidecar(party: usize) -> Served {
    Served::start_with(Arc::new(NoTargets), move |grpc| {
        grpc.with_self_test_sidecar(SelfTestSidecar::spawn(save_data(party)).unwrap())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_0_self_tests_against_the_other_parties_servers_over_grpc() {
    let mut sidecars = Vec::new();
    for party in 1..PARTIES {
        sidecars.push((party, sidecar(party).await));
    }
    let mut clients = Vec::new();
    for (party, served) in &sidecars {
        clients.push((
            save_data(*party).share_id().to_vec(),
            served.operator_client().await,
        ));
    }
    let transport = GrpcPeerTransport::new(tokio::runtime::Handle::current(), clients);
    let data = save_data(0);
    let group = Threshold::from_tss_lib(TSS_LIB_THRESHOLD, PARTIES).unwrap();
    // The self-test blocks on its peers: off the runtime's workers, as a
    // recovery runs it.
    let report = tokio::task::spawn_blocking(move || {
        data.self_test(group, &mut RemotePeers::new(transport))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_test_requests_are_refused_without_the_role_the_party_or_a_well_formed_request() {
    let served = sidecar(1).await;
    let party = save_data(1).share_id().to_vec();
    let mut operator = served.operator_client().await;
    let auditor = served.register_client("aud-1", &[Role::Auditor]).await;
    let mut auditor = served.client(Some(auditor.identity())).await.unwrap();

    let refused = auditor
        .self_test(SelfTestRequest {
            party_id: party.clone(),
            request: b"shkp-stc".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let refused = operator
        .self_test(SelfTestRequest {
            party_id: save_data(2).share_id().to_vec(),
            request: b"shkp-stc".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (
            Code::InvalidArgument,
            "invalid party_id: this sidecar answers for another party"
        )
    );

    let refused = operator
        .self_test(SelfTestRequest {
            party_id: party.clone(),
            request: b"not a self-test request".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let refused = operator
        .self_test(SelfTestRequest {
            party_id: party.clone(),
            request: vec![0; 64 * 1024 + 1],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::InvalidArgument, "invalid request: longer than 64 KiB")
    );

    // A server the host gave no party.
    let plain = Served::start(Arc::new(NoTargets)).await;
    let refused = plain
        .operator_client()
        .await
        .self_test(SelfTestRequest {
            party_id: party,
            request: b"shkp-stc".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
}

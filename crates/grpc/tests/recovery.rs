//! A whole recovery over gRPC on SQLite: the operator asks for approval,
//! two approvers approve over their own certificates, the operator starts
//! the session on the consumed approvals, hands the signed descriptor to the custodians,
//! and submits their encrypted, signed shares; a forged submission is
//! rejected with the one opaque reason; at threshold the keystore is
//! written, loaded back and self-tested with the other parties' sidecars
//! (keydata's `self_test_peer` example, one process per party).
//! `cargo test --workspace` builds the example; a narrowed run adds
//! `-p shardkeep-keydata --example self_test_peer`.
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Served, actor, save_data};
use shardkeep_backup::{Role, SessionDescriptor, sign_approval};
use shardkeep_grpc::RecoveryTargets;
use shardkeep_grpc::proto::{
    self, RecoverMpcShareRequest, RecoveryState, RequestApprovalRequest, ShareRejectionReason,
    StartDrillRequest, StartRecoveryRequest, SubmitApprovalRequest,
};
use shardkeep_keydata::{
    KekKeystoreCodec, KeystoreCodec, RemotePeers, SelfTestPeers, keystore_path, load_keystore,
};
use shardkeep_test_support::peer_process::{PeerProcesses, example_path};
use shardkeep_test_support::tss_lib::{PARTIES, Protocol, fixture_path, share_id};
use shardkeep_types::{InMemoryKek, KekId, NodeVersion, Signer};
use subtle::ConstantTimeEq;

/// Node 0's keystore codec and the fixture's other parties, each in its
/// own process (this process loads none of their secrets).
struct Node0 {
    codec: Arc<KekKeystoreCodec<InMemoryKek>>,
}

impl RecoveryTargets for Node0 {
    fn codec(
        &self,
        _version: &NodeVersion,
    ) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, shardkeep_grpc::Error> {
        Ok(self.codec.clone())
    }

    fn peers(
        &self,
        _version: &NodeVersion,
    ) -> Result<Box<dyn SelfTestPeers + Send>, shardkeep_grpc::Error> {
        let program = example_path("self_test_peer").unwrap();
        let mut processes = PeerProcesses::spawn_each((1..PARTIES).map(|party| {
            let share_id = share_id(Protocol::Ecdsa, party).unwrap();
            (
                share_id,
                program.clone(),
                [fixture_path(Protocol::Ecdsa, party)],
            )
        }))
        .unwrap();
        Ok(Box::new(RemotePeers::new(
            move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?),
        )))
    }
}

fn node0_codec() -> KekKeystoreCodec<InMemoryKek> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::ChaCha20Rng::from_seed([0x4b; 32]);
    KekKeystoreCodec::new(InMemoryKek::generate(
        KekId::new("node-0-keystore").unwrap(),
        &mut rng,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_runs_over_grpc_from_three_custodians_one_forgery_rejected_opaquely() {
    let codec = Arc::new(node0_codec());
    let served = Served::start(Arc::new(Node0 {
        codec: codec.clone(),
    }))
    .await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let keystore_dir = served.dir.path().join("keystore");
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let wire_version = proto::NodeVersion {
        key_id: "wallet".into(),
        node_id: "node-0".into(),
        version: generated.version.version.get(),
    };

    let mut client = served
        .client(Some(served.operator_cert.identity()))
        .await
        .unwrap();

    // The operator asks for approval of exactly this recovery; a business
    // owner and a second security person approve, each over their own
    // certificate.
    let asked = client
        .request_approval(RequestApprovalRequest {
            params: Some(proto::ApprovalParams {
                operation: proto::ApprovalOperation::Recover.into(),
                version: Some(wire_version.clone()),
                split_id: generated.split_id.to_vec(),
                target: keystore_dir.display().to_string(),
                allow_server_shares: false,
                slots: Vec::new(),
                change_hash: Vec::new(),
                ticket: "INC-42".into(),
                risk_note_hash: vec![0x77; 32],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    for (i, (name, role)) in [("biz-1", Role::BusinessOwner), ("sec-2", Role::Security)]
        .into_iter()
        .enumerate()
    {
        let (cert, key) = served.register_signing_client(name, &[role]).await;
        let approval = sign_approval(&asked.request, &actor(name), role, &key)
            .unwrap()
            .encode();
        // Nobody submits another's approval.
        let relayed = client
            .submit_approval(SubmitApprovalRequest {
                approval: approval.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(relayed.code(), tonic::Code::PermissionDenied);
        let mut approver = served.client(Some(cert.identity())).await.unwrap();
        let state = approver
            .submit_approval(SubmitApprovalRequest { approval })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(state.request_hash, asked.request_hash);
        assert_eq!(state.approvals.len(), i + 1);
        assert_eq!(state.satisfied, i == 1);
    }

    let started = client
        .start_recovery(StartRecoveryRequest {
            approval_request_hash: asked.request_hash.clone(),
            version: Some(wire_version.clone()),
            target: keystore_dir.display().to_string(),
            allow_server_shares: false,
            ticket: "INC-42".into(),
            risk_note_hash: vec![0x77; 32],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.threshold, 3);
    let descriptor =
        SessionDescriptor::decode_verify(&started.descriptor, &served.signer.verifying_key())
            .unwrap();
    assert_eq!(
        descriptor.session.0.as_slice(),
        started.session_id.as_slice()
    );
    assert_eq!(descriptor.version, generated.version);
    assert_eq!(
        descriptor.expires_at.as_unix_seconds(),
        started.expires_at_unix
    );

    // The approvals are spent: the same request starts nothing again.
    let replayed = client
        .start_recovery(StartRecoveryRequest {
            approval_request_hash: asked.request_hash.clone(),
            version: Some(wire_version.clone()),
            target: keystore_dir.display().to_string(),
            allow_server_shares: false,
            ticket: "INC-42".into(),
            risk_note_hash: vec![0x77; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), tonic::Code::FailedPrecondition);

    let shares: Vec<Vec<u8>> = custodians
        .iter()
        .zip(&generated.containers)
        .map(|(custodian, container)| {
            served.submission(custodian, &started.descriptor, &container.container)
        })
        .collect();
    // A forgery: custodian 1's submission with one byte flipped (it no
    // longer decrypts).
    let mut forged = shares[1].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;

    let first = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id.clone(),
            share_data: vec![forged, shares[0].clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.success);
    assert_eq!(first.state(), RecoveryState::Waiting);
    assert_eq!((first.shares_received, first.threshold), (1, 3));
    assert_eq!(first.rejected.len(), 1);
    assert_eq!(first.rejected[0].position, 0);
    assert_eq!(first.rejected[0].reason(), ShareRejectionReason::Unreadable);
    assert_eq!(
        first.rejected[0].index, 0,
        "no index for an unauthenticated share"
    );

    let done = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id.clone(),
            share_data: vec![shares[1].clone(), shares[2].clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state(), RecoveryState::Recovered);
    assert!(done.success);
    assert_eq!((done.shares_received, done.threshold), (3, 3));
    let external: Vec<u32> = generated
        .containers
        .iter()
        .map(|container| u32::from(container.index.get()))
        .collect();
    assert_eq!(done.received_indices, external);

    // The keystore written is party 0's share, under node 0's codec.
    let loaded = load_keystore(
        &keystore_path(&keystore_dir, &generated.version),
        &generated.version,
        codec.as_ref(),
    )
    .unwrap();
    assert!(bool::from(loaded.ct_eq(&save_data(0))));

    // The session is closed: another submission is refused.
    let closed = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: vec![shares[0].clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(closed.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_runs_over_grpc_on_a_security_approval_and_writes_no_keystore() {
    let served = Served::start(Arc::new(Node0 {
        codec: Arc::new(node0_codec()),
    }))
    .await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let keystore_dir = served.dir.path().join("keystore");
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let wire_version = proto::NodeVersion {
        key_id: "wallet".into(),
        node_id: "node-0".into(),
        version: generated.version.version.get(),
    };
    let mut client = served
        .client(Some(served.operator_cert.identity()))
        .await
        .unwrap();
    let asked = client
        .request_approval(RequestApprovalRequest {
            params: Some(proto::ApprovalParams {
                operation: proto::ApprovalOperation::Drill.into(),
                version: Some(wire_version.clone()),
                split_id: generated.split_id.to_vec(),
                ticket: "DRILL-7".into(),
                risk_note_hash: vec![0x66; 32],
                ..proto::ApprovalParams::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let (cert, key) = served
        .register_signing_client("sec-2", &[Role::Security])
        .await;
    let approval = sign_approval(&asked.request, &actor("sec-2"), Role::Security, &key)
        .unwrap()
        .encode();
    let mut approver = served.client(Some(cert.identity())).await.unwrap();
    let state = approver
        .submit_approval(SubmitApprovalRequest { approval })
        .await
        .unwrap()
        .into_inner();
    assert!(state.satisfied);

    let started = client
        .start_drill(StartDrillRequest {
            approval_request_hash: asked.request_hash,
            version: Some(wire_version),
            ticket: "DRILL-7".into(),
            risk_note_hash: vec![0x66; 32],
        })
        .await
        .unwrap()
        .into_inner();
    let descriptor =
        SessionDescriptor::decode_verify(&started.descriptor, &served.signer.verifying_key())
            .unwrap();
    assert_eq!(
        descriptor.operation,
        shardkeep_backup::ApprovalOperation::Drill
    );

    let shares: Vec<Vec<u8>> = custodians
        .iter()
        .zip(&generated.containers)
        .map(|(custodian, container)| {
            served.submission(custodian, &started.descriptor, &container.container)
        })
        .collect();
    let drilled = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: shares,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drilled.state(), RecoveryState::Drilled);
    assert!(drilled.success);
    assert!(
        drilled
            .drill_report
            .starts_with("shardkeep-drill-report-v1\n"),
        "{}",
        drilled.drill_report
    );
    assert!(drilled.drill_report.contains("sandbox deleted"));
    // Nothing was written into the node's keystore directory.
    assert_eq!(std::fs::read_dir(&keystore_dir).unwrap().count(), 0);
}

//! Deliveries, receipts and inventory proofs over gRPC: the operator
//! records each container sent and relays each custodian's signed receipt;
//! the last receipt completes the delivery and status shows the version
//! recoverable. A receipt signed by another key, or a container that is not
//! the slot's, is refused and confirms nothing. An inventory challenge
//! answered by the custodian's tool confirms custody, once.

mod common;

use std::sync::Arc;

use common::{NoTargets, Served, wire_slot};
use shardkeep_envelope::{Receipt, ReceiptStatus};
use shardkeep_grpc::proto::{ConfirmReceiptRequest, GetBackupStatusRequest, RecordDeliveryRequest};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_relayed_over_grpc_confirm_the_delivery_and_a_forged_one_confirms_nothing() {
    let served = Served::start(Arc::new(NoTargets)).await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let mut client = served.operator_client().await;
    let now = shardkeep_backup::Clock::now(served.clock.as_ref());

    // A container that is not the slot's is refused.
    let first = &generated.containers[0];
    let wrong = client
        .record_delivery(RecordDeliveryRequest {
            slot: Some(wire_slot(&generated.version, first.index)),
            container_hash: generated.containers[1].container_hash.to_vec(),
            failure_reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);

    for container in &generated.containers {
        client
            .record_delivery(RecordDeliveryRequest {
                slot: Some(wire_slot(&generated.version, container.index)),
                container_hash: container.container_hash.to_vec(),
                failure_reason: String::new(),
            })
            .await
            .unwrap();
    }

    // A receipt for custodian 0's slot signed by custodian 1's key.
    let forged = Receipt {
        custodian_id: custodians[0].entity.clone(),
        envelope_id: first.envelope_id,
        status: ReceiptStatus::Received,
        timestamp: now,
    }
    .sign(&custodians[1].receipt_key)
    .unwrap();
    let refused = client
        .confirm_receipt(ConfirmReceiptRequest {
            slot: Some(wire_slot(&generated.version, first.index)),
            receipt: forged,
        })
        .await
        .unwrap_err();
    // A signature failure is told as every decryption or signature failure.
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::InvalidArgument, "cannot verify or decrypt")
    );

    let mut completed = Vec::new();
    for (container, custodian) in generated.containers.iter().zip(&custodians) {
        let receipt = Receipt {
            custodian_id: custodian.entity.clone(),
            envelope_id: container.envelope_id,
            status: ReceiptStatus::Received,
            timestamp: now,
        }
        .sign(&custodian.receipt_key)
        .unwrap();
        let confirmed = client
            .confirm_receipt(ConfirmReceiptRequest {
                slot: Some(wire_slot(&generated.version, container.index)),
                receipt,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(confirmed.received);
        assert_eq!(confirmed.custodian, custodian.entity.as_str());
        assert_eq!(confirmed.person, custodian.person.as_str());
        completed.push(confirmed.delivery_complete);
    }
    assert_eq!(completed, [false, false, true]);

    let status = client
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let version = &status.versions[0];
    assert_eq!(version.external_confirmed, 3);
    assert_eq!(version.outstanding_deliveries, 0);
    assert!(version.recoverable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_challenge_answered_by_the_custodian_confirms_custody_once() {
    use rand::SeedableRng;
    use shardkeep_backup::{CustodianCredentials, InventoryChallenge, prove_inventory};
    use shardkeep_grpc::proto::{ConfirmInventoryRequest, IssueInventoryChallengeRequest};

    let served = Served::start(Arc::new(NoTargets)).await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let mut client = served.operator_client().await;
    let container = &generated.containers[0];
    let custodian = &custodians[0];

    let issued = client
        .issue_inventory_challenge(IssueInventoryChallengeRequest {
            slot: Some(wire_slot(&generated.version, container.index)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.custodian, custodian.entity.as_str());
    let challenge = InventoryChallenge::decode(&issued.challenge).unwrap();
    assert_eq!(
        challenge.expires_at.as_unix_seconds(),
        issued.expires_at_unix
    );

    // The custodian's tool answers from the container it holds.
    let identities = [custodian.identity.clone()];
    let proof = prove_inventory(
        &challenge,
        &container.container,
        &CustodianCredentials {
            custodian: &custodian.entity,
            person: &custodian.person,
            identities: &identities,
            receipt_signer: &custodian.receipt_key,
        },
        served.service.trusted_signers(),
        shardkeep_backup::Clock::now(served.clock.as_ref()),
        &mut rand::rngs::ChaCha20Rng::from_seed([9; 32]),
    )
    .unwrap()
    .encode()
    .unwrap();

    // Bytes that are not a proof.
    let garbage = client
        .confirm_inventory(ConfirmInventoryRequest {
            proof: vec![0x42; 40],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (garbage.code(), garbage.message()),
        (Code::InvalidArgument, "invalid proof: it does not decode")
    );

    let confirmed = client
        .confirm_inventory(ConfirmInventoryRequest {
            proof: proof.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        confirmed.slot,
        Some(wire_slot(&generated.version, container.index))
    );
    assert_eq!(confirmed.custodian, custodian.entity.as_str());
    assert_eq!(confirmed.person, custodian.person.as_str());

    // The challenge is single-use: the same proof again is refused.
    let replayed = client
        .confirm_inventory(ConfirmInventoryRequest { proof })
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::FailedPrecondition);
}

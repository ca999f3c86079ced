//! The end-to-end scenario, written once and run on every backend: the
//! registry, the policy, generate for a tss-lib ECDSA node (from its
//! `.keydata.enc` through its codec) and an EdDSA node (from loaded save
//! data), every stored piece checked against what later checks use, the
//! containers opened by their custodians and recombined, deliveries,
//! receipts and the delivery certificate, and the audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shardkeep_audit::{EventType, Outcome, chain_hash};
use shardkeep_backup::{
    Armor, DeliveryReport, DeliveryResult, Generated, ReceiptStatus, SaveDataSource, VerifiedSplit,
    container_hash,
};
use shardkeep_envelope::{CurveShare, DeliveryState, VerifiedEnvelope, open_x25519_container};
use shardkeep_keydata::{KekKeystoreCodec, WriteMode, write_keystore};
use shardkeep_kms::{KekPin, SlotKekProvider};
use shardkeep_sss_core::{Curve, Ed25519, Secp256k1, Share, combine};
use shardkeep_storage::{
    AuditStore, CustodyStore, KeyVersionState, KeyVersionStore, SealedShareStore, SlotKekStore,
    Storage, Transaction,
};
use shardkeep_types::{InMemoryKek, KekId, KeyVersion, NodeVersion};

use super::{Harness, Protocol, TestCustodian, request, save_data, text};

/// Runs the whole scenario on `storage`.
pub async fn end_to_end<S: Storage>(storage: S, dir: tempfile::TempDir) {
    let h = Harness::new(storage, dir).await;
    let custodians = h.custodians("escrow", 3).await;
    let chosen: Vec<&TestCustodian> = custodians.iter().collect();

    // Policy: set by security, read back by anyone registered.
    h.hybrid_policy().await;
    let policy = h
        .service
        .current_policy(&h.operator)
        .await
        .unwrap()
        .expect("a policy is set");
    assert_eq!(
        (policy.policy.threshold().t(), policy.policy.threshold().n()),
        (3, 5)
    );
    assert_eq!(policy.policy.server_shares(), 2);
    assert_eq!(policy.set_by, h.security);

    for protocol in Protocol::ALL {
        let key = format!("wallet-{}", protocol.dir());
        let generated = match protocol {
            // ECDSA: from the node's keystore file, through its codec.
            Protocol::Ecdsa => {
                let keystore_dir = h.dir.path().join("keystore");
                std::fs::create_dir_all(&keystore_dir).unwrap();
                let written_for = NodeVersion {
                    key_id: shardkeep_types::KeyId::new(&key).unwrap(),
                    node_id: shardkeep_types::NodeId::new("node-0").unwrap(),
                    version: KeyVersion::new(0),
                };
                let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
                    KekId::new("node-kek").unwrap(),
                    &[7; 32],
                ));
                let path = write_keystore(
                    &keystore_dir,
                    &written_for,
                    &save_data(protocol, 0),
                    &codec,
                    WriteMode::CreateNew,
                )
                .unwrap();
                h.service
                    .generate(
                        &h.operator,
                        request(
                            &key,
                            0,
                            SaveDataSource::Keystore {
                                path: &path,
                                written_for: &written_for,
                                codec: &codec,
                            },
                            &chosen,
                            Armor::Ascii,
                        ),
                    )
                    .await
                    .unwrap()
            }
            // EdDSA: from save data the caller loaded.
            Protocol::Eddsa => h.generate(protocol, &key, 0, &chosen).await.unwrap(),
        };
        check_generated(&h, protocol, &generated, &custodians).await;
        deliver_and_confirm(&h, &generated, &custodians).await;
    }
    check_audit(&h).await;
}

/// Everything generate stored and returned is what later checks use.
async fn check_generated<S: Storage>(
    h: &Harness<S>,
    protocol: Protocol,
    generated: &Generated,
    custodians: &[TestCustodian],
) {
    let version = &generated.version;
    assert_eq!(version.version, KeyVersion::new(1));
    assert_eq!((generated.threshold.t(), generated.threshold.n()), (3, 5));
    assert_eq!(generated.server_shares.len(), 2);
    assert_eq!(generated.containers.len(), 3);
    let data = save_data(protocol, 0);

    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let record = tx.key_version(version).await.unwrap();
    assert_eq!(record.state, KeyVersionState::Active);
    let reference = tx.split_reference(version).await.unwrap();
    let split = VerifiedSplit::verify(version, &reference, h.service.trusted_signers()).unwrap();
    assert_eq!(split.split_id(), &generated.split_id);
    assert_eq!(split.policy_hash(), &generated.policy_hash);
    assert_eq!(split.server_shares(), 2);
    assert_eq!(split.binding().public_share(), data.public_share().unwrap());
    assert_eq!(split.binding().group_public_key(), data.group_public_key());

    // Server shares: each under its own pinned slot KEK, opening to a share
    // of the stored split.
    let mut recovered = Vec::new();
    for server in &generated.server_shares {
        let slot = version.slot(server.index);
        let kek_record = tx.slot_kek(&slot).await.unwrap().expect("a pinned KEK");
        assert_eq!(kek_record.kek_id, server.kek_id);
        let sealed = tx.load_sealed_share(&slot).await.unwrap();
        let envelope =
            VerifiedEnvelope::decode_verify(&sealed.envelope, h.service.trusted_signers()).unwrap();
        assert_eq!(envelope.id(), server.envelope_id);
        split.check_envelope(&envelope, server.index).unwrap();
        let pin = KekPin {
            kek_id: kek_record.kek_id,
            fingerprint: kek_record.fingerprint,
        };
        let kek = SlotKekProvider::open_slot_kek(h.keks.as_ref(), &slot, &pin).unwrap();
        envelope.open(kek.as_ref()).unwrap();
    }

    // External shares: the custody map names the entity, person, recipient,
    // envelope and container; each container opens with its custodian's
    // identity and holds an envelope of the stored split.
    let custody = tx.custody_map(version).await.unwrap();
    assert_eq!(custody.len(), 3);
    for (container, custodian) in generated.containers.iter().zip(custodians) {
        assert_eq!(container.custodian, custodian.entity);
        assert_eq!(container.person, custodian.person);
        assert_eq!(
            container.container_hash,
            container_hash(&container.container)
        );
        let entry = custody
            .iter()
            .find(|entry| entry.slot.index == container.index)
            .unwrap();
        assert_eq!(entry.custodian, custodian.entity);
        assert_eq!(entry.person, custodian.person);
        assert_eq!(entry.recipient, custodian.identity.to_public().to_string());
        assert_eq!(entry.envelope_id, container.envelope_id);
        assert_eq!(entry.container_hash, container.container_hash);
        assert_eq!(entry.confirmed_at, None);

        let opened = open_x25519_container(
            &container.container,
            std::slice::from_ref(&custodian.identity),
            h.service.trusted_signers(),
        )
        .unwrap();
        assert_eq!(opened.envelope().id(), container.envelope_id);
        split
            .check_envelope(opened.envelope(), container.index)
            .unwrap();
        let (envelope, _archive) = opened.into_parts();
        recovered.push(envelope.into_plain_share().unwrap());
    }
    tx.rollback().await.unwrap();

    // The custodians alone recover the node's share: Xi·G is its public
    // share.
    assert_eq!(
        recombined_public_share(recovered),
        data.public_share().unwrap()
    );
}

/// `Xi·G` of the secret the shares combine to.
fn recombined_public_share(shares: Vec<CurveShare>) -> Vec<u8> {
    fn on<C: Curve>(shares: Vec<CurveShare>) -> Vec<u8>
    where
        Share<C>: TryFrom<CurveShare>,
        <Share<C> as TryFrom<CurveShare>>::Error: core::fmt::Debug,
    {
        let shares: Vec<Share<C>> = shares
            .into_iter()
            .map(|share| Share::<C>::try_from(share).unwrap())
            .collect();
        let secret = combine(shares).unwrap();
        let mut out = Vec::new();
        C::encode_point(&secret.public_point(), &mut out);
        out
    }
    match &shares[0] {
        CurveShare::Secp256k1(_) => on::<Secp256k1>(shares),
        CurveShare::Ed25519(_) => on::<Ed25519>(shares),
    }
}

/// One failed and then successful delivery, every receipt, the
/// certificate.
async fn deliver_and_confirm<S: Storage>(
    h: &Harness<S>,
    generated: &Generated,
    custodians: &[TestCustodian],
) {
    let first = &generated.containers[0];
    h.service
        .deliver(
            &h.operator,
            DeliveryReport {
                slot: generated.version.slot(first.index),
                container_hash: first.container_hash,
                result: DeliveryResult::Failed {
                    reason: text("courier lost the parcel"),
                },
            },
        )
        .await
        .unwrap();
    for container in &generated.containers {
        h.service
            .deliver(
                &h.operator,
                DeliveryReport {
                    slot: generated.version.slot(container.index),
                    container_hash: container.container_hash,
                    result: DeliveryResult::Sent,
                },
            )
            .await
            .unwrap();
    }
    let count = generated.containers.len();
    for (i, (container, custodian)) in generated.containers.iter().zip(custodians).enumerate() {
        h.clock.advance(std::time::Duration::from_secs(60));
        let receipt = custodian.receipt(container.envelope_id, h.clock_now());
        // The last receipt is submitted by the custodian themselves.
        let submitter = if i + 1 == count {
            &custodian.person
        } else {
            &h.operator
        };
        let confirmation = h
            .service
            .confirm(
                submitter,
                &generated.version.slot(container.index),
                &receipt,
            )
            .await
            .unwrap();
        assert_eq!(confirmation.status, ReceiptStatus::Received);
        assert_eq!(confirmation.person, custodian.person);
        assert_eq!(confirmation.certificate.is_some(), i + 1 == count);
    }
    let certificate = h
        .service
        .delivery_certificate(&h.operator, &generated.version)
        .await
        .unwrap();
    assert!(certificate.is_complete());
    assert_eq!(certificate.entries().len(), 3);
    for entry in certificate.entries() {
        assert!(matches!(entry.state, DeliveryState::Received { .. }));
    }
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    for entry in tx.custody_map(&generated.version).await.unwrap() {
        assert!(entry.confirmed_at.is_some());
    }
    tx.rollback().await.unwrap();
}

/// The audit chain links, and holds the records the scenario made.
async fn check_audit<S: Storage>(h: &Harness<S>) {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let rows = tx.read_audit(1, 10_000).await.unwrap();
    tx.rollback().await.unwrap();
    let mut prev = [0u8; 32];
    for row in &rows {
        assert_eq!(row.prev_hash, prev);
        assert_eq!(row.hash, chain_hash(row.sequence, &prev, &row.record));
        prev = row.hash;
    }
    let records = h.audit_records().await;
    let count = |event: EventType| records.iter().filter(|r| r.event == event).count();
    // sec-1 (bootstrap), ops-1, three custodian persons, three entities.
    assert_eq!(count(EventType::Register), 8);
    assert_eq!(count(EventType::Policy), 1);
    // Five shares per node, two nodes.
    assert_eq!(count(EventType::Generate), 10);
    // Per node: one failed delivery, three sent.
    assert_eq!(count(EventType::Deliver), 8);
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event == EventType::Deliver && r.outcome != Outcome::Success)
            .count(),
        2
    );
    assert_eq!(count(EventType::Confirm), 6);
    assert_eq!(count(EventType::AccessDenied), 0);
    let bootstrap = &records[0];
    assert_eq!(bootstrap.event, EventType::Register);
    assert!(
        bootstrap
            .detail
            .as_ref()
            .is_some_and(|d| d.as_str().contains("bootstrap"))
    );
}

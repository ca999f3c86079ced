//! Receipts, custodian sets and delivery certificates.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failed unwrap is a failed test.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    CustodianSet, DeliveryCertificate, DeliveryState, Error, FailureReason, IgnoredReason, Receipt,
    ReceiptStatus, VerifiedReceipt,
};
use shardkeep_sss_core::{ShareIndex, Threshold};
use shardkeep_types::{CustodianId, EnvelopeId, InMemorySigner, Signer, SignerId, Timestamp};

fn index(i: u8) -> ShareIndex {
    Threshold::new(3, 5).unwrap().share_index(i).unwrap()
}

struct World {
    custodians: Vec<(ShareIndex, CustodianId, InMemorySigner)>,
    set: CustodianSet,
    deliveries: BTreeMap<ShareIndex, EnvelopeId>,
}

/// Three external custodians at indices 3, 4, 5.
fn world(seed: u64) -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut set = CustodianSet::new();
    let mut custodians = Vec::new();
    let mut deliveries = BTreeMap::new();
    for (i, name) in [
        (3, "security-team"),
        (4, "independent-custodian"),
        (5, "cold-backup"),
    ] {
        let id = CustodianId::new(name).unwrap();
        let signer = InMemorySigner::generate(SignerId::new(name).unwrap(), &mut rng);
        set.insert(index(i), id.clone(), signer.verifying_key())
            .unwrap();
        deliveries.insert(index(i), EnvelopeId::from_bytes([i; 32]));
        custodians.push((index(i), id, signer));
    }
    World {
        custodians,
        set,
        deliveries,
    }
}

impl World {
    fn receipt(
        &self,
        who: usize,
        envelope: EnvelopeId,
        status: ReceiptStatus,
        at: u64,
    ) -> VerifiedReceipt {
        let (_, id, signer) = &self.custodians[who];
        let bytes = Receipt {
            custodian_id: id.clone(),
            envelope_id: envelope,
            status,
            timestamp: Timestamp::from_unix_millis(at).unwrap(),
        }
        .sign(signer)
        .unwrap();
        let verified = VerifiedReceipt::decode_verify(&bytes, &self.set).unwrap();
        // Receipt v1 ends with its signature.
        assert_eq!(verified.signature(), bytes.last_chunk::<64>().unwrap());
        verified
    }

    fn received(&self, who: usize, at: u64) -> VerifiedReceipt {
        let envelope = self.deliveries[&self.custodians[who].0];
        self.receipt(who, envelope, ReceiptStatus::Received, at)
    }

    fn failed(&self, who: usize, at: u64) -> VerifiedReceipt {
        let envelope = self.deliveries[&self.custodians[who].0];
        self.receipt(
            who,
            envelope,
            ReceiptStatus::Failed(FailureReason::new("container lost").unwrap()),
            at,
        )
    }

    fn certificate(&self, receipts: &[VerifiedReceipt]) -> DeliveryCertificate {
        DeliveryCertificate::assemble(&self.set, &self.deliveries, receipts).unwrap()
    }
}

#[test]
fn complete_only_when_every_external_index_has_its_own_received_receipt() {
    let w = world(1);
    let all = [w.received(0, 10), w.received(1, 10), w.received(2, 10)];
    let cert = w.certificate(&all);
    assert!(cert.is_complete());
    assert_eq!(cert.entries().len(), 3);
    assert!(cert.ignored().is_empty());

    let cert = w.certificate(&all[..2]);
    assert!(!cert.is_complete());
    assert_eq!(cert.entries()[2].state, DeliveryState::Missing);

    // Three receipts, but two from the same custodian: still incomplete.
    let cert = w.certificate(&[w.received(0, 10), w.received(0, 11), w.received(1, 10)]);
    assert!(!cert.is_complete());
}

#[test]
fn newest_receipt_wins_and_failed_wins_ties() {
    let w = world(2);
    let base = [w.received(1, 10), w.received(2, 10)];
    // Failed, then received later: delivered.
    let cert = w.certificate(&[
        base[0].clone(),
        base[1].clone(),
        w.failed(0, 5),
        w.received(0, 6),
    ]);
    assert!(cert.is_complete());
    // Received, then failed later (inventory found it gone): not delivered.
    let cert = w.certificate(&[
        base[0].clone(),
        base[1].clone(),
        w.received(0, 5),
        w.failed(0, 6),
    ]);
    assert!(!cert.is_complete());
    assert!(matches!(
        cert.entries()[0].state,
        DeliveryState::Failed { .. }
    ));
    // Same second, contradictory: failed wins, in either order.
    for pair in [
        [w.received(0, 7), w.failed(0, 7)],
        [w.failed(0, 7), w.received(0, 7)],
    ] {
        let mut receipts = base.to_vec();
        receipts.extend(pair);
        assert!(!w.certificate(&receipts).is_complete());
    }
}

#[test]
fn replays_and_foreign_receipts_never_count() {
    let w = world(3);
    // Custodian 0 replays a receipt about another envelope.
    let replay = w.receipt(
        0,
        EnvelopeId::from_bytes([0xee; 32]),
        ReceiptStatus::Received,
        10,
    );
    let cert = w.certificate(&[replay, w.received(1, 10), w.received(2, 10)]);
    assert!(!cert.is_complete());
    assert_eq!(cert.ignored()[0].reason, IgnoredReason::OtherEnvelope);

    // A receipt about custodian 1's envelope, sent by custodian 0.
    let stolen = w.receipt(0, w.deliveries[&index(4)], ReceiptStatus::Received, 10);
    let cert = w.certificate(&[stolen, w.received(2, 10)]);
    assert_eq!(cert.ignored()[0].reason, IgnoredReason::OtherEnvelope);
    assert!(!cert.is_complete());

    // Receipts verified against another set (same ids, other keys).
    let other = world(4);
    let foreign = [
        other.received(0, 10),
        other.received(1, 10),
        other.received(2, 10),
    ];
    let cert = w.certificate(&foreign);
    assert!(!cert.is_complete());
    assert!(
        cert.ignored()
            .iter()
            .all(|i| i.reason == IgnoredReason::KeyMismatch)
    );
}

#[test]
fn receipts_verify_only_under_the_registered_key() {
    let w = world(5);
    let (_, id, _) = &w.custodians[0];
    let impostor = InMemorySigner::from_seed(SignerId::new("x").unwrap(), &[3; 32]);
    let bytes = Receipt {
        custodian_id: id.clone(),
        envelope_id: EnvelopeId::from_bytes([3; 32]),
        status: ReceiptStatus::Received,
        timestamp: Timestamp::from_unix_millis(1).unwrap(),
    }
    .sign(&impostor)
    .unwrap();
    assert_eq!(
        VerifiedReceipt::decode_verify(&bytes, &w.set),
        Err(Error::BadSignature)
    );
    let unknown = Receipt {
        custodian_id: CustodianId::new("stranger").unwrap(),
        envelope_id: EnvelopeId::from_bytes([3; 32]),
        status: ReceiptStatus::Received,
        timestamp: Timestamp::from_unix_millis(1).unwrap(),
    }
    .sign(&impostor)
    .unwrap();
    assert!(matches!(
        VerifiedReceipt::decode_verify(&unknown, &w.set),
        Err(Error::UnknownCustodian(_))
    ));
}

/// Unlike the envelope's signer id before format v2, a receipt's custodian
/// id is inside its signed bytes: a receipt relabelled to another custodian
/// does not verify, and no key can be registered for two custodians (see
/// below), so one receipt never counts for two.
#[test]
fn relabelled_receipts_do_not_verify() {
    let w = world(7);
    // "cold-backup" and "coldXbackup": same length, so only the label moves.
    let (index, _, signer) = &w.custodians[2];
    let bytes = Receipt {
        custodian_id: CustodianId::new("cold-backup").unwrap(),
        envelope_id: w.deliveries[index],
        status: ReceiptStatus::Received,
        timestamp: Timestamp::from_unix_millis(5).unwrap(),
    }
    .sign(signer)
    .unwrap();
    let mut set = CustodianSet::new();
    set.insert(
        *index,
        CustodianId::new("coldXbackup").unwrap(),
        signer.verifying_key(),
    )
    .unwrap();
    let mut relabelled = bytes.clone();
    let at = relabelled
        .windows(11)
        .position(|w| w == b"cold-backup")
        .unwrap();
    relabelled[at + 4] = b'X';
    assert_eq!(
        VerifiedReceipt::decode_verify(&relabelled, &set),
        Err(Error::BadSignature)
    );
}

#[test]
fn custodian_sets_are_distinct_and_refuse_weak_keys() {
    let w = world(6);
    let mut set = w.set.clone();
    let fresh = InMemorySigner::from_seed(SignerId::new("f").unwrap(), &[4; 32]).verifying_key();
    let taken_key = *w.set.get(index(3)).unwrap().key();
    assert_eq!(
        set.insert(index(3), CustodianId::new("new").unwrap(), fresh),
        Err(Error::IndexAlreadyMapped(index(3)))
    );
    assert!(matches!(
        set.insert(index(1), CustodianId::new("cold-backup").unwrap(), fresh),
        Err(Error::DuplicateCustodian(_))
    ));
    assert!(matches!(
        set.insert(index(1), CustodianId::new("new").unwrap(), taken_key),
        Err(Error::DuplicateCustodianKey(_))
    ));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    assert!(matches!(
        set.insert(index(1), CustodianId::new("new").unwrap(), weak),
        Err(Error::WeakKey { .. })
    ));
    set.insert(index(1), CustodianId::new("new").unwrap(), fresh)
        .unwrap();
    // Deliveries must cover exactly the mapped indices.
    assert_eq!(
        DeliveryCertificate::assemble(&set, &w.deliveries, &[]),
        Err(Error::CustodianSetMismatch(index(1)))
    );
    let mut deliveries = w.deliveries.clone();
    deliveries.insert(index(4), deliveries[&index(3)]);
    assert!(matches!(
        DeliveryCertificate::assemble(&w.set, &deliveries, &[]),
        Err(Error::DuplicateDelivery(_))
    ));
}

#[test]
fn failure_reasons_are_bounded_printable_text() {
    assert!(FailureReason::new("").is_err());
    assert!(FailureReason::new("x".repeat(257)).is_err());
    assert!(FailureReason::new("line\nbreak").is_err());
    // A right-to-left override would make the operator read another reason.
    assert!(FailureReason::new("lost \u{202e}deviecer").is_err());
    assert_eq!(
        FailureReason::new("é".repeat(128)).unwrap().as_str().len(),
        256
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn receipt_round_trip_and_tampering(seed in any::<u64>(), failed in any::<bool>(), at in 0..=i64::MAX.unsigned_abs(), bit in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let w = world(seed);
        let (_, id, signer) = &w.custodians[1];
        let receipt = Receipt {
            custodian_id: id.clone(),
            envelope_id: EnvelopeId::from_bytes([9; 32]),
            status: if failed { ReceiptStatus::Failed(FailureReason::new("bad").unwrap()) } else { ReceiptStatus::Received },
            timestamp: Timestamp::from_unix_millis(at).unwrap(),
        };
        let bytes = receipt.sign(signer).unwrap();
        let verified = VerifiedReceipt::decode_verify(&bytes, &w.set).unwrap();
        prop_assert_eq!(verified.receipt(), &receipt);
        prop_assert_eq!(verified.index(), index(4));
        let bit = bit.index(bytes.len() * 8);
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(VerifiedReceipt::decode_verify(&flipped, &w.set).is_err());
        prop_assert!(VerifiedReceipt::decode_verify(&bytes[..cut.index(bytes.len())], &w.set).is_err());
    }
}

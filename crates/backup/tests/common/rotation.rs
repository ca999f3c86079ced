//! Rotation cases, generic over the storage backend: a reshare (a new
//! `Xi`) and a re-split (the same `Xi`) each repeat generate, delivery and
//! confirmation; the old version retires only after its cooldown and a
//! cooldown of the new version's complete certificate; recovery and drills
//! refuse a retired version naming the current one. The audit chain links
//! after every case.

use std::time::Duration;

use shardkeep_audit::EventType;
use shardkeep_backup::{
    DeliveryReport, DeliveryResult, DestructionStatement, Error, Generated, RotateRequest, Rotated,
    RotationKind,
};
use shardkeep_storage::{
    KeyVersionState, KeyVersionStore, SlotDeletionStore, SlotState, Storage, Transaction,
};
use shardkeep_types::{KeyVersion, NodeVersion};

use super::recovery::Recovery;
use super::{Harness, TestCustodian, other_party_secrets, request, save_data};
use shardkeep_backup::{Armor, SaveDataSource};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Delivers every container of `generated` and confirms each with its
/// custodian's receipt; the last confirmation completes the certificate.
pub async fn deliver_and_confirm<S: Storage>(
    h: &Harness<S>,
    generated: &Generated,
    custodians: &[TestCustodian],
) {
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
        h.clock.advance(Duration::from_secs(60));
        let receipt = custodian.receipt(container.envelope_id, h.clock_now());
        let confirmation = h
            .service
            .confirm(
                &h.operator,
                &generated.version.slot(container.index),
                &receipt,
            )
            .await
            .unwrap();
        assert_eq!(confirmation.certificate.is_some(), i + 1 == count);
    }
}

/// Rotates node-0 of `wallet` with the save data of `party`: party 0's
/// own (the same `Xi`), or another party's of the same group standing in
/// for node-0's save data after a tss-lib reshare (same group key, a new
/// `Xi` and its own consistent public share, as a reshare leaves it).
pub async fn rotate<S: Storage>(
    r: &Recovery<S>,
    kind: RotationKind,
    party: usize,
) -> Result<Rotated, Error> {
    let _other_party = if party == 0 {
        None
    } else {
        Some(other_party_secrets().write().await)
    };
    let data = save_data(r.protocol, party);
    let custodians: Vec<&TestCustodian> = r.custodians.iter().collect();
    let mut generate = request(
        "wallet",
        0,
        SaveDataSource::Loaded(&data),
        &custodians,
        Armor::Binary,
    );
    // The request names node-0 whatever save data it carries.
    generate.node_id = r.generated.version.node_id.clone();
    r.f.h
        .service
        .rotate(&r.f.h.operator, RotateRequest { kind, generate })
        .await
}

async fn state<S: Storage>(h: &Harness<S>, version: &NodeVersion) -> KeyVersionState {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let state = tx.key_version(version).await.unwrap().state;
    tx.rollback().await.unwrap();
    state
}

/// The full life of a rotation of `kind` with `party`'s save data: the old
/// version retiring (and still drillable), the new one delivered and
/// confirmed, retirement held back until the cooldown has passed after
/// both the rotation and the new certificate, then the old version
/// retired. Returns the rotation.
async fn rotate_and_retire<S: Storage>(
    r: &Recovery<S>,
    kind: RotationKind,
    party: usize,
) -> Rotated {
    let h = &r.f.h;
    deliver_and_confirm(h, &r.generated, &r.custodians).await;
    let rotated_at = h.clock_now();
    let rotated = rotate(r, kind, party).await.unwrap();
    assert_eq!(rotated.kind, kind);
    assert_eq!(rotated.previous, r.generated.version);
    assert_eq!(rotated.generated.version.version, KeyVersion::new(2));
    assert_eq!(
        rotated.cooldown_until,
        rotated_at.checked_add(7 * DAY).unwrap()
    );
    assert_ne!(rotated.generated.split_id, r.generated.split_id);
    assert_eq!(
        state(h, &r.generated.version).await,
        KeyVersionState::Retiring {
            since: rotated_at,
            cooldown_until: rotated.cooldown_until,
        }
    );
    assert_eq!(
        state(h, &rotated.generated.version).await,
        KeyVersionState::Active
    );

    // Past the cooldown, but the new version is not delivered yet: the old
    // one stays.
    h.clock.advance(8 * DAY);
    assert!(h.service.retire_due(&h.operator).await.unwrap().is_empty());
    // The retiring version is still the fallback: a drill of it starts.
    let drill = r.drill_approved(false).await;
    h.service
        .start_drill(&h.operator, &drill, r.drill_params())
        .await
        .unwrap();

    deliver_and_confirm(h, &rotated.generated, &r.custodians).await;
    // Certified just now: a cooldown must pass after the certificate too.
    h.clock.advance(6 * DAY);
    assert!(h.service.retire_due(&h.operator).await.unwrap().is_empty());
    assert!(matches!(
        state(h, &r.generated.version).await,
        KeyVersionState::Retiring { .. }
    ));
    h.clock.advance(DAY);
    assert_eq!(
        h.service.retire_due(&h.operator).await.unwrap(),
        vec![r.generated.version.clone()]
    );
    assert!(matches!(
        state(h, &r.generated.version).await,
        KeyVersionState::Retired { .. }
    ));
    // Nothing is due twice.
    assert!(h.service.retire_due(&h.operator).await.unwrap().is_empty());
    // The exporter (metrics port, status page) still shows the retired
    // version after a re-split, whose old containers' destruction
    // statements are outstanding; after a reshare there are none to sign.
    let snapshot = h.service.exporter_snapshot().await.unwrap();
    let shown: Vec<(NodeVersion, usize)> = snapshot
        .retired_with_outstanding_destructions
        .iter()
        .map(|status| {
            (
                status.version.clone(),
                status.outstanding_destructions.len(),
            )
        })
        .collect();
    match kind {
        RotationKind::Resplit => assert_eq!(
            shown,
            [(r.generated.version.clone(), r.generated.containers.len())]
        ),
        _ => assert!(shown.is_empty(), "{shown:?}"),
    }
    assert!(
        snapshot
            .versions
            .iter()
            .all(|status| status.version != r.generated.version)
    );
    // The retired version's server shares are soft-deleted, the new ones
    // stay.
    let retired_at = h.clock_now();
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    for server in &r.generated.server_shares {
        let state = tx
            .slot_state(&r.generated.version.slot(server.index))
            .await
            .unwrap();
        assert!(
            matches!(state, SlotState::SoftDeleted { at, cooldown_until, .. }
                if at == retired_at && cooldown_until == retired_at.checked_add(7 * DAY).unwrap()),
            "{state:?}"
        );
    }
    for server in &rotated.generated.server_shares {
        let slot = rotated.generated.version.slot(server.index);
        assert_eq!(tx.slot_state(&slot).await.unwrap(), SlotState::Active);
    }
    tx.rollback().await.unwrap();

    let rotations = h
        .audit_records()
        .await
        .into_iter()
        .filter(|record| record.event == EventType::Rotate)
        .count();
    assert_eq!(rotations, 2, "the rotation and the retirement are audited");
    let soft_deletes = h
        .audit_records()
        .await
        .into_iter()
        .filter(|record| record.event == EventType::SoftDelete)
        .count();
    assert_eq!(soft_deletes, r.generated.server_shares.len());
    rotated
}

/// A reshare: the node's new save data holds another `Xi`; the old
/// version retires after the cooldown.
pub async fn reshare_rotation_retires_after_cooldown<S: Storage>(r: Recovery<S>) {
    rotate_and_retire(&r, RotationKind::Reshare, 1).await;
    r.f.h.verify_audit().await;
}

/// A re-split of the same `Xi`, with the refusals of a rotation that does
/// not fit: a reshare claimed with the same `Xi`, a re-split with another,
/// a second rotation while the first is retiring, a node never generated.
pub async fn resplit_rotation_retires_after_cooldown<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    assert!(matches!(
        rotate(&r, RotationKind::Reshare, 0).await,
        Err(Error::RotationKindMismatch { kind: RotationKind::Reshare, same_xi: true, ref version })
            if *version == r.generated.version
    ));
    assert!(matches!(
        rotate(&r, RotationKind::Resplit, 1).await,
        Err(Error::RotationKindMismatch {
            kind: RotationKind::Resplit,
            same_xi: false,
            ..
        })
    ));
    // The refused rotations left the old version active.
    assert_eq!(
        state(h, &r.generated.version).await,
        KeyVersionState::Active
    );

    let rotated = rotate_and_retire(&r, RotationKind::Resplit, 0).await;
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let old = tx.split_reference(&r.generated.version).await.unwrap();
    let new = tx
        .split_reference(&rotated.generated.version)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_ne!(old.commitments, new.commitments, "a fresh polynomial");
    h.verify_audit().await;
}

/// A rotation while the previous one's old version is still retiring is
/// refused, as is the rotation of a node without an active version.
pub async fn a_rotation_during_a_rotation_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    rotate(&r, RotationKind::Resplit, 0).await.unwrap();
    assert!(matches!(
        rotate(&r, RotationKind::Resplit, 0).await,
        Err(Error::RotationInProgress(version)) if version == r.generated.version
    ));
    let data = save_data(r.protocol, 0);
    let custodians: Vec<&TestCustodian> = r.custodians.iter().collect();
    let generate = request(
        "another-wallet",
        0,
        SaveDataSource::Loaded(&data),
        &custodians,
        Armor::Binary,
    );
    assert!(matches!(
        h.service
            .rotate(
                &h.operator,
                RotateRequest {
                    kind: RotationKind::Resplit,
                    generate
                }
            )
            .await,
        Err(Error::NothingToRotate { .. })
    ));
    h.verify_audit().await;
}

/// Retires node-0's first version after a re-split.
async fn retired<S: Storage>(r: &Recovery<S>) -> NodeVersion {
    let h = &r.f.h;
    let rotated = rotate(r, RotationKind::Resplit, 0).await.unwrap();
    deliver_and_confirm(h, &rotated.generated, &r.custodians).await;
    h.clock.advance(7 * DAY);
    assert_eq!(
        h.service.retire_due(&h.operator).await.unwrap(),
        vec![r.generated.version.clone()]
    );
    rotated.generated.version
}

/// A recovery of a retired version is refused, naming the current one.
pub async fn recovery_of_a_retired_version_is_refused<S: Storage>(r: Recovery<S>) {
    let current = retired(&r).await;
    let error = r.start().await.unwrap_err();
    assert!(
        matches!(&error, Error::VersionRetired { version, current: Some(named) }
            if *version == r.generated.version && *named == current),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&current.to_string()),
        "the message names the current version: {error}"
    );
    r.f.h.verify_audit().await;
}

/// A session started while its version retires, whose version retires
/// before the custodians send: their shares are refused, naming the
/// current version, and no keystore is written.
pub async fn shares_of_a_version_retired_mid_session_are_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let rotated = rotate(&r, RotationKind::Resplit, 0).await.unwrap();
    deliver_and_confirm(h, &rotated.generated, &r.custodians).await;
    h.clock.advance(7 * DAY - Duration::from_secs(300));
    assert!(h.service.retire_due(&h.operator).await.unwrap().is_empty());
    let descriptor = r.start().await.unwrap();
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    h.clock.advance(Duration::from_secs(300));
    assert_eq!(
        h.service.retire_due(&h.operator).await.unwrap(),
        vec![r.generated.version.clone()]
    );
    let codec = shardkeep_keydata::KekKeystoreCodec::new(shardkeep_types::InMemoryKek::from_bytes(
        shardkeep_types::KekId::new("node-0-keystore").unwrap(),
        &[9; 32],
    ));
    let error = r
        .submit(&descriptor, &submissions, &codec)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::VersionRetired { version, current: Some(named) }
            if *version == r.generated.version && *named == rotated.generated.version),
        "{error:?}"
    );
    let keystore = h.dir.path().join("keystore");
    assert_eq!(std::fs::read_dir(&keystore).unwrap().count(), 0);
    h.verify_audit().await;
}

/// A drill of a retired version is refused, naming the current one.
pub async fn drill_of_a_retired_version_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let current = retired(&r).await;
    let hash = r.drill_approved(false).await;
    let error = h
        .service
        .start_drill(&h.operator, &hash, r.drill_params())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::VersionRetired { version, current: Some(named) }
            if *version == r.generated.version && *named == current),
        "{error:?}"
    );
    h.verify_audit().await;
}

/// `custodian`'s destruction statement for its container of `generated`
/// (the old version), signed with `key`.
fn destruction(
    generated: &Generated,
    i: usize,
    custodian: &TestCustodian,
    key: &dyn shardkeep_types::Signer,
    at: shardkeep_types::Timestamp,
) -> DestructionStatement {
    let container = &generated.containers[i];
    let mut statement = DestructionStatement {
        slot: generated.version.slot(container.index),
        envelope_id: container.envelope_id,
        custodian: custodian.entity.clone(),
        person: custodian.person.clone(),
        destroyed_at: at,
        signature: [0; 64],
    };
    statement.sign(key).unwrap();
    statement
}

/// After a re-split, status lists every old container as outstanding; a
/// custodian's signed statement for its own container is recorded once and
/// leaves the list; a replay, a statement for another envelope, one signed
/// with another key and one of a revoked person are refused, each with its
/// error, and change nothing.
pub async fn destruction_statements_after_a_resplit<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let rotated = rotate(&r, RotationKind::Resplit, 0).await.unwrap();
    deliver_and_confirm(h, &rotated.generated, &r.custodians).await;
    let outstanding = h
        .service
        .outstanding_destructions(&h.operator)
        .await
        .unwrap();
    let slots: Vec<_> = outstanding.iter().map(|o| o.slot.clone()).collect();
    let old: Vec<_> = r
        .generated
        .containers
        .iter()
        .map(|c| r.generated.version.slot(c.index))
        .collect();
    assert_eq!(slots, old);

    let now = h.clock_now();
    let first = &r.custodians[0];
    let statement = destruction(&r.generated, 0, first, &first.receipt_key, now);
    // The custodian person submits their own statement.
    h.service
        .record_destruction_statement(&first.person, &statement.encode())
        .await
        .unwrap();
    let outstanding = h
        .service
        .outstanding_destructions(&h.operator)
        .await
        .unwrap();
    assert_eq!(outstanding.len(), 2);
    assert!(outstanding.iter().all(|o| o.slot != old[0]));
    // Status lists them with the old (retiring) version, none with the new.
    let versions = h
        .service
        .status(&h.operator, &shardkeep_backup::StatusQuery::default())
        .await
        .unwrap()
        .versions;
    let listed = |version: &NodeVersion| {
        versions
            .iter()
            .find(|status| status.version == *version)
            .unwrap()
            .outstanding_destructions
            .clone()
    };
    assert_eq!(listed(&r.generated.version), outstanding);
    assert!(listed(&rotated.generated.version).is_empty());
    // The exporter's snapshot (metrics port, status page) shows the same
    // versions, read without an audit record.
    let records = h.audit_records().await.len();
    let snapshot = h.service.exporter_snapshot().await.unwrap();
    assert_eq!(snapshot.versions, versions);
    assert_eq!(h.audit_records().await.len(), records);
    assert_eq!(
        snapshot.audit_head.sequence,
        u64::try_from(records).unwrap()
    );
    assert_eq!(snapshot.metrics.totals.versions, 2);

    // Replay.
    assert!(matches!(
        h.service
            .record_destruction_statement(&first.person, &statement.encode())
            .await,
        Err(Error::DestructionReplayed(slot)) if slot == old[0]
    ));
    // Another envelope (the new version's container of the same index,
    // under the old slot).
    let second = &r.custodians[1];
    let mut wrong = destruction(&r.generated, 1, second, &second.receipt_key, now);
    wrong.envelope_id = rotated.generated.containers[1].envelope_id;
    wrong.sign(&second.receipt_key).unwrap();
    assert!(matches!(
        h.service
            .record_destruction_statement(&h.operator, &wrong.encode())
            .await,
        Err(Error::DestructionMismatch {
            field: "envelope_id",
            ..
        })
    ));
    // Signed with another key.
    let forged = destruction(&r.generated, 1, second, &first.receipt_key, now);
    assert!(matches!(
        h.service
            .record_destruction_statement(&h.operator, &forged.encode())
            .await,
        Err(Error::DestructionSignatureInvalid(person)) if person == second.person
    ));
    // A revoked custodian person.
    let third = &r.custodians[2];
    h.service
        .revoke_person(
            &h.security,
            &third.person,
            super::text("left the escrow company"),
        )
        .await
        .unwrap();
    let revoked = destruction(&r.generated, 2, third, &third.receipt_key, now);
    assert!(matches!(
        h.service
            .record_destruction_statement(&h.operator, &revoked.encode())
            .await,
        Err(Error::PersonRevoked(person)) if person == third.person
    ));
    assert_eq!(
        h.service
            .outstanding_destructions(&h.operator)
            .await
            .unwrap()
            .len(),
        2
    );
    h.verify_audit().await;
}

/// After a reshare nothing is outstanding, and a statement for an old
/// container is refused: the old shares recover nothing of the new `Xi`.
pub async fn no_destruction_statement_after_a_reshare<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    rotate(&r, RotationKind::Reshare, 1).await.unwrap();
    assert!(
        h.service
            .outstanding_destructions(&h.operator)
            .await
            .unwrap()
            .is_empty()
    );
    let first = &r.custodians[0];
    let statement = destruction(&r.generated, 0, first, &first.receipt_key, h.clock_now());
    assert!(matches!(
        h.service
            .record_destruction_statement(&first.person, &statement.encode())
            .await,
        Err(Error::DestructionNotResplit(version)) if version == r.generated.version
    ));
    h.verify_audit().await;
}

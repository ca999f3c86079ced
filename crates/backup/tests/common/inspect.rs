//! The inspect operations, written once and run on every backend
//! (`tests/inspect.rs` on SQLite, `tests/postgres.rs` on a throwaway
//! PostgreSQL cluster), with the tss-lib ECDSA and EdDSA fixtures: status
//! and listing, the inventory round trip from the custodians' real
//! containers, and every refusal (of an inventory proof, of a call over the
//! rate limit, of a bad page token) with its own error and the state after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_audit::{AuditRecord, EventType, Outcome};
use shardkeep_backup::{
    AnomalyKind, CustodianCredentials, DEFAULT_PAGE_SIZE, DeliveryReport, DeliveryResult,
    DrillDueReason, Error, ExposureState, Generated, InventoryChallenge, InventoryProof,
    MAX_PAGE_SIZE, PolicySettings, RateKind, Role, ServiceConfig, ShareListQuery, StatusQuery,
    VersionStatus, container_hash, prove_inventory,
};
use shardkeep_envelope::{CurveCommitments, CurveShare, TrustedSigners, open_x25519_container};
use shardkeep_sss_core::{CurveId, prove_possession};
use shardkeep_storage::{
    AccessControlStore, AnomalyRecord, CustodyStore, DrillOutcome, DrillReport, DrillStore,
    DrillSummary, KeyVersionState, KeyVersionStore, SlotState, Storage, Transaction,
};
use shardkeep_types::{
    FreeText, InMemorySigner, KeyId, KeyVersion, Label, NodeId, NodeVersion, ShareSlot, Signer,
    SignerId, Threshold, Timestamp,
};

use super::{Harness, Protocol, TestCustodian, text};

/// The configured challenge lifetime (`ServiceConfig::new`'s default).
const CHALLENGE_TTL: Duration = Duration::from_secs(15 * 60);
const MINUTE: Duration = Duration::from_secs(60);

fn refs(custodians: &[TestCustodian]) -> Vec<&TestCustodian> {
    custodians.iter().collect()
}

fn after(at: Timestamp, by: Duration) -> Timestamp {
    at.checked_add(by).unwrap()
}

// ----- what the tests share -----

/// One generated node (`wallet`, `node-0`) of one tss-lib group, with the
/// three custodians holding its external shares.
pub struct Backed<S: Storage> {
    pub h: Harness<S>,
    pub custodians: Vec<TestCustodian>,
    pub generated: Generated,
}

/// A service over `storage` with the hybrid policy (3 of 5, two on the
/// server), three custodians and one generated node of `protocol`.
pub async fn backed<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) -> Backed<S> {
    backed_with(storage, dir, protocol, |_| {}).await
}

/// As [`backed`], with the configuration changed by `configure`.
pub async fn backed_with<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
    configure: impl FnOnce(&mut ServiceConfig),
) -> Backed<S> {
    let h = Harness::with_config(storage, dir, configure).await;
    let custodians = h.custodians("escrow", 3).await;
    h.hybrid_policy().await;
    let generated = h
        .generate(protocol, "wallet", 0, &refs(&custodians))
        .await
        .unwrap();
    Backed {
        h,
        custodians,
        generated,
    }
}

impl<S: Storage> Backed<S> {
    /// The slot of external share `i` (0 to 2: indices 3 to 5).
    pub fn slot(&self, i: usize) -> ShareSlot {
        self.generated
            .version
            .slot(self.generated.containers[i].index)
    }

    /// The container delivered to custodian `i`.
    pub fn container(&self, i: usize) -> &[u8] {
        &self.generated.containers[i].container
    }

    /// A challenge for external share `i`, issued by the operator.
    pub async fn challenge(&self, i: usize) -> InventoryChallenge {
        issue(&self.h, &self.slot(i)).await
    }

    /// Custodian `i`'s honest answer to `challenge`, from its container.
    pub fn prove(&self, i: usize, challenge: &InventoryChallenge, seed: u8) -> InventoryProof {
        prove(
            &self.h,
            &self.custodians[i],
            challenge,
            self.container(i),
            seed,
        )
        .unwrap()
    }

    /// Submits `proof` as custodian `i`'s person.
    pub async fn submit(
        &self,
        i: usize,
        proof: &[u8],
    ) -> Result<shardkeep_backup::InventoryConfirmation, Error> {
        self.h
            .service
            .confirm_inventory(&self.custodians[i].person, proof)
            .await
    }

    /// The confirmation time of external share `i`.
    pub async fn confirmed_at(&self, i: usize) -> Option<Timestamp> {
        confirmed_at(&self.h, &self.slot(i)).await
    }

    /// The last audit record is the failed `confirm` of a proof for `slot`,
    /// and no anomaly was recorded.
    pub async fn assert_refusal_audited(&self, slot: &ShareSlot) {
        let last = self.h.audit_records().await.pop().unwrap();
        assert_eq!(last.event, EventType::Confirm);
        assert!(matches!(last.outcome, Outcome::Failure { .. }), "{last:?}");
        assert_eq!(last.share_index, Some(slot.index));
        assert!(anomalies(&self.h).await.is_empty());
    }
}

/// A challenge for `slot`, issued by the operator, as the custodian gets it
/// (encoded, carried, decoded).
pub async fn issue<S: Storage>(h: &Harness<S>, slot: &ShareSlot) -> InventoryChallenge {
    let challenge = h
        .service
        .issue_inventory_challenge(&h.operator, slot)
        .await
        .unwrap();
    let carried = InventoryChallenge::decode(&challenge.encode()).unwrap();
    assert_eq!(carried, challenge);
    carried
}

/// `custodian`'s answer to `challenge` from `container`, with the custodian
/// tool's clock at the service's time.
pub fn prove<S: Storage>(
    h: &Harness<S>,
    custodian: &TestCustodian,
    challenge: &InventoryChallenge,
    container: &[u8],
    seed: u8,
) -> Result<InventoryProof, Error> {
    let identities = [custodian.identity.clone()];
    let credentials = CustodianCredentials {
        custodian: &custodian.entity,
        person: &custodian.person,
        identities: &identities,
        receipt_signer: &custodian.receipt_key,
    };
    prove_inventory(
        challenge,
        container,
        &credentials,
        h.service.trusted_signers(),
        h.clock_now(),
        &mut ChaCha20Rng::from_seed([seed; 32]),
    )
}

/// A proof of possession of the share in `custodian`'s `container` for any
/// `context`: what whoever holds that share can make for any statement.
pub fn possession(
    custodian: &TestCustodian,
    container: &[u8],
    trusted: &TrustedSigners,
    context: &[u8],
    seed: u8,
) -> Vec<u8> {
    let opened = open_x25519_container(
        container,
        std::slice::from_ref(&custodian.identity),
        trusted,
    )
    .unwrap();
    let (envelope, _archive) = opened.into_parts();
    let commitments = envelope.header().commitments().clone();
    let share = envelope.into_plain_share().unwrap();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    match (&share, &commitments) {
        (CurveShare::Secp256k1(share), CurveCommitments::Secp256k1(commitments)) => {
            prove_possession(share, commitments, context, &mut rng)
                .unwrap()
                .to_bytes()
        }
        (CurveShare::Ed25519(share), CurveCommitments::Ed25519(commitments)) => {
            prove_possession(share, commitments, context, &mut rng)
                .unwrap()
                .to_bytes()
        }
        _ => panic!("a verified envelope's share and commitments are on one curve"),
    }
}

/// `proof` signed by `key`, encoded.
pub fn signed(mut proof: InventoryProof, key: &dyn Signer) -> Vec<u8> {
    proof.sign(key).unwrap();
    proof.encode().unwrap()
}

/// The nonce point `R` of a proof's possession proof (`curve || R || z`).
fn nonce_point(proof: &InventoryProof) -> &[u8] {
    &proof.possession[1..proof.possession.len() - 32]
}

pub async fn confirmed_at<S: Storage>(h: &Harness<S>, slot: &ShareSlot) -> Option<Timestamp> {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let entry = tx.custody_entry(slot).await.unwrap();
    tx.rollback().await.unwrap();
    entry.confirmed_at
}

/// Every anomaly recorded.
pub async fn anomalies<S: Storage>(h: &Harness<S>) -> Vec<AnomalyRecord> {
    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let anomalies = tx
        .anomalies_since(Timestamp::EPOCH, MAX_PAGE_SIZE)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    anomalies
}

fn count(records: &[AuditRecord], event: EventType, succeeded: bool) -> usize {
    records
        .iter()
        .filter(|r| r.event == event && (r.outcome == Outcome::Success) == succeeded)
        .count()
}

/// The audit record of an anomaly of `kind` (`access-denied`, failed).
pub fn assert_anomaly_audited(record: &AuditRecord, kind: AnomalyKind) {
    assert_eq!(record.event, EventType::AccessDenied);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));
    assert_eq!(
        record.detail.as_ref().map(|d| d.as_str().to_owned()),
        Some(format!("anomaly: {kind}"))
    );
}

/// Delivers the first `receipts` containers of `generated` and confirms
/// each with its custodian's receipt, a minute apart; returns the
/// confirmation times.
async fn deliver_and_confirm<S: Storage>(
    h: &Harness<S>,
    generated: &Generated,
    custodians: &[TestCustodian],
    receipts: usize,
) -> Vec<Timestamp> {
    let mut times = Vec::new();
    for (container, custodian) in generated.containers.iter().zip(custodians).take(receipts) {
        let slot = generated.version.slot(container.index);
        h.service
            .deliver(
                &h.operator,
                DeliveryReport {
                    slot: slot.clone(),
                    container_hash: container.container_hash,
                    result: DeliveryResult::Sent,
                },
            )
            .await
            .unwrap();
        h.clock.advance(MINUTE);
        let receipt = custodian.receipt(container.envelope_id, h.clock_now());
        h.service
            .confirm(&h.operator, &slot, &receipt)
            .await
            .unwrap();
        times.push(h.clock_now());
    }
    times
}

fn version_of<'a>(versions: &'a [VersionStatus], key: &str, node: &str) -> &'a VersionStatus {
    versions
        .iter()
        .find(|v| v.version.key_id.as_str() == key && v.version.node_id.as_str() == node)
        .unwrap_or_else(|| panic!("no status for {key}/{node}"))
}

fn curve_of(protocol: Protocol) -> CurveId {
    match protocol {
        Protocol::Ecdsa => CurveId::Secp256k1,
        Protocol::Eddsa => CurveId::Ed25519,
    }
}

// ----- status and listing -----

/// Status and listing over four nodes of two tss-lib groups: every field of
/// a version's status as the calls around it change it (receipts,
/// a failed delivery, a custodian change that breaks the exposure rule, a
/// passed drill, a policy change), pagination with page tokens, filters,
/// the overview, the server share listing, and one `inspect` audit record
/// per call.
pub async fn status_and_listing<S: Storage>(storage: S, dir: tempfile::TempDir) {
    let h = Harness::new(storage, dir).await;
    let first = h.custodians("escrow", 3).await;
    let second = h.custodians("vault", 3).await;
    h.hybrid_policy().await;
    let policy = h
        .service
        .current_policy(&h.operator)
        .await
        .unwrap()
        .unwrap();

    // ECDSA nodes 0 and 1 with the first custodians, node 2 with the second
    // (the exposure rule allows each custodian two nodes of the group);
    // EdDSA node 0 with the first.
    let mut made = Vec::new();
    for (protocol, party, custodians) in [
        (Protocol::Ecdsa, 0, &first),
        (Protocol::Ecdsa, 1, &first),
        (Protocol::Ecdsa, 2, &second),
        (Protocol::Eddsa, 0, &first),
    ] {
        h.clock.advance(MINUTE);
        let key = format!("wallet-{}", protocol.dir());
        let generated = h
            .generate(protocol, &key, party, &refs(custodians))
            .await
            .unwrap();
        made.push((protocol, h.clock_now(), generated));
    }
    let created: Vec<Timestamp> = made.iter().map(|(_, at, _)| *at).collect();
    let (ecdsa0, ecdsa1, ecdsa2) = (&made[0].2, &made[1].2, &made[2].2);

    // ECDSA node 0: every external share confirmed. Node 1: two, after a
    // failed delivery. The others: none.
    let receipts0 = deliver_and_confirm(&h, ecdsa0, &first, 3).await;
    h.service
        .deliver(
            &h.operator,
            DeliveryReport {
                slot: ecdsa1.version.slot(ecdsa1.containers[0].index),
                container_hash: ecdsa1.containers[0].container_hash,
                result: DeliveryResult::Failed {
                    reason: text("courier lost the parcel"),
                },
            },
        )
        .await
        .unwrap();
    deliver_and_confirm(&h, ecdsa1, &first, 2).await;

    let mut calls = 0;
    let before = h.audit_records().await.len();

    // One call for every node.
    let page = h
        .service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap();
    calls += 1;
    assert_eq!(page.next_page_token, None);
    assert_eq!(page.as_of, h.clock_now());
    let order: Vec<String> = page
        .versions
        .iter()
        .map(|v| format!("{}/{}", v.version.key_id, v.version.node_id))
        .collect();
    assert_eq!(
        order,
        [
            "wallet-ecdsa/node-0",
            "wallet-ecdsa/node-1",
            "wallet-ecdsa/node-2",
            "wallet-eddsa/node-0"
        ]
    );
    for (status, (protocol, created_at, generated)) in page.versions.iter().zip(&made) {
        assert_eq!(status.version, generated.version);
        assert_eq!(status.version.version, KeyVersion::new(1));
        assert_eq!((status.threshold.t(), status.threshold.n()), (3, 5));
        assert_eq!(status.curve, Some(curve_of(*protocol)));
        assert_eq!(status.state, KeyVersionState::Active);
        assert_eq!(status.created_at, *created_at);
        assert_eq!(status.server_shares, 2);
        assert_eq!(status.server_shares_held, 2);
        assert_eq!(
            (
                status.server_shares_soft_deleted,
                status.server_shares_hard_deleted
            ),
            (0, 0)
        );
        assert_eq!(status.external_shares, 3);
        assert_eq!(status.external_assigned, 3);
        assert_eq!(
            status.outstanding_deliveries,
            3 - status.external_confirmed,
            "{status:?}"
        );
        assert_eq!(status.last_drill, None);
        assert_eq!(status.last_passed_drill_at, None);
        assert_eq!(status.last_change_at, *created_at);
        // Never drilled: due since it was made.
        let due = status.next_drill.unwrap();
        assert_eq!(
            (due.due_at, due.reason, due.overdue),
            (*created_at, DrillDueReason::NeverPassed, true)
        );
        assert!(!status.needs_regeneration);
        assert_eq!(status.exposure, ExposureState::Clear);
    }
    let v = &page.versions;
    // Recoverable: at least t = 3 external shares with a confirmed receipt.
    assert_eq!(
        v.iter()
            .map(|s| (s.external_confirmed, s.recoverable, s.deliveries_failed))
            .collect::<Vec<_>>(),
        [(3, true, 0), (2, false, 1), (0, false, 0), (0, false, 0)]
    );
    // The oldest confirmation, once every external share has one.
    assert_eq!(v[0].last_inventory_at, Some(receipts0[0]));
    assert_eq!(v[1].last_inventory_at, None);

    // Filters: one group key; one node id across the group keys.
    let eddsa = h
        .service
        .status(
            &h.operator,
            &StatusQuery {
                key_id: Some(KeyId::new("wallet-eddsa").unwrap()),
                ..StatusQuery::default()
            },
        )
        .await
        .unwrap();
    calls += 1;
    assert_eq!(eddsa.versions, v[3..]);
    let node0 = h
        .service
        .status(
            &h.operator,
            &StatusQuery {
                node_id: Some(NodeId::new("node-0").unwrap()),
                ..StatusQuery::default()
            },
        )
        .await
        .unwrap();
    calls += 1;
    assert_eq!(node0.versions, [v[0].clone(), v[3].clone()]);

    // Pages of three: the token continues where the first page ended.
    let query = StatusQuery {
        page_size: 3,
        ..StatusQuery::default()
    };
    let page1 = h.service.status(&h.operator, &query).await.unwrap();
    calls += 1;
    assert_eq!(page1.versions, v[..3]);
    let token = page1.next_page_token.clone().unwrap();
    let page2 = h
        .service
        .status(
            &h.operator,
            &StatusQuery {
                page_token: Some(token.clone()),
                ..query.clone()
            },
        )
        .await
        .unwrap();
    calls += 1;
    assert_eq!(page2.versions, v[3..]);
    assert_eq!(page2.next_page_token, None);
    let last = h.audit_records().await.pop().unwrap();
    assert_eq!(
        last.detail.unwrap().as_str(),
        "status: 1 versions, continued"
    );

    // A token continues only its own query, and must decode.
    for (bad, why) in [
        (
            StatusQuery {
                key_id: Some(KeyId::new("wallet-ecdsa").unwrap()),
                page_token: Some(token.clone()),
                ..query.clone()
            },
            "it was issued for another query",
        ),
        (
            StatusQuery {
                page_token: Some("not-a-token".to_owned()),
                ..query.clone()
            },
            "it does not decode",
        ),
        (
            StatusQuery {
                page_token: Some(format!("{token}00")),
                ..query.clone()
            },
            "it does not decode",
        ),
    ] {
        let error = h.service.status(&h.operator, &bad).await.unwrap_err();
        calls += 1;
        assert!(
            matches!(&error, Error::BadPageToken { why: got } if *got == why),
            "{error}"
        );
        let last = h.audit_records().await.pop().unwrap();
        assert_eq!(last.event, EventType::Inspect);
        assert!(matches!(last.outcome, Outcome::Failure { .. }));
    }

    // Only the inspect roles: a custodian is refused, and that is audited.
    let error = h
        .service
        .status(&first[0].person, &StatusQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::MissingRole { person, role: Role::Operator } if *person == first[0].person),
        "{error}"
    );
    let last = h.audit_records().await.pop().unwrap();
    assert_eq!(
        (last.event, &last.operator),
        (EventType::AccessDenied, &first[0].person)
    );

    // The overview: totals over the same versions, and the policy in force.
    let overview = h
        .service
        .status_overview(&h.operator, &StatusQuery::default())
        .await
        .unwrap();
    calls += 1;
    let totals = overview.totals;
    assert_eq!(
        (totals.versions, totals.nodes, totals.keys),
        (4, 4, 2),
        "{totals:?}"
    );
    assert_eq!(totals.server_shares_active, 8);
    assert_eq!(totals.external_assigned, 12);
    assert_eq!(totals.external_confirmed, 5);
    assert_eq!(totals.deliveries_failed, 1);
    assert_eq!((totals.drills, totals.drills_passed), (0, 0));
    assert_eq!(overview.policy_hash, Some(policy.hash));

    // The server share listing: both server shares of every version, in
    // slot order, with their envelope and KEK.
    let listing = h
        .service
        .list_server_shares(&h.operator, &ShareListQuery::default())
        .await
        .unwrap();
    calls += 1;
    assert_eq!(listing.next_page_token, None);
    let expected: Vec<_> = made
        .iter()
        .flat_map(|(_, at, generated)| {
            generated.server_shares.iter().map(|share| {
                (
                    generated.version.slot(share.index),
                    share.envelope_id,
                    share.kek_id.clone(),
                    *at,
                )
            })
        })
        .collect();
    let listed: Vec<_> = listing
        .shares
        .iter()
        .map(|share| {
            assert_eq!(share.state, SlotState::Active);
            (
                share.slot.clone(),
                share.envelope_id,
                share.kek_id.clone(),
                share.created_at,
            )
        })
        .collect();
    assert_eq!(listed, expected);
    let query = ShareListQuery {
        page_size: 5,
        ..ShareListQuery::default()
    };
    let first_page = h
        .service
        .list_server_shares(&h.operator, &query)
        .await
        .unwrap();
    calls += 1;
    assert_eq!(first_page.shares, listing.shares[..5]);
    let token = first_page.next_page_token.unwrap();
    let rest = h
        .service
        .list_server_shares(
            &h.operator,
            &ShareListQuery {
                page_token: Some(token.clone()),
                ..query.clone()
            },
        )
        .await
        .unwrap();
    calls += 1;
    assert_eq!(rest.shares, listing.shares[5..]);
    assert_eq!(rest.next_page_token, None);
    let one_version = h
        .service
        .list_server_shares(
            &h.operator,
            &ShareListQuery {
                key_id: Some(ecdsa1.version.key_id.clone()),
                node_id: Some(ecdsa1.version.node_id.clone()),
                version: Some(ecdsa1.version.version),
                ..ShareListQuery::default()
            },
        )
        .await
        .unwrap();
    calls += 1;
    assert_eq!(one_version.shares, listing.shares[2..4]);
    // A listing token is no status token, and the other way round.
    let error = h
        .service
        .status(
            &h.operator,
            &StatusQuery {
                page_token: Some(token),
                ..StatusQuery::default()
            },
        )
        .await
        .unwrap_err();
    calls += 1;
    assert!(
        matches!(
            error,
            Error::BadPageToken {
                why: "it was issued for another query"
            }
        ),
        "{error}"
    );

    // Every call above appended one inspect record (the refusals a failed
    // one), and nothing else was written but the custodian's denial.
    let records = h.audit_records().await;
    let new = &records[before..];
    assert_eq!(count(new, EventType::Inspect, true), calls - 4);
    assert_eq!(count(new, EventType::Inspect, false), 4);
    assert_eq!(new.len(), calls + 1);
    assert!(
        new.iter()
            .filter(|r| r.event == EventType::Inspect)
            .all(|r| r.operator == h.operator)
    );

    // A custodian change (made in storage, as a reassignment will) gives
    // escrow-0 a share of ECDSA node 2 too: with the server's two shares it
    // could rebuild three Xi of a group that signs with three.
    h.clock.advance(MINUTE);
    let changed_at = h.clock_now();
    let moved = ecdsa2.version.slot(ecdsa2.containers[0].index);
    let mut tx = h.service.storage().begin().await.unwrap();
    let mut entry = tx.custody_entry(&moved).await.unwrap();
    entry.custodian = first[0].entity.clone();
    entry.person = first[0].person.clone();
    entry.recipient = first[0].identity.to_public().to_string();
    entry.updated_at = changed_at;
    entry.confirmed_at = None;
    tx.update_custodian(&entry).await.unwrap();
    tx.record_version_change(
        &ecdsa2.version,
        &Label::new("custodian-change").unwrap(),
        changed_at,
    )
    .await
    .unwrap();
    // A passed drill of ECDSA node 0.
    let drill_started = changed_at;
    let drill_finished = after(changed_at, Duration::from_secs(30 * 60));
    tx.record_drill(&DrillReport {
        target: ecdsa0.version.clone(),
        started_at: drill_started,
        finished_at: drill_finished,
        operator: h.operator.clone(),
        shares_used: ecdsa0.containers.iter().map(|c| c.index).collect(),
        outcome: DrillOutcome::Passed,
        report: b"drill report".to_vec(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    h.clock.advance(Duration::from_secs(3600));

    let v = h
        .service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap()
        .versions;
    let exposed = ExposureState::Exposed {
        custodians: vec![first[0].entity.clone()],
    };
    for node in ["node-0", "node-1", "node-2"] {
        assert_eq!(version_of(&v, "wallet-ecdsa", node).exposure, exposed);
    }
    // Another group key counts on its own.
    assert_eq!(
        version_of(&v, "wallet-eddsa", "node-0").exposure,
        ExposureState::Clear
    );
    // The changed node is due since the change; the drilled one a quarter
    // after its drill.
    let node2 = version_of(&v, "wallet-ecdsa", "node-2");
    assert_eq!(node2.last_change_at, changed_at);
    let due = node2.next_drill.unwrap();
    assert_eq!(
        (due.due_at, due.reason, due.overdue),
        (changed_at, DrillDueReason::NeverPassed, true)
    );
    let node0 = version_of(&v, "wallet-ecdsa", "node-0");
    assert_eq!(
        node0.last_drill,
        Some(DrillSummary {
            started_at: drill_started,
            finished_at: drill_finished,
            passed: true,
        })
    );
    assert_eq!(node0.last_passed_drill_at, Some(drill_finished));
    let due = node0.next_drill.unwrap();
    assert_eq!(
        (due.due_at, due.reason, due.overdue),
        (
            after(drill_finished, Duration::from_secs(90 * 86_400)),
            DrillDueReason::Interval,
            false
        )
    );

    // A new policy: every version needs regenerating, and the drilled one
    // is due since the policy was set.
    h.clock.advance(MINUTE);
    h.change_policy(PolicySettings {
        threshold: Threshold::new(3, 5).unwrap(),
        server_shares: 1,
        kek_provider: Label::new("local-key-file").unwrap(),
    })
    .await
    .unwrap();
    let policy_set = h.clock_now();
    let v = h
        .service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap()
        .versions;
    assert!(v.iter().all(|s| s.needs_regeneration));
    let due = version_of(&v, "wallet-ecdsa", "node-0").next_drill.unwrap();
    assert_eq!(
        (due.due_at, due.reason, due.overdue),
        (policy_set, DrillDueReason::PolicyChanged, true)
    );
    assert_eq!(
        version_of(&v, "wallet-eddsa", "node-0").created_at,
        created[3]
    );

    // The exporter's snapshot agrees (and is neither audited nor limited).
    let records = h.audit_records().await.len();
    let metrics = h.service.metrics_snapshot().await.unwrap();
    assert_eq!(metrics.totals.versions, 4);
    assert_eq!(metrics.recoverable, 1);
    assert_eq!(metrics.coverage(), Some(0.25));
    assert_eq!(metrics.needs_regeneration, 4);
    assert_eq!(h.audit_records().await.len(), records);
}

/// Pages hold at most `MAX_PAGE_SIZE` versions whatever the caller asks,
/// `DEFAULT_PAGE_SIZE` when it names no size, and the token reaches the
/// rest: over 1 001 versions (one generated, the others stored with its
/// split reference).
pub async fn status_pages_are_capped<S: Storage>(storage: S, dir: tempfile::TempDir) {
    let h = Harness::new(storage, dir).await;
    let custodians = h.custodians("escrow", 3).await;
    h.hybrid_policy().await;
    let generated = h
        .generate(Protocol::Eddsa, "wallet", 0, &refs(&custodians))
        .await
        .unwrap();
    let mut tx = h.service.storage().begin().await.unwrap();
    let reference = tx.split_reference(&generated.version).await.unwrap();
    for i in 0..MAX_PAGE_SIZE {
        let version = NodeVersion {
            key_id: KeyId::new("wallet").unwrap(),
            node_id: NodeId::new(format!("bulk-{i:04}")).unwrap(),
            version: KeyVersion::new(1),
        };
        tx.create_key_version(
            &version,
            generated.threshold,
            &reference,
            &h.operator,
            h.clock_now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let capped = StatusQuery {
        page_size: u32::MAX,
        ..StatusQuery::default()
    };
    let page = h.service.status(&h.operator, &capped).await.unwrap();
    assert_eq!(page.versions.len(), 1000);
    assert_eq!(
        page.versions.last().unwrap().version.node_id.as_str(),
        "bulk-0999"
    );
    let rest = h
        .service
        .status(
            &h.operator,
            &StatusQuery {
                page_token: page.next_page_token.clone(),
                ..capped
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.versions.len(), 1);
    assert_eq!(rest.versions[0].version, generated.version);
    assert_eq!(rest.next_page_token, None);

    let default = h
        .service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap();
    assert_eq!(
        default.versions.len(),
        usize::try_from(DEFAULT_PAGE_SIZE).unwrap()
    );
    assert!(default.next_page_token.is_some());
    let last = h.audit_records().await.pop().unwrap();
    assert_eq!(
        last.detail.unwrap().as_str(),
        "status: 100 versions, more follow"
    );
}

// ----- the inventory round trip -----

/// For a node of each tss-lib group: a challenge per external share, each
/// answered by its custodian from the real container it was delivered,
/// confirmed by the service against the stored commitments; the custody map
/// records the confirmation time, status shows the inventory (and no
/// receipt: an inventory proof does not make a version recoverable), and
/// each step is audited.
pub async fn inventory_round_trip<S: Storage>(storage: S, dir: tempfile::TempDir) {
    let h = Harness::new(storage, dir).await;
    let custodians = h.custodians("escrow", 3).await;
    h.hybrid_policy().await;
    for protocol in Protocol::ALL {
        let key = format!("wallet-{}", protocol.dir());
        let generated = h
            .generate(protocol, &key, 0, &refs(&custodians))
            .await
            .unwrap();
        let query = StatusQuery {
            key_id: Some(generated.version.key_id.clone()),
            ..StatusQuery::default()
        };
        let status = h.service.status(&h.operator, &query).await.unwrap();
        assert_eq!(status.versions[0].last_inventory_at, None);

        let mut confirmed = Vec::new();
        for (i, (container, custodian)) in generated.containers.iter().zip(&custodians).enumerate()
        {
            let slot = generated.version.slot(container.index);
            let issued_at = h.clock_now();
            let challenge = issue(&h, &slot).await;
            assert_eq!(challenge.slot, slot);
            assert_eq!(challenge.envelope_id, container.envelope_id);
            assert_eq!(challenge.custodian, custodian.entity);
            assert_eq!(challenge.expires_at, after(issued_at, CHALLENGE_TTL));
            let issued = h.audit_records().await.pop().unwrap();
            assert_eq!(
                (issued.event, &issued.outcome, issued.share_index),
                (EventType::Inspect, &Outcome::Success, Some(container.index))
            );
            assert_eq!(issued.envelope_id, Some(*container.envelope_id.as_bytes()));

            // The custodian answers a few minutes later, from its container.
            h.clock.advance(Duration::from_secs(180));
            let seed = u8::try_from(i).unwrap() + 1;
            let proof = prove(&h, custodian, &challenge, &container.container, seed).unwrap();
            assert_eq!(proof.challenge, challenge);
            assert_eq!(proof.person, custodian.person);
            assert_eq!(proof.container_hash, container.container_hash);
            assert_eq!(proof.container_hash, container_hash(&container.container));
            // The first is submitted by the operator, the others by the
            // custodians themselves.
            let submitter = if i == 0 {
                &h.operator
            } else {
                &custodian.person
            };
            let confirmation = h
                .service
                .confirm_inventory(submitter, &proof.encode().unwrap())
                .await
                .unwrap();
            assert_eq!(confirmation.slot, slot);
            assert_eq!(confirmation.custodian, custodian.entity);
            assert_eq!(confirmation.person, custodian.person);
            assert_eq!(confirmation.envelope_id, container.envelope_id);
            assert_eq!(confirmation.confirmed_at, h.clock_now());

            let mut tx = h.service.storage().begin_read_only().await.unwrap();
            let entry = tx.custody_entry(&slot).await.unwrap();
            tx.rollback().await.unwrap();
            assert_eq!(entry.confirmed_at, Some(h.clock_now()));
            assert_eq!(entry.custodian, custodian.entity);
            assert_eq!(entry.person, custodian.person);
            assert_eq!(entry.envelope_id, container.envelope_id);
            assert_eq!(entry.container_hash, container.container_hash);

            let recorded = h.audit_records().await.pop().unwrap();
            assert_eq!(recorded.event, EventType::Confirm);
            assert_eq!(recorded.outcome, Outcome::Success);
            assert_eq!(&recorded.operator, submitter);
            assert_eq!(recorded.share_index, Some(container.index));
            assert_eq!(recorded.signature, Some(proof.signature));
            assert_eq!(
                recorded.target.as_ref().map(FreeText::as_str),
                Some(custodian.entity.as_str())
            );
            confirmed.push(h.clock_now());
        }

        let status = h.service.status(&h.operator, &query).await.unwrap();
        let status = &status.versions[0];
        assert_eq!(status.last_inventory_at, Some(confirmed[0]));
        assert_eq!(status.external_confirmed, 0);
        assert_eq!(status.outstanding_deliveries, 3);
        assert!(!status.recoverable);
    }
    assert!(anomalies(&h).await.is_empty());
}

// ----- refused inventory proofs -----

/// A custodian's proof for one nonce, presented (and signed again) as the
/// answer to another challenge of the same slot: the proof of possession is
/// bound to its nonce and does not verify. The other challenge is used up;
/// the first still answers.
pub async fn a_proof_for_another_nonce_never_verifies<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let first = b.challenge(0).await;
    let second = b.challenge(0).await;
    assert_ne!(first.nonce, second.nonce);
    assert_eq!(first.expires_at, second.expires_at);
    let proof = b.prove(0, &first, 1);
    let mut replayed = proof.clone();
    replayed.challenge = second.clone();
    let replayed = signed(replayed, &b.custodians[0].receipt_key);

    let error = b.submit(0, &replayed).await.unwrap_err();
    assert!(
        matches!(&error, Error::PossessionProofRejected { slot, .. } if *slot == b.slot(0)),
        "{error}"
    );
    assert!(error.is_opaque_to_caller());
    assert_eq!(b.confirmed_at(0).await, None);
    b.assert_refusal_audited(&b.slot(0)).await;

    let honest = b.prove(0, &second, 2).encode().unwrap();
    let error = b.submit(0, &honest).await.unwrap_err();
    assert!(
        matches!(error, Error::ChallengeConsumed { nonce } if nonce == second.nonce),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    b.submit(0, &proof.encode().unwrap()).await.unwrap();
    assert_eq!(b.confirmed_at(0).await, Some(b.h.clock_now()));
}

/// A proof naming another envelope than the one delivered for the slot (the
/// same custodian's envelope of another node) is refused; the custodian's
/// tool will not make one either.
pub async fn a_proof_for_another_envelope_never_verifies<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let other =
        b.h.generate(protocol, "wallet", 1, &refs(&b.custodians))
            .await
            .unwrap();
    let other_slot = other.version.slot(other.containers[0].index);
    let other_challenge = issue(&b.h, &other_slot).await;
    let challenge = b.challenge(0).await;
    assert!(matches!(
        prove(
            &b.h,
            &b.custodians[0],
            &challenge,
            &other.containers[0].container,
            1
        ),
        Err(Error::InventoryEnvelopeMismatch { .. })
    ));

    // The proof for the other node's envelope, with this challenge's nonce.
    let mut forged = prove(
        &b.h,
        &b.custodians[0],
        &other_challenge,
        &other.containers[0].container,
        1,
    )
    .unwrap();
    forged.challenge = InventoryChallenge {
        envelope_id: other.containers[0].envelope_id,
        ..challenge.clone()
    };
    let forged = signed(forged, &b.custodians[0].receipt_key);
    let error = b.submit(0, &forged).await.unwrap_err();
    assert!(
        matches!(&error, Error::InventoryEnvelopeMismatch { slot } if *slot == b.slot(0)),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    assert_eq!(confirmed_at(&b.h, &other_slot).await, None);
    b.assert_refusal_audited(&b.slot(0)).await;

    // This challenge is used up; the other node's still answers.
    let honest = b.prove(0, &challenge, 2).encode().unwrap();
    assert!(matches!(
        b.submit(0, &honest).await,
        Err(Error::ChallengeConsumed { .. })
    ));
    let answer = prove(
        &b.h,
        &b.custodians[0],
        &other_challenge,
        &other.containers[0].container,
        3,
    )
    .unwrap();
    b.submit(0, &answer.encode().unwrap()).await.unwrap();
    assert_eq!(confirmed_at(&b.h, &other_slot).await, Some(b.h.clock_now()));
    assert_eq!(b.confirmed_at(0).await, None);
}

/// A proof made from another file than the container delivered (its hash
/// differs from the custody map's), even with a valid proof of possession
/// for that file's hash, is refused.
pub async fn a_proof_from_another_container_is_refused<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(0).await;
    let mut forged = b.prove(0, &challenge, 1);
    forged.container_hash = container_hash(b"a copy that is not the delivered file");
    forged.possession = possession(
        &b.custodians[0],
        b.container(0),
        b.h.service.trusted_signers(),
        &challenge.possession_context(&forged.container_hash),
        1,
    );
    let forged = signed(forged, &b.custodians[0].receipt_key);
    let error = b.submit(0, &forged).await.unwrap_err();
    assert!(
        matches!(&error, Error::InventoryContainerMismatch { slot } if *slot == b.slot(0)),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    b.assert_refusal_audited(&b.slot(0)).await;
}

/// Custodian B answers its own challenge with a proof of possession made
/// from custodian A's share (index 3) for B's statement, signed by B: a
/// proof of possession of one index never verifies for another.
pub async fn a_proof_for_another_index_never_verifies<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(1).await;
    let hash = b.generated.containers[1].container_hash;
    let borrowed = possession(
        &b.custodians[0],
        b.container(0),
        b.h.service.trusted_signers(),
        &challenge.possession_context(&hash),
        1,
    );
    let mut forged = b.prove(1, &challenge, 1);
    forged.possession = borrowed;
    let forged = signed(forged, &b.custodians[1].receipt_key);
    let error = b.submit(1, &forged).await.unwrap_err();
    assert!(
        matches!(&error, Error::PossessionProofRejected { slot, .. } if *slot == b.slot(1)),
        "{error}"
    );
    assert_eq!(b.confirmed_at(1).await, None);
    assert_eq!(b.confirmed_at(0).await, None);
    b.assert_refusal_audited(&b.slot(1)).await;
    let honest = b.prove(1, &challenge, 2).encode().unwrap();
    assert!(matches!(
        b.submit(1, &honest).await,
        Err(Error::ChallengeConsumed { .. })
    ));
}

/// Custodian A answers custodian B's challenge as issued, signed with A's
/// own key: A is no member of B, so the proof is refused before the
/// challenge is used; B's own answer then confirms. A's tool refuses to
/// answer it at all.
pub async fn a_proof_by_another_custodian_never_verifies<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(1).await;
    assert!(matches!(
        prove(&b.h, &b.custodians[0], &challenge, b.container(0), 1),
        Err(Error::ChallengeForOtherCustodian { .. })
    ));
    let hash = b.generated.containers[0].container_hash;
    let forged = InventoryProof {
        challenge: challenge.clone(),
        person: b.custodians[0].person.clone(),
        container_hash: hash,
        possession: possession(
            &b.custodians[0],
            b.container(0),
            b.h.service.trusted_signers(),
            &challenge.possession_context(&hash),
            1,
        ),
        signature: [0; 64],
    };
    let forged = signed(forged, &b.custodians[0].receipt_key);
    let error =
        b.h.service
            .confirm_inventory(&b.h.operator, &forged)
            .await
            .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::NotCustodianMember { person, custodian }
                if *person == b.custodians[0].person && *custodian == b.custodians[1].entity
        ),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    assert_eq!(b.confirmed_at(1).await, None);
    b.assert_refusal_audited(&b.slot(1)).await;
    let honest = b.prove(1, &challenge, 2).encode().unwrap();
    b.submit(1, &honest).await.unwrap();
    assert_eq!(b.confirmed_at(1).await, Some(b.h.clock_now()));
}

/// Custodian A takes custodian B's challenge and names itself as the
/// custodian: the proof does not repeat the challenge as issued. The
/// challenge is used up.
pub async fn a_proof_naming_another_custodian_than_challenged_is_refused<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(1).await;
    let renamed = InventoryChallenge {
        custodian: b.custodians[0].entity.clone(),
        ..challenge.clone()
    };
    let hash = b.generated.containers[0].container_hash;
    let forged = InventoryProof {
        challenge: renamed.clone(),
        person: b.custodians[0].person.clone(),
        container_hash: hash,
        possession: possession(
            &b.custodians[0],
            b.container(0),
            b.h.service.trusted_signers(),
            &renamed.possession_context(&hash),
            1,
        ),
        signature: [0; 64],
    };
    let forged = signed(forged, &b.custodians[0].receipt_key);
    let error = b.submit(0, &forged).await.unwrap_err();
    assert!(
        matches!(error, Error::ChallengeMismatch { field: "custodian" }),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    assert_eq!(b.confirmed_at(1).await, None);
    b.assert_refusal_audited(&b.slot(1)).await;
    let honest = b.prove(1, &challenge, 2).encode().unwrap();
    assert!(matches!(
        b.submit(1, &honest).await,
        Err(Error::ChallengeConsumed { .. })
    ));
}

/// An honest proof signed again with another key (an unregistered one, and
/// another custodian's registered receipt key) never verifies: refused
/// before the challenge is used, which the right signature then answers.
pub async fn a_proof_signed_with_another_key_never_verifies<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(0).await;
    let proof = b.prove(0, &challenge, 1);
    let stranger = InMemorySigner::from_seed(SignerId::new("stranger").unwrap(), &[0xee; 32]);
    for key in [&stranger, &b.custodians[1].receipt_key] {
        let forged = signed(proof.clone(), key);
        let error =
            b.h.service
                .confirm_inventory(&b.h.operator, &forged)
                .await
                .unwrap_err();
        assert!(
            matches!(&error, Error::InventorySignatureInvalid { person } if *person == b.custodians[0].person),
            "{error}"
        );
        assert!(error.is_opaque_to_caller());
        assert_eq!(b.confirmed_at(0).await, None);
        b.assert_refusal_audited(&b.slot(0)).await;
    }
    b.submit(0, &proof.encode().unwrap()).await.unwrap();
    assert_eq!(b.confirmed_at(0).await, Some(b.h.clock_now()));
}

/// The second confirm of one challenge is refused: single use. The
/// confirmation time stays the first one's.
pub async fn a_reused_nonce_is_refused<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(0).await;
    let proof = b.prove(0, &challenge, 1).encode().unwrap();
    b.submit(0, &proof).await.unwrap();
    let first = b.h.clock_now();
    b.h.clock.advance(MINUTE);
    let error = b.submit(0, &proof).await.unwrap_err();
    assert!(
        matches!(error, Error::ChallengeConsumed { nonce } if nonce == challenge.nonce),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, Some(first));
    b.assert_refusal_audited(&b.slot(0)).await;
}

/// A proof made in time but submitted after the challenge lapsed is
/// refused, and the custodian's tool refuses to answer a lapsed challenge.
pub async fn an_expired_challenge_is_refused<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let challenge = b.challenge(0).await;
    b.h.clock.advance(Duration::from_secs(5 * 60));
    let proof = b.prove(0, &challenge, 1).encode().unwrap();
    b.h.clock.advance(CHALLENGE_TTL);
    let error = b.submit(0, &proof).await.unwrap_err();
    assert!(
        matches!(error, Error::ChallengeExpired { expired_at } if expired_at == challenge.expires_at),
        "{error}"
    );
    assert_eq!(b.confirmed_at(0).await, None);
    b.assert_refusal_audited(&b.slot(0)).await;
    assert!(matches!(
        prove(&b.h, &b.custodians[0], &challenge, b.container(0), 1),
        Err(Error::ChallengeExpired { .. })
    ));
    // A fresh challenge answers.
    let fresh = b.challenge(0).await;
    b.submit(0, &b.prove(0, &fresh, 2).encode().unwrap())
        .await
        .unwrap();
    assert_eq!(b.confirmed_at(0).await, Some(b.h.clock_now()));
}

/// Two challenges of one slot answered with the same randomness get two
/// nonce points `R` (the nonce is hedged with the statement), and both
/// verify.
pub async fn two_proofs_for_two_nonces_have_different_nonce_points<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let first = b.challenge(0).await;
    let second = b.challenge(0).await;
    let (p1, p2) = (b.prove(0, &first, 7), b.prove(0, &second, 7));
    assert_ne!(nonce_point(&p1), nonce_point(&p2));
    for proof in [p1, p2] {
        b.submit(0, &proof.encode().unwrap()).await.unwrap();
    }
    assert_eq!(b.confirmed_at(0).await, Some(b.h.clock_now()));
}

/// Rejected proofs from one person past `bad_share_anomaly_threshold` (3)
/// in the window record an anomaly (an anomaly row and an audit record)
/// besides each refusal: none at three, one at four.
pub async fn repeated_bad_proofs_record_an_anomaly<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
    protocol: Protocol,
) {
    let b = backed(storage, dir, protocol).await;
    let custodian = &b.custodians[0];
    let stale = b.prove(0, &b.challenge(0).await, 1);
    for attempt in 1..=4 {
        let challenge = b.challenge(0).await;
        let mut replayed = stale.clone();
        replayed.challenge = challenge;
        let replayed = signed(replayed, &custodian.receipt_key);
        let error = b.submit(0, &replayed).await.unwrap_err();
        assert!(
            matches!(error, Error::PossessionProofRejected { .. }),
            "{error}"
        );
        let found = anomalies(&b.h).await;
        if attempt <= 3 {
            assert!(found.is_empty(), "attempt {attempt}");
            continue;
        }
        assert_eq!(found.len(), 1);
        let anomaly = &found[0];
        assert_eq!(anomaly.kind.as_str(), AnomalyKind::RepeatedBadProofs.name());
        assert_eq!(anomaly.person.as_ref(), Some(&custodian.person));
        assert_eq!(anomaly.slot.as_ref(), Some(&b.slot(0)));
        assert_eq!(anomaly.at, b.h.clock_now());
        let records = b.h.audit_records().await;
        let [.., refusal, recorded] = records.as_slice() else {
            panic!("too few audit records");
        };
        assert_eq!(refusal.event, EventType::Confirm);
        assert!(matches!(refusal.outcome, Outcome::Failure { .. }));
        assert_anomaly_audited(recorded, AnomalyKind::RepeatedBadProofs);
        assert_eq!(recorded.operator, custodian.person);
        assert_eq!(recorded.share_index, Some(b.slot(0).index));
    }
    assert_eq!(b.confirmed_at(0).await, None);
}

// ----- rate limits -----

/// With an inspect limit of 3 a minute: three inspect calls (status, a
/// listing, an inventory challenge) go through, the fourth is refused with
/// `RateLimited` and recorded as an anomaly (an anomaly row and an audit
/// record) although refused, and leaves no inspect record; the limit is per
/// person, and the next window allows calls again.
pub async fn inspect_calls_over_the_limit_are_refused_and_recorded<S: Storage>(
    storage: S,
    dir: tempfile::TempDir,
) {
    let b = backed_with(storage, dir, Protocol::Eddsa, |config| {
        config.inspect_limit.max = 3;
        config.inspect_limit.window = MINUTE;
    })
    .await;
    let h = &b.h;
    let window_end = after(h.clock_now(), MINUTE);
    assert_eq!(h.clock_now().as_unix_millis() % 60_000, 0);
    h.service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap();
    h.service
        .list_server_shares(&h.operator, &ShareListQuery::default())
        .await
        .unwrap();
    b.challenge(0).await;
    let records = h.audit_records().await;
    let inspects = count(&records, EventType::Inspect, true);
    assert_eq!(inspects, 3);

    let error = h
        .service
        .status_overview(&h.operator, &StatusQuery::default())
        .await
        .unwrap_err();
    match &error {
        Error::RateLimited {
            person,
            kind,
            count,
            limit,
            retry_at,
        } => {
            assert_eq!(person, &h.operator);
            assert_eq!(*kind, RateKind::Inspect);
            assert_eq!((*count, *limit), (4, 3));
            assert_eq!(*retry_at, window_end);
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    let found = anomalies(h).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind.as_str(), AnomalyKind::RateLimited.name());
    assert_eq!(found[0].person.as_ref(), Some(&h.operator));
    assert_eq!(found[0].at, h.clock_now());
    let after_refusal = h.audit_records().await;
    assert_eq!(after_refusal.len(), records.len() + 1);
    let recorded = after_refusal.last().unwrap();
    assert_anomaly_audited(recorded, AnomalyKind::RateLimited);
    assert_eq!(recorded.operator, h.operator);
    assert_eq!(count(&after_refusal, EventType::Inspect, true), inspects);
    // Every inspect call counts, an inventory challenge and proof too.
    let slot = b.slot(0);
    assert!(matches!(
        h.service
            .issue_inventory_challenge(&h.operator, &slot)
            .await,
        Err(Error::RateLimited { count: 5, .. })
    ));
    assert_eq!(b.confirmed_at(0).await, None);
    let refused = h.audit_records().await;
    assert_eq!(refused.len(), after_refusal.len() + 1);
    assert_anomaly_audited(refused.last().unwrap(), AnomalyKind::RateLimited);
    assert_eq!(count(&refused, EventType::Inspect, true), inspects);
    let snapshot = h.service.metrics_snapshot().await.unwrap();
    assert_eq!(
        snapshot.anomalies,
        [(Label::new(AnomalyKind::RateLimited.name()).unwrap(), 2)]
    );

    // Another person has a limit of their own.
    h.service
        .status(&h.security, &StatusQuery::default())
        .await
        .unwrap();
    // The next window.
    h.clock.set(window_end);
    h.service
        .status(&h.operator, &StatusQuery::default())
        .await
        .unwrap();
    assert_eq!(anomalies(h).await.len(), 2);
}

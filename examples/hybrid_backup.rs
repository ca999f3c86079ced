//! The main job on the embedded default, end to end, as the backup
//! procedure (`docs/procedure.md`, whose numbered steps are cited below)
//! runs it, with nothing to set up: a SQLite database, a local key store,
//! key-file signers and an audit witness file in a fresh temporary working
//! directory (removed at exit).
//!
//! 1. **Generate** (step 1): read an MPC node's tss-lib keystore (the real
//!    ECDSA keygen fixture of party 0), split its share `Xi` 3-of-5 with
//!    Feldman commitments, seal the protocol archive; shares 1-2 go into
//!    server envelopes sealed under their slot's own KEK and stored in
//!    SQLite, shares 3-5 into signed plain envelopes inside `age` containers
//!    for three custodians (written to `outbox/`).
//! 2. **Deliver and confirm** (step 2): each custodian opens its container,
//!    checks the envelope and signs a receipt; the server verifies and
//!    records the receipts, which form a complete delivery certificate.
//! 3. **Inspect** (step 3): coverage of the node and the recoverable flag.
//! 4. **Drill** (step 4): recover from the external containers alone,
//!    regenerate `.keydata.enc` in a sandbox, load it, self-test it with a
//!    threshold sign/aggregate round with the other four parties, and record
//!    the drill report.
//! 5. **Audit** (step 8): every step above appended a hash-chained record in
//!    the same transaction as its change; a signed checkpoint goes to the
//!    witness file, and the exported log is verified against it.
//!
//! Exits non-zero when any step fails, in particular a failed drill (which
//! is still recorded, with its reason).
//!
//! Run: `cargo run --release --example hybrid_backup`
#![allow(
    clippy::print_stdout,
    reason = "an example reports each step to its operator"
)]

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::{ChaCha20Rng, SysRng};
use shardkeep_audit::{
    AuditRecord, EventType, FileWitness, Outcome, Witness, append, checkpoint, export,
    parse_export, verify,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    Armor, ContainerIdentity, ContainerRecipients, CustodianSet, DeliveryCertificate,
    DeliveryState, EnvelopeParams, OpenedContainer, Receipt, ReceiptStatus, TrustedSigners,
    VerifiedEnvelope, VerifiedReceipt, open_container, seal_container,
};
use shardkeep_keydata::{
    InProcessPeers, KekKeystoreCodec, LocalPartySaveData, Outcome as CheckOutcome, SealedArchive,
    SelfTestReport, WriteMode, load_keystore, regenerate, write_keystore,
};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_sss_core::{
    Commitments, CurveId, RejectedShare, Secp256k1, Share, ShareIndex, Threshold, combine_verified,
    split,
};
use shardkeep_storage::{
    CustodyEntry, CustodyStore, DeliveryOutcome, DeliveryRecord, DrillOutcome, DrillReport,
    DrillStore, EntityRecord, EntityState, GroupRecord, GroupStore, KeyVersionStore, PersonKeys,
    PersonRecord, PersonState, PolicyRecord, ReceiptStore, RegistryStore, Role, RoleSet,
    SealedShare, SealedShareStore, SlotFilter, SlotState, SplitReference, SqliteStorage, Storage,
    Transaction,
};
use shardkeep_test_support::tss_lib::{self, Protocol};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, InMemoryKek, InMemorySigner, KekId,
    KeyEncryptionKey, KeyId, KeyVersion, NodeId, NodeVersion, Signer, SignerId, Timestamp,
};
use subtle::ConstantTimeEq;

/// The fixtures' signing group: tss-lib threshold (polynomial degree) 2 of 5
/// parties. Not stored in a save data, and unrelated to the backup split.
const GROUP_DEGREE: usize = tss_lib::TSS_LIB_THRESHOLD;

/// Hybrid mode: the first two shares stay on the server, the others go to
/// one external custodian each.
const SERVER_SHARES: usize = 2;
const CUSTODIANS: [&str; 3] = ["customer-security", "escrow-co", "cold-backup"];

/// The policy in force, as the backup crate would encode and hash it.
const POLICY: &[u8] = b"3-of-5, 2 shares on the server, 3 at distinct custodians";
const POLICY_HASH: [u8; 32] = [0x70; 32];

/// An external custodian: who, its `age` identity and its receipt-signing
/// key (both its own secrets in real life).
struct ExternalCustodian {
    id: CustodianId,
    identity: age::x25519::Identity,
    receipt_key: InMemorySigner,
}

/// What the steps share: one server's stores and keys, and the node backed
/// up.
struct Site {
    work: PathBuf,
    storage: SqliteStorage,
    keys: LocalKeyStore,
    envelope_signer: KeyFileSigner,
    audit_signer: KeyFileSigner,
    /// The envelope signers that custodians and the drill accept.
    trusted: TrustedSigners,
    operator: ActorId,
    node: NodeVersion,
    threshold: Threshold,
    custodians: Vec<ExternalCustodian>,
}

impl Site {
    fn outbox(&self) -> PathBuf {
        self.work.join("outbox")
    }

    fn witness_path(&self) -> PathBuf {
        self.work.join("audit.witness")
    }

    /// An audit record about this node, by this operator, now.
    fn record(&self, event: EventType) -> AuditRecord {
        let mut record = AuditRecord::new(event, Timestamp::now(), self.operator.clone());
        record.key_id = Some(self.node.key_id.clone());
        record.node_id = Some(self.node.node_id.clone());
        record.version = Some(self.node.version);
        record
    }
}

/// What generation hands to delivery: the custodian map with the receipt
/// keys, and the envelope each external index was given.
struct Generated {
    custodian_set: CustodianSet,
    deliveries: BTreeMap<ShareIndex, EnvelopeId>,
}

/// A drill that ran to the end; it passed if the self-test passed and the
/// regenerated save data equals the original.
struct DrillRun {
    shares_used: Vec<ShareIndex>,
    rejected: Vec<RejectedShare>,
    keystore: PathBuf,
    matches_original: bool,
    self_test: SelfTestReport,
}

impl DrillRun {
    fn passed(&self) -> bool {
        self.matches_original && self.self_test.passed()
    }
}

/// Party `party` of the tss-lib ECDSA keygen fixtures of one group (read
/// through `shardkeep-test-support`): party 0 is the node being backed up,
/// the others answer its self-test.
fn load_party(party: usize) -> Result<LocalPartySaveData, Box<dyn Error>> {
    // The keystore holds Xi: the bytes are in a buffer wiped on drop.
    let json = tss_lib::fixture_bytes(Protocol::Ecdsa, party)?;
    Ok(LocalPartySaveData::from_json(&json)?)
}

fn container_path(outbox: &Path, custodian: &ExternalCustodian) -> PathBuf {
    outbox.join(format!("{}.age", custodian.id))
}

/// What a custodian does with its container: open it with its own identity
/// (the `age` CLI works too) and verify the envelope against the server's
/// signing key.
fn open_as_custodian(
    outbox: &Path,
    custodian: &ExternalCustodian,
    trusted: &TrustedSigners,
) -> Result<OpenedContainer, Box<dyn Error>> {
    let container = std::fs::read(container_path(outbox, custodian))?;
    Ok(open_container(
        &container,
        ContainerIdentity::X25519(std::slice::from_ref(&custodian.identity)),
        trusted,
    )?)
}

fn indices(indices: &[ShareIndex]) -> String {
    indices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    // Declared first so that it is removed last, after every file in it is
    // closed.
    let work = tempfile::Builder::new()
        .prefix("shardkeep-hybrid-backup-")
        .tempdir()?;
    let mut rng = ChaCha20Rng::try_from_rng(&mut SysRng)?;
    let site = set_up(work.path(), &mut rng).await?;
    println!(
        "working directory {} (removed at exit)",
        work.path().display()
    );

    let generated = generate(&site, &mut rng).await?;
    deliver_and_confirm(&site, &generated).await?;
    inspect(&site).await?;
    let drill_passed = drill(&site, &mut rng).await?;
    audit(&site).await?;

    println!(
        "done in {} ms: drill {}",
        started.elapsed().as_millis(),
        if drill_passed { "PASSED" } else { "FAILED" }
    );
    if drill_passed {
        Ok(())
    } else {
        Err("the recovery drill failed".into())
    }
}

/// Key custody on one machine: a local key store (one KEK per share slot)
/// and one key-file signer per purpose; SQLite; three custodians.
async fn set_up(work: &Path, rng: &mut ChaCha20Rng) -> Result<Site, Box<dyn Error>> {
    std::fs::create_dir(work.join("outbox"))?;
    let keys = LocalKeyStore::create(work.join("keys"), KekId::new("master-1")?)?;
    let envelope_signer = KeyFileSigner::create(
        work.join("envelope-signer.key"),
        SignerId::new("backup-envelopes")?,
    )?;
    let audit_signer = KeyFileSigner::create(
        work.join("audit-signer.key"),
        SignerId::new("audit-checkpoints")?,
    )?;
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&envelope_signer)?;
    let custodians = CUSTODIANS
        .into_iter()
        .map(|name| {
            Ok(ExternalCustodian {
                id: CustodianId::new(name)?,
                identity: age::x25519::Identity::generate(),
                receipt_key: InMemorySigner::generate(SignerId::new(name)?, rng),
            })
        })
        .collect::<Result<Vec<_>, Box<dyn Error>>>()?;
    Ok(Site {
        work: work.to_path_buf(),
        storage: SqliteStorage::open(work.join("shardkeep.db")).await?,
        keys,
        envelope_signer,
        audit_signer,
        trusted,
        operator: ActorId::new("ops.alice")?,
        node: NodeVersion {
            key_id: KeyId::new("wallet-demo")?,
            node_id: NodeId::new("mpc-node-0")?,
            version: KeyVersion::new(1),
        },
        threshold: Threshold::new(3, 5)?,
        custodians,
    })
}

/// Step 1, in one transaction: the key version, two sealed server shares,
/// the custody map of the three external shares, and one audit record per
/// share. The containers are written before the commit; if it fails they
/// belong to no recorded version and are never sent.
async fn generate(site: &Site, rng: &mut ChaCha20Rng) -> Result<Generated, Box<dyn Error>> {
    let data = load_party(0)?;
    let xi = data.secret_share::<Secp256k1>()?;
    let archive = data.seal_archive(&site.node)?;
    let params = EnvelopeParams {
        node_version: site.node.clone(),
        created_at: Timestamp::now(),
        binding: data.binding(&archive)?,
    };
    let (commitments, shares) = split(&xi, site.threshold, rng)?.into_parts();
    // From here on the node's share exists only as shares.
    drop(xi);
    drop(data);
    let (server_shares, external_shares) = shares
        .split_at_checked(SERVER_SHARES)
        .ok_or("fewer shares than server slots")?;
    if external_shares.len() != site.custodians.len() {
        return Err("one custodian per external share".into());
    }

    let mut custodian_set = CustodianSet::new();
    let mut deliveries = BTreeMap::new();
    let mut tx = site.storage.begin().await?;
    // The version records its split reference: every later check of a
    // share uses it. The group and the policy in force come first.
    let curve = CurveId::Secp256k1.to_u8();
    tx.register_group(&GroupRecord {
        key_id: site.node.key_id.clone(),
        curve,
        group_public_key: params.binding.group_public_key().to_vec(),
        tss_degree: u16::try_from(GROUP_DEGREE)?,
        parties: u16::try_from(tss_lib::PARTIES)?,
        registered_at: Timestamp::now(),
    })
    .await?;
    if tx.current_policy().await?.is_none() {
        tx.set_policy(&PolicyRecord {
            hash: POLICY_HASH,
            encoding: POLICY.to_vec(),
            set_at: Timestamp::now(),
            set_by: site.operator.clone(),
        })
        .await?;
    }
    let reference = SplitReference {
        curve,
        split_id: *commitments.split_id().as_bytes(),
        commitments: commitments.to_bytes(),
        binding: [
            params.binding.group_public_key(),
            params.binding.party_id(),
            params.binding.public_share(),
            params.binding.archive_hash(),
        ]
        .concat(),
        policy_hash: POLICY_HASH,
        server_shares: u8::try_from(SERVER_SHARES)?,
    };
    tx.create_key_version(
        &site.node,
        site.threshold,
        &reference,
        &site.operator,
        Timestamp::now(),
    )
    .await?;
    for share in server_shares {
        let slot = site.node.slot(share.index());
        // A new KEK for the slot; its pin (kek.pin()) names it for opening
        // and destroying it later.
        let kek = site.keys.create_slot_kek(&slot)?;
        let envelope = params.seal(&commitments, share, &site.envelope_signer, &kek, rng)?;
        // Read back what is about to be stored: the signature verifies.
        // Storage takes the KEK id and envelope id from the bytes.
        let verified = VerifiedEnvelope::decode_verify(envelope.as_bytes(), &site.trusted)?;
        tx.store_sealed_share(&SealedShare {
            slot: slot.clone(),
            envelope: envelope.as_bytes().to_vec(),
            stored_at: Timestamp::now(),
        })
        .await?;
        let mut record = site.record(EventType::Generate);
        record.share_index = Some(share.index());
        record.threshold = Some(site.threshold);
        record.envelope_id = Some(*envelope.id().as_bytes());
        record.signature = Some(*verified.signature());
        record.target = Some(FreeText::new(format!("server, KEK {}", kek.kek_id()))?);
        append(&mut tx, &record).await?;
    }
    for (share, custodian) in external_shares.iter().zip(&site.custodians) {
        let slot = site.node.slot(share.index());
        let envelope = params.plain(&commitments, share, &site.envelope_signer)?;
        // Read back what is about to leave: the signature and the share's
        // Feldman check verify before the custodian ever sees it.
        let verified = VerifiedEnvelope::decode_verify(envelope.as_bytes(), &site.trusted)?;
        let recipient = custodian.identity.to_public();
        let recipients = ContainerRecipients::x25519(vec![recipient.clone()])?;
        let container = seal_container(&envelope, archive.as_bytes(), &recipients, Armor::Ascii)?;
        std::fs::write(container_path(&site.outbox(), custodian), &container)?;
        custodian_set.insert(
            share.index(),
            custodian.id.clone(),
            custodian.receipt_key.verifying_key(),
        )?;
        deliveries.insert(share.index(), envelope.id());
        // The entity and the person acting for it are registered with
        // every key that person uses; the container is sealed to that
        // person's recipient.
        let agent = ActorId::new(format!("agent@{}", custodian.id))?;
        tx.register_person(&PersonRecord {
            id: agent.clone(),
            display_name: FreeText::new(format!("Custodian agent of {}", custodian.id))?,
            roles: RoleSet::EMPTY.with(Role::Custodian),
            keys: PersonKeys {
                receipt_key: Some(custodian.receipt_key.verifying_key().to_bytes()),
                approval_key: None,
                age_recipient: Some(recipient.to_string()),
                tls_fingerprint: None,
            },
            key_epoch: 1,
            state: PersonState::Active,
            registered_at: Timestamp::now(),
            registered_by: site.operator.clone(),
        })
        .await?;
        tx.register_entity(&EntityRecord {
            id: custodian.id.clone(),
            display_name: FreeText::new(custodian.id.as_str())?,
            contact: FreeText::new(format!("security@{}.example", custodian.id))?,
            members: vec![agent.clone()],
            state: EntityState::Active,
            registered_at: Timestamp::now(),
        })
        .await?;
        tx.assign_custodian(&CustodyEntry {
            slot,
            custodian: custodian.id.clone(),
            person: agent,
            recipient: recipient.to_string(),
            envelope_id: envelope.id(),
            // The backup service records the container's tagged SHA-256;
            // this example keeps a stand-in (it links no hash function).
            container_hash: [share.index().get(); 32],
            updated_at: Timestamp::now(),
            confirmed_at: None,
        })
        .await?;
        let mut record = site.record(EventType::Generate);
        record.share_index = Some(share.index());
        record.threshold = Some(site.threshold);
        record.envelope_id = Some(*envelope.id().as_bytes());
        record.signature = Some(*verified.signature());
        record.target = Some(FreeText::new(format!(
            "custodian {}, outbox",
            custodian.id
        ))?);
        append(&mut tx, &record).await?;
    }
    tx.commit().await?;

    println!(
        "1 generate: {} Xi split {} (split {}); shares {} sealed on the server, {} in outbox/ for {}",
        site.node,
        site.threshold,
        commitments.split_id(),
        indices(&server_shares.iter().map(Share::index).collect::<Vec<_>>()),
        indices(&external_shares.iter().map(Share::index).collect::<Vec<_>>()),
        CUSTODIANS.join(", ")
    );
    Ok(Generated {
        custodian_set,
        deliveries,
    })
}

/// Step 2: each custodian opens its container and signs a receipt; the
/// server verifies each receipt against the custodian's registered key and
/// records the delivery and the confirmation, audited, in one transaction.
async fn deliver_and_confirm(site: &Site, generated: &Generated) -> Result<(), Box<dyn Error>> {
    // The custodians' side.
    let mut signed_receipts = Vec::new();
    for custodian in &site.custodians {
        let opened = open_as_custodian(&site.outbox(), custodian, &site.trusted)?;
        let receipt = Receipt {
            custodian_id: custodian.id.clone(),
            envelope_id: opened.envelope().id(),
            status: ReceiptStatus::Received,
            timestamp: Timestamp::now(),
        };
        signed_receipts.push(receipt.sign(&custodian.receipt_key)?);
    }

    // The server's side.
    let mut receipts = Vec::new();
    let mut tx = site.storage.begin().await?;
    for bytes in signed_receipts {
        let verified = VerifiedReceipt::decode_verify(&bytes, &generated.custodian_set)?;
        let receipt = verified.receipt();
        let slot = site.node.slot(verified.index());
        let (outcome, audit_outcome) = match &receipt.status {
            ReceiptStatus::Received => (
                DeliveryOutcome::Delivered {
                    receipt: bytes.clone(),
                },
                Outcome::Success,
            ),
            ReceiptStatus::Failed(reason) => (
                DeliveryOutcome::Failed {
                    reason: FreeText::new(reason.as_str())?,
                },
                Outcome::Failure {
                    reason: FreeText::new(reason.as_str())?,
                },
            ),
        };
        tx.record_delivery(&DeliveryRecord {
            slot: slot.clone(),
            custodian: receipt.custodian_id.clone(),
            envelope_id: *receipt.envelope_id.as_bytes(),
            outcome,
            recorded_at: Timestamp::now(),
        })
        .await?;
        let mut record = site.record(EventType::Deliver);
        record.share_index = Some(verified.index());
        record.envelope_id = Some(*receipt.envelope_id.as_bytes());
        record.signature = Some(*verified.signature());
        record.target = Some(FreeText::new(format!(
            "custodian {}",
            receipt.custodian_id
        ))?);
        record.outcome = audit_outcome;
        append(&mut tx, &record).await?;
        if matches!(receipt.status, ReceiptStatus::Received) {
            tx.confirm_custody(&slot, receipt.timestamp).await?;
            let mut record = site.record(EventType::Confirm);
            record.share_index = Some(verified.index());
            record.envelope_id = Some(*receipt.envelope_id.as_bytes());
            record.target = Some(FreeText::new(format!(
                "custodian {}",
                receipt.custodian_id
            ))?);
            append(&mut tx, &record).await?;
        }
        receipts.push(verified);
    }
    tx.commit().await?;

    let certificate =
        DeliveryCertificate::assemble(&generated.custodian_set, &generated.deliveries, &receipts)?;
    let received = certificate
        .entries()
        .iter()
        .filter(|e| matches!(e.state, DeliveryState::Received { .. }))
        .count();
    println!(
        "2 deliver & confirm: {received}/{} receipts verified and recorded; delivery certificate {}",
        certificate.entries().len(),
        if certificate.is_complete() {
            "complete"
        } else {
            "INCOMPLETE"
        }
    );
    if certificate.is_complete() {
        Ok(())
    } else {
        Err("the delivery certificate is incomplete".into())
    }
}

/// Step 3: the node's coverage (active server shares and external shares
/// whose custodian confirmed them) and the recoverable flag, audited.
async fn inspect(site: &Site) -> Result<(), Box<dyn Error>> {
    let mut tx = site.storage.begin().await?;
    let filter = SlotFilter {
        key_id: Some(site.node.key_id.clone()),
        node_id: Some(site.node.node_id.clone()),
        version: Some(site.node.version),
    };
    let server = tx
        .list_slots(&filter)
        .await?
        .into_iter()
        .filter(|s| s.state == SlotState::Active)
        .count();
    let external = tx
        .custody_map(&site.node)
        .await?
        .into_iter()
        .filter(|e| e.confirmed_at.is_some())
        .count();
    let valid = server + external;
    let recoverable = valid >= usize::from(site.threshold.t());
    let summary = format!(
        "{server} server + {external} confirmed external shares = {valid}, t = {}: recoverable {recoverable}",
        site.threshold.t()
    );
    let mut record = site.record(EventType::Inspect);
    record.detail = Some(FreeText::new(summary.clone())?);
    append(&mut tx, &record).await?;
    tx.commit().await?;
    println!("3 inspect: {summary}");
    Ok(())
}

/// Step 4: the drill, on external shares only, recorded (passed or failed,
/// with its duration) with its audit record. Returns whether it passed.
async fn drill(site: &Site, rng: &mut ChaCha20Rng) -> Result<bool, Box<dyn Error>> {
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let sandbox = site.work.join("drill-sandbox");
    std::fs::create_dir(&sandbox)?;
    let run = recover_from_custodians(site, &sandbox, rng);
    let elapsed = clock.elapsed().as_millis();

    let (outcome, shares_used, report) = match &run {
        Ok(run) if run.passed() => (
            DrillOutcome::Passed,
            run.shares_used.clone(),
            run.self_test.to_string(),
        ),
        Ok(run) => (
            DrillOutcome::Failed {
                reason: FreeText::new(if run.matches_original {
                    "self-test failed"
                } else {
                    "regenerated save data differs from the original"
                })?,
            },
            run.shares_used.clone(),
            run.self_test.to_string(),
        ),
        Err(error) => (
            DrillOutcome::Failed {
                // An error message, made fit to store and show.
                reason: FreeText::sanitized(&error.to_string())?,
            },
            Vec::new(),
            String::new(),
        ),
    };
    let mut tx = site.storage.begin().await?;
    tx.record_drill(&DrillReport {
        target: site.node.clone(),
        started_at,
        finished_at: Timestamp::now(),
        operator: site.operator.clone(),
        shares_used: shares_used.clone(),
        outcome: outcome.clone(),
        report: format!(
            "external shares {}, {elapsed} ms\n{report}",
            indices(&shares_used)
        )
        .into_bytes(),
    })
    .await?;
    let mut record = site.record(EventType::Drill);
    record.detail = Some(FreeText::new(format!(
        "external shares only: {}, {elapsed} ms",
        indices(&shares_used)
    ))?);
    if let DrillOutcome::Failed { reason } = &outcome {
        record.outcome = Outcome::Failure {
            reason: FreeText::new(reason.as_str())?,
        };
    }
    append(&mut tx, &record).await?;
    tx.commit().await?;

    match run {
        Ok(run) if run.passed() => {
            let results = run.self_test.results();
            let not_checkable = results
                .iter()
                .filter(|r| matches!(r.outcome, CheckOutcome::NotCheckable(_)))
                .count();
            let passed = results.len() - not_checkable;
            println!(
                "4 drill: PASSED in {elapsed} ms: Xi recovered from external shares {} ({} rejected), {} written and loaded, equals the original, self-test {passed} checks passed, {not_checkable} not checkable",
                indices(&run.shares_used),
                run.rejected.len(),
                run.keystore
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy(),
            );
            Ok(true)
        }
        Ok(run) => {
            println!(
                "4 drill: FAILED in {elapsed} ms: equals the original: {}; self-test:\n{}",
                run.matches_original, run.self_test
            );
            Ok(false)
        }
        Err(error) => {
            println!("4 drill: FAILED in {elapsed} ms: {error}");
            Ok(false)
        }
    }
}

/// The drill itself. Uses what the custodians hold and nothing of the
/// server's: no sealed share, no slot KEK. The sandbox keystore gets its own
/// node KEK (in memory here; the node's own key custody in production).
fn recover_from_custodians(
    site: &Site,
    sandbox: &Path,
    rng: &mut ChaCha20Rng,
) -> Result<DrillRun, Box<dyn Error>> {
    let mut shares = Vec::with_capacity(site.custodians.len());
    let mut shares_used = Vec::with_capacity(site.custodians.len());
    let mut first = None;
    for custodian in &site.custodians {
        let (envelope, archive) =
            open_as_custodian(&site.outbox(), custodian, &site.trusted)?.into_parts();
        let header = envelope.header().clone();
        if header.node_version() != &site.node {
            return Err(format!(
                "the container of {} is for {}, not {}",
                custodian.id,
                header.node_version(),
                site.node
            )
            .into());
        }
        shares_used.push(header.index());
        shares.push(Share::<Secp256k1>::try_from(envelope.into_plain_share()?)?);
        // The first container's header and archive; the others must come
        // from the same split (combine_verified checks their shares against
        // these commitments).
        if first.is_none() {
            first = Some((header, archive));
        }
    }
    shares_used.sort_unstable();
    let (header, archive) = first.ok_or("no custodian container")?;
    let commitments = <&Commitments<Secp256k1>>::try_from(header.commitments())?;
    let recovery = combine_verified(shares, commitments)?;
    let rejected = recovery.rejected().to_vec();
    let archive = SealedArchive::from_bytes(archive)?;
    let recovered = regenerate(recovery.secret(), &archive, header.binding(), &site.node)?;
    drop(recovery);

    let codec = KekKeystoreCodec::new(InMemoryKek::generate(KekId::new("drill-node-kek")?, rng));
    let keystore = write_keystore(
        sandbox,
        &site.node,
        &recovered,
        &codec,
        WriteMode::CreateNew,
    )?;
    drop(recovered);
    let loaded = load_keystore(&keystore, &site.node, &codec)?;

    // The live keystore the drill must reproduce (here: the fixture).
    let original = load_party(0)?;
    let matches_original = bool::from(loaded.ct_eq(&original));
    drop(original);
    let peers = (1..tss_lib::PARTIES)
        .map(load_party)
        .collect::<Result<Vec<_>, _>>()?;
    let self_test = loaded.self_test(
        Threshold::from_tss_lib(GROUP_DEGREE, tss_lib::PARTIES)?,
        &mut InProcessPeers::new(&peers),
    )?;
    Ok(DrillRun {
        shares_used,
        rejected,
        keystore,
        matches_original,
        self_test,
    })
}

/// Step 8: sign the head into the witness, export the log, and verify the
/// export against the witness with the audit signer's public key only.
async fn audit(site: &Site) -> Result<(), Box<dyn Error>> {
    let mut witness = FileWitness::open(site.witness_path())?;
    let signed = checkpoint(
        &site.storage,
        &site.audit_signer,
        &mut witness,
        Timestamp::now(),
    )
    .await?;
    let mut exported = Vec::new();
    export(&site.storage, &mut exported).await?;
    let log = parse_export(&exported)?;
    let verified = verify(
        &log,
        &witness.read(&log.log_id).await?,
        &site.audit_signer.verifying_key(),
    )?;
    println!(
        "5 audit: {} records verified against witness checkpoint #{} signed by {}; {} unwitnessed",
        verified.records,
        signed.sequence,
        site.audit_signer.signer_id(),
        verified.unwitnessed
    );
    Ok(())
}

//! The main job, backup side (`docs/procedure.md` steps 1 to 3 and 8), on
//! the `shardkeep-backup` crate and the embedded default: SQLite, a local key
//! store and key-file signers, in a temporary directory removed at exit. For
//! an ECDSA and an EdDSA node (party 0 of each tss-lib fixture group):
//! generate, deliver, receipts, delivery certificate, an inventory round, a
//! drill from the custodians' shares alone and an emergency recovery on two
//! approvals; then status, server-share listing, and the audit log is
//! verified. Ids such as GEN-01 are the procedure's checklists.
//! Exits non-zero on any failure. Run:
//! `cargo run --release --example hybrid_backup`
#![allow(clippy::print_stdout, reason = "an example reports to its operator")]

use std::path::Path;
use std::sync::Arc;

use rand::rngs::ChaCha20Rng;
use shardkeep_audit::{FileWitness, Witness, checkpoint, export, parse_export, verify};
use shardkeep_backup::{
    ApprovalRequest, Armor, BackupService, CustodianCredentials, DeliveryReport, DeliveryResult,
    DrillParams, EntityRegistration, ExternalCustodian, GenerateRequest, InventoryChallenge,
    PersonKeys, PersonRegistration, PolicySettings, ReceiptStatus, RecoveryParams, RecoveryTarget,
    Role, SaveDataSource, ServiceConfig, ServiceParts, SessionDescriptor, ShareListQuery,
    StatusQuery, SystemClock, TssGroup, prepare_recovery_submission, prove_inventory,
    sign_approval,
};
use shardkeep_envelope::deps::ed25519_dalek::VerifyingKey;
use shardkeep_envelope::{Receipt, TrustedSigners, deps::age, open_x25519_container};
use shardkeep_keydata::{
    KekKeystoreCodec, LocalPartySaveData, PeerTransport, RemotePeers, SelfTestResponder,
    TransportError,
};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::SqliteStorage;
use shardkeep_test_support::peer_process::{PeerProcess, read_request, write_answer};
use shardkeep_test_support::tss_lib::{self, Protocol, fixture_bytes};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemoryKek, InMemorySigner, KekId, KeyId, Label, NodeId,
    Signer, SignerId, Threshold, Timestamp,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A custodian person and the secrets only they hold (the service registers
/// the public halves). Their tool trusts one envelope key, `pinned`: the
/// service's, handed over out of band.
struct Custodian {
    entity: CustodianId,
    person: ActorId,
    identity: age::x25519::Identity,
    receipt_key: InMemorySigner,
    pinned: TrustedSigners,
}

impl Custodian {
    /// Opening verifies the envelope against the pinned key (stock `age -d`
    /// opens the file too); the receipt names that one envelope.
    fn receipt(&self, delivered: &Path) -> Result<Vec<u8>> {
        let file = std::fs::read(delivered)?;
        let identity = std::slice::from_ref(&self.identity);
        let opened = open_x25519_container(&file, identity, &self.pinned)?;
        let receipt = Receipt {
            custodian_id: self.entity.clone(),
            envelope_id: opened.envelope().id(),
            status: ReceiptStatus::Received,
            timestamp: Timestamp::now(),
        };
        Ok(receipt.sign(&self.receipt_key)?)
    }

    /// Answers from the delivered file alone: nothing is reconstructed.
    fn prove(&self, carried: &[u8], delivered: &Path) -> Result<Vec<u8>> {
        let credentials = CustodianCredentials {
            custodian: &self.entity,
            person: &self.person,
            identities: std::slice::from_ref(&self.identity),
            receipt_signer: &self.receipt_key,
        };
        let challenge = InventoryChallenge::decode(carried)?;
        let file = std::fs::read(delivered)?;
        let (now, mut rng) = (Timestamp::now(), rand::make_rng::<ChaCha20Rng>());
        let proof = prove_inventory(&challenge, &file, &credentials, &self.pinned, now, &mut rng)?;
        Ok(proof.encode()?)
    }

    /// Checks the session against the pinned key and its own container
    /// before it encrypts its share to the session's one-time recipient.
    fn submit(
        &self,
        session: &SessionDescriptor,
        key: &VerifyingKey,
        file: &Path,
    ) -> Result<Vec<u8>> {
        let (bytes, container) = (session.as_bytes(), std::fs::read(file)?);
        let (id, person, signer) = (&self.identity, &self.person, &self.receipt_key);
        Ok(prepare_recovery_submission(
            bytes,
            key,
            Timestamp::now(),
            &container,
            id,
            person,
            signer,
        )?)
    }
}

/// An approver's tool: decodes the request, shows it, signs what it read.
async fn approve<S: shardkeep_storage::Storage>(
    service: &BackupService<S>,
    request: &ApprovalRequest,
    (approver, role, key): &(ActorId, Role, InMemorySigner),
) -> Result {
    let bytes = request.encode()?;
    println!(
        "  {approver} approves {}",
        ApprovalRequest::decode(&bytes)?.params.operation
    );
    let approval = sign_approval(&bytes, approver, *role, key)?;
    service
        .submit_approval(approver, &approval.encode())
        .await?;
    Ok(())
}

fn person(id: &ActorId, role: Role, keys: PersonKeys) -> Result<PersonRegistration> {
    let (display_name, roles) = (FreeText::new(id.as_str())?, [role].into_iter().collect());
    Ok(PersonRegistration {
        id: id.clone(),
        display_name,
        roles,
        keys,
    })
}

/// Argument that makes this program another node's sidecar: it loads one
/// party's save data (`--self-test-peer <ecdsa|eddsa> <party>`) and answers
/// self-test requests framed on stdin until stdin ends. Its `Xi` stays in
/// it.
const PEER_ARGUMENT: &str = "--self-test-peer";

fn serve_peer(protocol: &str, party: &str) -> Result {
    let protocol = match protocol {
        "ecdsa" => Protocol::Ecdsa,
        "eddsa" => Protocol::Eddsa,
        _ => return Err("the protocol is ecdsa or eddsa".into()),
    };
    let data = LocalPartySaveData::from_json(&fixture_bytes(protocol, party.parse()?)?)?;
    let mut responder = SelfTestResponder::new(&data);
    let mut input = std::io::BufReader::new(std::io::stdin().lock());
    let mut output = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some(request) = read_request(&mut input)? {
        match responder.answer(&request) {
            Ok(answer) => write_answer(&mut output, Ok(answer.as_slice()))?,
            Err(refusal) => write_answer(&mut output, Err(refusal.to_string().as_str()))?,
        }
    }
    Ok(())
}

/// The other nodes' sidecars: this program started as a peer per other
/// party, addressed by its (public) `ShareID`.
struct Sidecars(Vec<(Vec<u8>, PeerProcess)>);

impl PeerTransport for Sidecars {
    fn exchange(
        &mut self,
        party_id: &[u8],
        request: &[u8],
    ) -> std::result::Result<Vec<u8>, TransportError> {
        let (_, process) = self
            .0
            .iter_mut()
            .find(|(id, _)| id == party_id)
            .ok_or("no sidecar for this party")?;
        Ok(process.exchange(request)?)
    }
}

fn sidecars(protocol: Protocol) -> Result<RemotePeers<Sidecars>> {
    let me = std::env::current_exe()?;
    let mut sidecars = Vec::new();
    for party in 1..tss_lib::PARTIES {
        let process = PeerProcess::spawn(
            &me,
            [PEER_ARGUMENT, protocol.dir(), party.to_string().as_str()],
        )?;
        sidecars.push((tss_lib::share_id(protocol, party)?, process));
    }
    Ok(RemotePeers::new(Sidecars(sidecars)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, protocol, party] = args.as_slice()
        && flag == PEER_ARGUMENT
    {
        return serve_peer(protocol, party);
    }
    let work = tempfile::Builder::new().prefix("shardkeep-").tempdir()?;
    let dir = work.path();
    println!("working directory {} (removed at exit)", dir.display());
    // Key files stand in for an HSM. One KEK per server share slot, so that
    // deleting a slot destroys exactly its key.
    let keks = LocalKeyStore::create(dir.join("kms"), KekId::new("master-1")?)?;
    let signer = KeyFileSigner::create(dir.join("envelopes.key"), SignerId::new("envelopes")?)?;
    let audit_key = KeyFileSigner::create(dir.join("audit.key"), SignerId::new("audit")?)?;
    let mut pinned = TrustedSigners::new();
    let service_key = signer.verifying_key();
    pinned.add(signer.signer_id().clone(), service_key)?;
    let service = BackupService::new(ServiceParts::new(
        SqliteStorage::open(dir.join("shardkeep.db")).await?,
        ServiceConfig::new(Label::new("demo")?, Label::new("sidecar-1")?),
        Arc::new(keks),
        Arc::new(signer),
        Arc::new(SystemClock),
        Box::new(rand::make_rng::<ChaCha20Rng>()),
    ))?;

    // The registry. The first person, security, registers themselves; every
    // call looks its caller up at once, so a revocation is never stale.
    let (security, operator) = (ActorId::new("sec.bob")?, ActorId::new("ops.alice")?);
    for (id, role) in [(&security, Role::Security), (&operator, Role::Operator)] {
        let registration = person(id, role, PersonKeys::default())?;
        service.register_person(&security, registration).await?;
    }
    let (mut custodians, mut rng) = (Vec::new(), rand::make_rng::<ChaCha20Rng>());
    for name in ["customer-security", "escrow-co", "cold-backup"] {
        let custodian = Custodian {
            entity: CustodianId::new(name)?,
            person: ActorId::new(format!("agent@{name}"))?,
            identity: age::x25519::Identity::generate(),
            receipt_key: InMemorySigner::generate(SignerId::new(name)?, &mut rng),
            pinned: pinned.clone(),
        };
        let keys = PersonKeys {
            receipt_key: Some(custodian.receipt_key.verifying_key().to_bytes()),
            age_recipient: Some(custodian.identity.to_public().to_string()),
            ..PersonKeys::default()
        };
        let registration = person(&custodian.person, Role::Custodian, keys)?;
        service.register_person(&security, registration).await?;
        // One entity per person: GEN-04's distinct custodians are entities.
        let registration = EntityRegistration {
            id: custodian.entity.clone(),
            display_name: FreeText::new(name)?,
            contact: FreeText::new("security desk")?,
            members: vec![custodian.person.clone()],
        };
        service.register_entity(&security, registration).await?;
        custodians.push(custodian);
    }
    // Approvers sign with their registered approval keys.
    let mut approvers = Vec::new();
    for (name, role) in [
        ("sec.dan", Role::Security),
        ("biz.carol", Role::BusinessOwner),
    ] {
        let (id, key) = (
            ActorId::new(name)?,
            InMemorySigner::generate(SignerId::new(name)?, &mut rng),
        );
        let approval_key = Some(key.verifying_key().to_bytes());
        let keys = PersonKeys {
            approval_key,
            ..PersonKeys::default()
        };
        service
            .register_person(&security, person(&id, role, keys)?)
            .await?;
        approvers.push((id, role, key));
    }
    println!("registry: {security} (security), {operator} (operator), 2 approvers, 3 custodians");

    // Checked when set (GEN-02, GEN-03): the server's shares never reach t,
    // the custodians' always do.
    let (threshold, kek_provider) = (Threshold::new(3, 5)?, Label::new("local-key-file")?);
    let policy = PolicySettings {
        threshold,
        server_shares: 2,
        kek_provider,
    };
    service.set_policy(&security, policy).await?;
    println!("policy: {threshold}, shares 1-2 on the server, 3-5 with custodians");

    let chosen = custodians.iter().map(|c| ExternalCustodian {
        entity: c.entity.clone(),
        person: c.person.clone(),
    });
    let chosen: Vec<_> = chosen.collect();
    for protocol in Protocol::ALL {
        let key = format!("wallet-{}", protocol.dir());
        // Step 1. A sidecar reads its node's `.keydata.enc` instead
        // (`SaveDataSource::Keystore`). Generate checks Xi·G is the node's
        // public share (GEN-01), refuses an exposure of the group key
        // (GEN-05), seals each server share under a new KEK pinned to its
        // slot (GEN-06) and audits every share (GEN-07).
        let save_data = LocalPartySaveData::from_json(&fixture_bytes(protocol, 0)?)?;
        let request = GenerateRequest {
            key_id: KeyId::new(&key)?,
            node_id: NodeId::new("node-0")?,
            save_data: SaveDataSource::Loaded(&save_data),
            // The save data does not record the signing threshold: 3 of 5 sign.
            group: TssGroup {
                tss_degree: 2,
                parties: 5,
            },
            custodians: chosen.clone(),
            armor: Armor::Ascii,
        };
        let generated = service.generate(&operator, request).await?;
        drop(save_data); // Its secrets are wiped now, not at the end of the loop.
        let version = &generated.version;
        println!("{version} ({protocol:?}): split {}", generated.threshold);

        // Step 2. Each container leaves as a file (courier, removable media),
        // recorded with the hash of exactly what was sent. The custodian
        // submits their own receipt: only their key registered now counts.
        // Containers come in the order of the custodians asked for.
        for (container, custodian) in generated.containers.iter().zip(&custodians) {
            let slot = version.slot(container.index);
            let file = dir.join(format!("{key}-{}.age", container.index));
            std::fs::write(&file, &container.container)?;
            let report = DeliveryReport {
                slot: slot.clone(),
                container_hash: container.container_hash,
                result: DeliveryResult::Sent,
            };
            service.deliver(&operator, report).await?;
            let receipt = custodian.receipt(&file)?;
            service.confirm(&custodian.person, &slot, &receipt).await?;
            println!("  {slot}: sent to {}, receipt accepted", custodian.entity);
        }
        // GEN-08: complete, each stored receipt checked again.
        let certificate = service.delivery_certificate(&operator, version).await?;
        let receipts = certificate.entries().len();
        println!("  delivery certificate: {receipts} receipts, complete");

        // Inventory (step 3): the operator carries a single-use challenge to
        // one custodian, who answers with a signed proof of holding its share.
        let first = generated.containers.iter().zip(&custodians).next();
        let (container, custodian) = first.ok_or("no external share")?;
        let slot = version.slot(container.index);
        let challenge = service.issue_inventory_challenge(&operator, &slot).await?;
        let file = dir.join(format!("{key}-{}.age", container.index));
        let proof = custodian.prove(&challenge.encode(), &file)?;
        service.confirm_inventory(&custodian.person, &proof).await?;
        println!("  {slot}: {} proved it holds the share", custodian.entity);

        // Steps 4 and 6 run in sessions whose one-time key lives in this
        // process only; the other parties answer the sign/aggregate test
        // from their own processes (the service refuses to self-test with
        // another party's secret loaded here).
        let mut peers = sidecars(protocol)?;
        let files: Vec<_> = generated
            .containers
            .iter()
            .map(|c| dir.join(format!("{key}-{}.age", c.index)))
            .collect();
        // The approvers read a request of exactly the operation's parameters.
        let (ticket, risk_note_hash) = (FreeText::new("INC-7")?, [7; 32]);
        // Step 4, a drill (one security approval): the custodians' shares
        // only, into a sandbox under a one-time KEK, deleted afterwards.
        let drill = DrillParams {
            version: version.clone(),
            ticket: ticket.clone(),
            risk_note_hash,
        };
        let params = drill.approval_params(generated.split_id);
        let request = service.request_approval(&operator, params).await?;
        approve(&service, &request, &approvers[0]).await?;
        let session = service
            .start_drill(&operator, &request.hash()?, drill)
            .await?;
        let mut submissions = Vec::new();
        for (custodian, file) in custodians.iter().zip(&files) {
            submissions.push(custodian.submit(&session, &service_key, file)?);
        }
        let codec = KekKeystoreCodec::new(InMemoryKek::generate(KekId::new("node-0")?, &mut rng));
        let target = RecoveryTarget {
            codec: &codec,
            peers: &mut peers,
        };
        let report = service
            .submit_recovery_shares(&operator, &session.session, &submissions, target)
            .await?;
        if !report.succeeded() {
            return Err(format!("drill of {version} failed: {report:?}").into());
        }
        println!(
            "  drill: {} external shares, self-test passed, sandbox deleted",
            report.received.len()
        );

        // Step 6, an emergency recovery on two approvals (business owner and
        // security) into the node's keystore directory, one custodian share
        // and the server's two (each read recorded).
        let keystore = dir.join(format!("{key}-keystore"));
        std::fs::create_dir(&keystore)?;
        let recovery = RecoveryParams {
            version: version.clone(),
            target: FreeText::new(keystore.display().to_string())?,
            allow_server_shares: true,
            ticket,
            risk_note_hash,
        };
        let params = recovery.approval_params(generated.split_id);
        let request = service.request_approval(&operator, params).await?;
        for approver in &approvers {
            approve(&service, &request, approver).await?;
        }
        let session = service
            .start_recovery(&operator, &request.hash()?, recovery)
            .await?;
        let submission = custodian.submit(&session, &service_key, &file)?;
        let target = RecoveryTarget {
            codec: &codec,
            peers: &mut peers,
        };
        let report = service
            .submit_recovery_shares(&operator, &session.session, &[submission], target)
            .await?;
        if !report.succeeded() {
            return Err(format!("recovery of {version} failed: {report:?}").into());
        }
        println!(
            "  recovered from {} shares into {}, self-tested",
            report.received.len(),
            keystore.display()
        );
    }

    // Step 3, the status page. Recoverable: t external shares confirmed, so
    // the custodians alone rebuild the node (DEL-01 asks it before any
    // deletion). Never drilled, so a drill is due at once (DRL-08).
    let page = service.status(&operator, &StatusQuery::default()).await?;
    for status in page.versions {
        let drill = status.next_drill.ok_or("no drill date")?;
        println!(
            "{}: recoverable {}, server shares held {}, external confirmed {} of {}",
            status.version,
            status.recoverable,
            status.server_shares_held,
            status.external_confirmed,
            status.external_shares,
        );
        let (due, reason, exposure) = (drill.due_at, drill.reason, &status.exposure);
        println!("  next drill due {due} ({reason:?}); exposure {exposure:?}");
        if !status.recoverable {
            return Err(format!("{} is not recoverable", status.version).into());
        }
    }
    // Coverage, the first alert of step 10: versions not recoverable.
    let metrics = service.metrics_snapshot().await?;
    let (recoverable, versions) = (metrics.recoverable, metrics.totals.versions);
    println!("coverage: {recoverable} of {versions} versions recoverable");
    let listing = service
        .list_server_shares(&operator, &ShareListQuery::default())
        .await?;
    for share in listing.shares {
        let (slot, kek, state) = (share.slot, share.kek_id, share.state.name());
        println!("{slot}: held by the server under KEK {kek} ({state})");
    }

    // Step 8: every call above chained an audit record in its transaction. A
    // signed checkpoint of the head goes to a witness outside the database;
    // the export is checked with the key's public half, as an auditor would.
    let mut witness = FileWitness::open(dir.join("audit.witness"))?;
    let storage = service.storage();
    let signed = checkpoint(storage, &audit_key, &mut witness, Timestamp::now()).await?;
    let mut exported = Vec::new();
    export(storage, &mut exported).await?;
    let log = parse_export(&exported)?;
    let checkpoints = witness.read(&log.log_id).await?;
    let verified = verify(&log, &checkpoints, &audit_key.verifying_key())?;
    let (records, head) = (verified.records, signed.sequence);
    println!("audit: {records} records verified against the checkpoint at #{head}");
    Ok(())
}

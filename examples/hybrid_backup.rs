//! The main job, backup side (`docs/procedure.md` steps 1 to 3 and 8), on
//! the `shardkeep-backup` crate and the embedded default: SQLite, a local key
//! store and key-file signers, in a temporary directory removed at exit. For
//! an ECDSA and an EdDSA node (party 0 of each tss-lib fixture group):
//! generate, deliver, receipts, delivery certificate, an inventory round, a
//! drill from the custodians' shares alone and an emergency recovery on two
//! approvals; then status, server-share listing, and the audit log is
//! verified. Ids such as GEN-01 are the procedure's checklists. The other
//! nodes' sidecars are this program again, one process per party.
//! Exits non-zero on any failure. Run:
//! `cargo run --release --example hybrid_backup`
#![allow(clippy::print_stdout, reason = "an example reports to its operator")]

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use rand::rngs::ChaCha20Rng;
use shardkeep_audit::{FileWitness, Witness, checkpoint, export, parse_export, verify};
use shardkeep_backup::{
    ApprovalParams, ApprovalRequest, ApprovalRequestHash, Armor, BackupService,
    CustodianCredentials, DeliveryReport, DeliveryResult, DrillParams, EntityRegistration,
    ExternalCustodian, GenerateRequest, PersonKeys, PersonRegistration, PolicySettings,
    RecoveryParams, RecoveryReport, RecoveryTarget, Role, SaveDataSource, ServiceConfig,
    ServiceParts, SessionDescriptor, ShareListQuery, StatusQuery, SystemClock, TssGroup,
    sign_approval,
};
use shardkeep_envelope::TrustedSigners;
use shardkeep_envelope::deps::{age, ed25519_dalek::VerifyingKey};
use shardkeep_keydata::{
    KekKeystoreCodec, LocalPartySaveData, PeerTransport, RemotePeers, SelfTestResponder,
};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::{SqliteStorage, Storage};
use shardkeep_test_support::peer_process::{PeerProcesses, serve};
use shardkeep_test_support::tss_lib::{self, Protocol, fixture_bytes};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, InMemoryKek, InMemorySigner, KekId, KeyId, Label, NodeId,
    Signer, SignerId, Threshold, Timestamp,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A custodian person and the secrets only they hold (the service registers
/// the public halves); `tool` is what their tool acts with.
struct Custodian {
    entity: CustodianId,
    person: ActorId,
    identity: [age::x25519::Identity; 1],
    receipt_key: InMemorySigner,
}

impl Custodian {
    fn tool(&self) -> CustodianCredentials<'_> {
        let (custodian, person, identities) = (&self.entity, &self.person, &self.identity);
        let receipt_signer = &self.receipt_key;
        CustodianCredentials { custodian, person, identities, receipt_signer }
    }
}

/// Makes this program another node's sidecar (`--self-test-peer
/// <ecdsa|eddsa> <party>`): it loads that party's save data and answers the
/// self-test requests framed on stdin until stdin ends. Its `Xi` stays in it;
/// a refusal names what is wrong with the request, never a secret.
const PEER_ARGUMENT: &str = "--self-test-peer";

fn serve_peer(protocol: &str, party: &str) -> Result {
    let protocol = Protocol::ALL.into_iter().find(|p| p.dir() == protocol);
    let protocol = protocol.ok_or("the protocol is ecdsa or eddsa")?;
    let data = LocalPartySaveData::from_json(&fixture_bytes(protocol, party.parse()?)?)?;
    let mut responder = SelfTestResponder::new(&data);
    Ok(serve(|request| responder.answer(request))?)
}

/// The other nodes' sidecars, addressed by their (public) `ShareID`.
fn sidecars(protocol: Protocol) -> Result<RemotePeers<impl PeerTransport + Send>> {
    let (me, party_ids) = (std::env::current_exe()?, 1..tss_lib::PARTIES);
    let parties = party_ids.map(|party| {
        let args = [PEER_ARGUMENT.into(), protocol.dir().into(), party.to_string()];
        Ok((tss_lib::share_id(protocol, party)?, &me, args))
    });
    let mut processes = PeerProcesses::spawn_each(parties.collect::<Result<Vec<_>>>()?)?;
    Ok(RemotePeers::new(
        move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?),
    ))
}

/// A person of one role, with the keys that role signs or decrypts with.
fn person(id: &ActorId, role: Role, keys: PersonKeys) -> Result<PersonRegistration> {
    let (display_name, roles) = (FreeText::new(id.as_str())?, [role].into_iter().collect());
    Ok(PersonRegistration { id: id.clone(), display_name, roles, keys })
}

/// The operator asks for an operation of exactly these parameters; each
/// approver's tool decodes the request, shows it, and signs what it read.
async fn approved<S: Storage>(
    (service, operator): (&BackupService<S>, &ActorId),
    params: ApprovalParams,
    approvers: &[(ActorId, Role, InMemorySigner)],
) -> Result<ApprovalRequestHash> {
    let request = service.request_approval(operator, params).await?;
    let bytes = request.encode()?;
    for (approver, role, key) in approvers {
        println!("  {approver} approves {}", ApprovalRequest::decode(&bytes)?.params.operation);
        let approval = sign_approval(&bytes, approver, *role, key)?;
        service.submit_approval(approver, &approval.encode()).await?;
    }
    Ok(request.hash()?)
}

/// Each custodian's tool checks the session against the pinned service key
/// and its own container before it encrypts its share to the session's
/// one-time recipient; the service rebuilds the node, writes its keystore and
/// self-tests it with the other parties.
async fn recover<S: Storage>(
    (service, operator): (&BackupService<S>, &ActorId),
    session: &SessionDescriptor,
    holders: &[(&Custodian, PathBuf)],
    key: &VerifyingKey,
    target: RecoveryTarget<'_>,
) -> Result<RecoveryReport> {
    let mut submissions = Vec::new();
    for (custodian, file) in holders {
        let (tool, descriptor, now) = (custodian.tool(), session.as_bytes(), Timestamp::now());
        submissions.push(tool.recovery_submission(descriptor, key, now, &fs::read(file)?)?);
    }
    let report = service.submit_recovery_shares(operator, &session.session, &submissions, target);
    let report = report.await?;
    if report.succeeded() { Ok(report) } else { Err(format!("{report:?}").into()) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result {
    if let [_, flag, protocol, party] = std::env::args().collect::<Vec<_>>().as_slice()
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
    // The custodians' tools trust one envelope key, handed over out of band.
    let (service_key, mut pinned) = (signer.verifying_key(), TrustedSigners::new());
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
        service.register_person(&security, person(id, role, PersonKeys::default())?).await?;
    }
    let (mut custodians, mut rng) = (Vec::new(), rand::make_rng::<ChaCha20Rng>());
    for name in ["customer-security", "escrow-co", "cold-backup"] {
        let (entity, person_id) = (CustodianId::new(name)?, ActorId::new(format!("agent@{name}"))?);
        let identity = [age::x25519::Identity::generate()];
        let receipt_key = InMemorySigner::generate(SignerId::new(name)?, &mut rng);
        let receipt = Some(receipt_key.verifying_key().to_bytes());
        let age = Some(identity[0].to_public().to_string());
        let keys = PersonKeys { receipt_key: receipt, age_recipient: age, ..PersonKeys::default() };
        service.register_person(&security, person(&person_id, Role::Custodian, keys)?).await?;
        // One entity per person: GEN-04's distinct custodians are entities.
        let (display_name, contact) = (FreeText::new(name)?, FreeText::new("security desk")?);
        let (id, members) = (entity.clone(), vec![person_id.clone()]);
        let registration = EntityRegistration { id, display_name, contact, members };
        service.register_entity(&security, registration).await?;
        custodians.push(Custodian { entity, person: person_id, identity, receipt_key });
    }
    // Approvers sign with their registered approval keys.
    let mut approvers = Vec::new();
    for (name, role) in [("sec.dan", Role::Security), ("biz.carol", Role::BusinessOwner)] {
        let (id, key) =
            (ActorId::new(name)?, InMemorySigner::generate(SignerId::new(name)?, &mut rng));
        let keys =
            PersonKeys { approval_key: Some(key.verifying_key().to_bytes()), ..Default::default() };
        service.register_person(&security, person(&id, role, keys)?).await?;
        approvers.push((id, role, key));
    }
    println!("registry: {security} (security), {operator} (operator), 2 approvers, 3 custodians");

    // Checked when set (GEN-02, GEN-03): the server's shares never reach t,
    // the custodians' always do.
    let (threshold, kek_provider) = (Threshold::new(3, 5)?, Label::new("local-key-file")?);
    let policy = PolicySettings { threshold, server_shares: 2, kek_provider };
    service.set_policy(&security, policy).await?;
    println!("policy: {threshold}, shares 1-2 on the server, 3-5 with custodians");

    let choice = custodians.iter().map(|c| (c.entity.clone(), c.person.clone()));
    let chosen: Vec<_> =
        choice.map(|(entity, person)| ExternalCustodian { entity, person }).collect();
    let caller = (&service, &operator);
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
            group: TssGroup { tss_degree: 2, parties: 5 },
            custodians: chosen.clone(),
            armor: Armor::Ascii,
        };
        let generated = service.generate(&operator, request).await?;
        drop(save_data); // Its secrets are wiped now, not at the end of the loop.
        let (version, split) = (&generated.version, generated.split_id);
        println!("{version} ({protocol:?}): split {}", generated.threshold);

        // Step 2. Each container leaves as a file (courier, removable media),
        // recorded with the hash of exactly what was sent. The custodian's
        // tool opens it, verifying the envelope against the pinned key (stock
        // `age -d` opens it too), and signs a receipt naming that one
        // envelope: only their key registered now counts. Containers come in
        // the order of the custodians asked for.
        let mut holders = Vec::new();
        for (container, custodian) in generated.containers.iter().zip(&custodians) {
            let (slot, file) =
                (version.slot(container.index), dir.join(format!("{key}-{}.age", container.index)));
            fs::write(&file, &container.container)?;
            let (container_hash, result) = (container.container_hash, DeliveryResult::Sent);
            let report = DeliveryReport { slot: slot.clone(), container_hash, result };
            service.deliver(&operator, report).await?;
            let receipt = custodian.tool().receipt(&fs::read(&file)?, &pinned, Timestamp::now())?;
            service.confirm(&custodian.person, &slot, &receipt).await?;
            println!("  {slot}: sent to {}, receipt accepted", custodian.entity);
            holders.push((custodian, file));
        }
        // GEN-08: complete, each stored receipt checked again.
        let certificate = service.delivery_certificate(&operator, version).await?;
        println!("  delivery certificate: {} receipts, complete", certificate.entries().len());

        // Inventory (step 3): the operator carries a single-use challenge to
        // one custodian, whose tool answers from the delivered file alone
        // (nothing is reconstructed) with a signed proof of holding its share.
        let (container, (custodian, file)) =
            generated.containers.iter().zip(&holders).next().ok_or("no external share")?;
        let slot = version.slot(container.index);
        let challenge = service.issue_inventory_challenge(&operator, &slot).await?.encode();
        let (file, now) = (fs::read(file)?, Timestamp::now());
        let proof = custodian.tool().inventory_proof(&challenge, &file, &pinned, now, &mut rng)?;
        service.confirm_inventory(&custodian.person, &proof).await?;
        println!("  {slot}: {} proved it holds the share", custodian.entity);

        // Steps 4 and 6 run in sessions whose one-time key lives in this
        // process only; the other parties answer the sign/aggregate test
        // from their own processes (the service refuses to self-test with
        // another party's secret loaded here).
        let mut peers = sidecars(protocol)?;
        let codec = KekKeystoreCodec::new(InMemoryKek::generate(KekId::new("node-0")?, &mut rng));
        let (ticket, risk_note_hash) = (FreeText::new("INC-7")?, [7; 32]);
        // Step 4, a drill (one security approval): the custodians' shares
        // only, into a sandbox under a one-time KEK, deleted afterwards.
        let drill =
            DrillParams { version: version.clone(), ticket: ticket.clone(), risk_note_hash };
        let approval = approved(caller, drill.approval_params(split), &approvers[..1]).await?;
        let session = service.start_drill(&operator, &approval, drill).await?;
        let target = RecoveryTarget { codec: &codec, peers: &mut peers };
        let report = recover(caller, &session, &holders, &service_key, target).await?;
        let shares = report.received.len();
        println!("  drill: {shares} external shares, self-test passed, sandbox deleted");

        // Step 6, an emergency recovery on two approvals (business owner and
        // security) into the node's keystore directory, one custodian share
        // and the server's two (each read recorded).
        let keystore = dir.join(format!("{key}-keystore"));
        fs::create_dir(&keystore)?;
        let (target, version) = (FreeText::new(keystore.display().to_string())?, version.clone());
        let recovery =
            RecoveryParams { version, target, allow_server_shares: true, ticket, risk_note_hash };
        let approval = approved(caller, recovery.approval_params(split), &approvers).await?;
        let session = service.start_recovery(&operator, &approval, recovery).await?;
        let target = RecoveryTarget { codec: &codec, peers: &mut peers };
        let report = recover(caller, &session, &holders[..1], &service_key, target).await?;
        let (shares, keystore) = (report.received.len(), keystore.display());
        println!("  recovered from {shares} shares into {keystore}, self-tested");
    }

    // Step 3, the status page. Recoverable: t external shares confirmed, so
    // the custodians alone rebuild the node (DEL-01 asks it before any
    // deletion). Drilled above, so the next drill is due 90 days on (DRL-08).
    for status in service.status(&operator, &StatusQuery::default()).await?.versions {
        let (version, recoverable, held) =
            (&status.version, status.recoverable, status.server_shares_held);
        let (confirmed, external) = (status.external_confirmed, status.external_shares);
        println!(
            "{version}: recoverable {recoverable}, server shares held {held}, external confirmed {confirmed} of {external}"
        );
        let drill = status.next_drill.as_ref().ok_or("no drill date")?;
        let (due, reason, exposure) = (drill.due_at, drill.reason, &status.exposure);
        println!("  next drill due {due} ({reason:?}); exposure {exposure:?}");
        if !recoverable {
            return Err(format!("{version} is not recoverable").into());
        }
    }
    // Coverage, the first alert of step 10: versions not recoverable.
    let metrics = service.metrics_snapshot().await?;
    let (recoverable, versions) = (metrics.recoverable, metrics.totals.versions);
    println!("coverage: {recoverable} of {versions} versions recoverable");
    for share in service.list_server_shares(&operator, &ShareListQuery::default()).await?.shares {
        let (slot, kek, state) = (share.slot, share.kek_id, share.state.name());
        println!("{slot}: held by the server under KEK {kek} ({state})");
    }

    // Step 8: every call above chained an audit record in its transaction. A
    // signed checkpoint of the head goes to a witness outside the database;
    // the export is checked with the key's public half, as an auditor would.
    let (mut witness, storage) = (FileWitness::open(dir.join("audit.witness"))?, service.storage());
    let signed = checkpoint(storage, &audit_key, &mut witness, Timestamp::now()).await?;
    let mut exported = Vec::new();
    export(storage, &mut exported).await?;
    let log = parse_export(&exported)?;
    let verified = verify(&log, &witness.read(&log.log_id).await?, &audit_key.verifying_key())?;
    let (records, head) = (verified.records, signed.sequence);
    println!("audit: {records} records verified against the checkpoint at #{head}");
    Ok(())
}

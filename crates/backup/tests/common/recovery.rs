//! Recovery session cases, generic over the storage backend: a session
//! started on consumed approvals, at most one open per key version, idle
//! sessions wiped, sessions on another replica, and the custodian's checks
//! of the descriptor.

use std::time::Duration;

use shardkeep_audit::{EventType, Outcome};
use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalRequest, ApprovalRequestHash, ApprovalSubject,
    DrillSchedule, Error, Generated, RecoveryParams, Role, SessionDescriptor,
    prepare_recovery_submission,
};
use shardkeep_backup::{
    DrillParams, PolicySettings, RecoveryOutcome, RecoveryReport, RecoveryTarget, ShareRejection,
    ShareSource, seal_recovery_submission,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{EnvelopeParams, archive_hash, encode_container_contents};
use shardkeep_keydata::{
    KekKeystoreCodec, LocalPartySaveData, PeerTransport, RemotePeers, keystore_path, load_keystore,
};
use shardkeep_sss_core::{Curve, Ed25519, Secp256k1};
use shardkeep_storage::{DrillOutcome, DrillStore, ShareAccessLog, Storage, Transaction};
use shardkeep_test_support::peer_process::{PeerProcesses, example_path};
use shardkeep_test_support::tss_lib::{PARTIES, fixture_path, share_id};
use shardkeep_types::{
    EnvelopeId, InMemoryKek, KekId, KeyId, KeyVersion, Label, NodeVersion, ShareIndex, Signer,
    Threshold,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::approvals::Fixture;
use super::{Harness, Protocol, TestCustodian, actor, other_party_secrets, save_data, text};

/// A hybrid 3-of-5 backup of party 0 (node `node-0`) of `wallet`, with
/// three custodians, on the approval fixture's registry.
pub struct Recovery<S: Storage> {
    pub f: Fixture<S>,
    pub custodians: Vec<TestCustodian>,
    pub generated: Generated,
    pub protocol: Protocol,
}

impl<S: Storage> Recovery<S> {
    pub async fn new(f: Fixture<S>, protocol: Protocol) -> Self {
        Self::with_server_shares(f, protocol, 2).await
    }

    /// A 3-of-5 backup with `server_shares` on the server and a custodian
    /// for each other share.
    pub async fn with_server_shares(f: Fixture<S>, protocol: Protocol, server_shares: u8) -> Self {
        f.h.service
            .set_policy(
                &f.h.security,
                PolicySettings {
                    threshold: Threshold::new(3, 5).unwrap(),
                    server_shares,
                    kek_provider: Label::new("local-key-file").unwrap(),
                },
            )
            .await
            .unwrap();
        let custodians = f.h.custodians("cust", usize::from(5 - server_shares)).await;
        let refs: Vec<&TestCustodian> = custodians.iter().collect();
        let generated = f.h.generate(protocol, "wallet", 0, &refs).await.unwrap();
        // Node 0's keystore directory.
        std::fs::create_dir_all(f.h.dir.path().join("keystore")).unwrap();
        Self {
            f,
            custodians,
            generated,
            protocol,
        }
    }

    /// The recovery of node-0 into its keystore directory, external shares
    /// only.
    pub fn params(&self) -> RecoveryParams {
        RecoveryParams {
            version: self.generated.version.clone(),
            target: text(&self.f.h.dir.path().join("keystore").display().to_string()),
            allow_server_shares: false,
            ticket: text("INC-42"),
            risk_note_hash: [0x77; 32],
        }
    }

    /// The approval request of `params`, asked by the operator and
    /// approved by `biz-1` and `sec-2`.
    pub async fn approved(&self, params: &RecoveryParams) -> ApprovalRequestHash {
        self.f
            .operator_request_approved(params.approval_params(self.generated.split_id))
            .await
    }

    /// Starts a session on fresh approvals of [`Recovery::params`].
    pub async fn start(&self) -> Result<SessionDescriptor, Error> {
        let params = self.params();
        let hash = self.approved(&params).await;
        self.f
            .h
            .service
            .start_recovery(&self.f.h.operator, &hash, params)
            .await
    }

    /// Custodian `i`'s submission of its container to `descriptor`, made
    /// as its tool makes it.
    pub fn submission(&self, i: usize, descriptor: &[u8]) -> Result<Vec<u8>, Error> {
        let identities = [self.custodians[i].identity.clone()];
        self.custodians[i]
            .credentials(&identities)
            .recovery_submission(
                descriptor,
                &self.f.h.signer.verifying_key(),
                self.f.h.clock_now(),
                &self.generated.containers[i].container,
            )
    }
}

pub async fn a_session_starts_on_consumed_approvals<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let params = r.params();
    let hash = r.approved(&params).await;
    let descriptor = h
        .service
        .start_recovery(&h.operator, &hash, params.clone())
        .await
        .unwrap();
    let verified =
        SessionDescriptor::decode_verify(descriptor.as_bytes(), &h.signer.verifying_key()).unwrap();
    assert_eq!(verified, descriptor);
    assert_eq!(descriptor.version, r.generated.version);
    assert_eq!(descriptor.split_id, r.generated.split_id);
    assert_eq!(descriptor.operation, ApprovalOperation::Recover);
    assert_eq!(descriptor.request, hash);
    assert_eq!(
        descriptor.approvals,
        [
            (actor("biz-1"), Role::BusinessOwner),
            (actor("sec-2"), Role::Security)
        ]
    );
    assert!(descriptor.recipient.starts_with("age1"));
    assert_eq!(descriptor.started_at, h.clock_now());
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Recover);
    assert_eq!(record.outcome, Outcome::Success);
    assert!(
        record
            .detail
            .as_ref()
            .unwrap()
            .as_str()
            .contains(&descriptor.session.to_string())
    );

    let progress = h
        .service
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap();
    assert_eq!(progress.threshold, 3);
    assert!(progress.received.is_empty());
    assert_eq!(progress.version, r.generated.version);

    // The approvals were consumed: once the session is gone, they cannot
    // start another.
    h.clock.advance(Duration::from_secs(16 * 60));
    assert!(matches!(
        h.service
            .start_recovery(&h.operator, &hash, params.clone())
            .await,
        Err(Error::ApprovalReplayed(replayed)) if replayed == hash
    ));
    // Approvals for other parameters start nothing.
    let mut other = params.clone();
    other.allow_server_shares = true;
    let hash = r.approved(&params).await;
    assert!(matches!(
        h.service.start_recovery(&h.operator, &hash, other).await,
        Err(Error::ApprovalParametersMismatch {
            field: "allow_server_shares",
            ..
        })
    ));
    h.service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
}

pub async fn a_second_active_session_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let first = r.start().await.unwrap();
    let params = r.params();
    let hash = r.approved(&params).await;
    let error = h
        .service
        .start_recovery(&h.operator, &hash, params.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::RecoverySessionActive(version) if *version == r.generated.version),
        "{error:?}"
    );
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::AccessDenied);
    // The refused start consumed nothing: once the first session lapsed,
    // the same approvals start a new one, and the first is closed.
    h.clock.advance(Duration::from_secs(15 * 60));
    let second = h
        .service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
    assert_ne!(second.session, first.session);
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &first.session).await,
        Err(Error::RecoverySessionClosed(id)) if id == first.session
    ));
}

pub async fn an_expired_session_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let session = descriptor.session;
    // Activity keeps it alive: 10 + 10 minutes, never 15 idle.
    for _ in 0..2 {
        h.clock.advance(Duration::from_secs(10 * 60));
        h.service
            .recovery_progress(&h.operator, &session)
            .await
            .unwrap();
    }
    h.clock.advance(Duration::from_secs(15 * 60));
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &session).await,
        Err(Error::RecoverySessionExpired { session: id, .. }) if id == session
    ));
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Recover);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));
    assert!(matches!(
        h.service.recovery_progress(&h.operator, &session).await,
        Err(Error::RecoverySessionClosed(id)) if id == session
    ));
    // A custodian refuses a descriptor whose session ended (the approval
    // request's expiry, 24 hours on).
    h.clock.advance(Duration::from_secs(24 * 60 * 60));
    assert!(matches!(
        r.submission(0, descriptor.as_bytes()),
        Err(Error::SessionDescriptorExpired(at)) if at == descriptor.expires_at
    ));
    // The timer's sweep wipes lapsed sessions and closes them.
    let h = &r.f.h;
    let params = r.params();
    let hash = r.approved(&params).await;
    let next = h
        .service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
    assert_eq!(h.service.expire_recovery_sessions().await.unwrap(), 0);
    h.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(h.service.expire_recovery_sessions().await.unwrap(), 1);
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &next.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
}

pub async fn a_session_on_another_replica_is_refused<S: Storage + Clone>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let other = h.replica("r2");
    let error = other
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::SessionOnOtherReplica { session, replica }
                if *session == descriptor.session && replica.as_str() == "r1"
        ),
        "{error:?}"
    );
    // The session is untouched on its own replica.
    h.service
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap();
    // An unknown session is its own error.
    assert!(matches!(
        other
            .recovery_progress(&h.operator, &shardkeep_backup::RecoverySessionId([0; 16]))
            .await,
        Err(Error::RecoverySessionUnknown(_))
    ));
    // The same replica restarted: its memory lost the session, which is
    // closed as abandoned; a new one can start.
    let restarted = h.replica("r1");
    assert!(matches!(
        restarted
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionLost(id)) if id == descriptor.session
    ));
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
    r.start().await.unwrap();
}

pub async fn the_custodian_checks_the_descriptor<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let descriptor = r.start().await.unwrap();
    let bytes = descriptor.as_bytes();
    let submission = r.submission(0, bytes).unwrap();
    assert!(!submission.is_empty());

    // A descriptor with a bad signature.
    let mut forged = bytes.to_vec();
    *forged.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        r.submission(0, &forged),
        Err(Error::SessionDescriptorInvalid("signature"))
    ));
    // A descriptor changed anywhere (here: the recipient) does not verify.
    let mut changed = bytes.to_vec();
    let at = changed
        .windows(4)
        .position(|window| window == b"age1")
        .unwrap();
    changed[at + 10] ^= 0x01;
    assert!(matches!(
        r.submission(0, &changed),
        Err(Error::SessionDescriptorInvalid(_))
    ));
    // Pinned to another key.
    let other = h.signing_key();
    let custodian = &r.custodians[0];
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &other.verifying_key(),
            h.clock_now(),
            &r.generated.containers[0].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::SessionDescriptorInvalid("signature"))
    ));
    // A container this identity cannot open.
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &h.signer.verifying_key(),
            h.clock_now(),
            &r.generated.containers[1].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::ContainerUnreadable)
    ));
    // A descriptor for another envelope: another node's container.
    let refs: Vec<&TestCustodian> = r.custodians.iter().collect();
    let node1 = h.generate(r.protocol, "wallet", 1, &refs).await.unwrap();
    assert!(matches!(
        prepare_recovery_submission(
            bytes,
            &h.signer.verifying_key(),
            h.clock_now(),
            &node1.containers[0].container,
            &custodian.identity,
            &custodian.person,
            &custodian.receipt_key,
        ),
        Err(Error::SessionDescriptorMismatch { field: "node" })
    ));

    // The tool's call refuses the same: another pinned key, another
    // custodian's container.
    let identities = [custodian.identity.clone()];
    let tool = custodian.credentials(&identities);
    let container = &r.generated.containers[0].container;
    assert!(matches!(
        tool.recovery_submission(bytes, &other.verifying_key(), h.clock_now(), container),
        Err(Error::SessionDescriptorInvalid("signature"))
    ));
    let (key, container_1) = (
        h.signer.verifying_key(),
        &r.generated.containers[1].container,
    );
    assert!(matches!(
        tool.recovery_submission(bytes, &key, h.clock_now(), container_1),
        Err(Error::ContainerUnreadable)
    ));
    // A person holding a newer identity beside the one the container was
    // sealed to still opens it.
    let both = [
        age::x25519::Identity::generate(),
        custodian.identity.clone(),
    ];
    let submission = custodian
        .credentials(&both)
        .recovery_submission(bytes, &key, h.clock_now(), container)
        .unwrap();
    assert!(!submission.is_empty());
}

/// The plaintext of custodian `i`'s container (what `age -d` gives).
pub fn container_contents<S: Storage>(
    r: &Recovery<S>,
    container: &[u8],
    i: usize,
) -> Zeroizing<Vec<u8>> {
    use std::io::Read as _;
    let decryptor = age::Decryptor::new(container).unwrap();
    let identity = &r.custodians[i].identity;
    let mut stream = decryptor
        .decrypt(core::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut plain = Zeroizing::new(Vec::new());
    stream.read_to_end(&mut plain).unwrap();
    plain
}

/// Container contents for `version`, index `index`, of a fresh split of
/// party 0's share of `protocol`, signed by the service's envelope signer:
/// what only the service could make, for another version, split or curve.
fn forged_contents<S: Storage>(
    h: &Harness<S>,
    protocol: Protocol,
    version: &NodeVersion,
    index: u8,
) -> (Zeroizing<Vec<u8>>, EnvelopeId, [u8; 32]) {
    let data = save_data(protocol, 0);
    match protocol {
        Protocol::Ecdsa => forge_on::<Secp256k1, S>(h, &data, version, index),
        Protocol::Eddsa => forge_on::<Ed25519, S>(h, &data, version, index),
    }
}

fn forge_on<C: Curve, S: Storage>(
    h: &Harness<S>,
    data: &LocalPartySaveData,
    version: &NodeVersion,
    index: u8,
) -> (Zeroizing<Vec<u8>>, EnvelopeId, [u8; 32]) {
    use rand::SeedableRng;
    let archive = data.seal_archive(version).unwrap();
    let params = EnvelopeParams {
        node_version: version.clone(),
        created_at: h.clock_now(),
        binding: data.binding(&archive).unwrap(),
    };
    let xi = data.secret_share::<C>().unwrap();
    let mut rng = rand::rngs::ChaCha20Rng::from_seed([index; 32]);
    let (commitments, shares) =
        shardkeep_sss_core::split(&xi, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
    let share = &shares[usize::from(index) - 1];
    let envelope = params
        .plain(&commitments, share, h.signer.as_ref())
        .unwrap();
    let contents = encode_container_contents(&envelope, archive.as_bytes()).unwrap();
    (contents, envelope.id(), archive_hash(archive.as_bytes()))
}

impl<S: Storage> Recovery<S> {
    /// Custodian `i`'s submission of `contents` (checked by nobody before
    /// the service) to `descriptor`, signed with its receipt key.
    fn sealed(
        &self,
        i: usize,
        descriptor: &SessionDescriptor,
        contents: &[u8],
        envelope: &EnvelopeId,
        archive: &[u8; 32],
    ) -> Vec<u8> {
        let custodian = &self.custodians[i];
        seal_recovery_submission(
            descriptor,
            contents,
            envelope,
            archive,
            &custodian.person,
            &custodian.receipt_key,
        )
        .unwrap()
    }

    /// Submits to `session`, writing with a fresh node keystore KEK and
    /// self-testing with the fixture's other parties, each in its own
    /// process.
    pub async fn submit(
        &self,
        descriptor: &SessionDescriptor,
        submissions: &[Vec<u8>],
        codec: &KekKeystoreCodec<InMemoryKek>,
    ) -> Result<RecoveryReport, Error> {
        let _no_other_party = other_party_secrets().read().await;
        let mut peers = peer_processes(self.protocol);
        self.f
            .h
            .service
            .submit_recovery_shares(
                &self.f.h.operator,
                &descriptor.session,
                submissions,
                RecoveryTarget {
                    codec,
                    peers: &mut peers,
                },
            )
            .await
    }

    async fn reads(&self, index: u8) -> usize {
        let mut tx = self.f.h.service.storage().begin_read_only().await.unwrap();
        let reads = tx
            .share_accesses(&self.generated.version.slot(ShareIndex::new(index).unwrap()))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        reads
            .iter()
            .filter(|read| read.accessor == self.f.h.operator && read.purpose.as_str() == "recover")
            .count()
    }
}

/// The other parties' sidecars: keydata's `self_test_peer` example, one
/// process per party (1 to 4 of `protocol`'s fixtures) loading that party's
/// fixture, addressed by its `ShareID` (read from the fixture's text: this
/// process loads none of their secrets). `cargo test --workspace` builds the
/// example; a narrowed run adds `-p shardkeep-keydata --example
/// self_test_peer`.
pub fn peer_processes(protocol: Protocol) -> RemotePeers<impl PeerTransport> {
    let mut processes = peer_process_set(protocol);
    RemotePeers::new(move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?))
}

/// The processes of [`peer_processes`], for a test that wraps their
/// transport.
pub fn peer_process_set(protocol: Protocol) -> PeerProcesses {
    let program = example_path("self_test_peer").unwrap();
    PeerProcesses::spawn_each((1..PARTIES).map(|party| {
        let share_id = share_id(protocol, party).unwrap();
        (share_id, &program, [fixture_path(protocol, party)])
    }))
    .unwrap()
}

/// Node 0's keystore codec (a KEK from a fixed seed).
pub fn codec() -> KekKeystoreCodec<InMemoryKek> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::ChaCha20Rng::from_seed([0x4b; 32]);
    KekKeystoreCodec::new(InMemoryKek::generate(
        KekId::new("node-0-keystore").unwrap(),
        &mut rng,
    ))
}

/// The keystore written by a recovery loads to party 0's save data.
fn assert_recovered<S: Storage>(
    r: &Recovery<S>,
    report: &RecoveryReport,
    codec: &KekKeystoreCodec<InMemoryKek>,
) {
    let RecoveryOutcome::Recovered {
        keystore,
        self_test,
    } = &report.outcome
    else {
        panic!("not recovered: {report:?}");
    };
    assert!(self_test.passed(), "{self_test}");
    assert!(report.succeeded());
    let dir = r.f.h.dir.path().join("keystore");
    assert_eq!(*keystore, keystore_path(&dir, &r.generated.version));
    let loaded = load_keystore(keystore, &r.generated.version, codec).unwrap();
    assert!(bool::from(loaded.ct_eq(&save_data(r.protocol, 0))));
}

/// Four custodians (one server share); one sends a forged share (its
/// envelope changed): it is rejected with its reason, the good ones stay,
/// and the recovery completes from the three good ones across calls.
pub async fn recovery_from_four_custodians_one_forged<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    assert_eq!(r.custodians.len(), 4);
    let codec = codec();
    let descriptor = r.start().await.unwrap();
    let good0 = r.submission(0, descriptor.as_bytes()).unwrap();
    let mut forged = container_contents(&r, &r.generated.containers[1].container, 1);
    let at = forged.len() / 3;
    forged[at.min(200)] ^= 0x01;
    let forged = r.sealed(
        1,
        &descriptor,
        &forged,
        &r.generated.containers[1].envelope_id,
        &[0; 32],
    );
    let report = r
        .submit(&descriptor, &[good0.clone(), forged], &codec)
        .await
        .unwrap();
    assert_eq!(report.outcome, RecoveryOutcome::Waiting);
    assert_eq!(report.threshold, 3);
    let first = r.generated.containers[0].index;
    assert_eq!(
        report.received,
        [(
            first,
            ShareSource::Custodian(r.custodians[0].person.clone())
        )]
    );
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].position, 1);
    assert_eq!(report.rejected[0].reason, ShareRejection::EnvelopeInvalid);
    // The same share again is a duplicate; nothing else changes.
    let report = r.submit(&descriptor, &[good0], &codec).await.unwrap();
    assert_eq!(report.received.len(), 1);
    assert_eq!(
        report.rejected.last().unwrap().reason,
        ShareRejection::Duplicate
    );
    let good2 = r.submission(2, descriptor.as_bytes()).unwrap();
    let report = r.submit(&descriptor, &[good2], &codec).await.unwrap();
    assert_eq!(report.outcome, RecoveryOutcome::Waiting);
    assert_eq!(report.received.len(), 2);
    let good3 = r.submission(3, descriptor.as_bytes()).unwrap();
    let report = r.submit(&descriptor, &[good3], &codec).await.unwrap();
    assert_recovered(&r, &report, &codec);
    // Where the time went, over the start and the four calls: every step
    // ran, and together they fit in the total.
    let timings = report.timings;
    for (step, took) in [
        ("age unwrap", timings.age_unwrap),
        ("checks", timings.checks),
        ("combine", timings.combine),
        ("regenerate", timings.regenerate),
        ("keystore write", timings.keystore_write),
        ("keystore load", timings.keystore_load),
        ("self-test", timings.self_test),
        ("commits", timings.commits),
    ] {
        assert!(took > Duration::ZERO, "{step}: {timings:?}");
    }
    assert!(timings.own_work() < timings.total, "{timings:?}");
    assert!(timings.self_test < timings.total, "{timings:?}");
    assert_eq!(report.received.len(), 3);
    assert!(
        report
            .received
            .iter()
            .all(|(_, source)| *source != ShareSource::Server)
    );
    assert_eq!(report.rejected.len(), 2);
    // No server share was read: the request did not allow it.
    assert_eq!(r.reads(1).await, 0);
    // The session is closed and wiped.
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
    let records = h.audit_records().await;
    let recover: Vec<_> = records
        .iter()
        .filter(|record| record.event == EventType::Recover)
        .collect();
    // Start, four accepted, two rejected, the result.
    assert_eq!(recover.len(), 1 + 3 + 2 + 1, "{recover:?}");
    assert_eq!(recover.last().unwrap().outcome, Outcome::Success);
}

/// Server shares allowed: one custodian share, then the two server shares
/// join, each read recorded per slot in the access log and the audit log.
pub async fn recovery_with_server_shares<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let mut params = r.params();
    params.allow_server_shares = true;
    let hash = r.approved(&params).await;
    let descriptor = h
        .service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
    let good = r.submission(0, descriptor.as_bytes()).unwrap();
    let report = r.submit(&descriptor, &[good], &codec).await.unwrap();
    assert_recovered(&r, &report, &codec);
    let servers: Vec<ShareIndex> = report
        .received
        .iter()
        .filter(|(_, source)| *source == ShareSource::Server)
        .map(|(index, _)| *index)
        .collect();
    assert_eq!(
        servers,
        [ShareIndex::new(1).unwrap(), ShareIndex::new(2).unwrap()]
    );
    assert_eq!(r.reads(1).await, 1);
    assert_eq!(r.reads(2).await, 1);
    let reads: Vec<_> = h
        .audit_records()
        .await
        .into_iter()
        .filter(|record| record.event == EventType::ShareRead)
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(
        reads
            .iter()
            .map(|record| record.share_index.unwrap().get())
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

/// A share for another session, node, version, split, curve or key is
/// refused, each with its own reason.
pub async fn shares_of_anything_else_are_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let descriptor = r.start().await.unwrap();
    // Another session: node-1's, started on its own approvals.
    let refs: Vec<&TestCustodian> = r.custodians.iter().collect();
    let node1 = h.generate(r.protocol, "wallet", 1, &refs).await.unwrap();
    let mut params = r.params();
    params.version = node1.version.clone();
    let request = h
        .service
        .request_approval(
            &h.operator,
            ApprovalParams {
                operation: ApprovalOperation::Recover,
                subject: Some(ApprovalSubject {
                    version: node1.version.clone(),
                    split_id: node1.split_id,
                }),
                target: Some(params.target.clone()),
                allow_server_shares: false,
                slots: Vec::new(),
                change_hash: None,
                ticket: params.ticket.clone(),
                risk_note_hash: params.risk_note_hash,
            },
        )
        .await
        .unwrap();
    let bytes = request.encode().unwrap();
    r.f.approve(&bytes, "biz-1", Role::BusinessOwner)
        .await
        .unwrap();
    r.f.approve(&bytes, "sec-2", Role::Security).await.unwrap();
    let other = h
        .service
        .start_recovery(&h.operator, &request.hash().unwrap(), params)
        .await
        .unwrap();
    let for_other = prepare_recovery_submission(
        other.as_bytes(),
        &h.signer.verifying_key(),
        h.clock_now(),
        &node1.containers[0].container,
        &r.custodians[0].identity,
        &r.custodians[0].person,
        &r.custodians[0].receipt_key,
    )
    .unwrap();

    // Another node: custodian 0's container of node-1, sealed to this
    // session without the custodian's check.
    let contents = container_contents(&r, &node1.containers[0].container, 0);
    let opened =
        shardkeep_envelope::OpenedContainer::decode_verify(&contents, h.service.trusted_signers())
            .unwrap();
    let other_node = r.sealed(
        0,
        &descriptor,
        &contents,
        &opened.envelope().id(),
        &archive_hash(opened.archive()),
    );
    drop(opened);

    let version = &r.generated.version;
    let index = r.generated.containers[0].index.get();
    let forged = |protocol, version: &NodeVersion| {
        let (contents, id, archive) = forged_contents(h, protocol, version, index);
        r.sealed(0, &descriptor, &contents, &id, &archive)
    };
    let next = NodeVersion {
        version: KeyVersion::new(version.version.get() + 1),
        ..version.clone()
    };
    let other_key = NodeVersion {
        key_id: KeyId::new("wallet-b").unwrap(),
        ..version.clone()
    };
    let other_curve = match r.protocol {
        Protocol::Ecdsa => Protocol::Eddsa,
        Protocol::Eddsa => Protocol::Ecdsa,
    };
    let submissions = vec![
        for_other,
        other_node,
        forged(r.protocol, &next),
        forged(r.protocol, version),
        forged(other_curve, version),
        forged(r.protocol, &other_key),
        b"not an age file".to_vec(),
    ];
    let report = r.submit(&descriptor, &submissions, &codec).await.unwrap();
    assert!(report.received.is_empty());
    let reasons: Vec<ShareRejection> = report
        .rejected
        .iter()
        .map(|rejected| rejected.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            ShareRejection::OtherSession,
            ShareRejection::OtherNode,
            ShareRejection::OtherVersion,
            ShareRejection::OtherSplit,
            ShareRejection::OtherCurve,
            ShareRejection::OtherKey,
            ShareRejection::Unreadable,
        ]
    );
    let positions: Vec<usize> = report
        .rejected
        .iter()
        .map(|rejected| rejected.position)
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5, 6]);
    // A custodian signature by another key; a custodian the registry does
    // not know.
    let good = container_contents(&r, &r.generated.containers[0].container, 0);
    let id = r.generated.containers[0].envelope_id;
    let opened =
        shardkeep_envelope::OpenedContainer::decode_verify(&good, h.service.trusted_signers())
            .unwrap();
    let archive = archive_hash(opened.archive());
    drop(opened);
    let wrong_key = seal_recovery_submission(
        &descriptor,
        &good,
        &id,
        &archive,
        &r.custodians[0].person,
        &r.custodians[1].receipt_key,
    )
    .unwrap();
    let unknown = seal_recovery_submission(
        &descriptor,
        &good,
        &id,
        &archive,
        &actor("nobody"),
        &r.custodians[0].receipt_key,
    )
    .unwrap();
    // Custodian 1 sending custodian 0's share (signed with its own key).
    let not_theirs = seal_recovery_submission(
        &descriptor,
        &good,
        &id,
        &archive,
        &r.custodians[1].person,
        &r.custodians[1].receipt_key,
    )
    .unwrap();
    let report = r
        .submit(&descriptor, &[wrong_key, unknown, not_theirs], &codec)
        .await
        .unwrap();
    let reasons: Vec<ShareRejection> = report.rejected[7..]
        .iter()
        .map(|rejected| rejected.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            ShareRejection::CustodianSignatureInvalid,
            ShareRejection::UnknownCustodian,
            ShareRejection::NotTheSlotsCustodian,
        ]
    );
    assert!(report.received.is_empty());
    // A rejection whose sender is not authenticated counts against the
    // caller who handed it in, never against the custodian it names.
    // Custodian 0 sent five shares of other things under its own
    // signature; the operator handed in the rest (past the threshold of 3
    // in the window, each is an anomaly).
    let anomalies = super::inspect::anomalies(h).await;
    let against = |person: &shardkeep_types::ActorId| {
        anomalies
            .iter()
            .filter(|anomaly| {
                anomaly.person.as_ref() == Some(person)
                    && anomaly.kind.as_str()
                        == shardkeep_backup::AnomalyKind::RepeatedBadShares.name()
            })
            .count()
    };
    assert_eq!(against(&r.custodians[0].person), 5 - 3, "{anomalies:?}");
    assert!(against(&h.operator) > 0, "{anomalies:?}");
    assert_eq!(against(&actor("nobody")), 0);
    let many = vec![b"x".to_vec(); 17];
    assert!(matches!(
        r.submit(&descriptor, &many, &codec).await,
        Err(Error::TooManySubmissions { got: 17, max: 16 })
    ));
}

impl<S: Storage> Recovery<S> {
    pub fn drill_params(&self) -> DrillParams {
        DrillParams {
            version: self.generated.version.clone(),
            ticket: text("DRILL-2026-Q1"),
            risk_note_hash: [0x66; 32],
        }
    }

    /// A drill request, asked by the operator, approved by `sec-2` alone;
    /// `allow_server_shares` as given.
    pub async fn drill_approved(&self, allow_server_shares: bool) -> ApprovalRequestHash {
        let h = &self.f.h;
        let params = self.drill_params();
        let request = h
            .service
            .request_approval(
                &h.operator,
                ApprovalParams {
                    operation: ApprovalOperation::Drill,
                    subject: Some(ApprovalSubject {
                        version: params.version,
                        split_id: self.generated.split_id,
                    }),
                    target: None,
                    allow_server_shares,
                    slots: Vec::new(),
                    change_hash: None,
                    ticket: params.ticket,
                    risk_note_hash: params.risk_note_hash,
                },
            )
            .await
            .unwrap();
        self.f
            .approve(&request.encode().unwrap(), "sec-2", Role::Security)
            .await
            .unwrap();
        request.hash().unwrap()
    }
}

/// A drill from the three external shares alone, on one security
/// approval: the keystore goes to a sandbox under a one-time KEK, is
/// self-tested and deleted; the report records the steps, the envelope
/// ids used and the deletion; no server share is read.
pub async fn drill_from_external_shares_only<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let hash = r.drill_approved(false).await;
    let descriptor = h
        .service
        .start_drill(&h.operator, &hash, r.drill_params())
        .await
        .unwrap();
    assert_eq!(descriptor.operation, ApprovalOperation::Drill);
    assert_eq!(descriptor.approvals, [(actor("sec-2"), Role::Security)]);
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let report = r.submit(&descriptor, &submissions, &codec).await.unwrap();
    let RecoveryOutcome::Drilled {
        self_test,
        sandbox_deleted,
        report: text,
    } = &report.outcome
    else {
        panic!("not drilled: {report:?}");
    };
    assert!(self_test.passed(), "{self_test}");
    assert!(*sandbox_deleted);
    assert!(report.succeeded());
    assert!(
        report
            .received
            .iter()
            .all(|(_, source)| *source != ShareSource::Server)
    );
    assert!(text.starts_with("shardkeep-drill-report-v1\n"), "{text}");
    for container in &r.generated.containers {
        assert!(
            text.contains(&hex::encode(container.envelope_id.as_bytes())),
            "{text}"
        );
    }
    assert!(text.contains("sandbox deleted"), "{text}");
    assert!(text.contains("step combine and regenerate"), "{text}");
    let prefix = format!("shardkeep-drill-{}", descriptor.session);
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(r.reads(1).await, 0);
    assert_eq!(r.reads(2).await, 0);
    // Nothing was written into the node's keystore directory.
    assert_eq!(
        std::fs::read_dir(h.dir.path().join("keystore"))
            .unwrap()
            .count(),
        0
    );

    let mut tx = h.service.storage().begin_read_only().await.unwrap();
    let drills = tx.drill_reports(&r.generated.version).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(drills.len(), 1);
    assert_eq!(drills[0].outcome, DrillOutcome::Passed);
    assert_eq!(
        drills[0].shares_used,
        r.generated
            .containers
            .iter()
            .map(|c| c.index)
            .collect::<Vec<_>>()
    );
    assert_eq!(drills[0].report, text.as_bytes());
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Drill);
    assert_eq!(record.outcome, Outcome::Success);
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
}

/// A drill does not self-test while another party's secret of the group is
/// loaded in the service's process; the session keeps its shares, and the
/// drill runs once that secret is gone.
pub async fn a_drill_with_two_parties_secrets_loaded_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let hash = r.drill_approved(false).await;
    let descriptor = h
        .service
        .start_drill(&h.operator, &hash, r.drill_params())
        .await
        .unwrap();
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let exclusive = other_party_secrets().write().await;
    let second_party = save_data(r.protocol, 1);
    let mut peers = peer_processes(r.protocol);
    let refused = h
        .service
        .submit_recovery_shares(
            &h.operator,
            &descriptor.session,
            &submissions,
            RecoveryTarget {
                codec: &codec,
                peers: &mut peers,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(Error::OtherPartySecretsLoaded { others: 1 })),
        "{refused:?}"
    );
    let progress = h
        .service
        .recovery_progress(&h.operator, &descriptor.session)
        .await
        .unwrap();
    assert_eq!(progress.received.len(), 3, "{progress:?}");

    drop(second_party);
    drop(exclusive);
    let report = r.submit(&descriptor, &[], &codec).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
}

/// A server-held index in a drill is refused (even one the service
/// signed), and a drill approved with server shares allowed does not
/// start.
pub async fn a_server_share_in_a_drill_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let hash = r.drill_approved(true).await;
    assert!(matches!(
        h.service
            .start_drill(&h.operator, &hash, r.drill_params())
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "allow_server_shares",
            ..
        })
    ));
    let hash = r.drill_approved(false).await;
    let descriptor = h
        .service
        .start_drill(&h.operator, &hash, r.drill_params())
        .await
        .unwrap();
    let (contents, id, archive) = forged_contents(h, r.protocol, &r.generated.version, 1);
    let server = r.sealed(0, &descriptor, &contents, &id, &archive);
    let good = r.submission(0, descriptor.as_bytes()).unwrap();
    let report = r
        .submit(&descriptor, &[server, good], &codec)
        .await
        .unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        report.rejected[0].reason,
        ShareRejection::ServerShareInDrill
    );
    assert_eq!(report.rejected[0].index, Some(ShareIndex::new(1).unwrap()));
    assert_eq!(report.received.len(), 1);
    assert_eq!(report.outcome, RecoveryOutcome::Waiting);
    assert_eq!(r.reads(1).await, 0);
}

/// A submission encrypted to the session and 32 other recipients (each
/// stanza costs the service an X25519 agreement) is refused before age
/// tries them, even though it holds a good share.
pub async fn a_submission_with_many_stanzas_is_refused<S: Storage>(r: Recovery<S>) {
    use std::io::Write as _;
    use std::str::FromStr as _;

    let h = &r.f.h;
    let codec = codec();
    let descriptor = r.start().await.unwrap();
    // The plaintext, built by hand from docs/formats.md.
    let custodian = &r.custodians[0];
    let contents = container_contents(&r, &r.generated.containers[0].container, 0);
    let opened =
        shardkeep_envelope::OpenedContainer::decode_verify(&contents, h.service.trusted_signers())
            .unwrap();
    let mut message = b"shardkeep/recovery-submission/v1".to_vec();
    message.extend_from_slice(&descriptor.session.0);
    message.extend_from_slice(opened.envelope().id().as_bytes());
    message.extend_from_slice(&archive_hash(opened.archive()));
    drop(opened);
    let signature = custodian.receipt_key.sign(&message).unwrap().to_bytes();
    let mut plain = Zeroizing::new(b"shkp-rsb\x01".to_vec());
    plain.extend_from_slice(&descriptor.session.0);
    plain.push(u8::try_from(custodian.person.as_str().len()).unwrap());
    plain.extend_from_slice(custodian.person.as_str().as_bytes());
    plain.extend_from_slice(&u32::try_from(contents.len()).unwrap().to_be_bytes());
    plain.extend_from_slice(&contents);
    plain.extend_from_slice(&signature);

    let seal = |extra: usize| {
        let session = age::x25519::Recipient::from_str(&descriptor.recipient).unwrap();
        let others: Vec<age::x25519::Recipient> = (0..extra)
            .map(|_| age::x25519::Identity::generate().to_public())
            .collect();
        let recipients = core::iter::once(&session as &dyn age::Recipient)
            .chain(others.iter().map(|other| other as &dyn age::Recipient));
        let encryptor = age::Encryptor::with_recipients(recipients).unwrap();
        let mut writer = encryptor.wrap_output(Vec::new()).unwrap();
        writer.write_all(&plain).unwrap();
        writer.finish().unwrap()
    };
    let report = r.submit(&descriptor, &[seal(32)], &codec).await.unwrap();
    assert!(report.received.is_empty(), "{report:?}");
    assert_eq!(report.rejected[0].reason, ShareRejection::Unreadable);
    // Armor would hide those stanzas from the count: an armored file is
    // refused however few recipients it has.
    let mut armored =
        age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor).unwrap();
    armored.write_all(&seal(32)).unwrap();
    let armored = armored.finish().unwrap();
    let report = r.submit(&descriptor, &[armored], &codec).await.unwrap();
    assert!(report.received.is_empty(), "{report:?}");
    assert_eq!(report.rejected[0].reason, ShareRejection::Unreadable);
    // The same plaintext to the session alone is a good share.
    let report = r.submit(&descriptor, &[seal(0)], &codec).await.unwrap();
    assert_eq!(report.received.len(), 1, "{report:?}");
}

/// A recovery into a directory that is not there is refused before the
/// approvals are used: they start the session once the directory exists.
pub async fn a_missing_target_is_refused_before_approvals_are_used<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let mut params = r.params();
    params.target = text(&h.dir.path().join("no-such-dir").display().to_string());
    let hash = r.approved(&params).await;
    assert!(matches!(
        h.service
            .start_recovery(&h.operator, &hash, params.clone())
            .await,
        Err(Error::RecoveryTargetNotADirectory(_))
    ));
    std::fs::create_dir(h.dir.path().join("no-such-dir")).unwrap();
    h.service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
}

impl<S: Storage> Recovery<S> {
    /// A drill request of [`Recovery::drill_params`] pre-approving
    /// `schedule`, asked by the operator and approved by `sec-2`.
    async fn schedule_approved(&self, schedule: &DrillSchedule) -> ApprovalRequestHash {
        let h = &self.f.h;
        let params = self
            .drill_params()
            .schedule_approval_params(self.generated.split_id, schedule)
            .unwrap();
        let request = h
            .service
            .request_approval(&h.operator, params)
            .await
            .unwrap();
        // The approver reads the schedule, and checks it is the one the
        // request names, before signing.
        let bytes = request.encode().unwrap();
        let shown = ApprovalRequest::decode(&bytes).unwrap();
        let read = DrillSchedule::decode(&schedule.encode().unwrap()).unwrap();
        assert_eq!(shown.params.change_hash, Some(read.hash().unwrap()));
        self.f
            .approve(&bytes, "sec-2", Role::Security)
            .await
            .unwrap();
        request.hash().unwrap()
    }
}

/// A drill schedule approved once lets drills start in its window, at
/// most one per cadence, without an approval each; outside the window,
/// too soon, for another schedule, as a single drill, or once its
/// approver is revoked, no drill starts.
pub async fn drills_under_a_pre_approved_schedule<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let day = Duration::from_secs(24 * 60 * 60);
    let schedule = DrillSchedule {
        not_before: h.clock_now().checked_add(day).unwrap(),
        not_after: h.clock_now().checked_add(day * 100).unwrap(),
        cadence: day * 30,
    };
    let hash = r.schedule_approved(&schedule).await;
    let params = r.drill_params();
    let start = |schedule: DrillSchedule| {
        let params = params.clone();
        async move {
            h.service
                .start_scheduled_drill(&h.operator, &hash, &schedule, params)
                .await
        }
    };

    // The schedule's request is no single drill's approval.
    assert!(matches!(
        h.service
            .start_drill(&h.operator, &hash, r.drill_params())
            .await,
        Err(Error::ApprovalParametersMismatch {
            field: "change_hash",
            ..
        })
    ));
    // Before the window: refused, and audited.
    let error = start(schedule).await.unwrap_err();
    assert!(
        matches!(&error, Error::DrillOutsideSchedule { request, .. } if *request == hash),
        "{error:?}"
    );
    let record = h.audit_records().await.pop().unwrap();
    assert_eq!(record.event, EventType::Drill);
    assert!(matches!(record.outcome, Outcome::Failure { .. }));

    // Inside it: a drill runs on the schedule alone.
    h.clock.advance(day);
    let first_start = h.clock_now();
    let descriptor = start(schedule).await.unwrap();
    assert_eq!(descriptor.operation, ApprovalOperation::Drill);
    assert_eq!(descriptor.request, hash);
    assert_eq!(descriptor.approvals, [(actor("sec-2"), Role::Security)]);
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let report = r.submit(&descriptor, &submissions, &codec).await.unwrap();
    assert!(
        matches!(report.outcome, RecoveryOutcome::Drilled { .. }),
        "{report:?}"
    );
    assert!(report.succeeded());
    assert_eq!(r.reads(1).await, 0);

    // Too soon after it.
    h.clock.advance(day * 29);
    let error = start(schedule).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::DrillTooSoon { request, next_at }
                if *request == hash && *next_at == first_start.checked_add(day * 30).unwrap()
        ),
        "{error:?}"
    );
    // A cadence later, the same approvals start the next one.
    h.clock.advance(day);
    let second = start(schedule).await.unwrap();
    assert_ne!(second.session, descriptor.session);
    assert!(second.expires_at <= schedule.not_after);
    // The session lapses unused: it still counts for the cadence.
    h.clock.advance(Duration::from_secs(16 * 60));
    assert!(matches!(
        start(schedule).await,
        Err(Error::DrillTooSoon { .. })
    ));

    // Another schedule than the one approved.
    let mut other = schedule;
    other.cadence = day * 7;
    assert!(matches!(
        start(other).await,
        Err(Error::ApprovalParametersMismatch {
            field: "change_hash",
            ..
        })
    ));

    // After the window.
    h.clock.advance(day * 70);
    assert!(matches!(
        start(schedule).await,
        Err(Error::DrillOutsideSchedule { .. })
    ));

    // A new schedule; its approver revoked: it stops.
    let later = DrillSchedule {
        not_before: h.clock_now(),
        not_after: h.clock_now().checked_add(day * 10).unwrap(),
        cadence: day * 2,
    };
    let hash = r.schedule_approved(&later).await;
    h.service
        .revoke_person(&h.security, &actor("sec-2"), text("left the bank"))
        .await
        .unwrap();
    assert!(matches!(
        h.service
            .start_scheduled_drill(&h.operator, &hash, &later, r.drill_params())
            .await,
        Err(Error::ApproverRevoked(who)) if who == actor("sec-2")
    ));
}

/// Recovery attempts count per person in a window (20 an hour by
/// default), refused ones too: a caller probing session ids or versions is
/// stopped at the limit like one who recovers. Over it, the start and the
/// submission are refused with `RateLimited` and an anomaly, before any
/// approval is used; the next window admits the same approvals.
pub async fn recovery_attempts_are_rate_limited<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let unknown = shardkeep_backup::RecoverySessionId([0x55; 16]);
    let submit = || async {
        let mut peers = shardkeep_keydata::InProcessPeers::new(std::iter::empty());
        h.service
            .submit_recovery_shares(
                &h.operator,
                &unknown,
                &[],
                RecoveryTarget {
                    codec: &codec,
                    peers: &mut peers,
                },
            )
            .await
    };
    let mut missing = r.params();
    missing.target = text(&h.dir.path().join("no-such-dir").display().to_string());
    let missing_hash = r.approved(&missing).await;
    for attempt in 0..20 {
        // Refused for other reasons, each still an attempt.
        if attempt % 2 == 0 {
            assert!(matches!(
                submit().await,
                Err(Error::RecoverySessionUnknown(_))
            ));
        } else {
            assert!(matches!(
                h.service
                    .start_recovery(&h.operator, &missing_hash, missing.clone())
                    .await,
                Err(Error::RecoveryTargetNotADirectory(_))
            ));
        }
    }
    let params = r.params();
    let hash = r.approved(&params).await;
    for refused in [
        submit().await.map(|_| ()),
        h.service
            .start_recovery(&h.operator, &hash, params.clone())
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(
                &refused,
                Err(Error::RateLimited { person, count, limit: 20, .. })
                    if *person == h.operator && *count > 20
            ),
            "{refused:?}"
        );
    }
    let limited = super::inspect::anomalies(h)
        .await
        .into_iter()
        .filter(|anomaly| {
            anomaly.person.as_ref() == Some(&h.operator)
                && anomaly.kind.as_str() == shardkeep_backup::AnomalyKind::RateLimited.name()
        })
        .count();
    assert_eq!(limited, 2);
    // The refused start used none of the approvals.
    h.clock.advance(Duration::from_secs(60 * 60));
    h.service
        .start_recovery(&h.operator, &hash, params)
        .await
        .unwrap();
}

/// A call for a session while another call completes it (the shares at
/// threshold, the keystore being written and self-tested) is refused with
/// `RecoverySessionFinishing`, and changes nothing: the session is not
/// taken for one this replica lost (closed as abandoned under the running
/// recovery, whose own close would then fail), nor, once its deadline
/// passed meanwhile, closed as expired by a new start for the version,
/// which is refused as `RecoverySessionActive`; and the recovery completes
/// and closes as it should.
pub async fn a_call_during_the_finish_is_refused<S: Storage>(r: Recovery<S>) {
    let h = &r.f.h;
    let codec = codec();
    let descriptor = r.start().await.unwrap();
    let again = r.params();
    let again_hash = r.approved(&again).await;
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    let _no_other_party = other_party_secrets().read().await;
    let mut during = Vec::new();
    let report = {
        let mut processes = peer_process_set(r.protocol);
        let service = &h.service;
        let (operator, session) = (&h.operator, descriptor.session);
        // The self-test's first message to a peer: the recovery is in its
        // finish; another caller asks for the session from another thread.
        let mut peers = RemotePeers::new(|party: &[u8], request: &[u8]| {
            if during.is_empty() {
                std::thread::scope(|scope| {
                    let other = scope.spawn(|| {
                        let runtime = shardkeep_test_support::runtime::current_thread();
                        runtime.block_on(async {
                            // Past the session's idle deadline.
                            h.clock.advance(Duration::from_secs(16 * 60));
                            let started = service
                                .start_recovery(operator, &again_hash, again.clone())
                                .await;
                            let progress = service.recovery_progress(operator, &session).await;
                            let mut no_peers = shardkeep_keydata::InProcessPeers::new([]);
                            let submitted = service
                                .submit_recovery_shares(
                                    operator,
                                    &session,
                                    &[],
                                    RecoveryTarget {
                                        codec: &codec,
                                        peers: &mut no_peers,
                                    },
                                )
                                .await;
                            vec![
                                started.map(|_| ()),
                                progress.map(|_| ()),
                                submitted.map(|_| ()),
                            ]
                        })
                    });
                    during = other.join().unwrap();
                });
            }
            Ok(processes.exchange(party, request)?)
        });
        h.service
            .submit_recovery_shares(
                &h.operator,
                &descriptor.session,
                &submissions,
                RecoveryTarget {
                    codec: &codec,
                    peers: &mut peers,
                },
            )
            .await
    };
    assert_eq!(during.len(), 3);
    assert!(
        matches!(&during[0], Err(Error::RecoverySessionActive(version)) if *version == again.version),
        "{:?}",
        during[0]
    );
    for refused in &during[1..] {
        assert!(
            matches!(refused, Err(Error::RecoverySessionFinishing(id)) if *id == descriptor.session),
            "{refused:?}"
        );
    }
    let report = report.unwrap();
    assert_recovered(&r, &report, &codec);
    assert!(matches!(
        h.service
            .recovery_progress(&h.operator, &descriptor.session)
            .await,
        Err(Error::RecoverySessionClosed(_))
    ));
    let records = h.audit_records().await;
    assert!(
        !records.iter().any(|record| matches!(
            &record.outcome,
            Outcome::Failure { reason } if reason.as_str().contains("abandoned")
        )),
        "{records:?}"
    );
    assert_eq!(records.last().unwrap().event, EventType::Recover);
    assert_eq!(records.last().unwrap().outcome, Outcome::Success);
}

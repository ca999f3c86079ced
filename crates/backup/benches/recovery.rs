//! An emergency recovery of one node from its three custodians' containers
//! alone (tss-lib ECDSA and EdDSA fixtures), on SQLite with the local key
//! store, to a loaded and self-tested `.keydata.enc`; and the parts it
//! spends its time in, each timed alone on the same inputs:
//!
//! - `recovery`: `start_recovery` on approvals given beforehand (approval
//!   consumption, split reference check, the session's one-time age
//!   identity, the signed descriptor, one write transaction) plus one
//!   `submit_recovery_shares` call with the three custodians' submissions
//!   (everything below, the audit records, the session's close); the
//!   custodians prepare their submissions outside the timed part, as they
//!   do on their own machines;
//! - `age-unwrap`: one X25519 age file of a submission's size decrypted;
//! - `checks`: one share's signature and Feldman checks (the envelope's
//!   signature and checksum, the archive hash, the custodian's signature,
//!   the split binding, the Feldman check against the stored commitments);
//! - `combine`: the robust combine of three shares against the stored
//!   commitments;
//! - `regenerate`: the save data rebuilt from `Xi` and the sealed archive;
//! - `keystore-write`: `.keydata.enc` written atomically (encrypted,
//!   written, file and directory fsynced), and `keystore-encode` the same
//!   bytes encrypted only: the difference is the file system's part,
//!   mostly the two fsyncs;
//! - `keystore-load`: the file read back, decrypted, parsed and compared;
//! - `self-test`: the sign/aggregate test with the other four parties
//!   answering from their own processes, as in the recovery (the pipes'
//!   round trips included);
//! - `storage-commit`: one write transaction of the service's database
//!   (one audit record, commit: SQLite's WAL synced, `synchronous=FULL`),
//!   and `fsync` one 4 KiB write synced in the same directory: a durable
//!   commit is almost all its fsync.
//!
//! `recovery-submit` runs the same and times the submission alone: from
//! the three containers to the loaded and self-tested keystore (the
//! session's start is the approval phase, before any custodian sends).
//!
//! The recovery spends 3 age unwraps and 3 checks, one of every other part
//! and three durable commits (the session's start with its attempt count;
//! the submission's attempt count, the session's activity and the
//! arrivals' audit records; the close); what is left is shardkeep's own
//! work (queries, audit records, descriptors, bookkeeping).
//!
//! `recovery` also counts, in one more recovery outside the timed ones,
//! the SQL statements it runs (`SqliteStorage::statements_run`, the
//! storage's own counter).
//!
//! `recovery` also prints the median of each step as the recoveries timed
//! it in place (`RecoveryTimings`, from each report), which is exact where
//! subtracting the parts benched alone is not: a part benched in a hot
//! loop runs faster than the same step inside the flow.
//!
//! SQLite runs each statement on the calling thread; only the three
//! commits (and a wait for another process's write lock) go to a blocking
//! thread. Each wake of a thread on an idle virtual CPU costs tens of
//! microseconds, so run the bench under `taskset -c 0` too to tell the
//! hand-offs from the work itself.
//!
//! The recovery's peers are keydata's `self_test_peer` example, one process
//! per other party (a recovery refuses to run while this process holds
//! another party's secret); build it first:
//! `cargo build --release -p shardkeep-keydata --example self_test_peer`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs,
    reason = "a bench: it reports the in-place breakdown on stderr"
)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Custodian, Deployment, deployment};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signature;
use shardkeep_audit::{AuditRecord, EventType, append};
use shardkeep_backup::{
    Armor, GenerateRequest, Generated, RateLimit, RecoveryParams, RecoveryTarget, RecoveryTimings,
    Role, SUBMISSION_SIGNATURE_TAG, SaveDataSource, SessionDescriptor, TssGroup, VerifiedSplit,
    prepare_recovery_submission, sign_approval,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{CurveCommitments, CurveShare, OpenedContainer, archive_hash};
use shardkeep_keydata::{
    KekKeystoreCodec, KeystoreCodec, LocalPartySaveData, PeerTransport, RemotePeers, SealedArchive,
    WriteMode, load_keystore, regenerate, write_keystore,
};
use shardkeep_sss_core::{Commitments, Curve, Ed25519, Secp256k1, Share, combine_verified};
use shardkeep_storage::{KeyVersionStore, SqliteStorage, Storage, Transaction};
use shardkeep_test_support::peer_process::{PeerProcesses, example_path};
use shardkeep_test_support::tss_lib::{PARTIES, Protocol, fixture_bytes, fixture_path, share_id};
use shardkeep_types::{FreeText, InMemoryKek, KekId, KeyId, NodeId, Signer, Threshold};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

fn save_data(protocol: Protocol, party: usize) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&fixture_bytes(protocol, party).unwrap()).unwrap()
}

/// The other parties' sidecars: keydata's `self_test_peer` example, one
/// process per party, addressed by its `ShareID`.
fn peer_processes(protocol: Protocol) -> RemotePeers<impl PeerTransport> {
    let program = example_path("self_test_peer").unwrap();
    let mut processes = PeerProcesses::spawn_each((1..PARTIES).map(|party| {
        let share_id = share_id(protocol, party).unwrap();
        (share_id, &program, [fixture_path(protocol, party)])
    }))
    .unwrap();
    RemotePeers::new(move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?))
}

/// One node of one group backed up, its keystore directory and KEK.
struct Node {
    protocol: Protocol,
    generated: Generated,
    keystore_dir: PathBuf,
    codec: KekKeystoreCodec<InMemoryKek>,
}

fn node(setup: &Deployment, protocol: Protocol) -> Node {
    let data = save_data(protocol, 0);
    let generated = setup
        .runtime
        .block_on(setup.service.generate(
            &setup.operator,
            GenerateRequest {
                key_id: KeyId::new(format!("wallet-{}", protocol.dir())).unwrap(),
                node_id: NodeId::new("node-0").unwrap(),
                save_data: SaveDataSource::Loaded(&data),
                group: TssGroup {
                    tss_degree: 2,
                    parties: 5,
                },
                custodians: setup.custodians.iter().map(Custodian::external).collect(),
                armor: Armor::Binary,
            },
        ))
        .unwrap();
    let keystore_dir = setup
        .dir
        .path()
        .join(format!("keystore-{}", protocol.dir()));
    std::fs::create_dir_all(&keystore_dir).unwrap();
    Node {
        protocol,
        generated,
        keystore_dir,
        codec: KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new("node-0-keystore").unwrap(),
            &[9; 32],
        )),
    }
}

fn recovery_params(node: &Node) -> RecoveryParams {
    RecoveryParams {
        version: node.generated.version.clone(),
        target: FreeText::new(node.keystore_dir.display().to_string()).unwrap(),
        allow_server_shares: false,
        ticket: FreeText::new("INC-1").unwrap(),
        risk_note_hash: [0x77; 32],
    }
}

/// A fresh approval request of `params`, approved by the business owner
/// and the security person (the people's part, never timed).
fn approve(
    setup: &Deployment,
    node: &Node,
    params: &RecoveryParams,
) -> shardkeep_backup::ApprovalRequestHash {
    setup.runtime.block_on(async {
        let request = setup
            .service
            .request_approval(
                &setup.operator,
                params.approval_params(node.generated.split_id),
            )
            .await
            .unwrap();
        let bytes = request.encode().unwrap();
        for (person, role, key) in [
            (
                &setup.business_owner,
                Role::BusinessOwner,
                &setup.business_key,
            ),
            (&setup.security, Role::Security, &setup.security_key),
        ] {
            let approval = sign_approval(&bytes, person, role, key).unwrap();
            setup
                .service
                .submit_approval(person, &approval.encode())
                .await
                .unwrap();
        }
        request.hash().unwrap()
    })
}

/// The whole recovery, per group.
fn whole_recovery(c: &mut Criterion) {
    recovery(c, "recovery", true);
}

/// The submission alone (the start runs untimed).
fn submission(c: &mut Criterion) {
    recovery(c, "recovery-submit", false);
}

/// The statements `f` runs on `storage` (the storage's own counter:
/// every statement, `BEGIN` and `COMMIT` included).
fn statements_of<T>(storage: &SqliteStorage, f: impl FnOnce() -> T) -> (T, u64) {
    let before = storage.statements_run();
    let out = f();
    (out, storage.statements_run() - before)
}

fn recovery(c: &mut Criterion, name: &str, time_the_start: bool) {
    let setup = deployment(|config| {
        config.recovery_attempt_limit = RateLimit {
            max: u32::MAX,
            window: Duration::from_secs(1),
        };
    });
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for protocol in Protocol::ALL {
        let node = node(&setup, protocol);
        let params = recovery_params(&node);
        let mut peers = peer_processes(protocol);
        let mut in_place = Vec::new();
        group.bench_function(protocol.dir(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let request = approve(&setup, &node, &params);
                    let start = Instant::now();
                    let descriptor = setup
                        .runtime
                        .block_on(setup.service.start_recovery(
                            &setup.operator,
                            &request,
                            params.clone(),
                        ))
                        .unwrap();
                    if time_the_start {
                        total += start.elapsed();
                    }
                    let submissions = submissions(&setup, &node, &descriptor);
                    let start = Instant::now();
                    let report = setup
                        .runtime
                        .block_on(setup.service.submit_recovery_shares(
                            &setup.operator,
                            &descriptor.session,
                            &submissions,
                            RecoveryTarget {
                                codec: &node.codec,
                                peers: &mut peers,
                            },
                        ))
                        .unwrap();
                    total += start.elapsed();
                    assert!(report.succeeded(), "{report:?}");
                    in_place.push(report.timings);
                }
                total
            });
        });
        if time_the_start {
            print_breakdown(&format!("{name}/{}", protocol.dir()), &in_place);
            let request = approve(&setup, &node, &params);
            let storage = setup.service.storage();
            let (descriptor, at_start) = statements_of(storage, || {
                setup
                    .runtime
                    .block_on(setup.service.start_recovery(
                        &setup.operator,
                        &request,
                        params.clone(),
                    ))
                    .unwrap()
            });
            let submissions = submissions(&setup, &node, &descriptor);
            let (report, in_submission) = statements_of(storage, || {
                setup
                    .runtime
                    .block_on(setup.service.submit_recovery_shares(
                        &setup.operator,
                        &descriptor.session,
                        &submissions,
                        RecoveryTarget {
                            codec: &node.codec,
                            peers: &mut peers,
                        },
                    ))
                    .unwrap()
            });
            assert!(report.succeeded(), "{report:?}");
            eprintln!(
                "  SQL statements   {:>5} (start {at_start}, submission and close \
                 {in_submission}; BEGIN and COMMIT included)",
                at_start + in_submission
            );
        }
        in_place.clear();
    }
    group.finish();
}

/// The three custodians' submissions to a session (prepared on their
/// machines: never timed).
fn submissions(setup: &Deployment, node: &Node, descriptor: &SessionDescriptor) -> Vec<Vec<u8>> {
    let service_key = setup.service_key.verifying_key();
    setup
        .custodians
        .iter()
        .zip(&node.generated.containers)
        .map(|(custodian, container)| {
            prepare_recovery_submission(
                descriptor.as_bytes(),
                &service_key,
                setup.now,
                &container.container,
                &custodian.identity,
                &custodian.person,
                &custodian.receipt_key,
            )
            .unwrap()
        })
        .collect()
}

/// The median of each step the recoveries timed in place, and the own
/// work's share of the total.
fn print_breakdown(name: &str, runs: &[RecoveryTimings]) {
    if runs.is_empty() {
        return;
    }
    let median = |step: fn(&RecoveryTimings) -> Duration| {
        let mut all: Vec<Duration> = runs.iter().map(step).collect();
        all.sort();
        all[all.len() / 2]
    };
    let total = median(|t| t.total);
    let own = median(RecoveryTimings::own_work);
    eprintln!(
        "{name}: timed in place, median of {} recoveries",
        runs.len()
    );
    for (step, took) in [
        ("age unwrap", median(|t| t.age_unwrap)),
        ("checks", median(|t| t.checks)),
        ("session keys", median(|t| t.session_keys)),
        ("combine", median(|t| t.combine)),
        ("regenerate", median(|t| t.regenerate)),
        ("keystore write", median(|t| t.keystore_write)),
        ("keystore load", median(|t| t.keystore_load)),
        ("self-test", median(|t| t.self_test)),
        ("durable commits", median(|t| t.commits)),
        ("total", total),
        ("own work", own),
    ] {
        eprintln!("  {step:16} {:>9.3} ms", took.as_secs_f64() * 1e3);
    }
    eprintln!(
        "  own work share   {:>8.1} %",
        own.as_secs_f64() / total.as_secs_f64() * 100.0
    );
}

/// The plaintext of custodian `i`'s container (what a submission carries,
/// besides a few dozen bytes of framing and a signature).
fn contents(setup: &Deployment, node: &Node, i: usize) -> Zeroizing<Vec<u8>> {
    age_decrypt(
        &node.generated.containers[i].container,
        &setup.custodians[i].identity,
    )
}

fn age_decrypt(file: &[u8], identity: &age::x25519::Identity) -> Zeroizing<Vec<u8>> {
    use std::io::Read as _;
    let decryptor = age::Decryptor::new(file).unwrap();
    let mut stream = decryptor
        .decrypt(core::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut plain = Zeroizing::new(Vec::new());
    stream.read_to_end(&mut plain).unwrap();
    plain
}

fn age_encrypt(plain: &[u8], recipient: &age::x25519::Recipient) -> Vec<u8> {
    use std::io::Write as _;
    let encryptor =
        age::Encryptor::with_recipients(core::iter::once(recipient as &dyn age::Recipient))
            .unwrap();
    let mut writer = encryptor.wrap_output(Vec::new()).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap()
}

/// The checks of one share on arrival, as the service runs them.
fn check_share(
    contents: &[u8],
    setup: &Deployment,
    custodian: &Custodian,
    signature: &Signature,
    split: &VerifiedSplit,
) -> CurveShare {
    let opened = OpenedContainer::decode_verify(contents, setup.service.trusted_signers()).unwrap();
    let envelope_id = opened.envelope().id();
    let hash = archive_hash(opened.archive());
    let mut message = SUBMISSION_SIGNATURE_TAG.to_vec();
    message.extend_from_slice(&[0x11; 16]);
    message.extend_from_slice(envelope_id.as_bytes());
    message.extend_from_slice(&hash);
    custodian
        .receipt_key
        .verifying_key()
        .verify_strict(&message, signature)
        .unwrap();
    let index = opened.envelope().header().index();
    split.check_envelope(opened.envelope(), index).unwrap();
    let (envelope, _) = opened.into_parts();
    let share = envelope.into_plain_share().unwrap();
    let fits = match (split.commitments(), &share) {
        (CurveCommitments::Secp256k1(commitments), CurveShare::Secp256k1(share)) => {
            commitments.verify(share).is_ok()
        }
        (CurveCommitments::Ed25519(commitments), CurveShare::Ed25519(share)) => {
            commitments.verify(share).is_ok()
        }
        _ => false,
    };
    assert!(fits);
    share
}

fn combine_and_regenerate<C: Curve>(
    shares: Vec<CurveShare>,
    commitments: &Commitments<C>,
    archive: &SealedArchive,
    split: &VerifiedSplit,
    regenerate_too: bool,
) -> Option<LocalPartySaveData>
where
    Share<C>: TryFrom<CurveShare, Error = shardkeep_envelope::Error>,
{
    let shares: Vec<Share<C>> = shares
        .into_iter()
        .map(|share| Share::<C>::try_from(share).unwrap())
        .collect();
    let secret = combine_verified(shares, commitments).unwrap().into_secret();
    regenerate_too.then(|| regenerate(&secret, archive, split.binding(), split.version()).unwrap())
}

fn parts(c: &mut Criterion) {
    let setup = deployment(|_| {});
    let mut group = c.benchmark_group("recovery-parts");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let session_identity = age::x25519::Identity::generate();
    for protocol in Protocol::ALL {
        let node = node(&setup, protocol);
        let name = protocol.dir();
        let version = &node.generated.version;
        let split = setup.runtime.block_on(async {
            let mut tx = setup.service.storage().begin_read_only().await.unwrap();
            let reference = tx.split_reference(version).await.unwrap();
            tx.rollback().await.unwrap();
            VerifiedSplit::verify(version, &reference, setup.service.trusted_signers()).unwrap()
        });
        let contents = contents(&setup, &node, 0);

        // A submission's size: the container's contents, the session id,
        // the custodian's name, a length and a signature.
        let mut plain = contents.to_vec();
        plain.extend_from_slice(&[0; 9 + 16 + 1 + 16 + 4 + 64]);
        let sealed = age_encrypt(&plain, &session_identity.to_public());
        group.bench_function(format!("age-unwrap/{name}"), |b| {
            b.iter(|| age_decrypt(&sealed, &session_identity));
        });

        let custodian = &setup.custodians[0];
        let mut message = SUBMISSION_SIGNATURE_TAG.to_vec();
        message.extend_from_slice(&[0x11; 16]);
        let opened =
            OpenedContainer::decode_verify(&contents, setup.service.trusted_signers()).unwrap();
        message.extend_from_slice(opened.envelope().id().as_bytes());
        message.extend_from_slice(&archive_hash(opened.archive()));
        let archive = SealedArchive::from_bytes(opened.archive().to_vec()).unwrap();
        drop(opened);
        let signature = custodian.receipt_key.sign(&message).unwrap();
        group.bench_function(format!("checks/{name}"), |b| {
            b.iter(|| check_share(&contents, &setup, custodian, &signature, &split));
        });

        let all: Vec<Zeroizing<Vec<u8>>> =
            (0..3).map(|i| self::contents(&setup, &node, i)).collect();
        let shares = || -> Vec<CurveShare> {
            all.iter()
                .map(|contents| {
                    let opened =
                        OpenedContainer::decode_verify(contents, setup.service.trusted_signers())
                            .unwrap();
                    opened.into_parts().0.into_plain_share().unwrap()
                })
                .collect()
        };
        let rebuild = |shares: Vec<CurveShare>, regenerate_too: bool| match split.commitments() {
            CurveCommitments::Secp256k1(commitments) => combine_and_regenerate::<Secp256k1>(
                shares,
                commitments,
                &archive,
                &split,
                regenerate_too,
            ),
            CurveCommitments::Ed25519(commitments) => combine_and_regenerate::<Ed25519>(
                shares,
                commitments,
                &archive,
                &split,
                regenerate_too,
            ),
        };
        group.bench_function(format!("combine/{name}"), |b| {
            b.iter_batched(
                shares,
                |shares| rebuild(shares, false),
                BatchSize::SmallInput,
            );
        });
        group.bench_function(format!("combine-and-regenerate/{name}"), |b| {
            b.iter_batched(
                shares,
                |shares| rebuild(shares, true),
                BatchSize::SmallInput,
            );
        });

        let data = rebuild(shares(), true).unwrap();
        assert!(bool::from(data.ct_eq(&save_data(node.protocol, 0))));
        group.bench_function(format!("keystore-encode/{name}"), |b| {
            b.iter(|| node.codec.encode(version, &data.to_json()).unwrap());
        });
        group.bench_function(format!("keystore-write/{name}"), |b| {
            b.iter(|| {
                write_keystore(
                    &node.keystore_dir,
                    version,
                    &data,
                    &node.codec,
                    WriteMode::Replace,
                )
                .unwrap()
            });
        });
        let path = write_keystore(
            &node.keystore_dir,
            version,
            &data,
            &node.codec,
            WriteMode::Replace,
        )
        .unwrap();
        group.bench_function(format!("keystore-load/{name}"), |b| {
            b.iter(|| {
                let loaded = load_keystore(&path, version, &node.codec).unwrap();
                assert!(bool::from(loaded.ct_eq(&data)));
            });
        });
        let threshold = Threshold::from_tss_lib(2, 5).unwrap();
        let mut peers = peer_processes(node.protocol);
        group.bench_function(format!("self-test/{name}"), |b| {
            b.iter(|| {
                let report = data.self_test(threshold, &mut peers).unwrap();
                assert!(report.passed());
            });
        });
    }
    let synced = setup.dir.path().join("fsync-probe");
    let file = std::fs::File::create(&synced).unwrap();
    group.bench_function("fsync", |b| {
        b.iter(|| {
            use std::os::unix::fs::FileExt as _;
            file.write_all_at(&[0x5a; 4096], 0).unwrap();
            file.sync_data().unwrap();
        });
    });
    group.bench_function("storage-commit", |b| {
        b.iter(|| {
            setup.runtime.block_on(async {
                let mut tx = setup.service.storage().begin().await.unwrap();
                let record =
                    AuditRecord::new(EventType::Recover, setup.now, setup.operator.clone());
                append(&mut tx, &record).await.unwrap();
                tx.commit().await.unwrap();
            });
        });
    });
    group.finish();
}

criterion_group!(benches, whole_recovery, submission, parts);
criterion_main!(benches);

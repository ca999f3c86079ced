//! The service over gRPC with mutual TLS on loopback, as its clients see it.
//!
//! - `grpc-status/postgres`: `GetBackupStatus` over 10,000 node versions
//!   on a throwaway PostgreSQL cluster (seeded with
//!   `shardkeep_storage::fleet`, vacuumed and analysed), one page per
//!   request, cycling through every page of the listing: pages of 100
//!   rows (the default) and of 1,000 (the cap). Each request's latency is
//!   kept, and the bench prints p50 and p99 per page size.
//! - `grpc-status/postgres/50 clients`: 50 clients, each on its own TLS
//!   connection, each asking 4 times for its own node's status at once;
//!   the throughput is status requests per second.
//! - `grpc-recovery`: one whole `RecoverMPCShare` session on the embedded
//!   SQLite default, the tss-lib ECDSA and EdDSA fixtures' party 0:
//!   `StartRecovery` on approvals given beforehand, then one
//!   `RecoverMPCShare` call with the three custodians' submissions, up to
//!   the loaded and self-tested `.keydata.enc`. The custodians prepare
//!   their submissions outside the timed part, as they do on their own
//!   machines. The bench prints the two calls' medians apart; what the
//!   recovery spends inside the service is the backup crate's
//!   `recovery` bench.
//!
//! Rate limits are lifted for the bench's operator: they would refuse a
//! benchmark's request rate, which is the point of them.
//!
//! The recovery's peers are keydata's `self_test_peer` example, one process
//! per other party; build it first:
//! `cargo build --release -p shardkeep-keydata --example self_test_peer`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs,
    reason = "a bench: a failed setup stops loudly, and it reports percentiles on stderr"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Client, FixtureParty0, Issued, NoTargets, Served, SessionOrder, TestCa, actor, approved_request,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    BackupService, PersonKeys, PersonRegistration, RateLimit, Role, RoleSet, ServiceConfig,
    ServiceParts,
};
use shardkeep_grpc::proto::{GetBackupStatusRequest, RecoverMpcShareRequest, RecoveryState};
use shardkeep_grpc::{GrpcService, ServerConfig, serve_on};
use shardkeep_kms::LocalKeyStore;
use shardkeep_storage::fleet::{self, KEYS, NODES, VERSIONS};
use shardkeep_storage::{PostgresStorage, Storage};
use shardkeep_test_support::tss_lib::Protocol;
use shardkeep_types::{InMemorySigner, KekId, Label, NodeVersion, Signer, SignerId, Timestamp};

/// No limit a bench reaches.
const UNLIMITED: RateLimit = RateLimit {
    max: u32::MAX,
    window: Duration::from_secs(1),
};

/// Concurrent clients of the throughput bench, and requests per client per
/// iteration.
const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 4;

/// 2027-02-01, after everything the fleet seeds.
fn bench_time() -> Timestamp {
    Timestamp::from_unix_seconds(1_801_468_800).unwrap()
}

/// A backup service on `storage` served over mutual TLS on loopback, with
/// a bootstrapped security person and an operator holding a client
/// certificate, both unlimited.
struct Endpoint {
    ca: TestCa,
    port: u16,
    operator: Issued,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start<S: Storage + Clone + 'static>(storage: S) -> (Self, BackupService<S>) {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            ServiceConfig::new(Label::new("bench").unwrap(), Label::new("r1").unwrap());
        config.inspect_limit = UNLIMITED;
        config.recovery_attempt_limit = UNLIMITED;
        let parts = ServiceParts::new(
            storage,
            config,
            Arc::new(
                LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-1").unwrap())
                    .unwrap(),
            ),
            Arc::new(InMemorySigner::from_seed(
                SignerId::new("backup-server-1").unwrap(),
                &[0x5e; 32],
            )),
            Arc::new(shardkeep_backup::FixedClock::new(bench_time())),
            Box::new(ChaCha20Rng::from_seed([42; 32])),
        );
        let service = BackupService::new(parts).unwrap();
        let ca = TestCa::new("shardkeep bench client CA");
        let operator = ca.client("ops-1");
        let security = actor("sec-1");
        for (seed, (person, role, tls)) in (1u8..).zip([
            (&security, Role::Security, None),
            (
                &actor("ops-1"),
                Role::Operator,
                Some(operator.fingerprint.0),
            ),
        ]) {
            service
                .register_person(
                    &security,
                    PersonRegistration {
                        id: person.clone(),
                        display_name: common::text(person.as_str()),
                        roles: [role].into_iter().collect::<RoleSet>(),
                        keys: PersonKeys {
                            approval_key: Some(
                                InMemorySigner::from_seed(
                                    SignerId::new("person-key").unwrap(),
                                    &[seed; 32],
                                )
                                .verifying_key()
                                .to_bytes(),
                            ),
                            tls_fingerprint: tls,
                            ..PersonKeys::default()
                        },
                    },
                )
                .await
                .unwrap();
        }
        service
            .set_policy(&security, common::hybrid_policy())
            .await
            .unwrap();
        let tls = ca.server_tls();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let grpc = GrpcService::new(service.clone(), Arc::new(NoTargets));
        let config = ServerConfig::new(listener.local_addr().unwrap(), tls);
        let server = tokio::spawn(async move {
            serve_on(listener, config, grpc, core::future::pending())
                .await
                .unwrap();
        });
        (
            Self {
                ca,
                port,
                operator,
                _dir: dir,
                _server: server,
            },
            service,
        )
    }

    /// A new TLS connection as the operator.
    async fn client(&self) -> Client {
        let channel = common::connect(&self.ca, self.port, Some(self.operator.identity()))
            .await
            .unwrap();
        Client::new(channel).max_decoding_message_size(4 * 1024 * 1024)
    }
}

/// The `p`-th percentile of `samples` (nearest rank); zero when there is
/// none (the bench was filtered out).
fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples.get(rank - 1).copied().unwrap_or_default()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn status(c: &mut Criterion) {
    use shardkeep_storage::test_support::PostgresCluster;
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let storage = runtime.block_on(async {
        let database = cluster.create_database("grpc_status_bench").await.unwrap();
        PostgresStorage::connect(&database.service_url)
            .await
            .unwrap()
    });
    let (endpoint, _service) = runtime.block_on(Endpoint::start(storage.clone()));
    runtime.block_on(fleet::seed(&storage));
    cluster.psql("grpc_status_bench", "VACUUM ANALYZE").unwrap();

    let mut group = c.benchmark_group("grpc-status/postgres");
    for page_size in [100u32, 1_000] {
        // Every page's token, from one walk through the listing.
        let (mut client, tokens) = runtime.block_on(async {
            let mut client = endpoint.client().await;
            let mut tokens = vec![String::new()];
            let mut rows = 0;
            loop {
                let page = client
                    .get_backup_status(GetBackupStatusRequest {
                        page_size,
                        page_token: tokens.last().unwrap().clone(),
                        ..GetBackupStatusRequest::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                rows += page.versions.len();
                if page.next_page_token.is_empty() {
                    break;
                }
                tokens.push(page.next_page_token);
            }
            assert_eq!(rows, usize::try_from(VERSIONS).unwrap());
            (client, tokens)
        });
        let latencies = Mutex::new(Vec::new());
        let mut next = 0usize;
        group.bench_function(format!("page of {page_size} ({VERSIONS} versions)"), |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let token = tokens[next % tokens.len()].clone();
                        next += 1;
                        let started = Instant::now();
                        let page = client
                            .get_backup_status(GetBackupStatusRequest {
                                page_size,
                                page_token: token,
                                ..GetBackupStatusRequest::default()
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        let took = started.elapsed();
                        assert!(!page.versions.is_empty());
                        total += took;
                        latencies.lock().unwrap().push(took);
                    }
                    total
                })
            });
        });
        let mut samples = latencies.into_inner().unwrap();
        eprintln!(
            "grpc-status/postgres page of {page_size}: {} requests over {} pages, p50 {:.2} ms, p99 {:.2} ms",
            samples.len(),
            tokens.len(),
            millis(percentile(&mut samples, 50)),
            millis(percentile(&mut samples, 99)),
        );
    }

    // 50 clients at once, each asking for its own node.
    let clients = runtime.block_on(async {
        let mut clients = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            clients.push(endpoint.client().await);
        }
        clients
    });
    let nodes: Vec<NodeVersion> = (0..CLIENTS)
        .map(|i| {
            let i = u32::try_from(i).unwrap();
            fleet::node_version(i * (KEYS / 50), 1 + i % NODES, 1)
        })
        .collect();
    group.throughput(Throughput::Elements(
        u64::try_from(CLIENTS * REQUESTS_PER_CLIENT).unwrap(),
    ));
    group.bench_function(
        format!("{CLIENTS} clients, {REQUESTS_PER_CLIENT} node status requests each"),
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for (client, node) in clients.iter().zip(&nodes) {
                        let mut client = client.clone();
                        let request = GetBackupStatusRequest {
                            key_id: node.key_id.as_str().to_owned(),
                            node_id: node.node_id.as_str().to_owned(),
                            ..GetBackupStatusRequest::default()
                        };
                        tasks.spawn(async move {
                            for _ in 0..REQUESTS_PER_CLIENT {
                                let page = client
                                    .get_backup_status(request.clone())
                                    .await
                                    .unwrap()
                                    .into_inner();
                                assert_eq!(page.versions.len(), 1);
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap();
                    }
                });
            });
        },
    );
    group.finish();
    drop(clients);
    drop(endpoint);
    runtime.block_on(storage.close());
}

fn recovery(c: &mut Criterion) {
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let mut group = c.benchmark_group("grpc-recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for protocol in Protocol::ALL {
        // The fixture's protocol follows the key's name.
        let key = match protocol {
            Protocol::Ecdsa => "wallet-ecdsa",
            Protocol::Eddsa => "wallet-eddsa",
        };
        let served = runtime.block_on(Served::start_configured(
            Arc::new(FixtureParty0::new()),
            |config| config.recovery_attempt_limit = UNLIMITED,
        ));
        let (generated, custodians) = runtime.block_on(served.generate_hybrid_of(key, protocol, 0));
        let keystore_dir = served.dir.path().join("keystore");
        std::fs::create_dir_all(&keystore_dir).unwrap();
        let order = SessionOrder::recovery(&generated, &keystore_dir, "INC-1");
        let (mut client, mut approvers) = runtime.block_on(async {
            (
                served.operator_client().await,
                [
                    served.register_approver("biz-1", Role::BusinessOwner).await,
                    served.register_approver("sec-2", Role::Security).await,
                ],
            )
        });
        let starts = Mutex::new(Vec::new());
        let submissions = Mutex::new(Vec::new());
        group.bench_function(protocol.dir(), |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        // Approved beforehand (not timed).
                        let approval_request_hash =
                            approved_request(&mut client, order.approval_params(), &mut approvers)
                                .await;

                        let started_at = Instant::now();
                        let started = client
                            .start_recovery(order.start_recovery(approval_request_hash))
                            .await
                            .unwrap()
                            .into_inner();
                        let start = started_at.elapsed();

                        // The custodians, on their own machines (not timed).
                        let shares =
                            served.submissions(&custodians, &generated, &started.descriptor);

                        let submitted_at = Instant::now();
                        let done = client
                            .recover_mpc_share(RecoverMpcShareRequest {
                                session_id: started.session_id,
                                share_data: shares,
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        let submit = submitted_at.elapsed();
                        assert_eq!(done.state(), RecoveryState::Recovered);
                        starts.lock().unwrap().push(start);
                        submissions.lock().unwrap().push(submit);
                        total += start + submit;
                    }
                    total
                })
            });
        });
        let mut starts = std::mem::take(&mut *starts.lock().unwrap());
        let mut submissions = std::mem::take(&mut *submissions.lock().unwrap());
        eprintln!(
            "grpc-recovery/{}: StartRecovery median {:.2} ms, RecoverMPCShare (3 shares, to the self-tested keystore) median {:.2} ms, over {} sessions",
            protocol.dir(),
            millis(percentile(&mut starts, 50)),
            millis(percentile(&mut submissions, 50)),
            starts.len(),
        );
    }
    group.finish();
}

criterion_group!(benches, status, recovery);
criterion_main!(benches);

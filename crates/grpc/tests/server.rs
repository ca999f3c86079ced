//! `serve_on` as a host runs it: the health and reflection services over
//! mutual TLS, a request past the server's deadline, and a graceful
//! shutdown (in-flight work finishes, the health turns `NOT_SERVING`, new
//! connections are refused, a watch that never ends is cut off after the
//! grace).
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Served, TestCustodian, save_data};
use shardkeep_grpc::proto::{self, GenerateBackupRequest};
use shardkeep_grpc::{Error, RecoveryTargets};
use shardkeep_keydata::{KekKeystoreCodec, KeystoreCodec, SelfTestPeers, WriteMode};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, NodeId, NodeVersion};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use zeroize::Zeroizing;

const SERVICE: &str = "infra.v1.BackupService";

/// Node 0's keystore codec, slowed down: each read waits `delay` after
/// telling `entered` it started, so that a request is surely in flight.
struct SlowCodec {
    inner: KekKeystoreCodec<InMemoryKek>,
    delay: Duration,
    entered: Arc<tokio::sync::Notify>,
}

impl KeystoreCodec for SlowCodec {
    fn encode(&self, id: &NodeVersion, json: &[u8]) -> shardkeep_keydata::Result<Vec<u8>> {
        self.inner.encode(id, json)
    }

    fn decode(
        &self,
        id: &NodeVersion,
        file: &[u8],
    ) -> shardkeep_keydata::Result<Zeroizing<Vec<u8>>> {
        self.entered.notify_one();
        std::thread::sleep(self.delay);
        self.inner.decode(id, file)
    }
}

struct Slow(Arc<SlowCodec>);

impl RecoveryTargets for Slow {
    fn codec(&self, _version: &NodeVersion) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, Error> {
        Ok(self.0.clone())
    }

    fn peers(&self, version: &NodeVersion) -> Result<Box<dyn SelfTestPeers + Send>, Error> {
        Err(Error::NoRecoveryTarget(version.clone()))
    }
}

fn slow_codec(delay: Duration) -> Arc<SlowCodec> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::ChaCha20Rng::from_seed([0x4d; 32]);
    Arc::new(SlowCodec {
        inner: KekKeystoreCodec::new(InMemoryKek::generate(
            KekId::new("node-0-keystore").unwrap(),
            &mut rng,
        )),
        delay,
        entered: Arc::new(tokio::sync::Notify::new()),
    })
}

/// A policy, three custodians and node 0's keystore written with `codec`:
/// the request that generates its backup.
async fn generate_request(served: &Served, codec: &SlowCodec) -> GenerateBackupRequest {
    served.set_hybrid_policy().await;
    let mut custodians: Vec<TestCustodian> = Vec::new();
    for i in 0..3 {
        custodians.push(served.custodian(&format!("cust-{i}")).await);
    }
    let written_for = NodeVersion {
        key_id: KeyId::new("wallet").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    };
    let keystore = shardkeep_keydata::write_keystore(
        served.dir.path(),
        &written_for,
        &save_data(0),
        codec,
        WriteMode::CreateNew,
    )
    .unwrap();
    common::generate_request(&keystore, &custodians)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served_over_mutual_tls() {
    let served = Served::start(Arc::new(common::NoTargets)).await;
    let channel = served.operator_channel().await;

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream_once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let names: Vec<&str> = list
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert!(names.contains(&SERVICE), "{names:?}");

    // Without a client certificate nothing is served, health included
    // (TLS 1.2 fails the handshake at once; TLS 1.3 with the first
    // request).
    if let Ok(channel) = served.channel(None).await {
        let refused = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: SERVICE.into(),
            })
            .await;
        assert!(refused.is_err(), "{refused:?}");
    }
}

fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
    tonic::codegen::tokio_stream::iter([item])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_finishes_and_new_connections_are_refused() {
    let codec = slow_codec(Duration::from_millis(800));
    let served = Served::start(Arc::new(Slow(codec.clone()))).await;
    let request = generate_request(&served, &codec).await;
    let mut operator = served.operator_client().await;

    let entered = codec.entered.notified();
    let in_flight = tokio::spawn(async move { operator.generate_backup(request).await });
    entered.await;
    served.shut_down();
    // The server has stopped accepting while the request is still running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!in_flight.is_finished());
    assert!(
        served
            .channel(Some(served.operator_cert.identity()))
            .await
            .is_err(),
        "a new connection after the shutdown signal"
    );

    let generated = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(generated.containers.len(), 3);
    served.server_result().await.unwrap();
    // The work it answered for is stored.
    let status = served
        .service
        .status(
            &served.security,
            &shardkeep_backup::StatusQuery {
                key_id: None,
                node_id: None,
                include_retired: false,
                page_size: 0,
                page_token: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(status.versions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_a_health_watch_sees_not_serving_and_is_cut_off_after_the_grace() {
    let served = Served::start_full(
        Arc::new(common::NoTargets),
        |grpc| grpc,
        |config| config.shutdown_grace = Duration::from_millis(300),
    )
    .await;
    let mut watch = HealthClient::new(served.operator_channel().await)
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    served.shut_down();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    // The watch never ends on its own: the grace cuts it off.
    match served.server_result().await {
        Err(Error::ShutdownGraceExceeded(grace)) => {
            assert_eq!(grace, Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_servers_deadline_is_cancelled() {
    let codec = slow_codec(Duration::from_millis(1500));
    let served = Served::start_full(
        Arc::new(Slow(codec.clone())),
        |grpc| grpc,
        |config| config.request_timeout = Duration::from_millis(300),
    )
    .await;
    let request = generate_request(&served, &codec).await;
    let mut operator = served.operator_client().await;
    // A request within the deadline is answered as usual.
    let status = operator
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await;
    assert!(status.is_ok(), "{status:?}");
    let refused = operator.generate_backup(request).await.unwrap_err();
    // tonic's server timeout answers CANCELLED ("Timeout expired").
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::Cancelled, "Timeout expired")
    );
}

/// The witness file's checkpoints now.
fn witnessed(path: &std::path::Path) -> Vec<shardkeep_audit::Checkpoint> {
    shardkeep_audit::parse_witness(&std::fs::read(path).unwrap_or_default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checkpoints_a_growing_log_periodically_and_once_more_at_shutdown() {
    let witness_dir = tempfile::tempdir().unwrap();
    let witness_path = witness_dir.path().join("audit.witness");
    let audit_signer = Arc::new(shardkeep_types::InMemorySigner::from_seed(
        shardkeep_types::SignerId::new("audit-1").unwrap(),
        &[0xa1; 32],
    ));
    let witness = shardkeep_audit::FileWitness::open(&witness_path).unwrap();
    let signer = audit_signer.clone();
    let served = Served::start_full(
        Arc::new(common::NoTargets),
        move |grpc| grpc.with_checkpoints(signer, witness),
        |config| config.checkpoint_interval = Some(Duration::from_millis(200)),
    )
    .await;
    let mut operator = served.operator_client().await;
    operator
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap();
    let head = |served: &Served| {
        let storage = served.service.storage().clone();
        async move {
            use shardkeep_storage::{AuditStore as _, Storage as _};
            storage
                .begin_read_only()
                .await
                .unwrap()
                .audit_head()
                .await
                .unwrap()
                .sequence
        }
    };

    // A tick witnesses the head the status call left.
    let first_head = head(&served).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while witnessed(&witness_path).last().map(|c| c.sequence) != Some(first_head) {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A log that has not grown is not checkpointed again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(witnessed(&witness_path).len(), 1);

    // The last calls before the shutdown are covered by the checkpoint the
    // server makes as it stops.
    operator
        .get_backup_status(proto::GetBackupStatusRequest::default())
        .await
        .unwrap();
    served.shut_down();
    served.server_result().await.unwrap();
    let last_head = head(&served).await;
    assert!(last_head > first_head);
    let checkpoints = witnessed(&witness_path);
    assert_eq!(checkpoints.last().unwrap().sequence, last_head);

    // An export of the whole log verifies against the witness, anchored
    // to its last record.
    let mut bytes = Vec::new();
    shardkeep_audit::export(served.service.storage(), &mut bytes)
        .await
        .unwrap();
    let verified = shardkeep_audit::verify(
        &shardkeep_audit::parse_export(&bytes).unwrap(),
        &checkpoints,
        &shardkeep_types::Signer::verifying_key(audit_signer.as_ref()),
    )
    .unwrap();
    assert_eq!(verified.latest_checkpoint, last_head);
    assert_eq!(verified.unwitnessed, 0);
}

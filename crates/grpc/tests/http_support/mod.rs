//! What the metrics-port tests share: the gRPC test service served a
//! second time with the request-metrics layer around it, the metrics port
//! beside it, a raw HTTP/1.1 client, the programs the tests drive
//! (promtool, Chromium), and a deployment with real data: a delivered and
//! drilled version, an undelivered one, a delivery failure whose reason
//! is markup, a rate-limit anomaly and a witnessed checkpoint.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shardkeep_audit::FileWitness;
use shardkeep_backup::{
    Armor, GenerateRequest, Generated, Role, RotateRequest, RotationKind, SaveDataSource,
    StatusQuery,
};
use shardkeep_envelope::{Receipt, ReceiptStatus};
use shardkeep_grpc::http::{HttpState, serve_http};
use shardkeep_grpc::proto::{
    ConfirmReceiptRequest, GetBackupStatusRequest, RecordDeliveryRequest, RecoverMpcShareRequest,
    RecoveryState,
};
use shardkeep_grpc::{GrpcService, ServerConfig, serve_on};
use shardkeep_storage::SqliteStorage;
use shardkeep_types::{InMemorySigner, KeyId, NodeId, NodeVersion, SignerId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::Identity;

use crate::common::{
    Approver, Client, FixtureParty0, Served, SessionOrder, TSS_GROUP, TestCustodian, actor,
    approved_request, save_data, wire_slot,
};

/// The failure reason an operator typed: markup that must reach the
/// status page as text.
pub const HOSTILE_REASON: &str = "<script>document.title='pwned'</script><b>courier lost it</b>";

/// The program `names` names, found on `PATH`; `None` (the test is
/// skipped) when it is absent and `require` is not set in the
/// environment. `scripts/test.sh` installs the programs and sets the
/// variables.
pub fn required_program(names: &[&str], require: &str) -> Option<PathBuf> {
    let found = names.iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but {} is not installed",
            names[0]
        );
        eprintln!("{} is not installed: the test is skipped", names[0]);
    }
    found
}

/// `ops/` at the workspace root.
pub fn ops_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops")
}

/// An HTTP response, as read off the wire.
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// The test service, served over mutual TLS with the request-metrics
/// layer, and its metrics port.
pub struct Metered {
    pub served: Served,
    pub state: HttpState<SqliteStorage>,
    pub metrics_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    http: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    grpc: tokio::task::JoinHandle<()>,
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.grpc.abort();
        if let Some(http) = &self.http {
            http.abort();
        }
    }
}

impl Metered {
    /// Starts both; snapshots are never reused (every request reads the
    /// service anew).
    pub async fn start() -> Self {
        let served = Served::start(Arc::new(FixtureParty0::new())).await;
        let state = HttpState::with_min_refresh_interval(served.service.clone(), Duration::ZERO);

        let tls = served.ca.server_tls();
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc_listener.local_addr().unwrap();
        let grpc = GrpcService::new(served.service.clone(), Arc::new(FixtureParty0::new()));
        let mut config = ServerConfig::new(grpc_listener.local_addr().unwrap(), tls);
        config.request_metrics = Some(state.request_metrics_layer());
        let grpc = tokio::spawn(async move {
            serve_on(grpc_listener, config, grpc, core::future::pending())
                .await
                .unwrap();
        });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(serve_http(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            served,
            state,
            metrics_addr,
            grpc_addr,
            stop: Some(stop),
            http: Some(http),
            grpc,
        }
    }

    /// Stops the metrics port and returns what `serve_http` returned.
    pub async fn stop_http(&mut self) -> std::io::Result<()> {
        self.stop.take().unwrap().send(()).unwrap();
        self.http.take().unwrap().await.unwrap()
    }

    /// A client of the layered gRPC server presenting `identity`.
    pub async fn client(&self, identity: Identity) -> Client {
        Client::new(
            crate::common::connect(&self.served.ca, self.grpc_addr.port(), Some(identity))
                .await
                .unwrap(),
        )
    }

    /// Sends `request` (a whole HTTP/1.1 request) to the metrics port and
    /// reads the response until the server closes.
    pub async fn raw(&self, request: &str) -> HttpResponse {
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut bytes))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        HttpResponse {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> HttpResponse {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
        .await
    }
}

/// What [`populate`] made.
pub struct Populated {
    /// `wallet/node-0`: delivered, confirmed and drilled.
    pub wallet: Generated,
    /// `treasury/node-0`: generated, nothing delivered.
    pub treasury: Generated,
    /// The checkpoint witnessed after everything else.
    pub checkpoint: shardkeep_audit::Checkpoint,
}

/// The deployment the metrics and status page tests read, made through
/// the layered gRPC server wherever the service offers a call.
pub async fn populate(metered: &Metered) -> Populated {
    let served = &metered.served;
    let (wallet, custodians) = served.generate_hybrid("wallet").await;
    // Under the policy the wallet's backup set.
    let (treasury, _) = served.generate_hybrid("treasury").await;
    let mut operator = metered.client(served.operator_cert.identity()).await;

    // One failed attempt with a reason an operator typed, then every
    // container sent and its receipt relayed.
    operator
        .record_delivery(RecordDeliveryRequest {
            slot: Some(wire_slot(&wallet.version, wallet.containers[0].index)),
            container_hash: wallet.containers[0].container_hash.to_vec(),
            failure_reason: HOSTILE_REASON.to_owned(),
        })
        .await
        .unwrap();
    deliver_and_confirm(metered, &wallet, &custodians).await;

    drill(metered, &wallet, &custodians).await;

    // An auditor over its inspect limit: the refused call is a
    // rate-limit anomaly (the limit's calls go straight to the service,
    // the refused one over gRPC).
    let auditor = served.register_client("audit-1", &[Role::Auditor]).await;
    let limit = served.service.config().inspect_limit.max;
    for _ in 0..limit {
        served
            .service
            .status(&actor("audit-1"), &StatusQuery::default())
            .await
            .unwrap();
    }
    let refused = metered
        .client(auditor.identity())
        .await
        .get_backup_status(GetBackupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);

    let signer = InMemorySigner::from_seed(SignerId::new("checkpointer").unwrap(), &[0x77; 32]);
    let mut witness = FileWitness::open(served.dir.path().join("witness")).unwrap();
    let checkpoint = shardkeep_audit::checkpoint(
        served.service.storage(),
        &signer,
        &mut witness,
        shardkeep_backup::Clock::now(served.clock.as_ref()),
    )
    .await
    .unwrap();
    Populated {
        wallet,
        treasury,
        checkpoint,
    }
}

/// Every container of `generated` sent to its custodian and the receipt
/// relayed, over gRPC.
async fn deliver_and_confirm(
    metered: &Metered,
    generated: &Generated,
    custodians: &[TestCustodian],
) {
    let served = &metered.served;
    let mut operator = metered.client(served.operator_cert.identity()).await;
    let now = shardkeep_backup::Clock::now(served.clock.as_ref());
    for (container, custodian) in generated.containers.iter().zip(custodians) {
        operator
            .record_delivery(RecordDeliveryRequest {
                slot: Some(wire_slot(&generated.version, container.index)),
                container_hash: container.container_hash.to_vec(),
                failure_reason: String::new(),
            })
            .await
            .unwrap();
        let receipt = Receipt {
            custodian_id: custodian.entity.clone(),
            envelope_id: container.envelope_id,
            status: ReceiptStatus::Received,
            timestamp: now,
        }
        .sign(&custodian.receipt_key)
        .unwrap();
        operator
            .confirm_receipt(ConfirmReceiptRequest {
                slot: Some(wire_slot(&generated.version, container.index)),
                receipt,
            })
            .await
            .unwrap();
    }
}

/// `vault/node-0` v1 re-split into v2 (delivered and confirmed), and
/// retired once its cooldown has passed (the clock moved on by it) while
/// none of its three custodians has signed a destruction statement for
/// the old container. Returns v1.
pub async fn retire_a_resplit_version(metered: &Metered) -> NodeVersion {
    let served = &metered.served;
    let (old, custodians) = served.generate_hybrid("vault").await;
    let data = save_data(0);
    let rotated = served
        .service
        .rotate(
            &served.operator,
            RotateRequest {
                kind: RotationKind::Resplit,
                generate: GenerateRequest {
                    key_id: KeyId::new("vault").unwrap(),
                    node_id: NodeId::new("node-0").unwrap(),
                    save_data: SaveDataSource::Loaded(&data),
                    group: TSS_GROUP,
                    custodians: custodians.iter().map(TestCustodian::choice).collect(),
                    armor: Armor::Binary,
                },
            },
        )
        .await
        .unwrap();
    deliver_and_confirm(metered, &rotated.generated, &custodians).await;
    served.clock.advance(served.service.config().cooldown);
    let retired = served.service.retire_due(&served.operator).await.unwrap();
    assert_eq!(retired, std::slice::from_ref(&old.version));
    old.version
}

/// A drill of `generated` over gRPC: the operator asks, a security
/// person approves, the three custodians submit their shares.
async fn drill(metered: &Metered, generated: &Generated, custodians: &[TestCustodian]) {
    let served = &metered.served;
    let mut operator = metered.client(served.operator_cert.identity()).await;
    let order = SessionOrder::drill(generated, "DRILL-1", 0x66);
    let (cert, key) = served
        .register_signing_client("sec-2", &[Role::Security])
        .await;
    let mut approver = Approver {
        name: actor("sec-2"),
        role: Role::Security,
        key: Arc::new(key),
        client: metered.client(cert.identity()).await,
    };
    // One security approval satisfies a drill (`approved_request` checks).
    let approval_request_hash =
        approved_request(&mut operator, order.approval_params(), [&mut approver]).await;
    let started = operator
        .start_drill(order.start_drill(approval_request_hash))
        .await
        .unwrap()
        .into_inner();
    let shares = served.submissions(custodians, generated, &started.descriptor);
    let drilled = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: shares,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drilled.state(), RecoveryState::Drilled);
    assert!(drilled.success);
}

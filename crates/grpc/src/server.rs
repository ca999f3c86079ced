//! Serving the backup service: mutual TLS, the health and reflection
//! services beside it, a deadline on every request, a concurrency limit,
//! and a graceful shutdown.

use core::time::Duration;
use std::net::SocketAddr;

use shardkeep_storage::Storage;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::error::Error;
use crate::http::RequestMetricsLayer;
use crate::proto::backup_service_server::BackupServiceServer;
use crate::service::{Checkpointer, GrpcService};
use crate::tls::TlsIdentity;

/// The encoded descriptor set of `proto/infra/v1/backup.proto`, as protox
/// compiled it: what the reflection service serves.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/infra_v1_descriptor.bin"));

/// How often [`ServerConfig::new`] checkpoints the audit log.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);

/// Where and how the service is served.
#[derive(Debug)]
pub struct ServerConfig {
    /// The address [`serve`] binds (ignored by [`serve_on`], which is
    /// given its listener).
    pub listen: SocketAddr,
    /// The server's certificate chain and key, and the CA client
    /// certificates must chain to.
    pub tls: TlsIdentity,
    /// The longest a request may run: past it the server answers
    /// `CANCELLED` ("Timeout expired"), or sooner if the client's own
    /// `grpc-timeout` is shorter. An operation running on a blocking
    /// thread (a recovery at threshold, generate, rotate, hard delete) is
    /// not stopped by it: it completes, committed or not as its own
    /// transaction decides, and its answer is dropped.
    pub request_timeout: Duration,
    /// The most requests one connection may have in flight at once; more
    /// wait for one to finish.
    pub concurrency_limit_per_connection: usize,
    /// How long a shutdown waits for in-flight requests (and open health
    /// watches) before it cuts them off.
    pub shutdown_grace: Duration,
    /// Counts every call and its latency for the metrics port
    /// ([`HttpState::request_metrics_layer`](crate::http::HttpState::request_metrics_layer));
    /// `None`: the calls are not counted.
    pub request_metrics: Option<RequestMetricsLayer>,
    /// How often the audit log is checkpointed into the witness of
    /// [`GrpcService::with_checkpoints`] when it has grown since, and once
    /// more when the server stops: an export is then anchored by a
    /// witnessed head, not only by hard deletes. `None`: only hard deletes
    /// checkpoint. Ignored without checkpoints.
    pub checkpoint_interval: Option<Duration>,
}

impl ServerConfig {
    /// `tls` on `listen`, with a 30-second request deadline, 32 requests
    /// in flight per connection, a 30-second shutdown grace, and an audit
    /// checkpoint every 5 minutes.
    #[must_use]
    pub fn new(listen: SocketAddr, tls: TlsIdentity) -> Self {
        Self {
            listen,
            tls,
            request_timeout: Duration::from_secs(30),
            concurrency_limit_per_connection: 32,
            shutdown_grace: Duration::from_secs(30),
            request_metrics: None,
            checkpoint_interval: Some(DEFAULT_CHECKPOINT_INTERVAL),
        }
    }
}

/// Binds `config.listen` and serves `service` there until `shutdown`
/// completes: see [`serve_on`].
///
/// # Errors
/// [`Error::Bind`] when the address cannot be bound; the errors of
/// [`serve_on`].
pub async fn serve<S: Storage + 'static>(
    config: ServerConfig,
    service: GrpcService<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| Error::Bind(config.listen, error))?;
    serve_on(listener, config, service, shutdown).await
}

/// Serves `service` over mutual TLS (rustls on ring) on `listener`, with
/// the gRPC health service (`infra.v1.BackupService` `SERVING`) and the
/// reflection service (v1, from [`FILE_DESCRIPTOR_SET`]) beside it, until
/// `shutdown` completes. Every request runs under
/// `config.request_timeout`; messages are capped at
/// [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE) each way.
///
/// When `shutdown` completes, the health status turns `NOT_SERVING`, the
/// listener closes, each connection is told to open no new stream
/// (HTTP/2 GOAWAY), and the requests in flight finish and are answered;
/// then this returns `Ok`. If they have not finished within
/// `config.shutdown_grace` (a long-lived health watch never does), they
/// are cut off and this returns [`Error::ShutdownGraceExceeded`].
///
/// # Errors
/// [`Error::Transport`] when the TLS configuration is refused or serving
/// fails; [`Error::Reflection`] when the descriptor set does not decode;
/// [`Error::ShutdownGraceExceeded`].
pub async fn serve_on<S: Storage + 'static>(
    listener: TcpListener,
    config: ServerConfig,
    service: GrpcService<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<BackupServiceServer<GrpcService<S>>>()
        .await;
    // Both descriptor sets: a reflection client lists the health service
    // beside the backup service.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| Error::Reflection(error.to_string()))?;
    // v1alpha too: the reflection clients of grpcurl's older releases and
    // of Python's grpcio-reflection ask it.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|error| Error::Reflection(error.to_string()))?;

    let (signalled, mut on_signal) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        health
            .set_not_serving::<BackupServiceServer<GrpcService<S>>>()
            .await;
        // The receiver lives as long as this function: a failed send
        // means it already returned.
        let _ = signalled.send(());
    };
    // Without a request-metrics layer, one whose counts nobody exports:
    // one server type either way.
    let request_metrics = config
        .request_metrics
        .unwrap_or_else(RequestMetricsLayer::unexported);
    // TCP_NODELAY: a response is several small writes (headers, message,
    // trailers); with Nagle's algorithm on, the last waits for the
    // client's delayed ACK, about 40 ms on Linux, on every call.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
    let periodic =
        service
            .checkpointer()
            .zip(config.checkpoint_interval)
            .map(|(checkpointer, every)| {
                tokio::spawn(checkpoint_every(checkpointer, every, checkpoints_stopped))
            });
    let server = Server::builder()
        .tls_config(config.tls.server_config())?
        .timeout(config.request_timeout)
        .concurrency_limit_per_connection(config.concurrency_limit_per_connection)
        .layer(request_metrics)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    let grace = config.shutdown_grace;
    let served = tokio::select! {
        served = &mut server => served.map_err(Error::from),
        () = async {
            if (&mut on_signal).await.is_err() {
                // The server ended without a shutdown: the other branch
                // answers.
                core::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        } => Err(Error::ShutdownGraceExceeded(grace)),
    };
    if let Some(periodic) = periodic {
        // A checkpoint under way finishes first.
        let _ = stop_checkpoints.send(());
        // The requests served are finished: the last checkpoint covers
        // every record they made.
        if let (Ok(()), Ok(mut checkpointer)) = (&served, periodic.await) {
            checkpoint_logged(&mut checkpointer).await;
        }
    }
    served
}

/// Checkpoints the audit log every `every` while it grows, until `stop`;
/// then gives the checkpointer back (a checkpoint under way finishes
/// first).
async fn checkpoint_every<S: Storage + 'static>(
    mut checkpointer: Checkpointer<S>,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Checkpointer<S> {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => checkpoint_logged(&mut checkpointer).await,
            _ = &mut stop => return checkpointer,
        }
    }
}

/// One checkpoint if the log grew; a failure is logged (the log itself is
/// intact: the next tick tries again).
async fn checkpoint_logged<S: Storage + 'static>(checkpointer: &mut Checkpointer<S>) {
    match checkpointer.checkpoint_if_grown().await {
        Ok(Some(sequence)) => tracing::info!(sequence, "audit checkpoint witnessed"),
        Ok(None) => {}
        Err(error) => tracing::error!(error = %error, "audit checkpoint failed"),
    }
}

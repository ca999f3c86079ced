//! The metrics port: an HTTP/1 listener, separate from the gRPC port, that
//! serves `GET /metrics` (Open Metrics text), `GET /` (the read-only status
//! page) and `GET /healthz`.
//!
//! Read-only and bounded: every request reads at most one
//! [`ExporterSnapshot`] (one read-only storage transaction; no write, no
//! audit record), and snapshots are reused for
//! [`HttpState::min_refresh_interval`] so that a burst of requests costs
//! one snapshot; one snapshot is taken at a time. There are no query
//! parameters (a request with a query string is refused), request bodies
//! are refused, and only `GET` and `HEAD` are answered. A client cannot
//! hold a connection open: its request head must arrive within
//! [`HttpTimeouts::header_read`], and no connection lives longer than
//! [`HttpTimeouts::connection`].

mod exporter;
mod page;
mod requests;

use core::fmt;
use core::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use shardkeep_backup::{BackupService, ExporterSnapshot};
use shardkeep_storage::Storage;
use tokio::net::TcpListener;

pub use exporter::MAX_FAILURE_REASONS;
pub use page::{MAX_STATUS_ROWS, escape_html, render_status_page};
pub use requests::{
    LATENCY_BUCKETS, MeteredBody, RequestMetrics, RequestMetricsLayer, ResponseFuture,
};

use exporter::SnapshotCollector;
use requests::RequestFamilies;

/// How long a snapshot is reused by default.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How long a client has to send a request's head, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection of the metrics port may live, by default.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the metrics port waits on a client: a slow or stalled client
/// (slowloris) cannot hold connections open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpTimeouts {
    /// The longest a client may take to send a request's line and
    /// headers, counted from when the connection waits for them (it
    /// opened, or the previous response was sent): past it the connection
    /// is closed. Default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read: Duration,
    /// The longest a connection may stay open, whatever it is doing
    /// (keep-alive requests, a response the client reads slowly): past it
    /// the connection is closed, a request in flight with it. Default
    /// [`DEFAULT_CONNECTION_TIMEOUT`].
    pub connection: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            header_read: DEFAULT_HEADER_READ_TIMEOUT,
            connection: DEFAULT_CONNECTION_TIMEOUT,
        }
    }
}

/// The content type of the Open Metrics text format.
pub const OPEN_METRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The snapshot last taken.
struct Cached {
    taken: Instant,
    snapshot: Arc<ExporterSnapshot>,
}

/// What the metrics port serves from: the backup service, the request
/// series its [`RequestMetricsLayer`] fills, and the snapshot cache. Cheap
/// to clone (the clones share all of it).
pub struct HttpState<S> {
    inner: Arc<Inner<S>>,
    timeouts: HttpTimeouts,
}

struct Inner<S> {
    service: BackupService<S>,
    requests: RequestFamilies,
    min_refresh_interval: Duration,
    cache: tokio::sync::Mutex<Option<Cached>>,
    failures: std::sync::atomic::AtomicU64,
}

impl<S> Clone for HttpState<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            timeouts: self.timeouts,
        }
    }
}

impl<S> fmt::Debug for HttpState<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpState")
            .field("service", &self.inner.service)
            .field("min_refresh_interval", &self.inner.min_refresh_interval)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> HttpState<S> {
    /// The state for `service`, reusing a snapshot for
    /// [`DEFAULT_MIN_REFRESH_INTERVAL`].
    #[must_use]
    pub fn new(service: BackupService<S>) -> Self {
        Self::with_min_refresh_interval(service, DEFAULT_MIN_REFRESH_INTERVAL)
    }

    /// The state for `service`, reusing a snapshot for `interval` (zero:
    /// a fresh snapshot for every request).
    #[must_use]
    pub fn with_min_refresh_interval(service: BackupService<S>, interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                requests: RequestFamilies::default(),
                min_refresh_interval: interval,
                cache: tokio::sync::Mutex::new(None),
                failures: std::sync::atomic::AtomicU64::new(0),
            }),
            timeouts: HttpTimeouts::default(),
        }
    }

    /// The same state, served by [`serve_http`] with `timeouts` instead of
    /// the defaults.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: HttpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// How long [`serve_http`] waits on a client.
    #[must_use]
    pub fn timeouts(&self) -> HttpTimeouts {
        self.timeouts
    }

    /// How long a snapshot is reused.
    #[must_use]
    pub fn min_refresh_interval(&self) -> Duration {
        self.inner.min_refresh_interval
    }

    /// The layer that counts the gRPC calls of the server it wraps into
    /// this state's `/metrics`.
    #[must_use]
    pub fn request_metrics_layer(&self) -> RequestMetricsLayer {
        RequestMetricsLayer::new(self.inner.requests.clone())
    }

    /// The current snapshot: the cached one if it is recent enough, else
    /// a new one (requests arriving meanwhile wait for it).
    ///
    /// # Errors
    /// The backup service's error when the snapshot cannot be read.
    pub async fn snapshot(&self) -> Result<Arc<ExporterSnapshot>, shardkeep_backup::Error> {
        let mut cache = self.inner.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.taken.elapsed() < self.inner.min_refresh_interval
        {
            return Ok(Arc::clone(&cached.snapshot));
        }
        match self.inner.service.exporter_snapshot().await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                *cache = Some(Cached {
                    taken: Instant::now(),
                    snapshot: Arc::clone(&snapshot),
                });
                Ok(snapshot)
            }
            Err(error) => {
                self.inner
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// The Open Metrics text of `/metrics`: the request series and the
    /// service state (or `shardkeep_exporter_up 0` when it cannot be read).
    pub async fn encode_metrics(&self) -> String {
        let snapshot = self.snapshot().await.ok();
        let mut registry = Registry::default();
        self.inner.requests.register(&mut registry);
        registry.register_collector(Box::new(SnapshotCollector {
            snapshot,
            failures: self
                .inner
                .failures
                .load(std::sync::atomic::Ordering::Relaxed),
        }));
        let mut text = String::new();
        // Writing into a String does not fail; a series that cannot be
        // encoded would be a bug, and the scrape shows what came before it.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// The HTML of the status page, or `None` when the service state
    /// cannot be read.
    pub async fn status_page(&self) -> Option<String> {
        let snapshot = self.snapshot().await.ok()?;
        Some(render_status_page(
            self.inner.service.config().deployment_id.as_str(),
            &snapshot,
        ))
    }

    /// The router of the metrics port.
    fn router(self) -> Router
    where
        S: Send + Sync + 'static,
    {
        Router::new()
            .route("/metrics", get(metrics_handler::<S>))
            .route("/", get(page_handler::<S>))
            .route("/healthz", get(healthz))
            .layer(middleware::from_fn(refuse_unbounded))
            .with_state(self)
    }
}

async fn metrics_handler<S: Storage>(State(state): State<HttpState<S>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPEN_METRICS_CONTENT_TYPE)],
        state.encode_metrics().await,
    )
        .into_response()
}

async fn page_handler<S: Storage>(State(state): State<HttpState<S>>) -> Response {
    match state.status_page().await {
        Some(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        None => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service state cannot be read\n",
        ),
    }
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Refuses what could make a request cost more than a snapshot: a query
/// string, and a request body (declared by length or chunked).
async fn refuse_unbounded(request: Request, next: Next) -> Response {
    if request.uri().query().is_some() {
        return plain(
            StatusCode::BAD_REQUEST,
            "no query parameters are accepted\n",
        );
    }
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0");
    if declared_length || request.headers().contains_key(header::TRANSFER_ENCODING) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request bodies are not accepted\n",
        );
    }
    // The body is empty: replace it so that nothing below reads from the
    // connection.
    let (parts, _) = request.into_parts();
    next.run(Request::from_parts(parts, Body::empty())).await
}

/// Serves the metrics port on `listener` until `shutdown` completes, then
/// finishes the requests in flight and returns.
///
/// Each connection speaks HTTP/1.1 and is bounded by the state's
/// [`HttpTimeouts`]: closed when its request head has not arrived within
/// `header_read`, and after `connection` whatever it is doing (also while
/// the server shuts down, so a shutdown never waits longer).
///
/// The CLI's `serve` binds the listener (its own address, not the gRPC
/// one), builds the [`HttpState`] from the same [`BackupService`] the gRPC
/// server uses, gives [`HttpState::request_metrics_layer`] to the server
/// ([`ServerConfig::request_metrics`](crate::ServerConfig::request_metrics)),
/// and runs this beside it.
///
/// # Errors
/// None at present: a failed accept is logged and tried again a second
/// later (out of file descriptors, say), and a failed connection ends
/// only itself.
pub async fn serve_http<S, F>(
    listener: TcpListener,
    state: HttpState<S>,
    shutdown: F,
) -> std::io::Result<()>
where
    S: Storage + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let timeouts = state.timeouts;
    let router = state.router();
    let mut builder = ConnectionBuilder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let builder = Arc::new(builder);
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = core::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(
                        Arc::clone(&builder),
                        TowerToHyperService::new(router.clone()),
                        stream,
                        timeouts.connection,
                        stop.clone(),
                    ));
                }
                // The client gave up before it was accepted.
                Err(error) if is_connection_error(&error) => {}
                // Out of file descriptors and the like: accepting again at
                // once would spin.
                Err(error) => {
                    tracing::warn!(%error, "metrics port: accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Receivers live as long as their connections: none left, nothing to
    // tell.
    let _ = stopping.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// An accept error that concerns one connection only.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, its `lifetime` runs out (then it
/// is dropped: closed), or the server stops (then it finishes the request
/// in flight, within its lifetime, and closes).
async fn serve_connection(
    builder: Arc<ConnectionBuilder<TokioExecutor>>,
    service: TowerToHyperService<Router>,
    stream: tokio::net::TcpStream,
    lifetime: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = core::pin::pin!(connection);
    let deadline = tokio::time::sleep(lifetime);
    let mut deadline = core::pin::pin!(deadline);
    let mut stopping = false;
    loop {
        tokio::select! {
            // The connection's own errors (the client went away, a
            // malformed request, the header-read timeout) end it; there
            // is no one to tell.
            _ = connection.as_mut() => return,
            () = &mut deadline => return,
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

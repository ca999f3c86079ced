//! The metrics port of a service with real data (SQLite, a version
//! generated, delivered and drilled over gRPC through the request-metrics
//! layer, an undelivered one, a rate-limit anomaly, a witnessed
//! checkpoint): `/metrics` shows each of them, every series the dashboard
//! and the alert rules query is in the scrape, a scrape writes nothing
//! (the audit head does not move), and the port refuses what could make
//! a request expensive.
//!
//! The drill runs keydata's `self_test_peer` example: a narrowed run adds
//! `-p shardkeep-keydata --example self_test_peer` (or builds it first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod http_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use http_support::{HOSTILE_REASON, Metered, ops_dir, populate, retire_a_resplit_version};
use shardkeep_grpc::http::{HttpState, HttpTimeouts, serve_http};
use shardkeep_storage::{AuditStore as _, Storage as _, StoredCheckpoint, Transaction as _};

/// The value of the sample `series` (name and labels exactly as
/// encoded), if the scrape has it.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.split(' ').next()?.parse().unwrap())
    })
}

/// Every sample name in the scrape.
fn sample_names(scrape: &str) -> BTreeSet<&str> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap())
        .collect()
}

/// Every `shardkeep_*` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("shardkeep_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // Not a suffix of another identifier.
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if starts_word {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The `expr` of every target of every panel (rows included).
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut panels: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    exprs
}

async fn audit_head(metered: &Metered) -> shardkeep_types::AuditHead {
    let mut tx = metered
        .served
        .service
        .storage()
        .begin_read_only()
        .await
        .unwrap();
    let head = tx.audit_head().await.unwrap();
    tx.rollback().await.unwrap();
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_shows_the_service_state_and_every_series_the_dashboard_and_alerts_use() {
    let mut metered = Metered::start().await;
    let populated = populate(&metered).await;

    let head_before = audit_head(&metered).await;
    let response = metered.get("/metrics").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let scrape = response.body;
    assert!(scrape.ends_with("# EOF\n"), "{scrape}");
    // A second scrape reads the service again (no reuse here) and neither
    // scrape wrote an audit record.
    let again = metered.get("/metrics").await;
    assert_eq!(again.status, 200);
    assert_eq!(audit_head(&metered).await, head_before);

    let expected = [
        ("shardkeep_exporter_up", 1.0),
        ("shardkeep_versions", 2.0),
        ("shardkeep_versions_recoverable", 1.0),
        ("shardkeep_versions_not_recoverable", 1.0),
        ("shardkeep_coverage_ratio", 0.5),
        (
            "shardkeep_node_recoverable{key_id=\"wallet\",node_id=\"node-0\"}",
            1.0,
        ),
        (
            "shardkeep_node_recoverable{key_id=\"treasury\",node_id=\"node-0\"}",
            0.0,
        ),
        (
            "shardkeep_node_coverage_ratio{key_id=\"wallet\",node_id=\"node-0\"}",
            1.0,
        ),
        (
            "shardkeep_node_coverage_ratio{key_id=\"treasury\",node_id=\"node-0\"}",
            0.0,
        ),
        ("shardkeep_delivery_assigned_slots", 6.0),
        ("shardkeep_delivery_confirmed_slots", 3.0),
        ("shardkeep_delivery_pending_slots", 3.0),
        ("shardkeep_delivery_confirmation_ratio", 0.5),
        ("shardkeep_delivery_failed_attempts_total", 1.0),
        (
            &format!(
                "shardkeep_delivery_failures_total{{reason=\"{}\"}}",
                HOSTILE_REASON.replace('"', "\\\"")
            ),
            1.0,
        ),
        ("shardkeep_drills_total", 1.0),
        ("shardkeep_drills_passed_total", 1.0),
        ("shardkeep_drill_success_ratio", 1.0),
        // The fixed clock: the drill passed just now.
        ("shardkeep_drill_oldest_pass_age_seconds", 0.0),
        ("shardkeep_versions_never_drilled", 1.0),
        ("shardkeep_versions_drill_due", 1.0),
        ("shardkeep_exposed_nodes{key_id=\"wallet\"}", 0.0),
        ("shardkeep_exposed_nodes{key_id=\"treasury\"}", 0.0),
        ("shardkeep_destructions_outstanding", 0.0),
        (
            "shardkeep_access_anomalies_total{kind=\"rate-limited\"}",
            1.0,
        ),
        (
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/ConfirmReceipt\",code=\"OK\"}",
            3.0,
        ),
        (
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/RecordDelivery\",code=\"OK\"}",
            4.0,
        ),
        (
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/RecoverMPCShare\",code=\"OK\"}",
            1.0,
        ),
        (
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/GetBackupStatus\",code=\"RESOURCE_EXHAUSTED\"}",
            1.0,
        ),
        (
            "shardkeep_grpc_request_duration_seconds_count{method=\"infra.v1.BackupService/ConfirmReceipt\",code=\"OK\"}",
            3.0,
        ),
        (
            "shardkeep_grpc_request_duration_seconds_bucket{le=\"+Inf\",method=\"infra.v1.BackupService/ConfirmReceipt\",code=\"OK\"}",
            3.0,
        ),
        (
            "shardkeep_audit_checkpoint_sequence",
            populated.checkpoint.sequence as f64,
        ),
    ];
    let mut wrong = Vec::new();
    for (series, value) in expected {
        if sample(&scrape, series) != Some(value) {
            wrong.push(format!(
                "{series}: expected {value}, got {:?}",
                sample(&scrape, series)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\n{scrape}");
    assert!(
        sample(&scrape, "shardkeep_audit_head_sequence").unwrap()
            >= populated.checkpoint.sequence as f64
    );
    assert!(sample(&scrape, "shardkeep_drill_last_duration_seconds").unwrap() >= 0.0);
    assert_eq!(populated.treasury.version.key_id.as_str(), "treasury");
    assert_eq!(populated.wallet.version.key_id.as_str(), "wallet");

    // Every series the dashboard and the alert rules query is scraped.
    let names = sample_names(&scrape);
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ops_dir().join("grafana/dashboard.json")).unwrap(),
    )
    .unwrap();
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "{exprs:?}");
    let alerts = std::fs::read_to_string(ops_dir().join("prometheus/alerts.yml")).unwrap();
    let alert_exprs: Vec<&str> = alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:"))
        .collect();
    assert_eq!(alert_exprs.len(), 6, "{alerts}");
    let mut queried = BTreeSet::new();
    for expr in exprs.iter().map(String::as_str).chain(alert_exprs) {
        let used = metric_names(expr);
        assert!(!used.is_empty(), "{expr} queries no shardkeep series");
        queried.extend(used);
    }
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !names.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the scrape: {missing:?}\n{scrape}"
    );
    assert!(queried.len() >= 30, "{queried:?}");

    // A re-split version retired while its three old containers have no
    // destruction statement: they stay outstanding.
    let retired = retire_a_resplit_version(&metered).await;
    assert_eq!(retired.key_id.as_str(), "vault");
    let scrape = metered.get("/metrics").await.body;
    assert_eq!(
        sample(&scrape, "shardkeep_destructions_outstanding"),
        Some(3.0),
        "{scrape}"
    );

    metered.stop_http().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_refuses_queries_bodies_and_other_methods_and_writes_nothing() {
    let mut metered = Metered::start().await;
    let head_before = audit_head(&metered).await;

    let health = metered.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let query = metered.get("/metrics?name[]=shardkeep_versions").await;
    assert_eq!(query.status, 400, "{}", query.body);
    let page_query = metered.get("/?page=2").await;
    assert_eq!(page_query.status, 400);

    let body = metered
        .raw("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(body.status, 413, "{}", body.body);
    let chunked = metered
        .raw("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await;
    assert_eq!(chunked.status, 413);

    let post = metered
        .raw("POST /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(post.status, 405);
    let missing = metered.get("/admin").await;
    assert_eq!(missing.status, 404);

    // An empty deployment: rates of nothing have no sample.
    let scrape = metered.get("/metrics").await.body;
    assert_eq!(sample(&scrape, "shardkeep_versions"), Some(0.0));
    assert_eq!(sample(&scrape, "shardkeep_coverage_ratio"), None);
    assert!(scrape.contains("# TYPE shardkeep_coverage_ratio gauge"));
    assert_eq!(sample(&scrape, "shardkeep_drill_success_ratio"), None);

    // A snapshot is reused for the state's interval, and only then.
    let cached = HttpState::new(metered.served.service.clone());
    let first = cached.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&first, &cached.snapshot().await.unwrap()));
    let fresh = metered.state.snapshot().await.unwrap();
    assert!(!Arc::ptr_eq(
        &fresh,
        &metered.state.snapshot().await.unwrap()
    ));

    assert_eq!(audit_head(&metered).await, head_before);

    // A stored checkpoint that does not parse: the state cannot be read.
    // The scrape says so (and still carries the request series); the
    // page is unavailable rather than partial.
    metered
        .client(metered.served.operator_cert.identity())
        .await
        .get_backup_status(shardkeep_grpc::proto::GetBackupStatusRequest::default())
        .await
        .unwrap();
    let mut tx = metered.served.service.storage().begin().await.unwrap();
    tx.store_checkpoint(&StoredCheckpoint {
        sequence: head_before.sequence,
        head_hash: head_before.hash,
        checkpoint: b"shardkeep-checkpoint-v2 forged".to_vec(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let scrape = metered.get("/metrics").await;
    assert_eq!(scrape.status, 200);
    assert_eq!(sample(&scrape.body, "shardkeep_exporter_up"), Some(0.0));
    assert_eq!(
        sample(&scrape.body, "shardkeep_exporter_snapshot_failures_total"),
        Some(1.0)
    );
    assert_eq!(sample(&scrape.body, "shardkeep_versions"), None);
    assert!(
        scrape
            .body
            .contains("# TYPE shardkeep_grpc_requests counter")
    );
    let page = metered.get("/").await;
    assert_eq!(page.status, 503);
    assert!(!page.body.contains("forged"));

    // Shutdown completes once the signal fires.
    metered.stop_http().await.unwrap();
}

/// Whether the metrics port at `addr` closes a connection that sent
/// `sent` and then stalls, within `within`.
async fn closes_a_stalled_connection(
    addr: std::net::SocketAddr,
    sent: &[u8],
    within: std::time::Duration,
) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let mut rest = Vec::new();
    // Closed: the read ends (EOF, or a reset); open: the wait runs out.
    tokio::time::timeout(within, stream.read_to_end(&mut rest))
        .await
        .is_ok()
}

/// The metrics port of a fresh service with `timeouts`, and what stops it.
async fn port_with(
    served: &common::Served,
    timeouts: HttpTimeouts,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let state = HttpState::new(served.service.clone()).with_timeouts(timeouts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(serve_http(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_disconnected() {
    use std::time::Duration;
    let defaults = HttpTimeouts::default();
    assert!(defaults.header_read <= Duration::from_secs(30));
    assert!(defaults.connection <= Duration::from_secs(300));
    let served = common::Served::start(Arc::new(common::NoTargets)).await;
    // How long the test waits for the port to close a connection: well
    // past the timeouts set below, well short of the defaults.
    let patience = Duration::from_secs(5);

    // Half a request line, then nothing: closed at the header-read
    // timeout. A whole request is still answered.
    let mut timeouts = HttpTimeouts::default();
    timeouts.header_read = Duration::from_millis(300);
    let (addr, stop, http) = port_with(&served, timeouts).await;
    let started = std::time::Instant::now();
    assert!(
        closes_a_stalled_connection(addr, b"GET /metr", patience).await,
        "half a request line held the connection open for {patience:?}"
    );
    assert!(started.elapsed() >= timeouts.header_read);
    assert!(
        closes_a_stalled_connection(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            patience
        )
        .await
    );
    // A client that connects and sends nothing at all: closed too.
    assert!(closes_a_stalled_connection(addr, b"", patience).await);
    stop.send(()).unwrap();
    http.await.unwrap().unwrap();

    // Headers trickling in under a generous header-read timeout: the
    // connection's own lifetime closes it.
    let mut timeouts = HttpTimeouts::default();
    timeouts.header_read = Duration::from_secs(60);
    timeouts.connection = Duration::from_millis(300);
    let (addr, stop, http) = port_with(&served, timeouts).await;
    assert!(
        closes_a_stalled_connection(addr, b"GET /metrics HTTP/1.1\r\nHost: loc", patience).await,
        "a stalled request outlived the connection timeout"
    );
    // A connection still open does not hold up the shutdown past its
    // lifetime.
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut held, b"GET / HTTP/1.1\r\n")
        .await
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(patience, http)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

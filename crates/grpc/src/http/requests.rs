//! Request counts and latencies per gRPC method and status code, collected
//! by a tower layer around the tonic service.
//!
//! The status of a gRPC call is in the `grpc-status` header of a
//! trailers-only response (every refusal tonic sends) or in the trailers
//! after the body; so a call is counted when its response body ends, and
//! its latency runs from the request to that point. A response dropped
//! before its status (the client went away) counts as `CANCELLED`.
//!
//! Labels are bounded: the method is the request path of a method the
//! server knows (tonic answers any other path with `UNIMPLEMENTED`, which
//! is counted under the method `unknown`), the code one of the 17 gRPC
//! status names.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower_layer::Layer;
use tower_service::Service;

/// Upper bounds, in seconds, of the latency histogram's buckets: from a
/// status read (milliseconds) to a generation or drill (tens of seconds).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Longest request path counted under its own name; a longer one is
/// `unknown` (no method of the service is near this long).
const MAX_METHOD_LEN: usize = 128;

/// The method label of a path no method of the server answers.
const UNKNOWN_METHOD: &str = "unknown";

/// The gRPC status code `UNIMPLEMENTED`: the path named no method.
const UNIMPLEMENTED: i32 = 12;

/// The labels of one request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The method's path without its leading `/`
    /// (`infra.v1.BackupService/GetBackupStatus`), or `unknown`.
    method: String,
    /// The gRPC status name (`OK`, `PERMISSION_DENIED`, ...).
    code: &'static str,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The request series, shared by the layer (which writes them) and the
/// metrics endpoint (which reads them).
#[derive(Clone)]
pub(crate) struct RequestFamilies {
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

impl fmt::Debug for RequestFamilies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFamilies").finish_non_exhaustive()
    }
}

impl Default for RequestFamilies {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl RequestFamilies {
    /// Registers the series (clones sharing the same values) in `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "shardkeep_grpc_requests",
            "gRPC calls answered, by method and status code",
            self.requests.clone(),
        );
        registry.register(
            "shardkeep_grpc_request_duration_seconds",
            "gRPC call latency from the request to the end of the response, by method and status code",
            self.latency.clone(),
        );
    }

    fn observe(&self, method: &str, code: i32, seconds: f64) {
        let method = if code == UNIMPLEMENTED {
            UNKNOWN_METHOD
        } else {
            method
        };
        let labels = RequestLabels {
            method: method.to_owned(),
            code: code_name(code),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }
}

/// The canonical name of gRPC status `code`; `UNKNOWN` for a number that
/// is none.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The numeric gRPC status code `UNKNOWN`.
const UNKNOWN: i32 = 2;
/// The numeric gRPC status code `CANCELLED`.
const CANCELLED: i32 = 1;

/// The status in a `grpc-status` header or trailer, if there is one; a
/// value that is not a number is `UNKNOWN`.
fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status").map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(UNKNOWN)
    })
}

/// A tower [`Layer`] that counts every gRPC call and records its latency
/// by method and status code. Give it to the server
/// ([`ServerConfig::request_metrics`](crate::ServerConfig::request_metrics)),
/// or wrap it around a tonic service of your own
/// (`tonic::transport::Server::builder().layer(layer)`); the series are
/// exported on the metrics port of the [`HttpState`](super::HttpState) it
/// came from ([`HttpState::request_metrics_layer`](super::HttpState::request_metrics_layer)).
#[derive(Clone)]
pub struct RequestMetricsLayer {
    families: RequestFamilies,
}

impl fmt::Debug for RequestMetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetricsLayer")
            .finish_non_exhaustive()
    }
}

impl RequestMetricsLayer {
    pub(crate) fn new(families: RequestFamilies) -> Self {
        Self { families }
    }

    /// A layer whose counts no registry exports (a server without a
    /// metrics port).
    pub(crate) fn unexported() -> Self {
        Self::new(RequestFamilies::default())
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            families: self.families.clone(),
        }
    }
}

/// The service [`RequestMetricsLayer`] wraps around another.
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    families: RequestFamilies,
}

impl<S> fmt::Debug for RequestMetrics<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetrics").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RequestMetrics<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let method = path
            .strip_prefix('/')
            .filter(|method| method.len() <= MAX_METHOD_LEN)
            .unwrap_or(UNKNOWN_METHOD)
            .to_owned();
        ResponseFuture {
            inner: self.inner.call(request),
            call: Some(Call {
                families: self.families.clone(),
                method,
                started: Instant::now(),
                counted: false,
            }),
        }
    }
}

/// One call not yet counted; dropped uncounted, it counts as cancelled.
struct Call {
    families: RequestFamilies,
    method: String,
    started: Instant,
    counted: bool,
}

impl Call {
    fn count(mut self, code: i32) {
        self.record(code);
    }

    fn record(&mut self, code: i32) {
        if !self.counted {
            self.counted = true;
            self.families
                .observe(&self.method, code, self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.record(CANCELLED);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<MeteredBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A trailers-only response carries its status in the headers.
                let call = match (grpc_status(response.headers()), call) {
                    (Some(code), Some(call)) => {
                        call.count(code);
                        None
                    }
                    (_, call) => call,
                };
                Ok(response.map(|inner| MeteredBody { inner, call }))
            }
            Err(error) => {
                if let Some(call) = call {
                    call.count(UNKNOWN);
                }
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its call when the status trailer
    /// passes (or the body ends without one: `UNKNOWN`).
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B> fmt::Debug for MeteredBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status)
                    && let Some(call) = this.call.take()
                {
                    call.count(code);
                }
            }
            Some(Err(_)) | None => {
                if let Some(call) = this.call.take() {
                    call.count(UNKNOWN);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use core::convert::Infallible;
    use core::task::Waker;
    use std::collections::VecDeque;

    use super::*;

    /// A response body: its frames, in order.
    struct Frames(VecDeque<Frame<&'static [u8]>>);

    impl Body for Frames {
        type Data = &'static [u8];
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    fn trailers(status: &'static str) -> Frame<&'static [u8]> {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static(status));
        Frame::trailers(trailers)
    }

    /// A service that answers every call with `headers` and `frames`.
    #[derive(Clone)]
    struct Answer {
        status_header: Option<&'static str>,
        frames: Vec<fn() -> Frame<&'static [u8]>>,
    }

    impl Service<http::Request<()>> for Answer {
        type Response = http::Response<Frames>;
        type Error = Infallible;
        type Future = core::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: http::Request<()>) -> Self::Future {
            let mut response =
                http::Response::new(Frames(self.frames.iter().map(|frame| frame()).collect()));
            if let Some(status) = self.status_header {
                response
                    .headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static(status));
            }
            core::future::ready(Ok(response))
        }
    }

    fn counted(families: &RequestFamilies, code: &'static str) -> u64 {
        families
            .requests
            .get_or_create(&RequestLabels {
                method: "infra.v1.BackupService/GetBackupStatus".to_owned(),
                code,
            })
            .get()
    }

    /// Calls `service` through the layer and returns the response body.
    fn call(families: &RequestFamilies, service: Answer) -> MeteredBody<Frames> {
        let mut service = RequestMetricsLayer::new(families.clone()).layer(service);
        let request = http::Request::builder()
            .uri("/infra.v1.BackupService/GetBackupStatus")
            .body(())
            .unwrap();
        let mut future = core::pin::pin!(service.call(request));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(response)) => response.into_body(),
            _ => unreachable!("the answer is ready"),
        }
    }

    fn next_frame(body: &mut MeteredBody<Frames>) -> Option<Frame<&'static [u8]>> {
        match Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(frame) => frame.map(|frame| frame.unwrap()),
            Poll::Pending => unreachable!("the frames are ready"),
        }
    }

    #[test]
    fn a_call_counts_when_its_status_trailer_passes() {
        let families = RequestFamilies::default();
        let mut body = call(
            &families,
            Answer {
                status_header: None,
                frames: vec![|| Frame::data(&b"message"[..]), || trailers("0")],
            },
        );
        assert!(next_frame(&mut body).unwrap().is_data());
        assert_eq!(counted(&families, "OK"), 0);
        assert!(next_frame(&mut body).unwrap().is_trailers());
        assert_eq!(counted(&families, "OK"), 1);
        assert!(next_frame(&mut body).is_none());
        drop(body);
        assert_eq!(counted(&families, "OK"), 1);
        assert_eq!(counted(&families, "CANCELLED"), 0);
    }

    #[test]
    fn a_trailers_only_refusal_counts_at_once_and_a_dropped_response_as_cancelled() {
        let families = RequestFamilies::default();
        let refused = call(
            &families,
            Answer {
                status_header: Some("7"),
                frames: Vec::new(),
            },
        );
        assert_eq!(counted(&families, "PERMISSION_DENIED"), 1);
        drop(refused);
        assert_eq!(counted(&families, "CANCELLED"), 0);

        let mut body = call(
            &families,
            Answer {
                status_header: None,
                frames: vec![|| Frame::data(&b"partial"[..]), || trailers("0")],
            },
        );
        assert!(next_frame(&mut body).unwrap().is_data());
        drop(body);
        assert_eq!(counted(&families, "CANCELLED"), 1);
        assert_eq!(counted(&families, "OK"), 0);

        // A body that ends without a status.
        let mut body = call(
            &families,
            Answer {
                status_header: None,
                frames: Vec::new(),
            },
        );
        assert!(next_frame(&mut body).is_none());
        assert_eq!(counted(&families, "UNKNOWN"), 1);
    }

    #[test]
    fn every_code_has_its_name_and_others_are_unknown() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(7), "PERMISSION_DENIED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(2), "UNKNOWN");
        assert_eq!(code_name(17), "UNKNOWN");
        assert_eq!(code_name(-1), "UNKNOWN");
    }

    #[test]
    fn a_path_no_method_answers_is_counted_as_unknown() {
        let families = RequestFamilies::default();
        families.observe("infra.v1.BackupService/GetBackupStatus", 0, 0.003);
        families.observe("infra.v1.BackupService/NoSuchMethod", UNIMPLEMENTED, 0.001);
        families.observe("random/path/42", UNIMPLEMENTED, 0.001);
        let mut registry = Registry::default();
        families.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            "shardkeep_grpc_requests_total{method=\"infra.v1.BackupService/GetBackupStatus\",code=\"OK\"} 1\n"
        ));
        assert!(text.contains(
            "shardkeep_grpc_requests_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} 2\n"
        ));
        assert!(!text.contains("NoSuchMethod") && !text.contains("random"));
    }

    #[test]
    fn unparseable_statuses_are_unknown() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(grpc_status(&headers), Some(UNKNOWN));
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_status(&headers), Some(5));
    }
}

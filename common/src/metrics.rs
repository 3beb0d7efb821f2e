//! Prometheus metrics, the Servo of this recipe.
//!
//! One recorder per process (the `metrics` facade is global, like Servo's
//! registry), rendered at `GET /metrics` in the Prometheus text format.
//! [`instrument`] adds the two series every service has:
//!
//! - `http_requests_total{service, method, route, status}`
//! - `http_request_duration_seconds{service, method, route}` (histogram)
//!
//! `route` is the matched pattern (`/middletier/rss/user/{user}`), never the
//! raw path, so user ids cannot blow up the number of series.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets (seconds) for every `*_seconds` metric: 1 ms to 10 s,
/// which spans a cache hit to a command timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first use and returns its handle.
///
/// If another recorder is already installed (a test harness, say), metrics go
/// there and `/metrics` renders an empty page rather than failing.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            // Histograms buffer samples until upkeep folds them into buckets;
            // without it an unscraped process would grow. The thread lives as
            // long as the process, like the global recorder it maintains.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

/// `GET /metrics` in the Prometheus text exposition format.
pub async fn render() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
        .into_response()
}

/// Adds `GET /metrics` and per-route request metrics to a service's router.
pub fn instrument<S>(router: Router<S>, service: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    track_requests(router, service).route("/metrics", get(render))
}

/// Per-route request metrics only: for routes merged into a router that
/// [`instrument`] already gave `/metrics`.
pub fn track_requests<S>(router: Router<S>, service: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    handle();
    router.route_layer(axum::middleware::from_fn(
        move |req: Request, next: Next| track(service, req, next),
    ))
}

async fn track(service: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total",
        "service" => service, "method" => method, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("http_request_duration_seconds",
        "service" => service, "method" => method, "route" => route)
    .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a metric label: the standard ones by name, anything else
/// as `other`. A label is a series kept for good, and a client may send
/// any token as a method: one 4,000-character method must not become 17
/// series of 4 KB each.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

//! The two ends of a traced HTTP hop.
//!
//! - [`layer`]: every service's request span, named after the route (`GET
//!   /middletier/rss/user/{user}`), recording the status (a 5xx marks it as
//!   an error). Inside the stack ([`Incoming::Continue`]) it continues the
//!   caller's trace from a W3C `traceparent` header: the middletier the
//!   edge's. At the edge ([`Incoming::Link`]) a `traceparent` comes from a
//!   browser or whoever else reaches it, so it is not obeyed: the request
//!   starts a trace of its own, sampled by our sampler, not by a flag the
//!   client set, and with a trace id the client did not choose (error
//!   references are made from it); the client's trace is kept as a link,
//!   for correlation.
//! - [`traceparent`]: the header for an outgoing call, made from a span, so
//!   the callee's request span becomes that span's child.
//!
//! With tracing off (see [`super::enabled`]) the request span is the same
//! cheap `DEBUG` span `tower-http` makes by default, and no header is sent.

use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, Response};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::trace::IdGenerator as _;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, TraceLayer};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The request-span layer every service puts around its routes.
pub type ServerTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    DefaultOnRequest,
    fn(&Response<Body>, Duration, &Span),
>;

/// What a request span does with an incoming `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Continue the caller's trace: the caller is inside the stack.
    Continue,
    /// Start a trace of our own, linked to the caller's: the caller may be
    /// anyone (see the module docs).
    Link,
}

/// The layer: a request span for each request (see [`Incoming`]),
/// [`record_response`] after.
pub fn layer(incoming: Incoming) -> ServerTraceLayer {
    let make_span = match incoming {
        Incoming::Continue => server_span as fn(&Request<Body>) -> Span,
        Incoming::Link => linked_server_span as fn(&Request<Body>) -> Span,
    };
    TraceLayer::new_for_http()
        .make_span_with(make_span)
        .on_response(record_response as fn(&Response<Body>, Duration, &Span))
}

/// The span one request is served in: a child of the caller's span when the
/// request carries a valid `traceparent`, the root of a new trace otherwise.
pub fn server_span(request: &Request<Body>) -> Span {
    let span = request_span(request);
    if let Some(parent) = incoming_context(request) {
        // Only fails when no OpenTelemetry layer is installed, and then
        // there is no trace to continue.
        let _ = span.set_parent(parent);
    }
    span
}

/// The span one request is served in, the root of a new trace; a valid
/// incoming `traceparent` is kept as a link, not obeyed.
pub fn linked_server_span(request: &Request<Body>) -> Span {
    let span = request_span(request);
    if let Some(caller) = incoming_context(request) {
        span.add_link(caller.span().span_context().clone());
    }
    span
}

/// The caller's trace context, when the request carries a valid one.
fn incoming_context(request: &Request<Body>) -> Option<opentelemetry::Context> {
    if !super::enabled() {
        return None;
    }
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
    });
    context.span().span_context().is_valid().then_some(context)
}

fn request_span(request: &Request<Body>) -> Span {
    let method = request.method();
    if !super::enabled() {
        return tracing::debug_span!("request", %method, uri = %request.uri());
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
        error.reference = Empty,
    );
    span
}

/// Records the status on the request span; a 5xx is an error.
pub fn record_response(response: &Response<Body>, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    tracing::debug!(
        status = status.as_u16(),
        ?latency,
        "finished processing request"
    );
}

/// The `traceparent` (and `tracestate`) headers that make a call a child of
/// `span`; empty with tracing off.
pub fn traceparent(span: &Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if super::enabled() {
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(
                &context,
                &mut opentelemetry_http::HeaderInjector(&mut headers),
            );
        });
    }
    headers
}

/// A short reference for a failed request that a user can quote: the first
/// 16 hex digits of its trace id (also recorded on the request span as
/// `error.reference`, which trace UIs can search for), or random ones when
/// tracing is off. Call it inside the request span.
pub fn error_reference() -> String {
    let current = Span::current();
    let trace_id = if super::enabled() {
        Some(current.context().span().span_context().trace_id())
            .filter(|id| *id != opentelemetry::trace::TraceId::INVALID)
    } else {
        None
    };
    let trace_id = trace_id
        .unwrap_or_else(|| opentelemetry_sdk::trace::RandomIdGenerator::default().new_trace_id());
    let mut reference = trace_id.to_string();
    reference.truncate(16);
    current.record("error.reference", reference.as_str());
    reference
}

//! An OTLP/HTTP trace receiver inside the test process: what an
//! OpenTelemetry Collector's `otlp` receiver does with
//! `POST /v1/traces` (protobuf), decoded with the `opentelemetry-proto`
//! crate, keeping every span with the name of the service that sent it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// One received span, flattened for assertions.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The resource's `service.name`.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub name: String,
    /// OTLP's span kind: 2 server, 3 client, 1 internal.
    pub kind: i32,
    /// 2 is an error.
    pub status: i32,
    pub attributes: Vec<(String, String)>,
    /// Linked spans: (trace id, span id).
    pub links: Vec<(String, String)>,
}

impl Received {
    /// The attribute `key`, as text.
    pub(crate) fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) const SERVER: i32 = 2;
pub(crate) const CLIENT: i32 = 3;
pub(crate) const STATUS_ERROR: i32 = 2;

/// The receiver; it stops with the test's runtime.
pub(crate) struct Receiver {
    pub port: u16,
    shared: Shared,
}

#[derive(Clone)]
struct Shared {
    /// Whether to keep the spans or, like a collector passing them on,
    /// only decode and count them (for benchmarks, where keeping millions
    /// of spans would measure this receiver rather than the services).
    keep: bool,
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<usize>>,
    counted: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1.
    pub(crate) async fn start() -> Receiver {
        Self::start_on(0).await
    }

    /// Listens on `port` of 127.0.0.1 (4318 is OTLP/HTTP's default).
    pub(crate) async fn start_on(port: u16) -> Receiver {
        Self::listen(port, true).await
    }

    /// A receiver that decodes and counts spans without keeping them.
    pub(crate) async fn start_counting() -> Receiver {
        Self::listen(0, false).await
    }

    async fn listen(port: u16, keep: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("the OTLP receiver cannot listen on {port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let shared = Shared {
            keep,
            spans: Arc::default(),
            requests: Arc::default(),
            counted: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(shared.clone());
        if keep {
            tokio::spawn(async move { axum::serve(listener, app).await });
        } else {
            // A collector is a process of its own: decoding big batches on
            // the caller's runtime would delay the benchmark's clients and
            // be counted as the services' cost.
            let listener = listener.into_std().unwrap();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    axum::serve(listener, app).await
                })
            });
        }
        Receiver { port, shared }
    }

    /// How many spans arrived, kept or not.
    pub(crate) fn counted(&self) -> usize {
        *self.shared.counted.lock().unwrap()
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` should say.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Received> {
        self.shared.spans.lock().unwrap().clone()
    }

    /// The spans of one trace.
    pub(crate) fn trace(&self, trace_id: &str) -> Vec<Received> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// The trace the edge started for a request that came with the
    /// caller's `trace_id` (the edge links to a caller's trace rather than
    /// continue it), once its request span has arrived.
    pub(crate) fn trace_linked_to(&self, trace_id: &str) -> Option<String> {
        self.spans()
            .into_iter()
            .find(|s| s.kind == SERVER && s.links.iter().any(|(t, _)| t == trace_id))
            .map(|s| s.trace_id)
    }

    /// How many export requests arrived.
    pub(crate) fn requests(&self) -> usize {
        *self.shared.requests.lock().unwrap()
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    *shared.requests.lock().unwrap() += 1;
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let count = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum::<usize>();
    *shared.counted.lock().unwrap() += count;
    if !shared.keep {
        return StatusCode::OK;
    }
    let mut spans = shared.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(text)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            spans.extend(scope.spans.into_iter().map(|span| flatten(&service, span)));
        }
    }
    StatusCode::OK
}

fn flatten(service: &str, span: Span) -> Received {
    Received {
        service: service.to_owned(),
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_id: hex(&span.parent_span_id),
        name: span.name,
        kind: span.kind,
        status: span.status.map_or(0, |s| s.code),
        attributes: span
            .attributes
            .iter()
            .map(|a| (a.key.clone(), text(a)))
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect(),
    }
}

fn text(attribute: &KeyValue) -> String {
    match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

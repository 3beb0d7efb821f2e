//! Logs and traces: `tracing` events as text or JSON lines, and, when asked
//! for, OpenTelemetry traces of every request across the stack.
//!
//! The pattern: instrument once with `tracing` spans, and decide at start-up
//! where they go.
//!
//! - **Logs** go to stdout (twelve-factor: the platform collects them),
//!   filtered by `RUST_LOG` (default `info`), as text for people or JSON
//!   lines for log pipelines.
//! - **Traces** are exported with OTLP over HTTP/protobuf only when the
//!   standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is
//!   set. The other standard variables apply: `OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `..._ARG`,
//!   `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SDK_DISABLED`. When
//!   it is unset, no OpenTelemetry layer is installed, no exporter runs and
//!   the request spans are not even created ([`enabled`] is false), so
//!   tracing costs nothing.
//! - With tracing on, each JSON log line carries the `trace_id` and
//!   `span_id` it was written under, so a log line leads to its trace.
//!
//! [`http`] has the two ends of a hop: the server span that continues an
//! incoming W3C `traceparent`, and the header that carries it onwards.

pub mod export;
pub mod http;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TraceContextExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether traces are being exported; read on every request, so a plain flag.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces. When false, code that would only
/// build spans for the exporter (request spans, attempt spans) skips them.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The span `make` builds, with tracing on; a disabled span (which costs
/// nothing) otherwise. For spans that only the trace exporter wants.
pub fn span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// Keeps the exporter running; dropping it flushes the spans not yet sent
/// (within the exporter's timeout) and stops it. Hold it in `main`.
#[must_use = "traces are flushed when this is dropped: keep it until the process ends"]
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("could not flush the last traces: {e}");
        }
    }
}

/// Installs the global subscriber: logs to stdout in `format`, and traces
/// exported as `service` (unless `OTEL_SERVICE_NAME` names it) when an OTLP
/// endpoint is configured. A second call installs nothing and returns an
/// inert handle, so the all-in-one binary and tests can call it freely.
pub fn init(format: LogFormat, service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (provider, otel) = match export::Settings::from_env(|key| std::env::var(key).ok()) {
        Some(settings) => match export::provider(&settings, service) {
            Ok(provider) => {
                use opentelemetry::trace::TracerProvider as _;
                let tracer = provider.tracer("rss-recipes");
                // Source locations, thread names and busy/idle timings
                // would add five attributes and two clock reads to every
                // span, for nothing a reader of the trace needs.
                let layer = tracing_opentelemetry::layer()
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_tracer(tracer);
                (Some(provider), Some(layer))
            }
            Err(e) => {
                eprintln!("traces will not be exported: {e}");
                (None, None)
            }
        },
        None => (None, None),
    };
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Json => json_lines().boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(logs)
        .try_init()
        .is_ok();
    if !installed {
        // A subscriber is already installed; this one (and its exporter)
        // would receive nothing.
        return Telemetry::default();
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        ENABLED.store(true, Ordering::Relaxed);
        tracing::info!(service, "exporting traces over OTLP");
    }
    Telemetry { provider }
}

/// JSON lines in `tracing-subscriber`'s shape (`timestamp`, `level`,
/// `fields`, `target`), plus `trace_id` and `span_id` at the top level when
/// the line was written inside a traced span.
fn json_lines<S>() -> json_subscriber::fmt::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let mut layer = json_subscriber::fmt::layer().with_current_span(false);
    layer
        .inner_layer_mut()
        .add_multiple_dynamic_fields(|event, context, writer| {
            if !enabled() {
                return;
            }
            let Some(span) = context.event_span(event) else {
                return;
            };
            // Only the global dispatcher is used by the binaries, and
            // reading it here does not re-enter it.
            let ids = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
            });
            if let Some(context) = ids {
                let otel = context.span();
                let span_context = otel.span_context();
                if span_context.is_valid() {
                    let _ = writer.write_field("trace_id", span_context.trace_id().to_string());
                    let _ = writer.write_field("span_id", span_context.span_id().to_string());
                }
            }
        });
    layer
}

//! Whether and how traces are exported: the standard OpenTelemetry
//! variables read once at start-up, and the tracer provider they describe.

use opentelemetry_otlp::WithExportConfig as _;

/// What the environment asks of the exporter. Only the questions we must
/// answer ourselves are here; the SDK and the OTLP exporter read the rest
/// of the standard variables (sampler, batch sizes, headers, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `OTEL_SERVICE_NAME`, when set; otherwise the binary's own name is used.
    pub service_name: Option<String>,
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP exporter could not be built ({0}); check OTEL_EXPORTER_OTLP_ENDPOINT")]
pub struct ExportError(String);

impl Settings {
    /// `Some` when an OTLP endpoint is configured (the generic
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or the traces-only one) and neither
    /// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns it off.
    /// An empty value counts as unset, so docker-compose can pass the
    /// variable through with an empty default.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Settings> {
        let set = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let no_exporter =
            set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
        (endpoint && !disabled && !no_exporter).then(|| Settings {
            service_name: set("OTEL_SERVICE_NAME"),
        })
    }
}

/// A tracer provider that batches spans and sends them with OTLP over
/// HTTP/protobuf, from a thread of its own (so a slow collector never holds
/// up a request), named `default_service` unless `OTEL_SERVICE_NAME` says
/// otherwise.
pub fn provider(
    settings: &Settings,
    default_service: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, ExportError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|e| ExportError(e.to_string()))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if settings.service_name.is_none() {
        resource = resource.with_service_name(default_service.to_owned());
    }
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Option<Settings> {
        Settings::from_env(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(from(&[]), None);
        assert_eq!(from(&[("OTEL_SERVICE_NAME", "edge")]), None);
        assert_eq!(from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]), None);
    }

    #[test]
    fn either_endpoint_variable_turns_export_on() {
        let on = Some(Settings { service_name: None });
        assert_eq!(
            from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]),
            on
        );
        assert_eq!(
            from(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )]),
            on
        );
        assert_eq!(
            from(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SERVICE_NAME", "reader-edge")
            ]),
            Some(Settings {
                service_name: Some("reader-edge".into())
            })
        );
    }

    #[test]
    fn the_standard_switches_turn_it_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(from(&[endpoint, ("OTEL_SDK_DISABLED", "true")]), None);
        assert_eq!(from(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]), None);
        assert!(from(&[endpoint, ("OTEL_TRACES_EXPORTER", "otlp")]).is_some());
    }
}

//! The Eureka REST API, under `/eureka/v2/` (Netflix) and `/eureka/`
//! (Spring Cloud), plus `/`, `/healthcheck` and `/metrics`.
//!
//! Like a Eureka server it speaks JSON and XML: request bodies in either
//! (by `Content-Type`, or by their first character when it is missing), and
//! responses in JSON when `Accept` asks for it, XML otherwise. Full fetches
//! and deltas come from the response cache in [`crate::state`].
//!
//! Every path also answers with a trailing slash (`apps/`), as Eureka's
//! Jersey servers do: standard clients (py-eureka-client,
//! eureka-js-client) fetch the registry that way.
//!
//! Every answer carries `X-Content-Type-Options: nosniff` and a CSP that
//! allows nothing (`default-src 'none'`): records echo what instances sent,
//! and a browser must never run any of it (see [`crate::xml`] for the other
//! half of that defence).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use common::api::ErrorBody;
use common::discovery::eureka::{InstanceRecord, Status};
use common::discovery::now_ms;
use serde_json::{Value, json};
use tower::Layer;
use tower_http::compression::CompressionLayer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::leases::{RegisterError, Renewal};
use crate::records::Format;
use crate::state::{AppState, Kind, content_type};
use crate::xml::{XmlError, from_xml};
use crate::{page, records};

/// A registration is a few KiB; this is generous.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The API's policy: no script, no style, nothing (the home page sets its
/// own, which allows its stylesheet).
const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// JSON when the client asks for it; XML otherwise, as Eureka does.
fn negotiate(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("json") {
        Format::Json
    } else {
        Format::Xml
    }
}

/// `{root: value}` in the negotiated format.
fn respond(headers: &HeaderMap, root: &str, value: &Value) -> Response {
    let format = negotiate(headers);
    (
        [(header::CONTENT_TYPE, content_type(format))],
        format.encode(root, value),
    )
        .into_response()
}

pub(crate) fn router(state: AppState) -> Router {
    let eureka = Router::new()
        .route("/apps", get(all_apps))
        .route("/apps/delta", get(delta))
        .route("/apps/watch", get(watch))
        .route("/apps/{app}", get(get_app).post(register))
        .route(
            "/apps/{app}/{id}",
            get(get_instance).put(renew).delete(cancel),
        )
        .route(
            "/apps/{app}/{id}/status",
            put(set_status).delete(clear_status),
        )
        .route("/apps/{app}/{id}/metadata", put(update_metadata))
        .route("/instances/{id}", get(instance_by_id))
        .route("/vips/{vip}", get(|s, h, p| by_vip(s, h, p, false)))
        .route("/svips/{vip}", get(|s, h, p| by_vip(s, h, p, true)));
    let routes = Router::new()
        .nest("/eureka/v2", eureka.clone())
        .nest("/eureka", eureka)
        .route("/", get(page::home))
        .route("/registry.css", get(page::stylesheet))
        .route(
            "/healthcheck",
            get(|| async { Json(json!({"status": "UP"})) }),
        )
        .fallback(|| async { ApiError::NoSuchPath })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    let routes = common::limits::apply(
        common::metrics::instrument(routes, "registry"),
        MAX_BODY_BYTES,
    )
    .layer(CompressionLayer::new().gzip(true));
    let routes = common::security::apply(routes, API_POLICY).layer(common::telemetry::http::layer(
        common::telemetry::http::Incoming::Continue,
    ));
    // `apps/` is `apps`: the slash is trimmed before routing, which is why
    // this wraps the router rather than being one of its layers.
    Router::new().fallback_service(NormalizePathLayer::trim_trailing_slash().layer(routes))
}

async fn all_apps(State(state): State<AppState>, headers: HeaderMap) -> Response {
    metrics::counter!("registry_fetches_total", "kind" => "full").increment(1);
    state
        .cached(Kind::Full, negotiate(&headers))
        .respond(&headers)
}

async fn delta(State(state): State<AppState>, headers: HeaderMap) -> Response {
    metrics::counter!("registry_fetches_total", "kind" => "delta").increment(1);
    state
        .cached(Kind::Delta, negotiate(&headers))
        .respond(&headers)
}

/// The longest a watch is held open, whatever the client asks.
const MAX_WATCH: Duration = Duration::from_secs(60);
/// A watch's wait when the client does not say.
const DEFAULT_WATCH: Duration = Duration::from_secs(30);

/// `GET /eureka/v2/apps/watch?version=<n>[&timeout=<seconds>]`: not
/// Eureka's, ours. Answers `{"version": <v>}` as soon as the registry's
/// version is not `n` (at once if it already is not), or when the timeout
/// runs out: a long poll, so a client learns of a change within
/// milliseconds and an idle registry answers one request per client per
/// timeout. The version is `versions__delta` of the full and delta fetches.
/// A registry without this call (Eureka's own) answers 404, and clients
/// poll instead.
async fn watch(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let param = |name| common::query::param(query.as_deref(), name);
    let known = param("version")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::BadWatch(
                "version=<the versions__delta you hold> is missing or not a number".to_owned(),
            )
        })?;
    let wait = match param("timeout") {
        None => DEFAULT_WATCH,
        Some(raw) => raw
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| ApiError::BadWatch(format!("timeout={raw:?} is not a number of seconds")))?
            .min(MAX_WATCH),
    };
    metrics::counter!("registry_watches_total").increment(1);
    let version = tokio::select! {
        version = state.changed(known, wait) => version,
        // A stopping registry lets its watchers go at once.
        () = state.stopping() => state.read().version(),
    };
    Ok(Json(json!({ "version": version })))
}

async fn get_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let table = state.read();
    let leases = table
        .app(&app)
        .ok_or_else(|| ApiError::NoSuchApp(app.clone()))?;
    let value = records::application(&app.to_ascii_uppercase(), leases.values());
    Ok(respond(&headers, "application", &value))
}

async fn get_instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let table = state.read();
    let lease = table
        .lease(&app, &id)
        .ok_or(ApiError::NoSuchInstance { app, id })?;
    Ok(respond(&headers, "instance", &records::instance(lease)))
}

async fn instance_by_id(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let table = state.read();
    let lease = table
        .lease_by_id(&id)
        .ok_or_else(|| ApiError::NoSuchInstance {
            app: "*".into(),
            id: id.clone(),
        })?;
    Ok(respond(&headers, "instance", &records::instance(lease)))
}

async fn by_vip(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(vip): Path<String>,
    secure: bool,
) -> Result<Response, ApiError> {
    let table = state.read();
    let value = records::by_vip(&table, &vip, secure).ok_or(ApiError::NoSuchVip(vip))?;
    Ok(respond(&headers, "applications", &value))
}

async fn register(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let record = InstanceRecord::from_envelope(parse_body(&headers, &body)?)
        .map_err(|e| ApiError::BadBody(e.to_string()))?;
    let action = state.write().register(&app, record, now_ms())?;
    metrics::counter!("registry_registrations_total").increment(1);
    tracing::debug!(app, ?action, "registered");
    state.update_gauges();
    Ok(StatusCode::NO_CONTENT)
}

async fn renew(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let dirty = query_param(query.as_deref(), "lastDirtyTimestamp").and_then(|v| v.parse().ok());
    let renewal = state.write().renew(&app, &id, dirty, now_ms());
    match renewal {
        Renewal::Renewed => {
            metrics::counter!("registry_renewals_total", "outcome" => "ok").increment(1);
            Ok(StatusCode::OK)
        }
        Renewal::NotFound => {
            metrics::counter!("registry_renewals_total", "outcome" => "not_found").increment(1);
            Err(ApiError::NoSuchInstance { app, id })
        }
    }
}

async fn cancel(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !state.write().cancel(&app, &id, now_ms()) {
        return Err(ApiError::NoSuchInstance { app, id });
    }
    metrics::counter!("registry_cancellations_total").increment(1);
    tracing::info!(app, id, "cancelled");
    state.update_gauges();
    Ok(StatusCode::OK)
}

async fn set_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let raw = query_param(query.as_deref(), "value").ok_or(ApiError::BadStatus(None))?;
    let status = Status::parse_strict(&raw).ok_or(ApiError::BadStatus(Some(raw)))?;
    if !state.write().set_override(&app, &id, status, now_ms()) {
        return Err(ApiError::NoSuchInstance { app, id });
    }
    state.update_gauges();
    Ok(StatusCode::OK)
}

async fn clear_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let fallback = match query_param(query.as_deref(), "value") {
        Some(raw) => Some(Status::parse_strict(&raw).ok_or(ApiError::BadStatus(Some(raw)))?),
        None => None,
    };
    if !state.write().clear_override(&app, &id, fallback, now_ms()) {
        return Err(ApiError::NoSuchInstance { app, id });
    }
    state.update_gauges();
    Ok(StatusCode::OK)
}

async fn update_metadata(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let entries: Vec<(String, String)> = url_pairs(query.as_deref());
    if !state.write().update_metadata(&app, &id, &entries, now_ms()) {
        return Err(ApiError::NoSuchInstance { app, id });
    }
    Ok(StatusCode::OK)
}

fn url_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// A request body in JSON or XML, as a JSON value.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    parse_body_as(content_type, body)
}

/// A request body in JSON or XML (by `content_type`, else by its first
/// character), as a JSON value. Public for the fuzz target.
pub fn parse_body_as(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::BadBody("the body is not UTF-8".into()))?;
    let content_type = content_type.to_ascii_lowercase();
    let xml = content_type.contains("xml")
        || (!content_type.contains("json") && text.trim_start().starts_with('<'));
    if xml {
        let (root, value) = from_xml(text)?;
        Ok(json!({ root: value }))
    } else {
        serde_json::from_str(text).map_err(|e| ApiError::BadBody(format!("invalid JSON: {e}")))
    }
}

/// Everything that can go wrong in a request, and its HTTP form.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot read the body: {0}; send {{\"instance\": {{...}}}} as JSON or <instance>...</instance> as XML"
    )]
    /// The body is neither a readable JSON nor XML record.
    BadBody(String),
    /// The XML is malformed or hostile.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The record lacks what a registration needs.
    #[error("registration refused: {0}")]
    Register(#[from] RegisterError),
    /// The app is not registered.
    #[error("no application {0} is registered")]
    NoSuchApp(String),
    /// The instance is not registered.
    #[error("no instance {id} of {app} is registered")]
    NoSuchInstance {
        /// The application in the path.
        app: String,
        /// The instance id in the path.
        id: String,
    },
    /// No instance serves the VIP.
    #[error("no instance serves VIP {0}")]
    NoSuchVip(String),
    /// A status override that is not a status.
    #[error("{}", match .0 { Some(v) => format!("{v:?} is not a status; use UP, DOWN, STARTING, OUT_OF_SERVICE or UNKNOWN"), None => "missing ?value=<status>".to_owned() })]
    BadStatus(Option<String>),
    /// A watch's query is not what it takes.
    #[error("{0}; use /eureka/v2/apps/watch?version=<n>&timeout=<seconds>")]
    BadWatch(String),
    /// No such path.
    #[error("no such path; the Eureka API is under /eureka/v2/ and /eureka/")]
    NoSuchPath,
    /// A method the path does not take.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadBody(_)
            | Self::Xml(_)
            | Self::Register(_)
            | Self::BadStatus(_)
            | Self::BadWatch(_) => StatusCode::BAD_REQUEST,
            Self::NoSuchApp(_)
            | Self::NoSuchInstance { .. }
            | Self::NoSuchVip(_)
            | Self::NoSuchPath => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        };
        (status, Json(ErrorBody::new(self.to_string()))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_chosen_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        assert_eq!(negotiate(&headers), Format::Xml);
        headers.insert(
            header::ACCEPT,
            axum::http::HeaderValue::from_static("application/json"),
        );
        assert_eq!(negotiate(&headers), Format::Json);
    }

    #[test]
    fn bodies_are_read_by_content_type_or_by_sniffing() {
        let none = HeaderMap::new();
        assert_eq!(
            parse_body(&none, br#"{"instance": {"a": 1}}"#).unwrap()["instance"]["a"],
            1
        );
        assert_eq!(
            parse_body(&none, b"<instance><a>1</a></instance>").unwrap()["instance"]["a"],
            "1"
        );
        assert!(matches!(
            parse_body(&none, b"\xff"),
            Err(ApiError::BadBody(_))
        ));
        assert!(matches!(
            parse_body(&none, b"{nope"),
            Err(ApiError::BadBody(_))
        ));
    }
}

//! Spawning services in-process, zero2prod style: `spawn_*` builds the
//! service on port 0, runs it on the test's runtime, and returns a handle
//! with one helper per endpoint. Dropping the handle stops the service.

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A running service; stops when dropped.
pub struct Running {
    pub port: u16,
    stop: CancellationToken,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Builds a service from `argv` (its binary's flags) and runs it until
/// the returned handle is dropped.
macro_rules! spawn {
    ($service:ident, $argv:expr) => {{
        let config = $service::config::Config::try_parse_from($argv).unwrap();
        let app = $service::Application::build(config).await.unwrap();
        let port = app.port();
        let stop = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(stop.clone()));
        Running { port, stop }
    }};
}

/// A registry on a free port.
pub struct TestRegistry {
    pub running: Running,
    http: reqwest::Client,
}

pub async fn spawn_registry(args: &[&str]) -> TestRegistry {
    let mut argv = vec!["registry", "--port", "0"];
    argv.extend_from_slice(args);
    TestRegistry {
        running: spawn!(registry, argv),
        http: reqwest::Client::new(),
    }
}

/// A middletier on a free port, on its own (no registry), allowed to read
/// feeds from this machine (the test feed servers), with a memory store.
pub struct TestMiddletier {
    pub running: Running,
    http: reqwest::Client,
}

pub async fn spawn_middletier(args: &[&str]) -> TestMiddletier {
    let mut argv = vec![
        "middletier",
        "--port",
        "0",
        "--registry-url=",
        "--allow-private-feeds",
    ];
    argv.extend_from_slice(args);
    TestMiddletier {
        running: spawn!(middletier, argv),
        http: reqwest::Client::new(),
    }
}

impl TestMiddletier {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// `POST /middletier/rss/user/{user}?url=`.
    pub async fn subscribe(&self, user: &str, feed: &str) -> StatusCode {
        self.http
            .post(self.url(&format!("/middletier/rss/user/{user}")))
            .query(&[("url", feed)])
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `GET /middletier/rss/user/{user}`: the status and the JSON body.
    pub async fn feeds(&self, user: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(&format!("/middletier/rss/user/{user}")))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

/// How a test asks the registry to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub const BOTH: [Format; 2] = [Format::Json, Format::Xml];

    fn accept(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}

/// An answer: status, headers and body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl TestRegistry {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// Any call, answered in `format`.
    pub async fn call(&self, method: Method, path: &str, format: Format) -> Answer {
        let response = self
            .http
            .request(method, self.url(path))
            .header("accept", format.accept())
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// `POST {base}apps/{app}` with a JSON record.
    pub async fn register(&self, base: &str, app: &str, instance: Value) -> StatusCode {
        self.http
            .post(self.url(&format!("{base}apps/{app}")))
            .json(&serde_json::json!({ "instance": instance }))
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// A minimal record a Eureka client would send.
pub fn record(app: &str, id: &str, port: u16) -> Value {
    serde_json::json!({
        "instanceId": id, "hostName": "127.0.0.1", "app": app, "ipAddr": "127.0.0.1",
        "status": "UP", "port": {"$": port, "@enabled": "true"},
        "vipAddress": app.to_ascii_lowercase(), "secureVipAddress": app.to_ascii_lowercase(),
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}
    })
}

/// An edge on a free port, finding middletiers through `registry_url`
/// (fetched every 100 ms, so a registered instance is called at once).
pub struct TestEdge {
    pub running: Running,
    pub http: reqwest::Client,
}

pub async fn spawn_edge(registry_url: &str, args: &[&str]) -> TestEdge {
    let mut argv = vec![
        "edge",
        "--port",
        "0",
        "--registry-url",
        registry_url,
        "--registry-fetch-interval",
        "100ms",
    ];
    argv.extend_from_slice(args);
    TestEdge {
        running: spawn!(edge, argv),
        http: reqwest::Client::new(),
    }
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// `POST /api/subscriptions` `{"url": feed}`: status and JSON body.
    pub async fn subscribe(&self, feed: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/api/subscriptions"))
            .json(&serde_json::json!({ "url": feed }))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// `GET /api/subscriptions` with extra headers: status and body.
    pub async fn list_with(&self, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url("/api/subscriptions"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

/// A server on a free port that answers every request with `status` and a
/// body of `json` followed by 100 MiB of spaces: valid JSON if read whole,
/// to show that a client does not read it whole.
pub async fn padded_json_server(status: StatusCode, json: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || async move {
        let head = futures::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(json.as_bytes()))
        });
        let padding = futures::stream::iter(
            (0..100).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1 << 20]))),
        );
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(futures::StreamExt::chain(head, padding)),
        )
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

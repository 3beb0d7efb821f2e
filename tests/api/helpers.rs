//! The in-process harness, zero2prod style: `spawn_*` builds a service
//! from its binary's flags with `Application::build` on port 0, runs it on
//! the test's runtime, and returns a `Test*` handle with one helper per
//! endpoint. Dropping a handle stops the service gracefully; `crash`
//! drops it on the floor, as SIGKILL would (no deregistration, no drain).
//!
//! [`TestStack`] is the whole stack: a local feed server, a registry,
//! middletiers and an edge, with timings shortened so that leases,
//! heartbeats and registry fetches play out in seconds.

use std::time::Duration;

use clap::Parser;
use common::api::UserFeeds;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::eventually;
use crate::support::feed_server::FeedServer;
use crate::support::web::{Browser, get_json};

/// Heartbeats and leases for tests (the edge fetches the registry every
/// 100 ms, see [`spawn_edge`]).
pub(crate) const RENEWAL: &str = "500ms";
pub(crate) const LEASE: &str = "2s";

pub(crate) use crate::support::FAST_REFRESH;

/// A running service; stops gracefully when dropped.
pub(crate) struct Running {
    pub port: u16,
    stop: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops it as SIGTERM would, and waits until it has: it leaves the
    /// registry, drains, and returns.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Stops it as SIGKILL would: nothing more runs, nobody is told. Returns
    /// once its port is closed.
    pub(crate) async fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Builds a service from `argv` (its binary's flags) and runs it until the
/// returned handle is dropped.
macro_rules! spawn {
    ($service:ident, $argv:expr) => {{
        let config = $service::config::Config::try_parse_from($argv).unwrap();
        let app = $service::Application::build(config).await.unwrap();
        let port = app.port();
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(stop.clone()));
        Running {
            port,
            stop,
            task: Some(task),
        }
    }};
}

/// An answer: status, headers and body text.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request`; the status and the JSON body (`Null` if none).
pub(crate) async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// How a test asks the registry to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

impl Format {
    pub(crate) const BOTH: [Format; 2] = [Format::Json, Format::Xml];

    fn accept(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}

/// A registry on a free port.
pub(crate) struct TestRegistry {
    pub running: Running,
    pub http: reqwest::Client,
}

pub(crate) async fn spawn_registry(args: &[&str]) -> TestRegistry {
    spawn_registry_on(0, args).await
}

/// A registry on `port` (to restart one where its clients expect it).
pub(crate) async fn spawn_registry_on(port: u16, args: &[&str]) -> TestRegistry {
    let port = port.to_string();
    let mut argv = vec!["registry", "--port", &port];
    argv.extend_from_slice(args);
    TestRegistry {
        running: spawn!(registry, argv),
        http: reqwest::Client::new(),
    }
}

impl TestRegistry {
    pub(crate) fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// The base URL services are given: `http://127.0.0.1:{port}/eureka/v2/`.
    pub(crate) fn eureka(&self) -> String {
        self.url("/eureka/v2/")
    }

    /// Any call, answered in `format`.
    pub(crate) async fn call(&self, method: Method, path: &str, format: Format) -> Answer {
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
    pub(crate) async fn register(&self, base: &str, app: &str, instance: Value) -> StatusCode {
        self.http
            .post(self.url(&format!("{base}apps/{app}")))
            .json(&serde_json::json!({ "instance": instance }))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `(instance id, status)` of each instance of `app`, sorted; empty
    /// when the registry does not know the app.
    pub(crate) async fn instances(&self, app: &str) -> Vec<(String, String)> {
        let answer = self
            .call(Method::GET, &format!("/eureka/v2/apps/{app}"), Format::Json)
            .await;
        if answer.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let body = answer.json();
        let instances = match &body["application"]["instance"] {
            Value::Array(list) => list.clone(),
            single @ Value::Object(_) => vec![single.clone()],
            _ => Vec::new(),
        };
        let mut found: Vec<(String, String)> = instances
            .iter()
            .map(|i| {
                (
                    i["instanceId"].as_str().unwrap_or_default().to_owned(),
                    i["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        found.sort();
        found
    }
}

/// A minimal record a Eureka client would send.
pub(crate) fn record(app: &str, id: &str, port: u16) -> Value {
    serde_json::json!({
        "instanceId": id, "hostName": "127.0.0.1", "app": app, "ipAddr": "127.0.0.1",
        "status": "UP", "port": {"$": port, "@enabled": "true"},
        "vipAddress": app.to_ascii_lowercase(), "secureVipAddress": app.to_ascii_lowercase(),
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}
    })
}

/// A middletier on a free port. With no `--registry-url` among `args` it
/// runs on its own; it may read feeds from this machine (the test feed
/// servers), keeps subscriptions in memory, and does not rate-limit any
/// call.
pub(crate) struct TestMiddletier {
    pub running: Running,
    pub http: reqwest::Client,
}

pub(crate) async fn spawn_middletier(args: &[&str]) -> TestMiddletier {
    let mut all = vec![
        "--allow-private-feeds",
        "--user-write-rate",
        "0",
        "--user-state-rate",
        "0",
        "--user-refresh-burst",
        "0",
    ];
    all.extend_from_slice(args);
    spawn_strict_middletier(&all).await
}

/// A middletier with the binary's own defaults but for the registry (none
/// unless `args` give one): private feed addresses refused, writes
/// rate-limited.
pub(crate) async fn spawn_strict_middletier(args: &[&str]) -> TestMiddletier {
    let mut argv = vec!["middletier", "--port", "0", "--registry-url="];
    argv.extend_from_slice(args);
    TestMiddletier {
        running: spawn!(middletier, argv),
        http: reqwest::Client::new(),
    }
}

impl TestMiddletier {
    pub(crate) fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// Its id in the registry.
    pub(crate) fn instance_id(&self) -> String {
        format!("127.0.0.1:middletier:{}", self.running.port)
    }

    /// `POST /middletier/rss/user/{user}?url=`.
    pub(crate) async fn subscribe(&self, user: &str, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url(&format!("/middletier/rss/user/{user}")))
                .query(&[("url", feed)]),
        )
        .await
    }

    /// `DELETE /middletier/rss/user/{user}?url=`.
    pub(crate) async fn unsubscribe(&self, user: &str, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .delete(self.url(&format!("/middletier/rss/user/{user}")))
                .query(&[("url", feed)]),
        )
        .await
    }

    /// `GET /middletier/rss/user/{user}`.
    pub(crate) async fn feeds(&self, user: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(self.url(&format!("/middletier/rss/user/{user}"))),
        )
        .await
    }

    /// `GET /middletier/rss/user/{user}?{query}` (e.g. `unread=true&limit=2`).
    pub(crate) async fn feeds_where(&self, user: &str, query: &str) -> (StatusCode, Value) {
        self.get(&format!("/middletier/rss/user/{user}?{query}"))
            .await
    }

    /// `PUT /middletier/rss/user/{user}/items/{id}` with `change` as JSON.
    pub(crate) async fn set_item(
        &self,
        user: &str,
        id: &str,
        change: Value,
    ) -> (StatusCode, Value) {
        send(
            self.http
                .put(self.url(&format!("/middletier/rss/user/{user}/items/{id}")))
                .json(&change),
        )
        .await
    }

    /// `POST /middletier/rss/user/{user}/mark-read` with `request` as JSON.
    pub(crate) async fn mark_read(&self, user: &str, request: Value) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url(&format!("/middletier/rss/user/{user}/mark-read")))
                .json(&request),
        )
        .await
    }

    /// `POST /middletier/rss/user/{user}/refresh?url=`.
    pub(crate) async fn refresh(&self, user: &str, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url(&format!("/middletier/rss/user/{user}/refresh")))
                .query(&[("url", feed)]),
        )
        .await
    }

    /// `GET /middletier/rss/discover?url=`.
    pub(crate) async fn discover(&self, page: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(self.url("/middletier/rss/discover"))
                .query(&[("url", page)]),
        )
        .await
    }

    /// `GET /middletier/rss/user/{user}/opml`: status, content type, body.
    pub(crate) async fn export_opml(&self, user: &str) -> (StatusCode, String, String) {
        let response = self
            .http
            .get(self.url(&format!("/middletier/rss/user/{user}/opml")))
            .send()
            .await
            .expect("the middletier answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            content_type,
            response.text().await.unwrap_or_default(),
        )
    }

    /// `POST /middletier/rss/user/{user}/opml` with `opml` as the body.
    pub(crate) async fn import_opml(
        &self,
        user: &str,
        opml: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url(&format!("/middletier/rss/user/{user}/opml")))
                .header(reqwest::header::CONTENT_TYPE, "text/x-opml")
                .body(opml),
        )
        .await
    }

    /// Any GET, as JSON.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.http.get(self.url(path))).await
    }
}

/// An edge on a free port, finding middletiers through `registry_url`
/// (fetched every 100 ms, so a registered instance is called at once).
pub(crate) struct TestEdge {
    pub running: Running,
    pub http: reqwest::Client,
}

pub(crate) async fn spawn_edge(registry_url: &str, args: &[&str]) -> TestEdge {
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
    pub(crate) fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// A browser (cookies, forms) on this edge.
    pub(crate) fn browser(&self) -> Browser {
        Browser::new(&self.url(""))
    }

    /// `POST /api/subscriptions` `{"url": feed}`.
    pub(crate) async fn subscribe(&self, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url("/api/subscriptions"))
                .json(&serde_json::json!({ "url": feed })),
        )
        .await
    }

    /// `DELETE /api/subscriptions?url=`.
    pub(crate) async fn unsubscribe(&self, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .delete(self.url("/api/subscriptions"))
                .query(&[("url", feed)]),
        )
        .await
    }

    /// `GET /api/subscriptions`, which must answer 200.
    pub(crate) async fn feeds(&self) -> Value {
        let (status, body) = self.list_with(&[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /api/subscriptions`, decoded into the API's own type.
    pub(crate) async fn listing(&self) -> UserFeeds {
        crate::support::listing::decode(&self.feeds().await)
    }

    /// `PUT /api/items/{id}` with `change` (`{"read"?, "starred"?}`).
    pub(crate) async fn set_item(&self, id: &str, change: Value) -> (StatusCode, Value) {
        send(
            self.http
                .put(self.url(&format!("/api/items/{id}")))
                .json(&change),
        )
        .await
    }

    /// `POST /api/mark-read` with `request` (`{"url"?, "before"?}`).
    pub(crate) async fn mark_read(&self, request: Value) -> (StatusCode, Value) {
        send(self.http.post(self.url("/api/mark-read")).json(&request)).await
    }

    /// `POST /api/refresh?url=`.
    pub(crate) async fn refresh(&self, feed: &str) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url("/api/refresh"))
                .query(&[("url", feed)]),
        )
        .await
    }

    /// `GET /api/discover?url=`.
    pub(crate) async fn discover(&self, page: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(self.url("/api/discover"))
                .query(&[("url", page)]),
        )
        .await
    }

    /// `GET /api/opml`: the status, the content type and the document.
    pub(crate) async fn export_opml(&self) -> (StatusCode, String, String) {
        let response = self.http.get(self.url("/api/opml")).send().await.unwrap();
        let status = response.status();
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, media_type, response.text().await.unwrap())
    }

    /// `POST /api/opml` with `opml` as `content_type`.
    pub(crate) async fn import_opml(&self, opml: &str, content_type: &str) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url("/api/opml"))
                .header("content-type", content_type)
                .body(opml.to_owned()),
        )
        .await
    }

    /// `GET /api/subscriptions` with extra headers.
    pub(crate) async fn list_with(&self, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url("/api/subscriptions"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request).await
    }

    /// `GET /dashboard/data`.
    pub(crate) async fn dashboard(&self) -> Value {
        get_json(self.url("/dashboard/data")).await
    }

    /// A command's row on the dashboard (`RSSGet`, ...).
    pub(crate) async fn command(&self, name: &str) -> Value {
        let data = self.dashboard().await;
        data["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no command {name}"))
            .clone()
    }

    /// Waits until the edge's balancer lists `n` middletier instances.
    pub(crate) async fn wait_until_it_knows(&self, n: usize) {
        let what = format!("the edge sees {n} middletier(s)");
        // /healthcheck is open in every --auth mode (the dashboard is for
        // admins).
        eventually(&what, Duration::from_secs(15), || async {
            let health = get_json(self.url("/healthcheck")).await;
            (health["middletier_instances"] == n).then_some(())
        })
        .await;
    }
}

/// The whole stack in-process: a feed server, a registry, middletiers and
/// an edge, with test timings.
pub(crate) struct TestStack {
    pub feeds: FeedServer,
    pub registry: TestRegistry,
    pub middletiers: Vec<TestMiddletier>,
    pub edge: TestEdge,
    middletier_args: Vec<String>,
}

impl TestStack {
    /// Starts everything, each middletier with `middletier_args`, and
    /// waits until the edge knows every middletier.
    pub(crate) async fn start(
        middletiers: usize,
        middletier_args: &[&str],
        edge_args: &[&str],
    ) -> TestStack {
        let feeds = FeedServer::start();
        let registry = spawn_registry(&["--eviction-interval", "200ms"]).await;
        let middletier_args: Vec<String> = middletier_args.iter().map(|s| s.to_string()).collect();
        let mut stack_middletiers = Vec::new();
        for _ in 0..middletiers {
            stack_middletiers.push(Self::middletier(&registry, &middletier_args).await);
        }
        let mut args = vec!["--renewal-interval", RENEWAL, "--lease-duration", LEASE];
        args.extend_from_slice(edge_args);
        let edge = spawn_edge(&registry.eureka(), &args).await;
        let stack = TestStack {
            feeds,
            registry,
            middletiers: stack_middletiers,
            edge,
            middletier_args,
        };
        stack.edge.wait_until_it_knows(middletiers).await;
        stack
    }

    async fn middletier(registry: &TestRegistry, extra: &[String]) -> TestMiddletier {
        let eureka = registry.eureka();
        let mut args = vec![
            "--registry-url",
            &eureka,
            "--renewal-interval",
            RENEWAL,
            "--lease-duration",
            LEASE,
            "--feed-timeout",
            "2s",
        ];
        args.extend(extra.iter().map(String::as_str));
        spawn_middletier(&args).await
    }

    /// Starts one more middletier with the same arguments as the others.
    pub(crate) async fn add_middletier(&mut self) -> &TestMiddletier {
        let middletier = Self::middletier(&self.registry, &self.middletier_args).await;
        self.middletiers.push(middletier);
        self.middletiers.last().expect("just pushed")
    }
}

/// A server on a free port that answers every request with `status` and a
/// body of `json` followed by 100 MiB of spaces: valid JSON if read whole,
/// to show that a client does not read it whole.
pub(crate) async fn padded_json_server(status: StatusCode, json: &'static str) -> u16 {
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

//! The discovery client and the load balancer against a real registry:
//! what a client does when its copy of the registry falls behind.

use std::time::Duration;

use common::balancer::http::{BalancedClient, BalancerSettings};
use common::discovery::client::parse_registry_urls;
use common::discovery::{DiscoveryClient, DiscoverySettings};
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::helpers::{TestRegistry, padded_json_server, record, spawn_registry};

/// An HTTP server on a free port that answers every request with `name`;
/// aborting the handle closes it.
async fn named_server(name: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || async move { name });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

fn client(registry_url: &str, full_fetch_interval: Duration) -> DiscoveryClient {
    let settings = DiscoverySettings {
        registry_urls: parse_registry_urls(&[registry_url.to_owned()]).unwrap(),
        // Only the fetches the test makes (and the balancer's own).
        fetch_interval: Duration::from_secs(3600),
        full_fetch_interval,
        ..DiscoverySettings::default()
    };
    DiscoveryClient::new(settings, None).unwrap()
}

/// A registry that keeps changes in its delta for 1 s, with instance
/// `old` of MIDDLETIER registered, and two servers: `old` (its handle, to
/// kill it) and `new` (its port).
async fn registry_with_an_old_instance() -> (TestRegistry, tokio::task::JoinHandle<()>, u16) {
    let registry =
        spawn_registry(&["--delta-retention", "1s", "--eviction-interval", "100ms"]).await;
    let (old_port, old) = named_server("old").await;
    let (new_port, _new) = named_server("new").await;
    assert_eq!(
        registry
            .register(
                "/eureka/v2/",
                "MIDDLETIER",
                record("MIDDLETIER", "old", old_port)
            )
            .await,
        StatusCode::NO_CONTENT
    );
    (registry, old, new_port)
}

/// The ids of the `UP` middletiers in the client's copy of the registry.
fn known(discovery: &DiscoveryClient) -> Vec<String> {
    discovery
        .up_instances("middletier")
        .into_iter()
        .map(|i| i.id)
        .collect()
}

/// Replaces instance `old` of MIDDLETIER by `new` in the registry, then
/// waits until the registry's delta has forgotten both changes.
async fn replace_behind_the_clients_back(registry: &TestRegistry, new_port: u16) {
    let base = "/eureka/v2/";
    let cancelled = registry
        .call(
            reqwest::Method::DELETE,
            &format!("{base}apps/MIDDLETIER/old"),
            crate::helpers::Format::Json,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(
        registry
            .register(base, "MIDDLETIER", record("MIDDLETIER", "new", new_port))
            .await,
        StatusCode::NO_CONTENT
    );
    // The delta keeps changes for 1 s here (dropped by the eviction pass,
    // every 100 ms); after that a delta is empty.
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn a_client_that_missed_a_replacement_finds_the_new_instance_when_the_old_one_is_dead() {
    let (registry, old, new_port) = registry_with_an_old_instance().await;
    let base = "/eureka/v2/";
    // Full fetches only when the balancer asks for one.
    let discovery = client(&registry.url(base), Duration::from_secs(3600));
    discovery.fetch().await.unwrap();
    let balancer =
        BalancedClient::new("middletier", discovery.clone(), BalancerSettings::default()).unwrap();
    let call = |balancer: BalancedClient| async move {
        let served = balancer
            .call(Instant::now() + Duration::from_secs(5), |http, base| {
                http.get(format!("{base}/"))
            })
            .await?;
        Ok::<_, common::balancer::http::CallError>(served.response.text().await.unwrap())
    };
    assert_eq!(call(balancer.clone()).await.unwrap(), "old");

    old.abort();
    replace_behind_the_clients_back(&registry, new_port).await;
    // The delta is empty and the hashcode (one UP instance) still matches:
    // the copy says "old".
    discovery.fetch().await.unwrap();
    assert_eq!(known(&discovery), ["old"]);

    // Every known instance is dead, so the balancer looks again.
    assert_eq!(call(balancer.clone()).await.unwrap(), "new");
}

#[tokio::test]
async fn a_client_fetches_the_whole_registry_now_and_then_whatever_the_deltas_say() {
    let (registry, _old, new_port) = registry_with_an_old_instance().await;
    let base = "/eureka/v2/";
    let discovery = client(&registry.url(base), Duration::from_secs(1));
    discovery.fetch().await.unwrap();
    replace_behind_the_clients_back(&registry, new_port).await;
    // More than the full-fetch interval has passed: this fetch is a full one.
    discovery.fetch().await.unwrap();
    assert_eq!(known(&discovery), ["new"]);
}

#[tokio::test]
async fn a_registry_answer_is_read_only_up_to_a_limit() {
    // A "registry" whose answer is valid JSON followed by 100 MiB of
    // spaces.
    let port = padded_json_server(
        StatusCode::OK,
        r#"{"applications": {"apps__hashcode": "", "application": []}}"#,
    )
    .await;
    let settings = DiscoverySettings {
        registry_urls: parse_registry_urls(&[format!("http://127.0.0.1:{port}/eureka/v2/")])
            .unwrap(),
        request_timeout: Duration::from_secs(120),
        ..DiscoverySettings::default()
    };
    let discovery = DiscoveryClient::new(settings, None).unwrap();
    let error = discovery
        .fetch()
        .await
        .expect_err("the answer is too large");
    assert!(error.to_string().contains("larger than 64 MiB"), "{error}");
}

#[tokio::test]
async fn services_on_an_ipv6_address_register_urls_that_work() {
    let registry = crate::helpers::spawn_registry(&["--host", "::1"]).await;
    let registry_url = format!("http://[::1]:{}/eureka/v2/", registry.running.port);
    let middletier =
        crate::helpers::spawn_middletier(&["--host", "::1", "--registry-url", &registry_url]).await;
    let port = middletier.running.port;
    let discovery = client(&registry_url, Duration::from_secs(3600));
    let deadline = Instant::now() + Duration::from_secs(10);
    while discovery.up_instances("middletier").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the middletier never registered UP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = discovery.fetch_full_if_older_than(Duration::ZERO).await;
    }
    let record = reqwest::Client::new()
        .get(format!(
            "{registry_url}apps/MIDDLETIER/::1:middletier:{port}"
        ))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    for field in ["homePageUrl", "statusPageUrl", "healthCheckUrl"] {
        let url = record["instance"][field].as_str().unwrap();
        assert!(url::Url::parse(url).is_ok(), "{field}: {url}");
    }
    let health = reqwest::get(record["instance"]["healthCheckUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let balancer =
        BalancedClient::new("middletier", discovery, BalancerSettings::default()).unwrap();
    let served = balancer
        .call(Instant::now() + Duration::from_secs(5), |http, base| {
            http.get(format!("{base}/healthcheck"))
        })
        .await
        .unwrap();
    assert_eq!(served.response.status(), StatusCode::OK);
}

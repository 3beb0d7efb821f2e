//! Discovery end to end, in-process: the registry, middletiers that
//! register, heartbeat and leave (or crash), the discovery client and the
//! load balancer; the registry's Eureka REST in JSON and XML; and what a
//! client does when its copy of the registry falls behind.

use std::time::Duration;

use common::balancer::http::{BalancedClient, BalancerSettings};
use common::discovery::parse_registry_urls;
use common::discovery::{DiscoveryClient, DiscoverySettings};
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::helpers::{
    LEASE, RENEWAL, TestMiddletier, TestRegistry, padded_json_server, record, send,
    spawn_middletier, spawn_registry, spawn_registry_on,
};
use crate::support::eventually;
use crate::support::web::get_text;
use serde_json::{Value, json};

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

/// A registry with a fast eviction pass.
async fn registry() -> TestRegistry {
    spawn_registry(&["--eviction-interval", "200ms"]).await
}

/// A middletier registered in `registry`, with test timings.
async fn middletier(registry: &TestRegistry) -> TestMiddletier {
    spawn_middletier(&[
        "--registry-url",
        &registry.eureka(),
        "--renewal-interval",
        RENEWAL,
        "--lease-duration",
        LEASE,
    ])
    .await
}

/// GETs a registry URL as JSON: the status and the body.
async fn eureka_json(url: &str) -> (StatusCode, Value) {
    send(
        reqwest::Client::new()
            .get(url)
            .header("accept", "application/json"),
    )
    .await
}

#[tokio::test]
async fn two_middletiers_register_as_up() {
    let registry = registry().await;
    let a = middletier(&registry).await;
    let b = middletier(&registry).await;
    let mut expected = vec![
        (a.instance_id(), "UP".to_owned()),
        (b.instance_id(), "UP".to_owned()),
    ];
    expected.sort();
    eventually("both UP", Duration::from_secs(10), || async {
        (registry.instances("MIDDLETIER").await == expected).then_some(())
    })
    .await;

    let (_, body) = eureka_json(&registry.url("/eureka/v2/apps/MIDDLETIER")).await;
    let record = &body["application"]["instance"][0];
    assert_eq!(record["app"], "MIDDLETIER");
    assert_eq!(record["vipAddress"], "middletier");
    assert_eq!(record["leaseInfo"]["durationInSecs"], 2);
    assert!(record["port"]["$"].as_u64().unwrap() > 0);
    assert_eq!(record["dataCenterInfo"]["name"], "MyOwn");
}

#[tokio::test]
async fn a_killed_instance_disappears_when_its_lease_expires() {
    let registry = registry().await;
    let survivor = middletier(&registry).await;
    let victim = middletier(&registry).await;
    eventually("both registered", Duration::from_secs(10), || async {
        (registry.instances("MIDDLETIER").await.len() == 2).then_some(())
    })
    .await;

    victim.running.crash().await;
    // No goodbye was said, so the registry still lists it for now...
    assert_eq!(registry.instances("MIDDLETIER").await.len(), 2);
    // ...until the lease (2 s) runs out and an eviction pass runs.
    let expected = vec![(survivor.instance_id(), "UP".to_owned())];
    eventually("victim evicted", Duration::from_secs(8), || async {
        (registry.instances("MIDDLETIER").await == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stopped_instance_deregisters_before_it_exits() {
    let registry = registry().await;
    let survivor = middletier(&registry).await;
    let stopped = middletier(&registry).await;
    eventually("both registered", Duration::from_secs(10), || async {
        (registry.instances("MIDDLETIER").await.len() == 2).then_some(())
    })
    .await;

    stopped.running.stop().await;
    // At once, not after a lease: it cancelled its own.
    assert_eq!(
        registry.instances("MIDDLETIER").await,
        [(survivor.instance_id(), "UP".to_owned())]
    );
}

#[tokio::test]
async fn instances_re_register_when_the_registry_restarts_empty() {
    let first = registry().await;
    let port = first.running.port;
    let url = first.eureka();
    let args = ["--registry-url", &url, "--renewal-interval", "1s"];
    let a = spawn_middletier(&args).await;
    let b = spawn_middletier(&args).await;
    eventually("both registered", Duration::from_secs(10), || async {
        (first.instances("MIDDLETIER").await.len() == 2).then_some(())
    })
    .await;

    first.running.crash().await;
    let second = spawn_registry_on(port, &["--eviction-interval", "200ms"]).await;
    assert!(
        second.instances("MIDDLETIER").await.is_empty(),
        "the new registry starts empty"
    );
    // One heartbeat (1 s) gets a 404, and the instance registers again.
    let mut expected = vec![
        (a.instance_id(), "UP".to_owned()),
        (b.instance_id(), "UP".to_owned()),
    ];
    expected.sort();
    eventually(
        "both back within one heartbeat",
        Duration::from_secs(3),
        || async { (second.instances("MIDDLETIER").await == expected).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn the_balancer_spreads_calls_and_retries_past_a_killed_instance() {
    let registry = registry().await;
    let a = middletier(&registry).await;
    let b = middletier(&registry).await;
    eventually("both UP", Duration::from_secs(10), || async {
        (registry.instances("MIDDLETIER").await.len() == 2).then_some(())
    })
    .await;

    let settings = DiscoverySettings {
        registry_urls: common::discovery::parse_registry_urls(&[registry.eureka()]).unwrap(),
        fetch_interval: Duration::from_millis(200),
        ..DiscoverySettings::default()
    };
    let discovery = DiscoveryClient::new(settings, None).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let fetcher = discovery.spawn_fetcher(stop.clone());
    eventually("the client sees both", Duration::from_secs(5), || async {
        (discovery.up_instances("middletier").len() == 2).then_some(())
    })
    .await;
    let client =
        BalancedClient::new("middletier", discovery.clone(), BalancerSettings::default()).unwrap();
    let call = || async {
        let deadline = Instant::now() + Duration::from_secs(5);
        client
            .call(deadline, |http, base| {
                http.get(format!("{base}/healthcheck"))
            })
            .await
    };

    let mut served_by = std::collections::HashMap::<String, usize>::new();
    for _ in 0..40 {
        let served = call().await.expect("every call is answered");
        assert_eq!(served.response.status(), StatusCode::OK);
        *served_by.entry(served.instance.id).or_default() += 1;
    }
    assert_eq!(served_by.get(&a.instance_id()), Some(&20), "{served_by:?}");
    assert_eq!(served_by.get(&b.instance_id()), Some(&20), "{served_by:?}");

    // Kill b without warning: the client's copy still lists it.
    let b_id = b.instance_id();
    b.running.crash().await;
    let mut retried = 0;
    for _ in 0..40 {
        let served = call().await.expect("no call fails when an instance dies");
        assert_eq!(served.instance.id, a.instance_id());
        if served.attempts > 1 {
            retried += 1;
        }
    }
    assert!(
        retried >= 1,
        "at least one call hit the dead instance and was retried on the next"
    );
    let (_, available) = client
        .instances()
        .into_iter()
        .find(|(i, _)| i.id == b_id)
        .expect("still listed until its lease expires");
    assert!(
        !available,
        "the dead instance cools down instead of being chosen"
    );
    stop.cancel();
    fetcher.await.unwrap();
}

/// A port that accepts no connection and refuses none, as a killed
/// container's address does: a listener that never accepts, its backlog
/// filled, so the kernel drops further SYNs and a connect times out.
/// (Keep the returned values alive.)
async fn blackhole() -> (u16, tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            filling.push(stream);
        }
    }
    (addr.port(), listener, filling)
}

#[tokio::test]
async fn after_a_cool_down_one_call_tries_a_silent_instance_not_every_call() {
    let registry = spawn_registry(&[]).await;
    let (good, _server) = named_server("good").await;
    let (silent, _listener, _filling) = blackhole().await;
    for (id, port) in [("good", good), ("silent", silent)] {
        assert_eq!(
            registry
                .register("/eureka/v2/", "MIDDLETIER", record("MIDDLETIER", id, port))
                .await,
            StatusCode::NO_CONTENT
        );
    }
    let discovery = client(&registry.url("/eureka/v2/"), Duration::from_secs(3600));
    discovery.fetch().await.unwrap();
    let cooldown = Duration::from_millis(500);
    let settings = BalancerSettings {
        connect_timeout: Duration::from_millis(300),
        cooldown,
        ..BalancerSettings::default()
    };
    let balancer = BalancedClient::new("middletier", discovery, settings).unwrap();
    let call = |balancer: BalancedClient| async move {
        balancer
            .call(Instant::now() + Duration::from_secs(5), |http, base| {
                http.get(format!("{base}/"))
            })
            .await
            .expect("every call is answered")
            .attempts
    };
    // Round robin reaches the silent one within two calls; its connect
    // times out and the call goes on to the good one.
    let first: Vec<u32> = vec![call(balancer.clone()).await, call(balancer.clone()).await];
    assert_eq!(first.iter().filter(|&&a| a == 2).count(), 1, "{first:?}");

    // After the cool-down, eight calls at once: exactly one is the trial
    // that pays the silent instance's timeout; the others go straight to
    // the good one.
    tokio::time::sleep(cooldown).await;
    let calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(call(balancer.clone())))
        .collect();
    let mut attempts = Vec::new();
    for c in calls {
        attempts.push(c.await.unwrap());
    }
    assert_eq!(
        attempts.iter().filter(|&&a| a == 2).count(),
        1,
        "one trial, not every call: {attempts:?}"
    );
}

#[tokio::test]
async fn the_registry_speaks_eureka_json_and_xml() {
    let registry = registry().await;
    let http = reqwest::Client::new();
    let base = registry.url("/eureka/v2");

    // A Java-client-style XML registration (every value text).
    let xml = r#"<instance><instanceId>java-1</instanceId><hostName>java.local</hostName><app>EDGE</app>
        <ipAddr>10.0.0.7</ipAddr><status>UP</status><overriddenstatus>UNKNOWN</overriddenstatus>
        <port enabled="true">9090</port><securePort enabled="false">443</securePort><countryId>1</countryId>
        <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
        <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>
        <metadata><zone>a</zone></metadata><vipAddress>edge</vipAddress><futureField>kept</futureField></instance>"#;
    let response = http
        .post(format!("{base}/apps/EDGE"))
        .header("content-type", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // A JavaScript-client-style JSON registration: booleans, numbers as
    // strings, an Amazon data center, lower-case app name.
    let js = json!({"instance": {
        "instanceId": "js-1", "hostName": "js.local", "app": "edge", "ipAddr": "10.0.0.8", "status": "UP",
        "port": {"$": "9090", "@enabled": true}, "vipAddress": "edge",
        "dataCenterInfo": {"@class": "com.netflix.appinfo.AmazonInfo", "name": "Amazon",
            "metadata": {"instance-id": "i-123", "availability-zone": "us-east-1a"}},
        "leaseInfo": {"durationInSecs": "90"}
    }});
    let response = http
        .post(format!("{base}/apps/edge"))
        .json(&js)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // JSON when asked for JSON: both instances, in Eureka's types.
    let (status, body) = eureka_json(&format!("{base}/apps/EDGE")).await;
    assert_eq!(status, StatusCode::OK);
    let instances = body["application"]["instance"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    let java = instances
        .iter()
        .find(|i| i["instanceId"] == "java-1")
        .unwrap();
    assert_eq!(java["port"], json!({"$": 9090, "@enabled": "true"}));
    assert_eq!(java["futureField"], "kept");
    assert_eq!(java["metadata"]["zone"], "a");
    let js = instances
        .iter()
        .find(|i| i["instanceId"] == "js-1")
        .unwrap();
    assert_eq!(js["dataCenterInfo"]["name"], "Amazon");
    assert_eq!(js["dataCenterInfo"]["metadata"]["instance-id"], "i-123");

    // XML otherwise, as a Eureka server does.
    let xml = http.get(format!("{base}/apps")).send().await.unwrap();
    assert!(
        xml.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    let xml = xml.text().await.unwrap();
    assert!(xml.starts_with("<applications>"), "{xml}");
    assert!(xml.contains(r#"<port enabled="true">9090</port>"#), "{xml}");
    assert!(
        xml.contains("<apps__hashcode>UP_2_</apps__hashcode>"),
        "{xml}"
    );

    // Same under the Spring Cloud prefix, gzipped when asked.
    let raw = reqwest::Client::builder().gzip(false).build().unwrap();
    let gzipped = raw
        .get(registry.url("/eureka/apps"))
        .header("accept", "application/json")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let compressed = gzipped.bytes().await.unwrap();
    let mut json_text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut json_text,
    )
    .unwrap();
    let unzipped: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(unzipped["applications"]["apps__hashcode"], "UP_2_");

    // Heartbeats, overrides, VIPs, delta, cancel.
    let put = |url: String| {
        let request = http.put(url);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        put(format!("{base}/apps/EDGE/java-1")).await,
        StatusCode::OK
    );
    assert_eq!(
        put(format!("{base}/apps/EDGE/nobody")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(format!(
            "{base}/apps/EDGE/java-1/status?value=OUT_OF_SERVICE"
        ))
        .await,
        StatusCode::OK
    );
    let (_, instance) = eureka_json(&format!("{base}/apps/EDGE/java-1")).await;
    assert_eq!(instance["instance"]["status"], "OUT_OF_SERVICE");
    assert_eq!(
        put(format!("{base}/apps/EDGE/java-1/status?value=SLEEPY")).await,
        StatusCode::BAD_REQUEST
    );

    let (_, vip) = eureka_json(&format!("{base}/vips/edge")).await;
    assert_eq!(
        vip["applications"]["application"][0]["instance"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        eureka_json(&format!("{base}/vips/nothing")).await.0,
        StatusCode::NOT_FOUND
    );

    let cancel = http
        .delete(format!("{base}/apps/EDGE/js-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    let (_, delta) = eureka_json(&format!("{base}/apps/delta")).await;
    let changes = delta["applications"]["application"][0]["instance"]
        .as_array()
        .unwrap();
    let js_change = changes.iter().find(|i| i["instanceId"] == "js-1").unwrap();
    assert_eq!(js_change["actionType"], "DELETED");
    assert_eq!(delta["applications"]["apps__hashcode"], "OUT_OF_SERVICE_1_");

    // Refusals say why.
    let (status, body) = {
        let r = http
            .post(format!("{base}/apps/EDGE"))
            .json(&json!({"instance": {"app": "EDGE"}}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("instanceId"),
        "{body}"
    );
    let hostile = http
        .post(format!("{base}/apps/EDGE"))
        .header("content-type", "application/xml")
        .body(r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><instance><hostName>&e;</hostName></instance>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(hostile.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_home_page_lists_instances_and_metrics_count_them() {
    let registry = registry().await;
    let service = middletier(&registry).await;
    eventually("registered", Duration::from_secs(10), || async {
        (registry.instances("MIDDLETIER").await.len() == 1).then_some(())
    })
    .await;
    let page = get_text(registry.url("/")).await;
    assert!(
        page.contains("MIDDLETIER") && page.contains(&service.instance_id()),
        "{page}"
    );
    // Other tests' registries share this process's metrics recorder, so
    // the series is checked, not its value.
    let metrics = get_text(registry.url("/metrics")).await;
    assert!(
        metrics.contains(r#"registry_instances{app="MIDDLETIER",status="UP"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("registry_registrations_total"),
        "{metrics}"
    );
    let (status, health) = eureka_json(&registry.url("/healthcheck")).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("UP"))
    );
}

#[tokio::test]
async fn a_watching_client_sees_new_and_removed_instances_without_polling() {
    let registry = spawn_registry(&["--eviction-interval", "100ms"]).await;
    let (first_port, _first) = named_server("first").await;
    assert_eq!(
        registry
            .register(
                "/eureka/v2/",
                "MIDDLETIER",
                record("MIDDLETIER", "first", first_port)
            )
            .await,
        StatusCode::NO_CONTENT
    );
    // A poll every hour: only the watch can bring changes in time.
    let discovery = client(&registry.eureka(), Duration::from_secs(3600));
    let stop = tokio_util::sync::CancellationToken::new();
    let fetcher = discovery.spawn_fetcher(stop.clone());
    eventually("the first fetch", Duration::from_secs(5), || async {
        (discovery.up_instances("middletier").len() == 1).then_some(())
    })
    .await;

    let (port, _server) = named_server("new").await;
    assert_eq!(
        registry
            .register(
                "/eureka/v2/",
                "MIDDLETIER",
                record("MIDDLETIER", "new", port)
            )
            .await,
        StatusCode::NO_CONTENT
    );
    eventually(
        "the new instance is seen",
        Duration::from_secs(10),
        || async { (discovery.up_instances("middletier").len() == 2).then_some(()) },
    )
    .await;
    let cancelled = reqwest::Client::new()
        .delete(registry.url("/eureka/v2/apps/MIDDLETIER/new"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    eventually(
        "the cancelled instance is gone",
        Duration::from_secs(10),
        || async { (discovery.up_instances("middletier").len() == 1).then_some(()) },
    )
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), fetcher)
        .await
        .expect("the fetcher stops at once, mid-watch")
        .unwrap();
}

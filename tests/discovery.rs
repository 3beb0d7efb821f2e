//! Discovery end to end: the real `registry` and real `middletier`
//! processes, with short leases so the tests run in seconds.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use common::balancer::http::{BalancedClient, BalancerSettings};
use common::discovery::{DiscoveryClient, DiscoverySettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::process::Service;
use support::web::get_text;
use tokio::time::Instant;

const LEASE: &str = "2s";
const RENEWAL: &str = "500ms";

fn registry() -> Service {
    Service::start("registry", &["--eviction-interval", "200ms"], &[])
}

fn registry_url(registry: &Service) -> String {
    registry.url("/eureka/v2/")
}

fn middletier(registry: &Service) -> Service {
    let url = registry_url(registry);
    Service::start(
        "middletier",
        &[
            "--registry-url",
            &url,
            "--renewal-interval",
            RENEWAL,
            "--lease-duration",
            LEASE,
        ],
        &[],
    )
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Instance ids and statuses of MIDDLETIER, as the registry lists them.
async fn middletiers(registry: &Service) -> Vec<(String, String)> {
    let (status, body) = get_json(&registry.url("/eureka/v2/apps/MIDDLETIER")).await;
    if status == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let instances = match &body["application"]["instance"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => Vec::new(),
    };
    let mut found: Vec<_> = instances
        .iter()
        .map(|i| {
            (
                i["instanceId"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Polls until `check` holds, or fails after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within {within:?}: {what}");
}

fn instance_id(service: &Service) -> String {
    format!("127.0.0.1:middletier:{}", service.port)
}

#[tokio::test]
async fn two_middletiers_register_as_up() {
    let registry = registry();
    let a = middletier(&registry);
    let b = middletier(&registry);
    let mut expected = vec![
        (instance_id(&a), "UP".to_owned()),
        (instance_id(&b), "UP".to_owned()),
    ];
    expected.sort();
    eventually(Duration::from_secs(10), "both UP", || async {
        middletiers(&registry).await == expected
    })
    .await;

    let (_, body) = get_json(&registry.url("/eureka/v2/apps/MIDDLETIER")).await;
    let record = &body["application"]["instance"][0];
    assert_eq!(record["app"], "MIDDLETIER");
    assert_eq!(record["vipAddress"], "middletier");
    assert_eq!(record["leaseInfo"]["durationInSecs"], 2);
    assert!(record["port"]["$"].as_u64().unwrap() > 0);
    assert_eq!(record["dataCenterInfo"]["name"], "MyOwn");
}

#[tokio::test]
async fn a_killed_instance_disappears_when_its_lease_expires() {
    let registry = registry();
    let survivor = middletier(&registry);
    let mut victim = middletier(&registry);
    eventually(Duration::from_secs(10), "both registered", || async {
        middletiers(&registry).await.len() == 2
    })
    .await;

    victim.kill();
    // No goodbye was said, so the registry still lists it for now...
    assert_eq!(middletiers(&registry).await.len(), 2);
    // ...until the lease (2 s) runs out and an eviction pass runs.
    let expected = vec![(instance_id(&survivor), "UP".to_owned())];
    eventually(Duration::from_secs(8), "victim evicted", || async {
        middletiers(&registry).await == expected
    })
    .await;
}

#[tokio::test]
async fn a_stopped_instance_deregisters_before_it_exits() {
    let registry = registry();
    let survivor = middletier(&registry);
    let mut stopped = middletier(&registry);
    eventually(Duration::from_secs(10), "both registered", || async {
        middletiers(&registry).await.len() == 2
    })
    .await;

    stopped.terminate();
    let status = stopped
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    // At once, not after a lease: it cancelled its own.
    assert_eq!(
        middletiers(&registry).await,
        [(instance_id(&survivor), "UP".to_owned())]
    );
}

#[tokio::test]
async fn instances_re_register_when_the_registry_restarts_empty() {
    let mut first = registry();
    let port = first.port;
    let url = registry_url(&first);
    let renewal = "1s";
    let a = Service::start(
        "middletier",
        &["--registry-url", &url, "--renewal-interval", renewal],
        &[],
    );
    let b = Service::start(
        "middletier",
        &["--registry-url", &url, "--renewal-interval", renewal],
        &[],
    );
    eventually(Duration::from_secs(10), "both registered", || async {
        middletiers(&first).await.len() == 2
    })
    .await;

    first.kill();
    let second = Service::start_on("registry", port, &["--eviction-interval", "200ms"], &[]);
    assert!(
        middletiers(&second).await.is_empty(),
        "the new registry starts empty"
    );
    // One heartbeat (1 s) gets a 404, and the instance registers again.
    let mut expected = vec![
        (instance_id(&a), "UP".to_owned()),
        (instance_id(&b), "UP".to_owned()),
    ];
    expected.sort();
    eventually(
        Duration::from_secs(3),
        "both back within one heartbeat",
        || async { middletiers(&second).await == expected },
    )
    .await;
}

#[tokio::test]
async fn the_balancer_spreads_calls_and_retries_past_a_killed_instance() {
    let registry = registry();
    let a = middletier(&registry);
    let mut b = middletier(&registry);
    eventually(Duration::from_secs(10), "both UP", || async {
        middletiers(&registry).await.len() == 2
    })
    .await;

    let settings = DiscoverySettings {
        registry_urls: common::discovery::client::parse_registry_urls(&[registry_url(&registry)])
            .unwrap(),
        fetch_interval: Duration::from_millis(200),
        ..DiscoverySettings::default()
    };
    let discovery = DiscoveryClient::new(settings, None).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let fetcher = discovery.spawn_fetcher(stop.clone());
    eventually(Duration::from_secs(5), "the client sees both", || async {
        discovery.up_instances("middletier").len() == 2
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
    assert_eq!(served_by.get(&instance_id(&a)), Some(&20), "{served_by:?}");
    assert_eq!(served_by.get(&instance_id(&b)), Some(&20), "{served_by:?}");

    // Kill b without warning: the client's copy still lists it.
    b.kill();
    let mut retried = 0;
    for _ in 0..40 {
        let served = call().await.expect("no call fails when an instance dies");
        assert_eq!(served.instance.id, instance_id(&a));
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
        .find(|(i, _)| i.id == instance_id(&b))
        .expect("still listed until its lease expires");
    assert!(
        !available,
        "the dead instance cools down instead of being chosen"
    );
    stop.cancel();
    fetcher.await.unwrap();
}

#[tokio::test]
async fn the_registry_speaks_eureka_json_and_xml() {
    let registry = registry();
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
    let (status, body) = get_json(&format!("{base}/apps/EDGE")).await;
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
    let (_, instance) = get_json(&format!("{base}/apps/EDGE/java-1")).await;
    assert_eq!(instance["instance"]["status"], "OUT_OF_SERVICE");
    assert_eq!(
        put(format!("{base}/apps/EDGE/java-1/status?value=SLEEPY")).await,
        StatusCode::BAD_REQUEST
    );

    let (_, vip) = get_json(&format!("{base}/vips/edge")).await;
    assert_eq!(
        vip["applications"]["application"][0]["instance"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        get_json(&format!("{base}/vips/nothing")).await.0,
        StatusCode::NOT_FOUND
    );

    let cancel = http
        .delete(format!("{base}/apps/EDGE/js-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    let (_, delta) = get_json(&format!("{base}/apps/delta")).await;
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
    let registry = registry();
    let service = middletier(&registry);
    eventually(Duration::from_secs(10), "registered", || async {
        middletiers(&registry).await.len() == 1
    })
    .await;
    let page = get_text(registry.url("/")).await;
    assert!(
        page.contains("MIDDLETIER") && page.contains(&instance_id(&service)),
        "{page}"
    );
    let metrics = get_text(registry.url("/metrics")).await;
    assert!(
        metrics.contains(r#"registry_instances{app="MIDDLETIER",status="UP"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("registry_registrations_total"),
        "{metrics}"
    );
    let (status, health) = get_json(&registry.url("/healthcheck")).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("UP"))
    );
}

//! The docker-compose file. Checked statically: Compose itself validates
//! it, and every variable it sets for our services is one the service's
//! binary accepts, with a value it accepts; the observability profile's
//! files are consistent (its images cannot be pulled here, so it is not
//! run). And run for real: the stack built from this repository and
//! started in containers on a real Docker engine, then put through its
//! faults (`the_stack_runs_in_containers_and_survives_its_faults`).

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use support::compose::{Compose, Container};
use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The OpenTelemetry variables the compose file may set for our services:
/// standard ones, which `common::telemetry` documents and the SDK reads.
const STANDARD_OTEL: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

/// The services of the `observability` profile.
const OBSERVABILITY: [&str; 4] = ["otel-collector", "jaeger", "prometheus", "grafana"];

fn yaml_file(path: &str) -> Yaml {
    let text =
        std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn compose() -> Yaml {
    yaml_file("docker-compose.yml")
}

/// One of our services in the compose file.
struct OurService {
    name: String,
    /// The binary its image runs (its build target).
    binary: String,
    environment: Vec<(String, String)>,
}

fn our_services() -> Vec<OurService> {
    let file = compose();
    let services = file["services"].as_hash().expect("services");
    services
        .iter()
        .filter_map(|(name, service)| {
            let target = service["build"]["target"].as_str()?.to_owned();
            let env = service["environment"]
                .as_hash()
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| {
                            let value = match v {
                                Yaml::String(s) => s.clone(),
                                Yaml::Integer(i) => i.to_string(),
                                Yaml::Boolean(b) => b.to_string(),
                                other => panic!("unexpected value {other:?}"),
                            };
                            (k.as_str().unwrap().to_owned(), value)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(OurService {
                name: name.as_str().unwrap().to_owned(),
                binary: target,
                environment: env,
            })
        })
        .collect()
}

fn docker_compose_config(profile: Option<&str>) -> std::process::Output {
    let file = format!("{ROOT}/docker-compose.yml");
    let mut args = vec!["--project-directory", ROOT, "-f", &file];
    if let Some(profile) = profile {
        args.extend(["--profile", profile]);
    }
    args.extend(["config", "--quiet"]);
    Command::new("docker")
        .arg("compose")
        .args(args)
        .output()
        .expect("docker is installed (scripts/docker-engine.sh installs it and Compose v2)")
}

#[test]
fn docker_compose_accepts_the_file() {
    for profile in [None, Some("observability")] {
        let output = docker_compose_config(profile);
        assert!(
            output.status.success(),
            "{profile:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_observability_profile_is_off_by_default_and_its_files_exist() {
    let file = compose();
    let services = file["services"].as_hash().unwrap();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let profiles: Vec<&str> = service["profiles"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(Yaml::as_str)
            .collect();
        if OBSERVABILITY.contains(&name) {
            assert_eq!(profiles, ["observability"], "{name}");
            for volume in service["volumes"].as_vec().into_iter().flatten() {
                let source = volume.as_str().unwrap().split(':').next().unwrap();
                let path = std::path::Path::new(ROOT).join(source);
                assert!(path.exists(), "{name} mounts {source}, which is missing");
            }
        } else {
            assert!(profiles.is_empty(), "{name} must start without a profile");
        }
    }
    for name in OBSERVABILITY {
        assert!(file["services"][name].as_hash().is_some(), "no {name}");
    }
    // Our services export only when the variable is given, to the
    // collector's OTLP/HTTP port.
    for OurService {
        name, environment, ..
    } in our_services()
    {
        let endpoint = environment
            .iter()
            .find(|(k, _)| k == "OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|(_, v)| v.as_str());
        assert_eq!(endpoint, Some("${OTEL_EXPORTER_OTLP_ENDPOINT:-}"), "{name}");
    }
    let collector = yaml_file("observability/otel-collector.yaml");
    assert_eq!(
        collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].as_str(),
        Some("0.0.0.0:4318")
    );
    let pipeline = &collector["service"]["pipelines"]["traces"];
    let exporters: Vec<&str> = pipeline["exporters"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(exporters, ["otlp/jaeger"]);
    assert_eq!(
        collector["exporters"]["otlp/jaeger"]["endpoint"].as_str(),
        Some("jaeger:4317")
    );
}

#[test]
fn prometheus_scrapes_every_service_on_its_port() {
    let prometheus = yaml_file("observability/prometheus.yml");
    let mut targets = Vec::new();
    for job in prometheus["scrape_configs"].as_vec().unwrap() {
        for config in job["static_configs"].as_vec().into_iter().flatten() {
            for target in config["targets"].as_vec().unwrap() {
                targets.push(target.as_str().unwrap().to_owned());
            }
        }
        for config in job["dns_sd_configs"].as_vec().into_iter().flatten() {
            let port = config["port"].as_i64().unwrap();
            for name in config["names"].as_vec().unwrap() {
                targets.push(format!("{}:{port}", name.as_str().unwrap()));
            }
        }
    }
    for OurService {
        name, environment, ..
    } in our_services()
    {
        let port = environment
            .iter()
            .find(|(k, _)| k.starts_with("RSS_") && k.ends_with("_PORT"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} sets its port"));
        let target = format!("{name}:{port}");
        assert!(
            targets.contains(&target),
            "{target} is not scraped: {targets:?}"
        );
    }
}

/// The metric names a PromQL expression selects: each is written with a
/// label matcher or a range (`name{...}`, `name[1m]`), a rule of our
/// dashboard that makes them easy to find.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut start = None;
    for (i, c) in expr.char_indices() {
        let ident = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if (c == '{' || c == '[') && !bytes[s].is_ascii_digit() {
                    names.push(expr[s..i].to_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_charts_metrics_the_services_export() {
    let text = std::fs::read_to_string(format!(
        "{ROOT}/observability/grafana/dashboards/rss-recipes.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut wanted = std::collections::BTreeSet::new();
    let mut titles = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        titles.push(panel["title"].as_str().unwrap().to_owned());
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            wanted.extend(names);
        }
    }
    // What the issue asked the dashboard to show.
    for title in [
        "Request rate",
        "Errors",
        "Latency p50 / p99",
        "Circuit breakers",
        "Refresh lag",
        "Feed errors",
        "Instances per app",
    ] {
        assert!(titles.iter().any(|t| t == title), "no {title} panel");
    }

    // A running stack, with a feed subscribed, read and refreshed by the
    // scheduler, and one that fails: every charted metric must exist.
    let stack = support::stack::Stack::start(1, &support::FAST_REFRESH, &[]).await;
    let http = reqwest::Client::new();
    let edge = stack.edge.url("/api/subscriptions");
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    let added = http
        .post(&edge)
        .json(&serde_json::json!({ "url": feed }))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    let _ = http
        .post(&edge)
        .json(&serde_json::json!({ "url": stack.feeds.url("/missing.xml") }))
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let _ = http.get(&edge).send().await;
        let mut exported = std::collections::BTreeSet::new();
        for service in [&stack.edge, &stack.registry, &stack.middletiers[0]] {
            let text = support::web::get_text(service.url("/metrics")).await;
            exported.extend(
                text.lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| l.split(['{', ' ']).next())
                    .map(str::to_owned),
            );
        }
        let missing: Vec<&String> = wanted.iter().filter(|w| !exported.contains(*w)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dashboard charts metrics no service exports: {missing:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[test]
fn the_stack_is_cassandra_a_registry_two_middletiers_and_an_edge() {
    let file = compose();
    let services = &file["services"];
    assert!(
        services["cassandra"]["image"]
            .as_str()
            .unwrap()
            .starts_with("cassandra:")
    );
    assert_eq!(
        services["middletier"]["deploy"]["replicas"].as_i64(),
        Some(2)
    );
    assert_eq!(
        services["edge"]["ports"][0].as_str(),
        Some("${EDGE_PUBLISHED_PORT:-9090}:9090")
    );
    for OurService { name, binary, .. } in our_services() {
        let service = &services[name.as_str()];
        let test: Vec<&str> = service["healthcheck"]["test"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(
            test,
            ["CMD", &format!("/app/{binary}"), "healthcheck"],
            "{name} checks itself"
        );
        assert!(
            service["restart"].as_str().is_some(),
            "{name} has a restart policy"
        );
        assert!(
            service["deploy"]["resources"]["limits"]["memory"]
                .as_str()
                .is_some(),
            "{name} has a memory limit"
        );
        for (dependency, condition) in service["depends_on"].as_hash().into_iter().flatten() {
            assert_eq!(
                condition["condition"].as_str(),
                Some("service_healthy"),
                "{name} -> {dependency:?}"
            );
        }
    }
    let middletier: std::collections::HashMap<_, _> = our_services()
        .into_iter()
        .find(|s| s.name == "middletier")
        .unwrap()
        .environment
        .into_iter()
        .collect();
    assert_eq!(middletier["RSS_STORE"], "cassandra");
}

#[test]
fn only_the_reader_is_published_beyond_this_machine() {
    let file = compose();
    let services = file["services"].as_hash().unwrap();
    let mut published = Vec::new();
    for (name, service) in services {
        for port in service["ports"].as_vec().into_iter().flatten() {
            let port = port.as_str().expect("ports are written as strings");
            published.push((name.as_str().unwrap(), port));
        }
    }
    for (name, port) in &published {
        // The edge serves browsers; the registry (no authentication, like
        // Eureka) and Cassandra must not be reachable from other machines.
        assert!(
            *name == "edge" || port.starts_with("127.0.0.1:"),
            "{name} publishes {port} on every interface"
        );
    }
    assert!(published.contains(&(
        "registry",
        "127.0.0.1:${REGISTRY_PUBLISHED_PORT:-8761}:8761"
    )));
}

#[test]
fn our_services_get_time_to_drain_before_docker_kills_them() {
    for OurService { name, .. } in our_services() {
        let grace = compose()["services"][name.as_str()]["stop_grace_period"]
            .as_str()
            .map(str::to_owned);
        let grace = grace.unwrap_or_else(|| panic!("{name} has no stop_grace_period"));
        let grace = common::config::parse_duration(&grace).unwrap();
        // The drain (10 s by default) plus leaving the registry (≤ 3 s).
        assert!(
            grace >= std::time::Duration::from_secs(13),
            "{name}: {grace:?}"
        );
    }
}

#[test]
fn every_variable_set_for_a_service_is_accepted_by_its_binary() {
    let services = our_services();
    assert_eq!(services.len(), 3, "registry, middletier and edge");
    for OurService {
        name,
        binary,
        environment: env,
    } in services
    {
        let path = support::process::bin_path(&binary);
        let help = Command::new(&path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        for (key, _) in &env {
            if key.starts_with("OTEL_") {
                // Read by the OpenTelemetry SDK, not by our flags.
                assert!(STANDARD_OTEL.contains(&key.as_str()), "{name}: {key}");
                continue;
            }
            // `[env: KEY=value]`, or `[env: KEY]` for a secret's.
            assert!(
                help.contains(&format!("[env: {key}=")) || help.contains(&format!("[env: {key}]")),
                "{name}: {binary} does not read {key}"
            );
        }
        // Parse the whole configuration with these values, through the
        // `healthcheck` tool: nothing listens, so it exits 1; a value the
        // binary refuses would make clap exit 2 instead.
        let mut command = Command::new(&path);
        for (key, _) in std::env::vars() {
            if key.starts_with("RSS_") {
                command.env_remove(key);
            }
        }
        let checked = command
            .envs(
                env.iter()
                    .filter(|(k, _)| !k.starts_with("OTEL_"))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env("RSS_HOST", "127.0.0.1")
            .arg("healthcheck")
            .output()
            .unwrap();
        assert_ne!(
            checked.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

// ---------------------------------------------------------------------------
// The stack in real containers, as a newcomer runs it.

/// A registry's instances of `app`: (hostName, ipAddr, status).
async fn registered(compose: &Compose, app: &str) -> Vec<(String, String, String)> {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(compose.registry(&format!("/eureka/v2/apps/{app}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let body: serde_json::Value = response.json().await.unwrap();
    let instances = match &body["application"]["instance"] {
        serde_json::Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    instances
        .iter()
        .map(|i| {
            let text = |field: &str| i[field].as_str().unwrap_or_default().to_owned();
            (text("hostName"), text("ipAddr"), text("status"))
        })
        .collect()
}

/// The addresses the registry lists as `UP` for `app`, sorted.
async fn up_addresses(compose: &Compose, app: &str) -> Vec<String> {
    let mut ips: Vec<String> = registered(compose, app)
        .await
        .into_iter()
        .filter(|(_, _, status)| status == "UP")
        .map(|(_, ip, _)| ip)
        .collect();
    ips.sort();
    ips
}

/// The container addresses of `service`, sorted.
async fn container_addresses(compose: &Compose, service: &str) -> Vec<String> {
    let mut ips: Vec<String> = compose
        .containers(service)
        .await
        .into_iter()
        .map(|c| c.ip)
        .collect();
    ips.sort();
    ips
}

/// Waits until the registry lists exactly the running `middletier`
/// containers, each `UP` at its own address.
async fn wait_for_registered_middletiers(compose: &Compose, n: usize) {
    support::eventually(
        &format!("{n} middletiers registered at their own addresses"),
        Duration::from_secs(120),
        || async {
            let containers = container_addresses(compose, "middletier").await;
            let listed = up_addresses(compose, "MIDDLETIER").await;
            (containers.len() == n && listed == containers).then_some(())
        },
    )
    .await;
}

/// The host address a service's port is published on.
fn published_on(container: &Container, port: &str) -> Vec<String> {
    container.inspect["NetworkSettings"]["Ports"][port]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|binding| binding["HostIp"].as_str().map(str::to_owned))
        .collect()
}

/// A client that sends the session `cookie` with every request.
fn signed_in(cookie: &str, timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// `POST /api/subscriptions` through the edge: the status and the error.
async fn subscribe(http: &reqwest::Client, compose: &Compose, feed: &str) -> (StatusCode, String) {
    match http
        .post(compose.edge("/api/subscriptions"))
        .json(&serde_json::json!({ "url": feed }))
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or_default().to_owned();
            (status, error)
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("no answer: {e}")),
    }
}

/// The feeds the edge lists (live, or `None` when degraded), and the
/// read flag of every item by id.
async fn listing(
    http: &reqwest::Client,
    compose: &Compose,
) -> Option<(BTreeSet<String>, BTreeMap<String, bool>)> {
    let page: serde_json::Value = http
        .get(compose.edge("/api/subscriptions"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    if page["degraded"] != false {
        return None;
    }
    let subscriptions = page["subscriptions"].as_array()?;
    let feeds = subscriptions
        .iter()
        .filter_map(|s| s["url"].as_str().map(str::to_owned))
        .collect();
    let read = subscriptions
        .iter()
        .flat_map(|s| s["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| Some((i["id"].as_str()?.to_owned(), i["read"].as_bool()?)))
        .collect();
    Some((feeds, read))
}

/// What a newcomer's `docker compose up --build` gives, run for real: the
/// images built from this repository's Dockerfile, Cassandra, a registry,
/// two middletiers and an edge, healthy; then the faults the README
/// promises to survive. (Timings are the stack's defaults: nothing is
/// shortened for the test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_runs_in_containers_and_survives_its_faults() {
    // A bound on the faults (about 5 min): a step that hangs fails here,
    // and the stack's logs are shown, instead of the test command hanging
    // until CI gives up.
    // The stack lives outside the bound, so its Drop shows the logs.
    let started = std::time::Instant::now();
    let compose = Compose::up("rss-recipes-test").await;
    eprintln!(
        "[{:>4} s] every service healthy",
        started.elapsed().as_secs()
    );
    tokio::time::timeout(
        Duration::from_secs(20 * 60),
        containers_survive_faults(&compose, started),
    )
    .await
    .expect("the stack's faults were all tried within 20 minutes");
}

async fn containers_survive_faults(compose: &Compose, started: std::time::Instant) {
    let step = |what: &str| eprintln!("[{:>4} s] {what}", started.elapsed().as_secs());

    // Published: the reader on every interface; the registry (no
    // authentication, like Eureka) and Cassandra on this machine only.
    let edge = compose.containers("edge").await.remove(0);
    let registry = compose.containers("registry").await.remove(0);
    let cassandra = compose.containers("cassandra").await.remove(0);
    assert_eq!(published_on(&registry, "8761/tcp"), ["127.0.0.1"]);
    assert_eq!(published_on(&cassandra, "9042/tcp"), ["127.0.0.1"]);
    let edge_on = published_on(&edge, "9090/tcp");
    assert!(edge_on.contains(&"0.0.0.0".to_owned()), "{edge_on:?}");
    for middletier in compose.containers("middletier").await {
        assert!(published_on(&middletier, "9191/tcp").is_empty());
    }

    // Both middletiers registered, each at its own address; the edge
    // under its name, with its address as ipAddr.
    wait_for_registered_middletiers(compose, 2).await;
    let edges = registered(compose, "EDGE").await;
    assert_eq!(edges, [("edge".into(), edge.ip.clone(), "UP".into())]);
    step("both middletiers registered");

    // Subscribing through the edge fetches a feed served on the compose
    // network; the reader page shows it; read state is in Cassandra, so
    // both middletiers (reads alternate) agree on it.
    // The reader has accounts (RSS_AUTH=local): every request is signed
    // in as the admin the compose environment created.
    let cookie = compose.sign_in().await;
    let http = signed_in(&cookie, Duration::from_secs(30));
    let anonymous = reqwest::get(compose.edge("/api/subscriptions"))
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "accounts are on"
    );
    let feed = "http://feeds:8080/rss2.xml";
    let (status, error) = subscribe(&http, compose, feed).await;
    assert_eq!(status, StatusCode::OK, "{error}");
    let page = http
        .get(compose.edge("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Recipe Kitchen"),
        "the reader page shows the feed"
    );
    let (_, items) = listing(&http, compose).await.expect("a live listing");
    let item = items.keys().next().expect("the feed's items").clone();
    let marked = http
        .put(compose.edge(&format!("/api/items/{item}")))
        .json(&serde_json::json!({"read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), StatusCode::OK);
    for _ in 0..6 {
        let (feeds, read) = listing(&http, compose).await.expect("live");
        assert!(feeds.contains(feed));
        assert_eq!(read.get(&item), Some(&true), "read on every middletier");
    }
    step("subscribed, read state shared");

    // A middletier killed under load: no reader sees a failure or a
    // degraded answer. The dead container times out rather than refusing;
    // the balancer moves on, and after each cool-down lets one trial call
    // through, not every call. 25 s covers two cool-downs.
    let load = support::load::Load::start_signed_in(
        &compose.edge(""),
        &cookie,
        4,
        Duration::from_millis(20),
        Some(&["Recipe Kitchen"]),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = compose.containers("middletier").await.remove(0);
    let mut kill = tokio::process::Command::new("docker");
    kill.args(["kill", "--signal", "KILL", &victim.id]);
    let killed = support::compose::bounded("docker kill", kill).await;
    assert!(killed.status.success());
    tokio::time::sleep(Duration::from_secs(25)).await;
    let tally = load.stop().await;
    assert_eq!((tally.failed, tally.degraded), (0, 0), "{tally:?}");
    assert!(tally.live > 500, "{tally:?}");
    step(&format!("a middletier killed under load: {tally:?}"));
    let mut start = tokio::process::Command::new("docker");
    start.args(["start", &victim.id]);
    let restarted = support::compose::bounded("docker start", start).await;
    assert!(restarted.status.success());
    support::eventually(
        "the restarted middletier healthy",
        Duration::from_secs(120),
        || async {
            compose
                .healthy_now("middletier", "middletier")
                .await
                .then_some(())
        },
    )
    .await;
    wait_for_registered_middletiers(compose, 2).await;
    step("the killed middletier back");

    // Cassandra stopped for a minute, then started again, under writes
    // and reads: writes are refused honestly (503, "not saved") while it
    // is away, reads are served (live or from the edge's saved copy, never
    // an error), and every acknowledged write is kept. A minute is longer
    // than a middletier's item-id lease lasts unrenewed (45 s), so each
    // must claim it again: within seconds of Cassandra's return both say
    // they are healthy and take writes.
    let writes: Arc<Mutex<Vec<(String, StatusCode, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (http, writes, stop) = (http.clone(), writes.clone(), stop.clone());
        let edge = compose.edge("");
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let feed = format!("{feed}?n={n}");
                let response = http
                    .post(format!("{edge}/api/subscriptions"))
                    .json(&serde_json::json!({ "url": feed }))
                    .send()
                    .await;
                let (status, error) = match response {
                    Ok(r) => {
                        let status = r.status();
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        (
                            status,
                            body["error"].as_str().unwrap_or_default().to_owned(),
                        )
                    }
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
                };
                writes.lock().unwrap().push((feed, status, error));
                // Under the per-user write rate, and the subscription cap.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    let load = support::load::Load::start_signed_in(
        &compose.edge(""),
        &cookie,
        2,
        Duration::from_millis(100),
        None,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    compose.run(&["stop", "cassandra"]).await;
    step("Cassandra stopped");
    support::eventually(
        "a write refused while Cassandra is away",
        Duration::from_secs(30),
        || async {
            let writes = writes.lock().unwrap();
            writes
                .iter()
                .any(|(_, status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(())
        },
    )
    .await;
    support::eventually(
        "the middletiers' healthchecks say they cannot take writes",
        Duration::from_secs(30),
        || async {
            let up = compose.healthy_now("middletier", "middletier").await;
            (!up).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(50)).await;
    compose.run(&["start", "cassandra"]).await;
    // Back when CQL answers on its published port.
    let nodes = format!("127.0.0.1:{}", compose.ports.cassandra);
    support::eventually(
        "Cassandra answers CQL again",
        Duration::from_secs(180),
        || {
            let nodes = nodes.clone();
            // Each try is bounded: a session build can wait for ever on a
            // node that accepts connections but is not serving yet.
            async move {
                let builder = scylla::client::session_builder::SessionBuilder::new()
                    .known_node(&nodes)
                    .connection_timeout(Duration::from_secs(2));
                match tokio::time::timeout(Duration::from_secs(10), builder.build()).await {
                    Ok(Ok(_session)) => Some(()),
                    _ => None,
                }
            }
        },
    )
    .await;
    let back = std::time::Instant::now();
    step("Cassandra answers again");
    // Within 10 s: the edge's RSSAdd breaker, opened by the refused
    // writes, lets a trial through after its 5 s sleep window.
    let first_written_after = support::eventually(
        "writes taken again within seconds of Cassandra's return",
        Duration::from_secs(10),
        || async {
            // Two in a row, so both middletiers (round robin) take writes.
            let writes = writes.lock().unwrap();
            let n = writes.len();
            (n >= 2 && writes[n - 2..].iter().all(|(_, s, _)| *s == StatusCode::OK))
                .then(|| back.elapsed())
        },
    )
    .await;
    support::eventually(
        "every middletier healthy within seconds of Cassandra's return",
        Duration::from_secs(10)
            .saturating_sub(back.elapsed())
            .max(Duration::from_secs(1)),
        || async {
            compose
                .healthy_now("middletier", "middletier")
                .await
                .then_some(())
        },
    )
    .await;
    step(&format!(
        "writes back {first_written_after:?} after Cassandra"
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let tally = load.stop().await;
    assert_eq!(tally.failed, 0, "reads during the outage: {tally:?}");
    let writes = writes.lock().unwrap().clone();
    for (feed, status, error) in &writes {
        assert!(
            *status == StatusCode::OK
                || (*status == StatusCode::SERVICE_UNAVAILABLE && error.starts_with("not saved")),
            "{feed}: {status} {error}"
        );
    }
    let acknowledged: BTreeSet<String> = writes
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::OK)
        .map(|(feed, _, _)| feed.clone())
        .collect();
    assert!(
        writes
            .iter()
            .any(|(_, s, _)| *s == StatusCode::SERVICE_UNAVAILABLE),
        "some writes were refused while Cassandra was away"
    );
    let (feeds, _) = support::eventually("a live listing", Duration::from_secs(30), || {
        listing(&http, compose)
    })
    .await;
    let lost: Vec<&String> = acknowledged.difference(&feeds).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    step(&format!(
        "Cassandra restarted: {} writes, {} acknowledged and kept",
        writes.len(),
        acknowledged.len()
    ));

    // `down` and `up` again: everything is still there.
    let (before, read_before) = listing(&http, compose).await.expect("live");
    compose.down(false).await;
    compose
        .run_logged(
            "up-again",
            &["up", "--detach", "--wait", "--wait-timeout", "600"],
        )
        .await;
    wait_for_registered_middletiers(compose, 2).await;
    // Sessions are signed with a key per edge process here (no
    // RSS_SESSION_KEY_FILE): the new edge asks to sign in again.
    let http = signed_in(&compose.sign_in().await, Duration::from_secs(30));
    let (after, read_after) = support::eventually(
        "a live listing after down and up",
        Duration::from_secs(60),
        || listing(&http, compose),
    )
    .await;
    assert_eq!(after, before);
    assert_eq!(read_after.get(&item), Some(&true));
    assert_eq!(read_after, read_before);
    step("down and up: all data kept");

    // More middletiers on demand.
    compose
        .run_logged(
            "scale",
            &[
                "up",
                "--detach",
                "--wait",
                "--wait-timeout",
                "300",
                "--scale",
                "middletier=3",
            ],
        )
        .await;
    wait_for_registered_middletiers(compose, 3).await;
    step("scaled to three middletiers");
}

/// Every image the build starts from (the Dockerfiles' `FROM`s) and every
/// image the stack runs without building it is one that
/// `scripts/base-images.sh` pulls, or builds where it cannot be pulled.
#[test]
fn every_base_image_is_provided_by_the_base_images_script() {
    let listed = Command::new(format!("{ROOT}/scripts/base-images.sh"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(listed.status.success());
    let provided: BTreeSet<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut needed = BTreeSet::new();
    for dockerfile in ["Dockerfile", "tests/fixtures/compose/feeds.Dockerfile"] {
        let text = std::fs::read_to_string(format!("{ROOT}/{dockerfile}")).unwrap();
        let args: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ARG "))
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (format!("${{{k}}}"), v.to_owned()))
            .collect();
        let mut stages = BTreeSet::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("FROM ")) {
            let mut words = line.split_whitespace();
            let mut image = words.next().unwrap().to_owned();
            for (arg, value) in &args {
                image = image.replace(arg, value);
            }
            if let (Some("AS"), Some(stage)) = (words.next(), words.next()) {
                stages.insert(stage.to_owned());
            }
            if !stages.contains(&image) && image != "scratch" {
                needed.insert(image);
            }
        }
    }
    let file = compose();
    for service in file["services"].as_hash().unwrap().values() {
        let built = service["build"].as_hash().is_some();
        let in_profile = service["profiles"].as_vec().is_some();
        if let (Some(image), false, false) = (service["image"].as_str(), built, in_profile) {
            needed.insert(image.to_owned());
        }
    }
    let missing: Vec<&String> = needed.difference(&provided).collect();
    assert!(
        missing.is_empty(),
        "not provided: {missing:?} (provided: {provided:?})"
    );
}

//! The docker-compose file, checked without a Docker engine: Compose itself
//! validates it, and every variable it sets for our services is one the
//! service's binary accepts, with a value it accepts.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

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
    Command::new("docker-compose")
        .args(args)
        .output()
        .expect("docker-compose is installed (scripts/test.sh installs Debian's package)")
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
    assert_eq!(services["edge"]["ports"][0].as_str(), Some("9090:9090"));
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
    assert!(published.contains(&("registry", "127.0.0.1:8761:8761")));
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
            assert!(
                help.contains(&format!("[env: {key}=")),
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

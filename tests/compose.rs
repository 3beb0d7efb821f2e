//! The docker-compose file, checked without a Docker engine: Compose itself
//! validates it, and every variable it sets for our services is one the
//! service's binary accepts, with a value it accepts.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn compose() -> Yaml {
    let text = std::fs::read_to_string(format!("{ROOT}/docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
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

#[test]
fn docker_compose_accepts_the_file() {
    let output = Command::new("docker-compose")
        .args([
            "--project-directory",
            ROOT,
            "-f",
            &format!("{ROOT}/docker-compose.yml"),
            "config",
            "--quiet",
        ])
        .output()
        .expect("docker-compose is installed (scripts/test.sh installs Debian's package)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

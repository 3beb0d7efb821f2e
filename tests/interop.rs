//! Standard Eureka clients against our registry: `py-eureka-client` (PyPI)
//! and `eureka-js-client` (npm), each run as its own program against the
//! real `registry` binary with a real middletier registered in it. Each
//! registers, sees itself `UP`, finds `MIDDLETIER` by app and by VIP (both
//! fetch the registry as `apps/`, with the trailing slash Jersey-based
//! Eureka servers accept), and deregisters.
//!
//! The clients are installed, pinned, under `target/interop/` by
//! `scripts/interop-clients.sh`, which the test command runs first and
//! these tests run again (it does nothing when they are in place).

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use serde_json::Value;
use support::eventually;
use support::process::Service;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn install_clients() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let status = Command::new("bash")
            .arg(format!("{ROOT}/scripts/interop-clients.sh"))
            .status()
            .expect("run scripts/interop-clients.sh");
        assert!(status.success(), "installing the Eureka clients failed");
    });
}

/// A registry and one middletier registered in it, `UP`; the middletier's
/// instance id.
async fn registry_with_a_middletier() -> (Service, Service, String) {
    let registry = Service::start("registry", &["--eviction-interval", "200ms"], &[]);
    let url = registry.url("/eureka/v2/");
    let middletier = Service::start(
        "middletier",
        &["--registry-url", &url, "--renewal-interval", "1s"],
        &[],
    );
    let id = format!("127.0.0.1:middletier:{}", middletier.port);
    let record = registry.url(&format!("/eureka/v2/apps/MIDDLETIER/{id}"));
    eventually("the middletier is UP", Duration::from_secs(15), || async {
        let body: Value = reqwest::Client::new()
            .get(&record)
            .header("accept", "application/json")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["instance"]["status"] == "UP").then_some(())
    })
    .await;
    (registry, middletier, id)
}

/// Runs a client's check program; what it printed, as JSON.
fn run_check(mut command: Command, name: &str) -> Value {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    // The result is the last line; a client may log above it.
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name} printed {stdout}: {e}"))
}

/// Whether the registry still lists `app`.
async fn listed(registry: &Service, app: &str) -> bool {
    reqwest::Client::new()
        .get(registry.url(&format!("/eureka/v2/apps/{app}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

#[tokio::test]
async fn py_eureka_client_registers_discovers_and_deregisters() {
    install_clients();
    let (registry, _middletier, id) = registry_with_a_middletier().await;
    let mut command = Command::new(format!("{ROOT}/target/interop/python/bin/python"));
    command.args([
        &format!("{ROOT}/interop/python/eureka_check.py"),
        &registry.url("/eureka/v2/"),
        &id,
    ]);
    let seen = run_check(command, "py-eureka-client");
    assert_eq!(seen["self_status"], "UP", "{seen}");
    assert!(
        seen["pulled_middletier"]
            .as_array()
            .unwrap()
            .contains(&Value::from(id.clone())),
        "{seen}"
    );
    assert!(
        seen["by_vip"]
            .as_array()
            .unwrap()
            .contains(&Value::from(id)),
        "{seen}"
    );
    assert!(!listed(&registry, "PYCHECK").await, "deregistered");
}

#[tokio::test]
async fn eureka_js_client_registers_discovers_and_deregisters() {
    install_clients();
    let (registry, _middletier, id) = registry_with_a_middletier().await;
    let mut command = Command::new("node");
    command
        .arg(format!("{ROOT}/interop/node/eureka_check.js"))
        .args([&registry.url("/eureka/v2/"), &id])
        .env(
            "NODE_PATH",
            Path::new(ROOT).join("target/interop/node/node_modules"),
        );
    let seen = run_check(command, "eureka-js-client");
    let up = Value::from(format!("{id}:UP"));
    assert!(seen["by_app"].as_array().unwrap().contains(&up), "{seen}");
    assert!(seen["by_vip"].as_array().unwrap().contains(&up), "{seen}");
    assert!(!listed(&registry, "JSCHECK").await, "deregistered");
}

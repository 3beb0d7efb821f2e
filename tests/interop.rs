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

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::eventually;
use support::process::Service;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

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
    let python = support::peers::interop_python();
    let (registry, _middletier, id) = registry_with_a_middletier().await;
    let mut command = Command::new(python);
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
    let node_modules = support::peers::interop_node_modules();
    let (registry, _middletier, id) = registry_with_a_middletier().await;
    let mut command = Command::new("node");
    command
        .arg(format!("{ROOT}/interop/node/eureka_check.js"))
        .args([&registry.url("/eureka/v2/"), &id])
        .env("NODE_PATH", node_modules);
    let seen = run_check(command, "eureka-js-client");
    let up = Value::from(format!("{id}:UP"));
    assert!(seen["by_app"].as_array().unwrap().contains(&up), "{seen}");
    assert!(seen["by_vip"].as_array().unwrap().contains(&up), "{seen}");
    assert!(!listed(&registry, "JSCHECK").await, "deregistered");
}

/// A child process that is killed if the test ends without stopping it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Child {
    /// SIGTERM, then waits up to 30 s for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..300 {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("still running 30 s after SIGTERM");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET {registry}apps/{app}/{id}` as JSON; `None` for a 404.
async fn instance(registry: &str, app: &str, id: &str) -> Option<Value> {
    let response = reqwest::Client::new()
        .get(format!("{registry}apps/{app}/{id}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(response.status().is_success(), "{}", response.status());
    Some(response.json().await.unwrap())
}

/// The value of an unlabelled-or-labelled counter line in Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_spring_cloud_eureka_client_works_with_our_registry() {
    let jar = support::peers::java_eureka_client();
    let (registry, first, first_id) = registry_with_a_middletier().await;
    let registry_url = registry.url("/eureka/v2/");
    let port = free_port();
    let mut java = Child(
        Command::new("java")
            .arg("-Xmx256m")
            .arg("-jar")
            .arg(&jar)
            .arg(format!(
                "--eureka.client.service-url.defaultZone={registry_url}"
            ))
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("java runs the Eureka client"),
    );
    let seen_url = format!("http://127.0.0.1:{port}/seen");
    let seen = || async {
        let response = reqwest::get(&seen_url).await.ok()?;
        response.json::<Value>().await.ok()
    };
    let up = |id: &str| Value::from(format!("{id}:UP"));
    let lists = |seen: &Value, key: &str, value: &Value| {
        seen[key]
            .as_array()
            .is_some_and(|list| list.contains(value))
    };

    // It registers, is listed UP, and finds MIDDLETIER by app and by VIP.
    eventually(
        "the Java client sees itself and the middletier",
        Duration::from_secs(90),
        || async {
            let seen = seen().await?;
            (lists(&seen, "self", &Value::from("javacheck-1:UP"))
                && lists(&seen, "by_app", &up(&first_id))
                && lists(&seen, "by_vip", &up(&first_id)))
            .then_some(())
        },
    )
    .await;
    let record = instance(&registry_url, "JAVACHECK", "javacheck-1")
        .await
        .unwrap();
    assert_eq!(record["instance"]["status"], "UP");

    // A second middletier reaches it through a delta: no more full fetches.
    let metrics = || async { support::web::get_text(registry.url("/metrics")).await };
    let full_before = metric(&metrics().await, r#"registry_fetches_total{kind="full"}"#);
    let second = Service::start(
        "middletier",
        &["--registry-url", &registry_url, "--renewal-interval", "1s"],
        &[],
    );
    let second_id = format!("127.0.0.1:middletier:{}", second.port);
    eventually(
        "the Java client sees the second middletier",
        Duration::from_secs(30),
        || async {
            let seen = seen().await?;
            (lists(&seen, "by_app", &up(&second_id)) && lists(&seen, "by_vip", &up(&second_id)))
                .then_some(())
        },
    )
    .await;
    let text = metrics().await;
    assert_eq!(
        metric(&text, r#"registry_fetches_total{kind="full"}"#),
        full_before,
        "it learned of the second middletier from deltas alone"
    );
    assert!(metric(&text, r#"registry_fetches_total{kind="delta"}"#) > 0.0);

    // Stopped, it leaves the registry.
    java.terminate();
    assert!(
        instance(&registry_url, "JAVACHECK", "javacheck-1")
            .await
            .is_none()
    );
    drop((first, second));
}

#[tokio::test]
async fn our_middletier_and_edge_work_with_a_real_eureka_server() {
    let eureka = support::peers::eureka_url();
    let feeds = support::feed_server::FeedServer::start();
    let timings = ["--renewal-interval", "1s", "--lease-duration", "5s"];
    let start_middletier = || {
        let mut args = vec!["--registry-url", eureka, "--allow-private-feeds"];
        args.extend(timings);
        Service::start("middletier", &args, &[])
    };
    let mut first = start_middletier();
    let first_id = format!("127.0.0.1:middletier:{}", first.port);
    eventually(
        "Eureka lists the middletier UP",
        Duration::from_secs(30),
        || async {
            let record = instance(eureka, "MIDDLETIER", &first_id).await?;
            (record["instance"]["status"] == "UP").then_some(())
        },
    )
    .await;

    // The edge, pointed at Eureka, finds it and serves a user's page.
    let mut args = vec![
        "--registry-url",
        eureka,
        "--registry-fetch-interval",
        "500ms",
    ];
    args.extend(timings);
    let edge = Service::start("edge", &args, &[]);
    let feed = feeds.url("/fixtures/rss2.xml");
    let added = reqwest::Client::new()
        .post(edge.url("/api/subscriptions"))
        .json(&serde_json::json!({ "url": feed }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), reqwest::StatusCode::OK);
    let page = support::web::get_json(edge.url("/api/subscriptions")).await;
    assert_eq!(page["degraded"], false, "{page}");
    assert_eq!(page["subscriptions"][0]["title"], "Recipe Kitchen");

    // A second middletier reaches the edge through Eureka's delta.
    let second = start_middletier();
    let second_id = format!("127.0.0.1:middletier:{}", second.port);
    eventually(
        "the edge knows the second middletier",
        Duration::from_secs(30),
        || async {
            let data = support::web::get_json(edge.url("/dashboard/data")).await;
            let ids: Vec<&str> = data["instances"]
                .as_array()?
                .iter()
                .filter_map(|i| i["id"].as_str())
                .collect();
            ids.contains(&second_id.as_str()).then_some(())
        },
    )
    .await;
    let text = support::web::get_text(edge.url("/metrics")).await;
    assert!(
        metric(
            &text,
            r#"discovery_fetches_total{kind="delta",outcome="ok"}"#
        ) > 0.0,
        "the edge applied Eureka's deltas:\n{text}"
    );
    // Eureka has no watch (`apps/watch` is ours): the edge asked once, was
    // refused, and found the second middletier by polling.
    assert!(
        metric(&text, r#"discovery_watches_total{outcome="refused"}"#) >= 1.0,
        "the edge fell back to polling:\n{text}"
    );

    // On SIGTERM the middletier leaves Eureka.
    first.terminate();
    assert!(first.wait_exit(Duration::from_secs(30)).is_some());
    assert!(instance(eureka, "MIDDLETIER", &first_id).await.is_none());
}

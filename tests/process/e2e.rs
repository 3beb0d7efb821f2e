//! The whole stack end to end, as real processes on 127.0.0.1 with a real
//! local feed server: a person's journey, instances dying under load, the
//! middle tier going away entirely and coming back, and the one-command
//! all-in-one binary.

use crate::support;
// Tests fail loudly on surprises; helpers outside #[test] fns too.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::eventually;
use crate::support::load::Load;
use crate::support::process::{Service, bin_path};
use crate::support::stack::Stack;
use crate::support::web::get_json;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn read(edge: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{edge}/api/subscriptions"))
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn add(edge: &str, url: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{edge}/api/subscriptions"))
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_persons_journey_through_the_json_api() {
    let stack = Stack::start(1, &[], &[]).await;
    let edge = stack.edge.url("");
    let rss = stack.feeds.url("/fixtures/rss2.xml");
    let atom = stack.feeds.url("/fixtures/atom.xml");
    assert_eq!(add(&edge, &rss).await, StatusCode::OK);
    assert_eq!(add(&edge, &atom).await, StatusCode::OK);

    let (status, body) = read(&edge).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        support::listing::feed_titles(&body),
        ["Recipe Kitchen", "Atom Log"]
    );
    assert!(
        body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["items"].as_array().unwrap().is_empty())
    );

    let deleted = reqwest::Client::new()
        .delete(format!("{edge}/api/subscriptions"))
        .query(&[("url", &rss)])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let (_, body) = read(&edge).await;
    assert_eq!(support::listing::feed_titles(&body), ["Atom Log"]);
    assert_eq!(body["degraded"], false);
}

#[tokio::test]
async fn with_two_middletiers_one_killed_mid_run_no_request_fails() {
    let mut stack = Stack::start(2, &[], &[]).await;
    // The memory store is per instance: subscribe on each, so both answer
    // the same (a shared store, Cassandra, is how production scales out).
    stack
        .subscribe_on_each_middletier("default", &stack.feeds.url("/fixtures/rss2.xml"))
        .await;
    let load = Load::start(
        &stack.edge.url(""),
        4,
        Duration::from_millis(10),
        &["Recipe Kitchen"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.middletiers[0].kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let tally = load.stop().await;
    assert!(tally.live > 20, "the load ran: {tally:?}");
    assert_eq!(
        (tally.failed, tally.degraded),
        (0, 0),
        "no request failed or fell back: {tally:?}"
    );
}

#[tokio::test]
async fn with_every_middletier_gone_answers_degrade_then_recover_on_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_owned();
    let mut stack = Stack::start(
        1,
        &["--store", "file", "--data-dir", &dir],
        &["--breaker-sleep-window", "1s"],
    )
    .await;
    let edge = stack.edge.url("");
    assert_eq!(
        add(&edge, &stack.feeds.url("/fixtures/atom.xml")).await,
        StatusCode::OK
    );
    let (_, live) = read(&edge).await;
    assert_eq!(support::listing::feed_titles(&live), ["Atom Log"]);

    stack.middletiers[0].kill();
    for _ in 0..25 {
        let (status, body) = read(&edge).await;
        assert_eq!(status, StatusCode::OK, "the edge keeps answering");
        assert_eq!(body["degraded"], true);
        assert_eq!(
            support::listing::feed_titles(&body),
            ["Atom Log"],
            "from the saved copy"
        );
    }

    stack.middletiers.clear();
    stack.add_middletier();
    stack.wait_until_edge_knows(1).await;
    let live = eventually(
        "live answers again once the middletier is back and the breaker has closed",
        Duration::from_secs(10),
        || async {
            let (_, body) = read(&edge).await;
            (body["degraded"] == false).then_some(body)
        },
    )
    .await;
    assert_eq!(
        support::listing::feed_titles(&live),
        ["Atom Log"],
        "the restarted middletier kept the subscription"
    );
}

/// The `rss-recipes` binary (what `cargo run --release` runs) in `dir`,
/// where its file store goes to ./data; the edge on `edge_port`, the other
/// services on free ports, and no RSS_* variable from this environment.
fn all_in_one_command(dir: &std::path::Path, edge_port: &str) -> Command {
    let mut command = Command::new(bin_path("rss-recipes"));
    for (key, _) in std::env::vars() {
        if key.starts_with("RSS_") {
            command.env_remove(key);
        }
    }
    command.current_dir(dir).args([
        "--registry-port",
        "0",
        "--middletier-port",
        "0",
        "--edge-port",
        edge_port,
    ]);
    command
}

/// The all-in-one stack running on free ports.
fn all_in_one(dir: &std::path::Path) -> Service {
    all_in_one_with(dir, &[])
}

/// The all-in-one stack on free ports, with extra environment variables.
fn all_in_one_with(dir: &std::path::Path, envs: &[(&str, &str)]) -> Service {
    let mut command = all_in_one_command(dir, "0");
    command
        .args(["--log-format", "json", "--allow-private-feeds"])
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Service::spawn("rss-recipes", command)
}

#[tokio::test]
async fn the_all_in_one_binary_serves_the_reader_and_keeps_feeds_across_restarts() {
    let feeds = support::feed_server::FeedServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut stack = all_in_one(dir.path());
    let edge = format!("http://127.0.0.1:{}", stack.port_of("edge"));
    let registry = format!("http://127.0.0.1:{}", stack.port_of("registry"));

    let page = reqwest::get(format!("{edge}/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        add(&edge, &feeds.url("/fixtures/rss2.xml")).await,
        StatusCode::OK
    );
    let (_, body) = read(&edge).await;
    assert_eq!(support::listing::feed_titles(&body), ["Recipe Kitchen"]);
    let apps: Value = get_json(format!("{registry}/eureka/v2/apps")).await;
    let names: Vec<&str> = apps["applications"]["application"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["EDGE", "MIDDLETIER"]);
    let ready = stack
        .logs()
        .iter()
        .any(|line| line.contains(r#""message":"ready""#) && line.contains(&edge));
    assert!(ready, "it says which URL to open");

    stack.terminate();
    let status = stack
        .wait_exit(Duration::from_secs(15))
        .expect("Ctrl-C/SIGTERM stops it");
    assert!(status.success(), "{status}");
    assert!(
        dir.path().join("data").join("subscriptions.redb").exists(),
        "the file store is the default"
    );

    let again = all_in_one(dir.path());
    let edge = format!("http://127.0.0.1:{}", again.port_of("edge"));
    let (_, body) = read(&edge).await;
    assert_eq!(
        support::listing::feed_titles(&body),
        ["Recipe Kitchen"],
        "feeds survive a restart"
    );
}

/// [`listening_addresses`], read again (for up to a second) while it finds
/// none: /proc/net/tcp is read in pages while other tests open and close
/// sockets, so one reading can miss a line.
fn listening_addresses_settled(port: u16) -> Vec<std::net::IpAddr> {
    for _ in 0..50 {
        let found = listening_addresses(port);
        if !found.is_empty() {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Vec::new()
}

/// The local addresses `port` is listened on, from /proc/net/tcp{,6}.
fn listening_addresses(port: u16) -> Vec<std::net::IpAddr> {
    let mut found = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            let (Some(local), Some("0A")) = (fields.get(1), fields.get(3).copied()) else {
                continue;
            };
            let (ip, p) = local.split_once(':').unwrap();
            if u16::from_str_radix(p, 16).unwrap() != port {
                continue;
            }
            let bytes: Vec<u8> = (0..ip.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&ip[i..i + 2], 16).unwrap())
                .collect();
            // The kernel writes each 32-bit word in host (little-endian) order.
            let bytes: Vec<u8> = bytes
                .chunks(4)
                .flat_map(|w| w.iter().rev().copied())
                .collect();
            found.push(if v6 {
                std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap())
            } else {
                std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap())
            });
        }
    }
    found
}

#[tokio::test]
async fn with_host_0_0_0_0_only_the_reader_listens_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = all_in_one_command(dir.path(), "0");
    command
        .args(["--host", "0.0.0.0", "--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stack = Service::spawn("rss-recipes", command);
    for (service, wide) in [("edge", true), ("middletier", false), ("registry", false)] {
        let addresses = listening_addresses_settled(stack.port_of(service));
        assert!(!addresses.is_empty(), "{service} listens");
        let beyond_loopback = addresses.iter().any(|ip| !ip.is_loopback());
        assert_eq!(beyond_loopback, wide, "{service}: {addresses:?}");
    }
}

#[test]
fn the_all_in_one_binary_names_the_flag_when_a_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = all_in_one_command(dir.path(), &port).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&port) && stderr.contains("--edge-port"),
        "{stderr}"
    );
}

/// Opens a connection to `port` and starts a request whose body never
/// finishes: the headers and 2 bytes of a 100-byte body, then nothing. The
/// connection stays open as long as the returned stream lives.
fn slow_client(port: u16, path: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\""
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_does_not_hold_up_a_stop() {
    // Each service with a short drain; body reads keep their default (30 s),
    // so only the drain deadline can end the stuck request in time.
    let drain = [("RSS_DRAIN_TIMEOUT", "2s")];
    let registry = Service::start("registry", &[], &drain);
    let registry_url = registry.url("/eureka/v2/");
    let middletier = Service::start("middletier", &["--registry-url", &registry_url], &drain);
    let edge = Service::start("edge", &["--registry-url", &registry_url], &drain);
    let dir = tempfile::tempdir().unwrap();
    let all = all_in_one_with(dir.path(), &drain);
    let all_edge = all.port_of("edge");

    let mut services = [
        (registry, "/eureka/v2/apps/SLOW"),
        (
            middletier,
            "/middletier/rss/user/slow?url=http%3A%2F%2Fexample.com%2F",
        ),
        (edge, "/api/subscriptions"),
    ]
    .map(|(service, path)| {
        let stuck = slow_client(service.port, path);
        (service, stuck)
    });
    let all_stuck = slow_client(all_edge, "/api/subscriptions");
    let mut all = (all, all_stuck);
    std::thread::sleep(Duration::from_millis(200));

    for (service, _) in &services {
        service.terminate();
    }
    all.0.terminate();
    for (service, _) in services.iter_mut().chain(std::iter::once(&mut all)) {
        let status = service
            .wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} still runs 30 s after SIGTERM", service.name));
        assert!(status.success(), "{}: {status}", service.name);
    }
}

#[tokio::test]
async fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A drain that would take ten minutes: only the second Ctrl-C can end
    // the process in time.
    let mut all = all_in_one_with(dir.path(), &[("RSS_DRAIN_TIMEOUT", "10m")]);
    let _stuck = slow_client(all.port_of("edge"), "/api/subscriptions");
    std::thread::sleep(Duration::from_millis(200));
    all.interrupt();
    eventually("the first Ctrl-C is taken", Duration::from_secs(10), || {
        let seen = all
            .logs()
            .iter()
            .any(|line| line.contains("shutdown requested"));
        async move { seen.then_some(()) }
    })
    .await;
    assert!(
        all.wait_exit(Duration::from_secs(1)).is_none(),
        "still draining"
    );
    all.interrupt();
    let status = all
        .wait_exit(Duration::from_secs(30))
        .expect("a second Ctrl-C exits at once");
    assert!(
        !status.success(),
        "an interrupted exit is not a success: {status}"
    );
}

#[tokio::test]
async fn the_edge_stops_cleanly_even_with_a_stream_open() {
    let stack = Stack::start(1, &[], &[]).await;
    let mut edge = stack.edge;
    let _stream = reqwest::get(edge.url("/hystrix.stream")).await.unwrap();
    edge.terminate();
    let status = edge
        .wait_exit(Duration::from_secs(10))
        .expect("the stream does not hold up shutdown");
    assert!(status.success());
}

#[test]
fn a_port_in_use_is_a_clear_error_naming_the_middletiers_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = std::process::Command::new(bin_path("middletier"))
        .args(["--port", &port])
        .env_remove("RSS_MIDDLETIER_PORT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&port) && stderr.contains("--port"),
        "{stderr}"
    );
}

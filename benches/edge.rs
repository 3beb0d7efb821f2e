//! What the resilience patterns cost.
//!
//! Run: `cargo bench --bench edge`
//!
//! 1. In one process: a call to a local HTTP server, bare (one shared
//!    `reqwest::Client`), then through the balancer (discovery lookup,
//!    round robin, retry bookkeeping) inside a command (breaker, bulkhead,
//!    timeout, rolling metrics); and a short-circuited call.
//! 2. Real processes: `GET /api/subscriptions` through the edge versus
//!    `GET /middletier/rss/user/{user}` straight to the middletier, for a
//!    user with 20 cached feeds of 50 items, 8 concurrent clients.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::balancer::http::{BalancedClient, BalancerSettings};
use common::discovery::{DiscoveryClient, DiscoverySettings, parse_registry_urls};
use common::resilience::{Command, CommandSettings, Failure};
use support::load::closed_loop;
use support::stack::Stack;
use support::web::get_json;

const CALLS: usize = 5_000;

#[tokio::main]
async fn main() {
    overhead_in_process().await;
    through_the_edge().await;
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1e6;
    (at(0.50), at(0.99), mean)
}

async fn overhead_in_process() {
    // A tiny local server standing in for the middletier.
    let app = Router::new().route("/ping", get(|| async { "{\"ok\":true}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A registry that lists it, so the balancer has a real local copy.
    let registry = support::process::Service::start("registry", &[], &[]);
    let record = serde_json::json!({"instance": {"instanceId": "bench", "hostName": "127.0.0.1", "app": "BENCH",
        "ipAddr": "127.0.0.1", "status": "UP", "port": {"$": port, "@enabled": "true"}, "vipAddress": "bench"}});
    reqwest::Client::new()
        .post(registry.url("/eureka/v2/apps/BENCH"))
        .json(&record)
        .send()
        .await
        .unwrap();
    let settings = DiscoverySettings {
        registry_urls: parse_registry_urls(&[registry.url("/eureka/v2/")]).unwrap(),
        ..DiscoverySettings::default()
    };
    let discovery = DiscoveryClient::new(settings, None).unwrap();
    discovery.fetch().await.unwrap();
    let balanced = BalancedClient::new("bench", discovery, BalancerSettings::default()).unwrap();
    let command = Command::new(CommandSettings::new(
        "Bench",
        "Bench",
        Duration::from_secs(10),
    ));
    let bare = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ping");

    // Warm both paths, then interleave them so both see the same machine.
    for _ in 0..200 {
        bare.get(&url).send().await.unwrap().bytes().await.unwrap();
    }
    let (mut bare_samples, mut wrapped_samples) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let t = Instant::now();
        bare.get(&url).send().await.unwrap().bytes().await.unwrap();
        bare_samples.push(t.elapsed());

        let t = Instant::now();
        let balanced = balanced.clone();
        command
            .execute(|deadline| async move {
                let served = balanced
                    .call(deadline, |http, base| http.get(format!("{base}/ping")))
                    .await
                    .map_err(|e| Failure::Error(e.to_string()))?;
                served
                    .response
                    .bytes()
                    .await
                    .map_err(|e| Failure::Error(e.to_string()))
            })
            .await
            .unwrap();
        wrapped_samples.push(t.elapsed());
    }

    // Open a breaker and time short circuits.
    let open = Command::new(CommandSettings::new(
        "Open",
        "Bench",
        Duration::from_secs(10),
    ));
    for _ in 0..20 {
        let _ = open
            .execute(|_| async { Err::<(), _>(Failure::Error("down")) })
            .await;
    }
    let mut short = Vec::new();
    for _ in 0..CALLS {
        let t = Instant::now();
        let result = open.execute(|_| async { Ok::<_, Failure<&str>>(()) }).await;
        short.push(t.elapsed());
        assert!(result.is_err());
    }

    let (b50, b99, bmean) = summary(bare_samples);
    let (w50, w99, wmean) = summary(wrapped_samples);
    let (s50, s99, smean) = summary(short);
    println!(
        "### Overhead of breaker + balancer + retry, {CALLS} sequential calls to a local server\n"
    );
    println!("| path | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---|---|");
    println!("| bare `reqwest` call | {b50:.1} | {b99:.1} | {bmean:.1} |");
    println!("| command(balancer(call)) | {w50:.1} | {w99:.1} | {wmean:.1} |");
    println!(
        "| added by the patterns | {:.1} | {:.1} | {:.1} |",
        w50 - b50,
        w99 - b99,
        wmean - bmean
    );
    println!("| short-circuited (breaker open, no call) | {s50:.2} | {s99:.2} | {smean:.2} |\n");
}

async fn through_the_edge() {
    let stack = Stack::start(1, &["--user-write-rate", "0"], &["--user-write-rate", "0"]).await;
    let http = reqwest::Client::new();
    let user_url = stack.middletiers[0].url("/middletier/rss/user/default");
    stack.subscribe_generated(20, 50).await;
    let edge_url = stack.edge.url("/api/subscriptions");
    // Warm: every feed read and cached.
    let body: serde_json::Value = get_json(&edge_url).await;
    assert_eq!(body["degraded"], false);
    assert!(
        body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["error"].is_null())
    );

    println!(
        "### GET, 20 cached feeds x 50 items, 8 concurrent clients, 4,000 requests each way\n"
    );
    println!("| path | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    // `http` asks for gzip (as a browser does); `identity` does not. The
    // middletier never compresses, so only the edge rows differ.
    let identity = reqwest::Client::builder().gzip(false).build().unwrap();
    let paths = [
        ("middletier direct", &user_url, &identity),
        ("through the edge", &edge_url, &identity),
        ("through the edge, gzip as a browser asks", &edge_url, &http),
    ];
    for (label, url, client) in paths {
        let run = closed_loop(client, url, 8, 500).await;
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} |",
            run.per_second,
            run.ms(0.50),
            run.ms(0.99)
        );
    }
    let get = stack.command("RSSGet").await;
    assert_eq!(
        get["state"], "closed",
        "no read failed or fell back during the run: {get}"
    );
}

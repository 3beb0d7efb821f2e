//! GET latency of the middletier for a user with 20 stored feeds.
//!
//! Run: `cargo bench --bench get_latency`
//!
//! Starts the real (release) `middletier` binary and a local feed server,
//! subscribes one user to 20 feeds of 50 realistic items each (subscribing
//! fetches and stores them), then measures `GET /middletier/rss/user/{user}`:
//! 2,000 requests one at a time, then 4,000 requests from 8 concurrent
//! clients. Reads serve stored items; this measures our overhead (store,
//! read state, JSON), not the publishers'.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::feed_server::FeedServer;
use support::process::Service;
use support::web::get_json;

const FEEDS: usize = 20;
const ITEMS: usize = 50;

#[tokio::main]
async fn main() {
    let feeds = FeedServer::start();
    let service = Service::start(
        "middletier",
        &[
            "--registry-url=",
            "--allow-private-feeds",
            "--user-write-rate",
            "0",
        ],
        &[],
    );
    let http = reqwest::Client::new();
    let user_url = service.url("/middletier/rss/user/bench");
    for i in 0..FEEDS {
        let feed = feeds.url(&format!("/generated/{ITEMS}?feed={i}"));
        let response = http
            .post(&user_url)
            .query(&[("url", feed)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    // Check that every feed is really there.
    let body: serde_json::Value = get_json(&user_url).await;
    let subscriptions = body["subscriptions"].as_array().unwrap();
    assert_eq!(subscriptions.len(), FEEDS);
    for feed in subscriptions {
        assert_eq!(feed["error"], serde_json::Value::Null, "{feed}");
        assert_eq!(feed["items"].as_array().unwrap().len(), ITEMS);
    }
    let size = http
        .get(&user_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();

    let sequential = measure(&http, &user_url, 1, 2_000).await;
    let concurrent = measure(&http, &user_url, 8, 500).await;

    println!(
        "GET /middletier/rss/user/{{user}}: {FEEDS} stored feeds x {ITEMS} items, response {} KiB\n",
        size / 1024
    );
    println!("| clients | requests | p50 ms | p90 ms | p99 ms | max ms | requests/s |");
    println!("|---|---|---|---|---|---|---|");
    for (clients, run) in [(1, sequential), (8, concurrent)] {
        println!(
            "| {clients} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            run.latencies.len(),
            run.percentile(0.50),
            run.percentile(0.90),
            run.percentile(0.99),
            run.percentile(1.0),
            run.latencies.len() as f64 / run.wall.as_secs_f64()
        );
    }
    assert!(
        feeds.hits(&format!("/generated/{ITEMS}")) <= FEEDS,
        "no measured GET asked the publisher"
    );
}

struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn percentile(&self, p: f64) -> f64 {
        let index =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[index].as_secs_f64() * 1e3
    }
}

async fn measure(http: &reqwest::Client, url: &str, clients: usize, per_client: usize) -> Run {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let http = http.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let response = http.get(&url).send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    Run { latencies, wall }
}

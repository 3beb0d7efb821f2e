//! Losing a Cassandra node under load.
//!
//! Run: `cargo bench --bench node_loss` (about two and a half minutes, plus
//! starting three Cassandra nodes). Nothing else may use 127.0.0.1-3:9042
//! meanwhile (stop the test cluster first: `scripts/cassandra.sh stop --dir
//! target/cassandra-test`).
//!
//! Three Cassandra 5.0 nodes (`scripts/cassandra.sh start --nodes 3`, in
//! `target/cassandra-3`), a keyspace with replication factor 3 written and
//! read at `local_quorum`; the registry, two middletiers on `--store
//! cassandra` and the edge, release builds. Writers subscribe new feeds and
//! readers read a user's page, all through the edge, in four phases:
//! steady; node 3 killed with SIGKILL; node 3 starting again; node 3 back.
//! For each
//! phase: requests per second, p99, failed requests and degraded reads. At
//! the end every acknowledged subscription is looked up: none may be lost.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::stack::Stack;

const WRITERS: usize = 4;
const READERS: usize = 4;
const STEADY: Duration = Duration::from_secs(30);
const WITHOUT_NODE: Duration = Duration::from_secs(40);
const AFTER: Duration = Duration::from_secs(30);

/// One request: when it ended, how long it took, and how it went.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    took: Duration,
    write: bool,
    ok: bool,
    degraded: bool,
}

fn cassandra(args: &[&str]) -> String {
    let output = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cassandra.sh"))
        .args(args)
        .args([
            "--dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/cassandra-3"),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cassandra.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::main]
async fn main() {
    let nodes = cassandra(&["start", "--nodes", "3"]);
    let nodes = nodes
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("RSS_CASSANDRA_NODES="))
        .unwrap()
        .to_owned();
    let keyspace = format!("rss_node_loss_{}", std::process::id());
    let middletier_args = [
        "--store",
        "cassandra",
        "--cassandra-nodes",
        &nodes,
        "--cassandra-keyspace",
        &keyspace,
        "--cassandra-replication",
        "3",
        "--cassandra-consistency",
        "local_quorum",
        "--user-write-rate",
        "0",
        "--max-subscriptions",
        "1000000",
    ];
    let edge_args = ["--user-write-rate", "0", "--auth-proxy-header", "X-User"];
    let stack = Stack::start(2, &middletier_args, &edge_args).await;
    let edge = stack.edge.url("/api/subscriptions");
    let feed = stack.feeds.url("/fixtures/rss2.xml");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let added = http
        .post(&edge)
        .header("x-user", "reader")
        .json(&json!({ "url": feed }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (http, edge, samples, acknowledged, stop) = (
            http.clone(),
            edge.clone(),
            samples.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // 50 feeds per user (the subscribe path lists the user's
                // feeds first); feeds on a closed port, so that fetching
                // them costs nothing: this measures the store.
                let user = format!("w{w}-{}", n / 50);
                let url = format!("http://127.0.0.1:9/feed-{w}-{n}.xml");
                let t = Instant::now();
                let sent = http
                    .post(&edge)
                    .header("x-user", &user)
                    .json(&json!({ "url": url }))
                    .send()
                    .await;
                let ok = sent.as_ref().is_ok_and(|r| r.status() == StatusCode::OK);
                if ok {
                    acknowledged.lock().unwrap().push((user.clone(), url));
                }
                samples.lock().unwrap().push(Sample {
                    at: Instant::now(),
                    took: t.elapsed(),
                    write: true,
                    ok,
                    degraded: false,
                });
            }
        }));
    }
    for _ in 0..READERS {
        let (http, edge, samples, stop) =
            (http.clone(), edge.clone(), samples.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let answer = http.get(&edge).header("x-user", "reader").send().await;
                let body: Option<Value> = match answer {
                    Ok(r) if r.status() == StatusCode::OK => r.json().await.ok(),
                    _ => None,
                };
                samples.lock().unwrap().push(Sample {
                    at: Instant::now(),
                    took: t.elapsed(),
                    write: false,
                    ok: body.is_some(),
                    degraded: body.as_ref().is_some_and(|b| b["degraded"] == true),
                });
            }
        }));
    }

    let t0 = Instant::now();
    tokio::time::sleep(STEADY).await;
    let t1 = Instant::now();
    cassandra(&["kill", "3"]);
    tokio::time::sleep(WITHOUT_NODE).await;
    let t2 = Instant::now();
    cassandra(&["start-node", "3"]);
    let t3 = Instant::now();
    tokio::time::sleep(AFTER).await;
    let t4 = Instant::now();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let samples = samples.lock().unwrap().clone();
    println!(
        "\nNode 3 answered CQL again {:.1?} after `start-node`.\n",
        t3 - t2
    );
    println!("| phase | kind | requests | per second | p50 ms | p99 ms | failed | degraded |");
    println!("|---|---|---|---|---|---|---|---|");
    for (phase, from, to) in [
        ("3 nodes", t0, t1),
        ("node 3 killed", t1, t2),
        ("node 3 restarting", t2, t3),
        ("node 3 back", t3, t4),
    ] {
        for (kind, write) in [("subscribe", true), ("read", false)] {
            let mut took: Vec<Duration> = samples
                .iter()
                .filter(|s| s.write == write && s.at >= from && s.at < to)
                .map(|s| s.took)
                .collect();
            took.sort();
            let in_phase = samples
                .iter()
                .filter(|s| s.write == write && s.at >= from && s.at < to);
            let failed = in_phase.clone().filter(|s| !s.ok).count();
            let degraded = in_phase.filter(|s| s.degraded).count();
            let at = |p: f64| {
                took.get(((took.len() as f64 * p) as usize).min(took.len().saturating_sub(1)))
                    .map_or(0.0, |d| d.as_secs_f64() * 1e3)
            };
            println!(
                "| {phase} | {kind} | {} | {:.0} | {:.1} | {:.1} | {failed} | {degraded} |",
                took.len(),
                took.len() as f64 / (to - from).as_secs_f64(),
                at(0.5),
                at(0.99),
            );
        }
    }

    // Every acknowledged subscription, read back from Cassandra at quorum.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .unwrap();
    let mut select = session
        .prepare(format!(
            "SELECT feed_url FROM {keyspace}.subscriptions WHERE user_id = ? AND feed_url = ?"
        ))
        .await
        .unwrap();
    select.set_consistency(scylla::statement::Consistency::Quorum);
    let mut lost = 0;
    for (user, url) in &acknowledged {
        let rows = session
            .execute_unpaged(&select, (user, url))
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        if rows.rows_num() == 0 {
            lost += 1;
        }
    }
    println!(
        "\nAcknowledged subscriptions: {}; lost: {lost}.",
        acknowledged.len()
    );
    drop(stack);
    cassandra(&["stop"]);
}

//! Soak: a steady load through the edge while middletiers are killed and
//! restarted at random.
//!
//! Run: `cargo bench --bench soak` (10 minutes; `SOAK_SECS=60` for a short
//! run, `SOAK_RATE=300` requests/s by default).
//!
//! Three middletiers (each with its own file store, so a restarted one has
//! its subscriptions back), one edge, one registry, all real release
//! processes. Every 5-15 s one middletier (never the last one up) is
//! stopped, by SIGKILL or SIGTERM at random, and restarted 1-3 s later on
//! its port. Reports every request that was not a live, correct answer
//! (target: none), latency percentiles, and each process's memory at the
//! start and the end.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::stack::Stack;
use support::web::get_json;

const MIDDLETIERS: usize = 3;
const READERS: usize = 32;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    support::process::memory_mib(pid, "VmRSS")
}

/// xorshift: enough randomness for choosing victims, no dependency.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[tokio::main]
async fn main() {
    let secs = env_or("SOAK_SECS", 600);
    let rate = env_or("SOAK_RATE", 300);
    let dirs: Vec<tempfile::TempDir> = (0..MIDDLETIERS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let args = dirs
        .iter()
        .map(|d| {
            [
                "--store",
                "file",
                "--data-dir",
                d.path().to_str().unwrap(),
                "--user-write-rate",
                "0",
            ]
            .map(str::to_owned)
            .to_vec()
        })
        .collect();
    let mut stack = Stack::start_each(args, &[]).await;
    let feeds: Vec<String> = (0..5)
        .map(|i| stack.feeds.url(&format!("/generated/20?feed={i}")))
        .collect();
    for feed in &feeds {
        stack.subscribe_on_each_middletier("default", feed).await;
    }
    let edge_url = stack.edge.url("/api/subscriptions");
    let warm: Value = get_json(&edge_url).await;
    assert_eq!(warm["subscriptions"].as_array().unwrap().len(), feeds.len());

    let mut memory_start = vec![
        ("registry".to_owned(), rss_mib(stack.registry.pid())),
        ("edge".to_owned(), rss_mib(stack.edge.pid())),
    ];
    for (i, m) in stack.middletiers.iter().enumerate() {
        memory_start.push((format!("middletier {i}"), rss_mib(m.pid())));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let period = Duration::from_secs_f64(READERS as f64 / rate as f64);
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (stop, failures, samples, url) = (
                stop.clone(),
                failures.clone(),
                samples.clone(),
                edge_url.clone(),
            );
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                            Ok(body) => {
                                body["degraded"] == false
                                    && body["subscriptions"].as_array().map(Vec::len) == Some(5)
                            }
                            Err(_) => false,
                        },
                        _ => false,
                    };
                    let took = started.elapsed();
                    mine.push(took);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(rest) = period.checked_sub(took) {
                        tokio::time::sleep(rest).await;
                    }
                }
                samples.lock().unwrap().extend(mine);
            })
        })
        .collect();

    let mut dice = Dice(u64::from(std::process::id()) * 2_654_435_761 + 1);
    let (mut kills, mut terms) = (0, 0);
    let mut restarted = [false; MIDDLETIERS];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    while Instant::now() + Duration::from_secs(20) < deadline {
        tokio::time::sleep(Duration::from_secs(5 + dice.roll(11))).await;
        let victim = dice.roll(MIDDLETIERS as u64) as usize;
        if dice.roll(2) == 0 {
            stack.middletiers[victim].kill();
            kills += 1;
        } else {
            stack.middletiers[victim].terminate();
            stack.middletiers[victim].wait_exit(Duration::from_secs(15));
            terms += 1;
        }
        tokio::time::sleep(Duration::from_millis(1000 + dice.roll(2000))).await;
        stack.restart_middletier(victim);
        restarted[victim] = true;
        stack.wait_until_edge_knows(MIDDLETIERS).await;
    }
    if let Some(rest) = deadline.checked_duration_since(Instant::now()) {
        tokio::time::sleep(rest).await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3
    };

    println!(
        "### Soak: {secs} s, target {rate} requests/s through the edge, {MIDDLETIERS} middletiers\n"
    );
    println!(
        "| requests | requests/s | not live and correct | p50 ms | p99 ms | max ms | SIGKILLs | SIGTERMs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {kills} | {terms} |",
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    println!("\n| process | RSS at start, MiB | RSS at end, MiB |");
    println!("|---|---|---|");
    let mut memory_end = vec![rss_mib(stack.registry.pid()), rss_mib(stack.edge.pid())];
    memory_end.extend(stack.middletiers.iter().map(|m| rss_mib(m.pid())));
    for (i, ((name, start), end)) in memory_start.iter().zip(memory_end).enumerate() {
        // The first two rows are the registry and the edge.
        let note = if i >= 2 && restarted[i - 2] {
            " (a new process since)"
        } else {
            ""
        };
        println!("| {name}{note} | {start:.1} | {end:.1} |");
    }
}

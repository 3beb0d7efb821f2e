//! Registry and discovery figures.
//!
//! Run: `cargo bench --bench registry`
//!
//! 1. Time from `middletier` process start to `UP` in the registry.
//! 2. Time for a new instance to receive traffic from a client with the
//!    default settings (a watch of the registry, 5 s poll as the fallback).
//! 3. Registry throughput with 10,000 registered instances: heartbeats,
//!    full fetches (JSON, gzipped JSON, XML) and deltas, from 16 concurrent
//!    clients on the same 2-core machine; and the registry's memory.
//! 4. 100 watchers of a registry of 10,000 instances: the registry's CPU
//!    while nothing changes (against 100 clients polling every 5 s), and
//!    the time for one change to reach all 100.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::balancer::http::{BalancedClient, BalancerSettings};
use common::discovery::{DiscoveryClient, DiscoverySettings, parse_registry_urls};
use serde_json::json;
use support::process::Service;

const INSTANCES: usize = 10_000;
const CLIENTS: usize = 16;

#[tokio::main]
async fn main() {
    let registry = Service::start("registry", &[], &[]);
    let base = registry.url("/eureka/v2");
    let http = reqwest::Client::builder().gzip(false).build().unwrap();

    startup_to_up(&registry).await;
    new_instance_to_traffic(&registry).await;

    let rss_idle = rss_kib(registry.pid());
    register_many(&http, &base).await;
    let rss_loaded = rss_kib(registry.pid());

    println!("\n### Registry throughput, {INSTANCES} instances, {CLIENTS} concurrent clients\n");
    println!("| operation | requests/s | response size |");
    println!("|---|---|---|");
    let heartbeat = {
        let base = base.clone();
        move |http: reqwest::Client, n: usize| {
            let url = format!("{base}/apps/BENCH/bench-{}", n % INSTANCES);
            async move {
                http.put(url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
                    .len()
            }
        }
    };
    report("heartbeat (PUT)", &http, heartbeat).await;
    for (label, accept, gzip, path) in [
        ("full fetch, JSON", "application/json", false, "/apps"),
        ("full fetch, JSON gzip", "application/json", true, "/apps"),
        ("full fetch, XML", "application/xml", false, "/apps"),
        ("delta, JSON", "application/json", false, "/apps/delta"),
    ] {
        let url = format!("{base}{path}");
        let fetch = move |http: reqwest::Client, _n: usize| {
            let mut request = http.get(url.clone()).header("accept", accept);
            if gzip {
                request = request.header("accept-encoding", "gzip");
            }
            async move { request.send().await.unwrap().bytes().await.unwrap().len() }
        };
        report(label, &http, fetch).await;
    }
    let rss_after = rss_kib(registry.pid());
    watchers().await;
    println!("\n### Registry memory (VmRSS)\n");
    println!("| state | MiB |");
    println!("|---|---|");
    println!("| idle, empty | {:.1} |", rss_idle as f64 / 1024.0);
    println!(
        "| {INSTANCES} instances registered | {:.1} |",
        rss_loaded as f64 / 1024.0
    );
    println!(
        "| after the fetch runs (response cache filled) | {:.1} |",
        rss_after as f64 / 1024.0
    );
}

/// Spawns middletiers and times start → UP in the registry.
async fn startup_to_up(registry: &Service) {
    let url = registry.url("/eureka/v2/");
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let service = Service::start("middletier", &["--registry-url", &url], &[]);
        let id = format!("127.0.0.1:middletier:{}", service.port);
        let instance_url = registry.url(&format!("/eureka/v2/apps/MIDDLETIER/{id}"));
        loop {
            let body: serde_json::Value = reqwest::Client::new()
                .get(&instance_url)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or_default();
            if body["instance"]["status"] == "UP" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
        drop(service);
    }
    samples.sort();
    println!("### Middletier process start → UP in the registry (10 runs)\n");
    println!(
        "median {:.0} ms, max {:.0} ms\n",
        samples[5].as_secs_f64() * 1e3,
        samples[9].as_secs_f64() * 1e3
    );
}

/// A client with default discovery settings (fetch every 5 s); a new
/// instance starts; how long until a call lands on it.
async fn new_instance_to_traffic(registry: &Service) {
    let url = registry.url("/eureka/v2/");
    let settings = DiscoverySettings {
        registry_urls: parse_registry_urls(std::slice::from_ref(&url)).unwrap(),
        ..DiscoverySettings::default()
    };
    let discovery = DiscoveryClient::new(settings, None).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let _fetcher = discovery.spawn_fetcher(stop.clone());
    let client =
        BalancedClient::new("middletier", discovery.clone(), BalancerSettings::default()).unwrap();
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let service = Service::start("middletier", &["--registry-url", &url], &[]);
        let id = format!("127.0.0.1:middletier:{}", service.port);
        loop {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            if let Ok(served) = client
                .call(deadline, |http, base| {
                    http.get(format!("{base}/healthcheck"))
                })
                .await
                && served.instance.id == id
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(started.elapsed());
        // Leave gracefully so the next run starts from a clean list, and
        // start the next run at a different point of the client's fetch
        // cycle (a pseudo-random 0-5 s more), to sample its whole range.
        service.terminate();
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_millis(),
        ) * 5;
        tokio::time::sleep(Duration::from_millis(5_500 + jitter)).await;
    }
    stop.cancel();
    samples.sort();
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
    println!("### New instance → first call routed to it, default client settings (5 runs)\n");
    println!(
        "mean {:.2} s, min {:.2} s, max {:.2} s (the client watches the registry)\n",
        mean,
        samples[0].as_secs_f64(),
        samples[4].as_secs_f64()
    );
}

async fn register_many(http: &reqwest::Client, base: &str) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, base, next) = (http.clone(), base.to_owned(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= INSTANCES {
                        return;
                    }
                    let body = json!({"instance": {
                        "instanceId": format!("bench-{n}"), "hostName": format!("10.1.{}.{}", n / 250, n % 250),
                        "app": "BENCH", "ipAddr": format!("10.1.{}.{}", n / 250, n % 250), "status": "UP",
                        "port": {"$": 8080, "@enabled": "true"}, "vipAddress": "bench",
                        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
                        "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 3600},
                        "metadata": {"zone": "a"}
                    }});
                    let response = http.post(format!("{base}/apps/BENCH")).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), 204);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "### Registering {INSTANCES} instances: {:.1} s ({:.0} registrations/s)",
        started.elapsed().as_secs_f64(),
        INSTANCES as f64 / started.elapsed().as_secs_f64()
    );
}

/// Runs `op` from `CLIENTS` tasks for 5 s and prints the rate.
async fn report<F, Fut>(label: &str, http: &reqwest::Client, op: F)
where
    F: Fn(reqwest::Client, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let done = Arc::new(AtomicUsize::new(0));
    let size = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (op, http, done, size) = (op.clone(), http.clone(), done.clone(), size.clone());
            tokio::spawn(async move {
                let mut n = c * 7919;
                while Instant::now() < until {
                    size.store(op(http.clone(), n).await, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let bytes = size.load(Ordering::Relaxed);
    let size = if bytes > 10_000 {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    } else {
        format!("{bytes} B")
    };
    println!("| {label} | {rate:.0} | {size} |");
}

fn rss_kib(pid: u32) -> u64 {
    (support::process::memory_mib(pid, "VmRSS") * 1024.0) as u64
}

/// Watchers of a registry of 10,000 instances (its own process, changes
/// leaving the delta after 2 s so a watcher's delta holds only the change):
/// the registry's CPU over 20 s with 100 watchers and nothing changing,
/// against 100 clients polling the delta every 5 s as before; then 10
/// changes, each timed until all 100 watchers have fetched the delta that
/// holds it.
async fn watchers() {
    const WATCHERS: usize = 100;
    let registry = Service::start("registry", &["--delta-retention", "2s"], &[]);
    let base = registry.url("/eureka/v2");
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    register_many(&http, &base).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let version_now = || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body: serde_json::Value = http
                .get(format!("{base}/apps/delta"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["applications"]["versions__delta"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    };
    let cpu_over = |pid: u32, seconds: u64| async move {
        let before = support::process::cpu_time(pid);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        (support::process::cpu_time(pid) - before).as_secs_f64() / seconds as f64 * 100.0
    };

    // 100 clients polling the delta every 5 s (spread over the interval).
    let stop = tokio_util::sync::CancellationToken::new();
    for n in 0..WATCHERS {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * n as u64)).await;
            while !stop.is_cancelled() {
                let _ = http
                    .get(format!("{base}/apps/delta"))
                    .header("accept", "application/json")
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
    }
    let polling_cpu = cpu_over(registry.pid(), 20).await;
    stop.cancel();

    // 100 watchers: watch, and on each answer fetch the delta.
    let seen: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let first = version_now().await;
    for _ in 0..WATCHERS {
        let (http, base, stop, seen) = (http.clone(), base.clone(), stop.clone(), seen.clone());
        tokio::spawn(async move {
            let mut known = first;
            while !stop.is_cancelled() {
                let answer: serde_json::Value = match http
                    .get(format!("{base}/apps/watch?version={known}&timeout=30"))
                    .send()
                    .await
                {
                    Ok(answer) => answer.json().await.unwrap_or_default(),
                    Err(_) => return,
                };
                let version = answer["version"].as_u64().unwrap_or(known);
                if version != known {
                    let delta = http
                        .get(format!("{base}/apps/delta"))
                        .header("accept", "application/json")
                        .send()
                        .await;
                    if let Ok(delta) = delta {
                        let _ = delta.bytes().await;
                    }
                    seen.lock().unwrap().push((version, Instant::now()));
                    known = version;
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watching_cpu = cpu_over(registry.pid(), 20).await;

    let mut reach = Vec::new();
    for n in 0..10 {
        let body = json!({"instance": {
            "instanceId": format!("late-{n}"), "hostName": "10.2.0.1", "app": "LATE",
            "ipAddr": "10.2.0.1", "status": "UP", "port": {"$": 8080, "@enabled": "true"},
            "vipAddress": "late",
            "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 3600}
        }});
        let started = Instant::now();
        let response = http
            .post(format!("{base}/apps/LATE"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let version = version_now().await;
        loop {
            let reached = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(v, _)| *v >= version)
                .count();
            if reached >= WATCHERS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| *v >= version)
            .map(|(_, at)| *at)
            .max()
            .unwrap();
        reach.push(last.duration_since(started));
        seen.lock().unwrap().clear();
        // Past the delta's retention, as in the idle measurement.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    stop.cancel();
    reach.sort();
    println!("\n### {WATCHERS} clients of a registry of {INSTANCES} instances\n");
    println!("| what | registry CPU, % of one core |");
    println!("|---|---|");
    println!("| polling the delta every 5 s, nothing changing (20 s) | {polling_cpu:.2} |");
    println!("| watching, nothing changing (20 s) | {watching_cpu:.2} |");
    println!();
    println!(
        "One change → all {WATCHERS} watchers have fetched its delta (10 changes): median {:.1} ms, max {:.1} ms\n",
        reach[5].as_secs_f64() * 1e3,
        reach[9].as_secs_f64() * 1e3
    );
}

//! What tracing costs: edge throughput with tracing off and with every
//! request sampled and exported.
//!
//! Run: `cargo bench --bench tracing`
//!
//! Two real stacks (registry, one middletier, edge, as release binaries)
//! run side by side, each user with 20 stored feeds of 50 items:
//!
//! - **off**: no `OTEL_EXPORTER_OTLP_ENDPOINT`, so no exporter and no spans;
//! - **on**: `OTEL_TRACES_SAMPLER=always_on`, every span of every service
//!   sent over OTLP/HTTP to a receiver in this process, which decodes and
//!   counts it (as a collector would before passing it on).
//!
//! 8 clients read `GET /api/subscriptions` back to back. Rounds alternate
//! between the stacks so both see the same machine; the table gives the
//! median round, and the CPU time the edge and the middletier spent per
//! request over all rounds. The target is a cost of at most 10 % of
//! requests/s.

// A benchmark is a test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::load::{Throughput, closed_loop};
use support::otlp::Receiver;
use support::process::cpu_time;
use support::stack::Stack;
use support::web::get_json;

const ROUNDS: usize = 5;
const CLIENTS: usize = 8;
const REQUESTS: usize = 400;

#[tokio::main]
async fn main() {
    let receiver = Receiver::start_counting().await;
    let endpoint = receiver.endpoint();
    let off = reader_stack(&[]).await;
    let on = reader_stack(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ])
    .await;
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    let (off_url, on_url) = (
        off.edge.url("/api/subscriptions"),
        on.edge.url("/api/subscriptions"),
    );

    // Warm both: connections, caches, and the exporter's first batches.
    closed_loop(&http, &off_url, CLIENTS, 100).await;
    closed_loop(&http, &on_url, CLIENTS, 100).await;

    let (mut off_runs, mut on_runs) = (Vec::new(), Vec::new());
    let (mut off_cpu, mut on_cpu) = (Cpu::default(), Cpu::default());
    let spans_before = receiver.counted();
    for _ in 0..ROUNDS {
        off_runs.push(
            off_cpu
                .measure(&off, closed_loop(&http, &off_url, CLIENTS, REQUESTS))
                .await,
        );
        on_runs.push(
            on_cpu
                .measure(&on, closed_loop(&http, &on_url, CLIENTS, REQUESTS))
                .await,
        );
    }
    // The batch exporter sends at most every 5 s; wait for the last batch.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let spans = receiver.counted() - spans_before;
    let traced_requests = ROUNDS * CLIENTS * REQUESTS;

    let requests = (ROUNDS * CLIENTS * REQUESTS) as f64;
    let (off_cpu, on_cpu) = (off_cpu.per_request(requests), on_cpu.per_request(requests));
    let (off, on) = (median(off_runs), median(on_runs));
    println!(
        "### GET /api/subscriptions, 20 stored feeds x 50 items, {CLIENTS} clients, \
         median of {ROUNDS} alternating rounds of {} requests\n",
        CLIENTS * REQUESTS
    );
    println!(
        "| tracing | requests/s | p50 ms | p99 ms | CPU µs/request, edge | CPU µs/request, middletier |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, run, cpu) in [
        ("off (no endpoint set)", &off, off_cpu),
        ("on, 100 % sampled, exported over OTLP/HTTP", &on, on_cpu),
    ] {
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} |",
            run.per_second,
            run.ms(0.50),
            run.ms(0.99),
            cpu.0,
            cpu.1
        );
    }
    let cost = (1.0 - on.per_second / off.per_second) * 100.0;
    println!("\ncost: {cost:.1} % of requests/s (target: at most 10 %)");
    println!(
        "spans received: {spans} for {traced_requests} traced requests ({:.1} per request)",
        spans as f64 / traced_requests as f64
    );
}

/// A stack with `env` on every service and a reader with 20 stored feeds.
async fn reader_stack(env: &[(&str, &str)]) -> Stack {
    let args = vec!["--user-write-rate".to_owned(), "0".to_owned()];
    let stack = Stack::start_with_env(vec![args], &["--user-write-rate", "0"], env).await;
    stack.subscribe_generated(20, 50).await;
    let body: serde_json::Value = get_json(&stack.edge.url("/api/subscriptions")).await;
    assert_eq!(body["degraded"], false);
    assert_eq!(body["subscriptions"].as_array().unwrap().len(), 20);
    stack
}

/// CPU time the edge and the middletier of one stack spent in the rounds.
#[derive(Default)]
struct Cpu {
    edge: Duration,
    middletier: Duration,
}

impl Cpu {
    async fn measure(
        &mut self,
        stack: &Stack,
        round: impl Future<Output = Throughput>,
    ) -> Throughput {
        let pids = (stack.edge.pid(), stack.middletiers[0].pid());
        let before = (cpu_time(pids.0), cpu_time(pids.1));
        let run = round.await;
        self.edge += cpu_time(pids.0) - before.0;
        self.middletier += cpu_time(pids.1) - before.1;
        run
    }

    /// (edge, middletier) in µs per request.
    fn per_request(&self, requests: f64) -> (f64, f64) {
        (
            self.edge.as_secs_f64() * 1e6 / requests,
            self.middletier.as_secs_f64() * 1e6 / requests,
        )
    }
}

/// The round with the median rate.
fn median(mut runs: Vec<Throughput>) -> Throughput {
    runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    runs.swap_remove(runs.len() / 2)
}

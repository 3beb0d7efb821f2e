//! The whole stack as real processes: a local feed server, a registry,
//! middletiers and an edge, with timings shortened so tests run in seconds.

use std::time::Duration;

use super::feed_server::FeedServer;
use super::process::Service;

/// Fast but realistic timings for tests.
pub const RENEWAL: &str = "500ms";
pub const LEASE: &str = "2s";
pub const FETCH: &str = "200ms";

pub struct Stack {
    pub feeds: FeedServer,
    pub registry: Service,
    pub middletiers: Vec<Service>,
    pub edge: Service,
    middletier_args: Vec<String>,
}

impl Stack {
    /// Starts everything and waits until the edge knows every middletier.
    pub async fn start(middletiers: usize, middletier_args: &[&str], edge_args: &[&str]) -> Stack {
        let feeds = FeedServer::start();
        let registry = Service::start("registry", &["--eviction-interval", "200ms"], &[]);
        let registry_url = registry.url("/eureka/v2/");
        let middletier_args: Vec<String> = middletier_args.iter().map(|s| s.to_string()).collect();
        let mut stack_middletiers = Vec::new();
        for _ in 0..middletiers {
            stack_middletiers.push(start_middletier(&registry_url, &middletier_args));
        }
        let mut args = vec![
            "--registry-url",
            &registry_url,
            "--renewal-interval",
            RENEWAL,
            "--lease-duration",
            LEASE,
            "--registry-fetch-interval",
            FETCH,
        ];
        args.extend_from_slice(edge_args);
        let edge = Service::start("edge", &args, &[]);
        let stack = Stack {
            feeds,
            registry,
            middletiers: stack_middletiers,
            edge,
            middletier_args,
        };
        stack.wait_until_edge_knows(middletiers).await;
        stack
    }

    /// Starts one more middletier with the same arguments.
    pub fn add_middletier(&mut self) -> &Service {
        let service = start_middletier(&self.registry.url("/eureka/v2/"), &self.middletier_args);
        self.middletiers.push(service);
        self.middletiers.last().expect("just pushed")
    }

    /// Waits until the edge's balancer lists `n` middletier instances.
    pub async fn wait_until_edge_knows(&self, n: usize) {
        let url = self.edge.url("/dashboard/data");
        for _ in 0..150 {
            if let Ok(response) = reqwest::get(&url).await
                && let Ok(data) = response.json::<serde_json::Value>().await
                && data["instances"].as_array().map(Vec::len) == Some(n)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the edge did not see {n} middletier(s) within 15 s");
    }
}

fn start_middletier(registry_url: &str, extra: &[String]) -> Service {
    let mut args: Vec<&str> = vec![
        "--registry-url",
        registry_url,
        "--renewal-interval",
        RENEWAL,
        "--lease-duration",
        LEASE,
        "--allow-private-feeds",
        "--feed-timeout",
        "2s",
    ];
    args.extend(extra.iter().map(String::as_str));
    Service::start("middletier", &args, &[])
}

//! The whole stack as real processes: a local feed server, a registry,
//! middletiers and an edge, with timings shortened so tests run in seconds.

use std::time::Duration;

use super::feed_server::FeedServer;
use super::process::Service;

/// Fast but realistic timings for tests.
pub(crate) const RENEWAL: &str = "500ms";
pub(crate) const LEASE: &str = "2s";
pub(crate) const FETCH: &str = "200ms";

pub(crate) struct Stack {
    pub feeds: FeedServer,
    pub registry: Service,
    pub middletiers: Vec<Service>,
    pub edge: Service,
    /// The extra arguments each middletier was started with (by index), so
    /// it can be restarted as it was.
    middletier_args: Vec<Vec<String>>,
    /// Environment variables every service was started with.
    env: Vec<(String, String)>,
    /// The edge's arguments, so it can be restarted as it was.
    edge_args: Vec<String>,
}

impl Stack {
    /// Starts everything, every middletier with the same extra arguments,
    /// and waits until the edge knows every middletier.
    pub(crate) async fn start(
        middletiers: usize,
        middletier_args: &[&str],
        edge_args: &[&str],
    ) -> Stack {
        let args: Vec<String> = middletier_args.iter().map(|s| s.to_string()).collect();
        Self::start_each(vec![args; middletiers], edge_args).await
    }

    /// Like [`Stack::start`], with arguments per middletier.
    pub(crate) async fn start_each(middletier_args: Vec<Vec<String>>, edge_args: &[&str]) -> Stack {
        Self::start_with_env(middletier_args, edge_args, &[]).await
    }

    /// Like [`Stack::start_each`], every service with `env` set.
    pub(crate) async fn start_with_env(
        middletier_args: Vec<Vec<String>>,
        edge_args: &[&str],
        env: &[(&str, &str)],
    ) -> Stack {
        let feeds = FeedServer::start();
        let registry = Service::start("registry", &["--eviction-interval", "200ms"], env);
        let registry_url = registry.url("/eureka/v2/");
        let middletiers = middletier_args
            .iter()
            .map(|args| start_middletier(&registry_url, 0, args, env))
            .collect();
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
        let edge = Service::start("edge", &args, env);
        let edge_args = args.iter().map(|s| s.to_string()).collect();
        let stack = Stack {
            feeds,
            registry,
            middletiers,
            edge,
            middletier_args,
            edge_args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        stack
            .wait_until_edge_knows(stack.middletier_args.len())
            .await;
        stack
    }

    /// One middletier on the file store in `data` (with `extra` flags), no
    /// write limits, 200 items a feed and subscriptions, and no refresh
    /// while measuring (only what is subscribed is fetched, once): what the
    /// reading and sync benches measure.
    pub(crate) async fn for_bench_on_file_store(data: &std::path::Path, extra: &[&str]) -> Stack {
        let mut args = vec![
            "--user-write-rate",
            "0",
            "--store",
            "file",
            "--data-dir",
            data.to_str().expect("a UTF-8 path"),
            "--feed-max-items",
            "200",
            "--refresh-min-interval",
            "1h",
            "--max-subscriptions",
            "200",
        ];
        args.extend_from_slice(extra);
        Stack::start(1, &args, &["--user-write-rate", "0"]).await
    }

    /// Starts one more middletier with the first middletier's arguments.
    pub(crate) fn add_middletier(&mut self) -> &Service {
        let args = self.middletier_args.first().cloned().unwrap_or_default();
        let service = start_middletier(&self.registry.url("/eureka/v2/"), 0, &args, &self.env());
        self.middletiers.push(service);
        self.middletier_args.push(args);
        self.middletiers.last().expect("just pushed")
    }

    /// Starts middletier `index` again, on its old port with its old
    /// arguments (after it was stopped or killed).
    pub(crate) fn restart_middletier(&mut self, index: usize) {
        let port = self.middletiers[index].port;
        let service = start_middletier(
            &self.registry.url("/eureka/v2/"),
            port,
            &self.middletier_args[index],
            &self.env(),
        );
        self.middletiers[index] = service;
    }

    /// Stops the edge (SIGTERM, waiting for it to drain) and starts it
    /// again on its port with its arguments; waits until it knows the
    /// middletiers.
    pub(crate) async fn restart_edge(&mut self) {
        self.edge.terminate();
        self.edge.wait_exit(Duration::from_secs(15));
        let args: Vec<&str> = self.edge_args.iter().map(String::as_str).collect();
        self.edge = Service::start_on("edge", self.edge.port, &args, &self.env());
        self.wait_until_edge_knows(self.middletiers.len()).await;
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// A command's row on the edge's dashboard (`RSSGet`, ...): its state,
    /// counts and latencies as the edge reports them.
    pub(crate) async fn command(&self, name: &str) -> serde_json::Value {
        let data = super::web::get_json(self.edge.url("/dashboard/data")).await;
        data["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no command {name}"))
            .clone()
    }

    /// Subscribes the default user, through the edge, to `feeds` generated
    /// feeds of `items` items each (what the benchmarks read).
    pub(crate) async fn subscribe_generated(&self, feeds: usize, items: usize) {
        self.subscribe_each((0..feeds).map(|i| format!("/generated/{items}?feed={i}")))
            .await;
    }

    /// Subscribes the edge's user to each of the feed server's `paths`, in
    /// turn, through the edge's API.
    pub(crate) async fn subscribe_each(&self, paths: impl IntoIterator<Item = String>) {
        let http = reqwest::Client::new();
        for path in paths {
            let feed = self.feeds.url(&path);
            let response = http
                .post(self.edge.url("/api/subscriptions"))
                .json(&serde_json::json!({ "url": feed }))
                .send()
                .await
                .expect("the edge answers");
            assert!(response.status().is_success(), "{}", response.status());
        }
    }

    /// Subscribes `user` to `feed` on every middletier directly (their
    /// `memory` and `file` stores are their own).
    pub(crate) async fn subscribe_on_each_middletier(&self, user: &str, feed: &str) {
        for middletier in &self.middletiers {
            let response = reqwest::Client::new()
                .post(middletier.url(&format!("/middletier/rss/user/{user}")))
                .query(&[("url", feed)])
                .send()
                .await
                .expect("the middletier answers");
            assert!(response.status().is_success(), "{}", response.status());
        }
    }

    /// Waits until the edge's balancer lists `n` middletier instances.
    pub(crate) async fn wait_until_edge_knows(&self, n: usize) {
        // /healthcheck is open in every --auth mode (the dashboard is for
        // admins).
        let url = self.edge.url("/healthcheck");
        let what = format!("the edge sees {n} middletier(s)");
        super::eventually(&what, Duration::from_secs(15), || async {
            let data: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            (data["middletier_instances"] == n).then_some(())
        })
        .await;
    }
}

fn start_middletier(
    registry_url: &str,
    port: u16,
    extra: &[String],
    env: &[(&str, &str)],
) -> Service {
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
    Service::start_on("middletier", port, &args, env)
}

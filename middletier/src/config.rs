//! The middletier's flags. Each also reads its `RSS_*` environment variable;
//! defaults serve one person on one machine.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::config::{
    DiscoveryArgs, Secret, ServerArgs, Tool, parse_bytes, parse_duration, parse_network,
};
use ipnet::IpNet;
use scylla::frame::types::Consistency;

use crate::feeds::FeedSettings;
use crate::feeds::fetch::FetchSettings;
use crate::feeds::parse::ParseLimits;
use crate::feeds::slots::SlotLimits;
use crate::reader::ReaderSettings;
use crate::refresh::RefreshSettings;
use crate::refresh::merge::Retention;
use crate::refresh::policy::Policy;
use crate::refresh::scheduler::SchedulerSettings;
use crate::store::CassandraSettings;
use crate::store::cassandra::cql::Replication;
use crate::store::cassandra::parse_consistency;

/// Names the flag that sets the port, for bind errors.
pub const PORT_HINT: &str = "--port / RSS_MIDDLETIER_PORT";

/// Which [`Store`](crate::store::Store) to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// In-process map; lost on restart.
    Memory,
    /// Embedded database in --data-dir; survives restarts, one process.
    File,
    /// Cassandra (or ScyllaDB) at --cassandra-nodes; shared by instances.
    Cassandra,
}

/// The middletier's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "middletier",
    version,
    about = "RSS recipe middle tier: fetches, stores and refreshes feeds; keeps subscriptions and read state"
)]
pub struct Config {
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "RSS_MIDDLETIER_PORT", default_value_t = 9191)]
    pub port: u16,

    /// Names the flag that sets the port, for the error when it is taken
    /// (the all-in-one binary names its own flag).
    #[arg(skip = PORT_HINT)]
    pub port_hint: &'static str,

    /// Listen address, logging, read timeouts and drain.
    #[command(flatten)]
    pub server: ServerArgs,

    /// A tool to run instead of the service (`healthcheck`).
    #[command(subcommand)]
    pub tool: Option<Tool>,

    /// Where the registry is, and the timings of talking to it.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,

    /// Where subscriptions are kept.
    #[arg(long, env = "RSS_STORE", value_enum, default_value_t = StoreKind::Memory)]
    pub store: StoreKind,

    /// Where the `file` store keeps its database.
    #[arg(long, env = "RSS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Memory the `file` store may use to cache its pages.
    #[arg(long, env = "RSS_FILE_STORE_CACHE", value_parser = parse_bytes, default_value = "64MiB")]
    pub file_store_cache: u64,

    /// The Cassandra store's settings.
    #[command(flatten)]
    pub cassandra: CassandraArgs,

    /// Allow feed URLs that resolve to loopback or private addresses (never
    /// link-local ones such as the cloud metadata service; list those in
    /// --allow-feed-addresses if you must). Off by default: it would let
    /// users make us fetch from inside our own network. Prefer
    /// --allow-feed-addresses, which opens only the networks it names.
    #[arg(long, env = "RSS_ALLOW_PRIVATE_FEEDS", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_feeds: bool,

    /// Networks allowed to serve feeds even though they are private, e.g.
    /// a company feed server: comma-separated addresses or CIDRs
    /// (`10.1.2.3`, `10.20.0.0/16`). Every other private address stays
    /// refused.
    #[arg(long, env = "RSS_ALLOW_FEED_ADDRESSES", value_delimiter = ',', value_parser = parse_network)]
    pub allow_feed_addresses: Vec<IpNet>,

    /// Serve /admin/faults to inject latency and store outages (tests and
    /// game days only; never where untrusted clients can reach the port).
    #[arg(long, env = "RSS_ENABLE_FAULT_INJECTION", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub enable_fault_injection: bool,

    /// Subscribe/unsubscribe calls one user may make per second, on
    /// average (0: no limit).
    #[arg(long, env = "RSS_USER_WRITE_RATE", default_value_t = 5)]
    pub user_write_rate: u32,

    /// ... and in a burst.
    #[arg(long, env = "RSS_USER_WRITE_BURST", default_value_t = 10)]
    pub user_write_burst: u32,

    /// Subscriptions one user may have.
    #[arg(long, env = "RSS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub max_subscriptions: usize,

    /// Items one user may have starred (each a copy kept for good).
    #[arg(long, env = "RSS_MAX_STARRED", default_value_t = 10_000)]
    pub max_starred: usize,

    /// How long subscribing may spend fetching the URL and looking for
    /// feeds on it (inside the edge's 5 s `RSSAdd` timeout).
    #[arg(long, env = "RSS_SUBSCRIBE_TIMEOUT", value_parser = parse_duration, default_value = "4s")]
    pub subscribe_timeout: Duration,

    /// "Refresh now" calls one user may make: one per this period ...
    #[arg(long, env = "RSS_USER_REFRESH_INTERVAL", value_parser = parse_duration, default_value = "10s")]
    pub user_refresh_interval: Duration,

    /// ... and this many in a burst (0: no limit).
    #[arg(long, env = "RSS_USER_REFRESH_BURST", default_value_t = 6)]
    pub user_refresh_burst: u32,

    /// Read/star changes one user may make per second, on average
    /// (0: no limit); a reader clicking through items makes many.
    #[arg(long, env = "RSS_USER_STATE_RATE", default_value_t = 20)]
    pub user_state_rate: u32,

    /// ... and in a burst.
    #[arg(long, env = "RSS_USER_STATE_BURST", default_value_t = 100)]
    pub user_state_burst: u32,

    /// The largest listing answered: a user whose feeds' items come to
    /// more is told to ask for fewer (the edge then shows their feeds
    /// without items).
    #[arg(long, env = "RSS_MAX_LISTING_BYTES", value_parser = parse_bytes, default_value = "32MiB")]
    pub max_listing_bytes: u64,

    /// The background refresh's settings.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// The feed pipeline's settings.
    #[command(flatten)]
    pub feeds: FeedArgs,
}

impl Config {
    /// The reader settings these flags describe.
    pub(crate) fn reader_settings(&self) -> ReaderSettings {
        ReaderSettings {
            max_subscriptions: self.max_subscriptions,
            max_starred: self.max_starred,
            first_fetch_wait: self.feeds.feed_wait,
            subscribe_timeout: self.subscribe_timeout,
            ..ReaderSettings::default()
        }
    }
}

/// The background refresh's knobs (see [`crate::refresh`]).
#[derive(Debug, Clone, clap::Args)]
pub struct RefreshArgs {
    /// The shortest time between two fetches of one feed, however often
    /// it posts.
    #[arg(long, env = "RSS_REFRESH_MIN_INTERVAL", value_parser = parse_duration, default_value = "10m")]
    pub refresh_min_interval: Duration,

    /// The longest time between two fetches of one feed, and the cap of
    /// the error backoff.
    #[arg(long, env = "RSS_REFRESH_MAX_INTERVAL", value_parser = parse_duration, default_value = "6h")]
    pub refresh_max_interval: Duration,

    /// Failures in a row after which a feed is shown as broken.
    #[arg(long, env = "RSS_REFRESH_BROKEN_AFTER", default_value_t = 5)]
    pub refresh_broken_after: u32,

    /// How often the scheduler looks for due feeds.
    #[arg(long, env = "RSS_REFRESH_TICK", value_parser = parse_duration, default_value = "1s")]
    pub refresh_tick: Duration,

    /// How often it rereads the whole schedule from the store (feeds added
    /// through other instances).
    #[arg(long, env = "RSS_REFRESH_SCAN_INTERVAL", value_parser = parse_duration, default_value = "30s")]
    pub refresh_scan_interval: Duration,

    /// Refreshes running at once (the fetch slots add per-host limits).
    #[arg(long, env = "RSS_REFRESH_CONCURRENCY", default_value_t = 32)]
    pub refresh_concurrency: usize,

    /// Items kept per feed in any case: the newest N.
    #[arg(long, env = "RSS_FEED_KEEP_ITEMS", default_value_t = 200)]
    pub feed_keep_items: usize,

    /// Items past the newest N are kept until they have been stored this
    /// many days, so a busy feed's unread items are not lost in a day.
    #[arg(long, env = "RSS_KEEP_ITEMS_DAYS", default_value_t = 60)]
    pub keep_items_days: u32,

    /// The most items kept per feed, however young: bounds a flooding feed.
    #[arg(long, env = "RSS_FEED_MAX_STORED_ITEMS", default_value_t = 5000)]
    pub feed_max_stored_items: usize,

    /// The most memory the feed cache takes: feeds' items encoded once for
    /// every listing that shows them (the least recently read go first).
    /// 0 turns it off.
    #[arg(long, env = "RSS_LISTING_CACHE", value_parser = parse_bytes, default_value = "8MiB")]
    pub listing_cache: u64,
}

impl RefreshArgs {
    /// What the refresher keeps and how it plans.
    pub fn settings(&self) -> RefreshSettings {
        RefreshSettings {
            retention: Retention {
                keep: self.feed_keep_items.max(1),
                keep_for: chrono::TimeDelta::days(i64::from(self.keep_items_days)),
                max: self.feed_max_stored_items.max(self.feed_keep_items.max(1)),
            },
            policy: Policy {
                min: self.refresh_min_interval,
                max: self.refresh_max_interval.max(self.refresh_min_interval),
                broken_after: self.refresh_broken_after.max(1),
            },
            cache_bytes: usize::try_from(self.listing_cache).unwrap_or(usize::MAX),
        }
    }

    /// How the scheduler runs.
    pub fn scheduler(&self) -> SchedulerSettings {
        SchedulerSettings {
            tick: self.refresh_tick.max(Duration::from_millis(10)),
            scan_every: self.refresh_scan_interval,
            concurrency: self.refresh_concurrency.max(1),
        }
    }
}

/// The `cassandra` store's settings (see [`crate::store::cassandra`]).
#[derive(Debug, Clone, clap::Args)]
pub struct CassandraArgs {
    /// Contact points, comma-separated host:port.
    #[arg(
        long,
        env = "RSS_CASSANDRA_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:9042"
    )]
    pub cassandra_nodes: Vec<String>,

    /// Keyspace (created if missing).
    #[arg(long, env = "RSS_CASSANDRA_KEYSPACE", default_value = "rss")]
    pub cassandra_keyspace: String,

    /// Replication when creating the keyspace: a factor for SimpleStrategy
    /// (`1`), or per data centre for NetworkTopologyStrategy (`dc1=3,dc2=3`).
    #[arg(long, env = "RSS_CASSANDRA_REPLICATION", value_parser = Replication::parse, default_value = "1")]
    pub cassandra_replication: Replication,

    /// Consistency level for reads and writes.
    #[arg(long, env = "RSS_CASSANDRA_CONSISTENCY", value_parser = parse_consistency, default_value = "local_quorum")]
    pub cassandra_consistency: Consistency,

    /// Time allowed for one request to Cassandra.
    #[arg(long, env = "RSS_CASSANDRA_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "1s")]
    pub cassandra_request_timeout: Duration,

    /// Prefer this data centre's nodes (with NetworkTopologyStrategy).
    #[arg(long, env = "RSS_CASSANDRA_LOCAL_DATACENTER")]
    pub cassandra_local_datacenter: Option<String>,

    /// User name, if the cluster requires authentication.
    #[arg(long, env = "RSS_CASSANDRA_USERNAME", requires = "cassandra_password")]
    pub cassandra_username: Option<String>,

    /// Password for --cassandra-username.
    #[arg(long, env = "RSS_CASSANDRA_PASSWORD", hide_env_values = true)]
    pub cassandra_password: Option<Secret>,
}

impl CassandraArgs {
    /// The store settings these flags describe.
    pub fn settings(&self) -> CassandraSettings {
        CassandraSettings {
            nodes: self
                .cassandra_nodes
                .iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            keyspace: self.cassandra_keyspace.clone(),
            replication: self.cassandra_replication.clone(),
            consistency: self.cassandra_consistency,
            request_timeout: self.cassandra_request_timeout,
            local_datacenter: self.cassandra_local_datacenter.clone(),
            credentials: self
                .cassandra_username
                .clone()
                .zip(self.cassandra_password.clone()),
        }
    }
}

/// Feed pipeline knobs (see [`crate::feeds`]).
#[derive(Debug, Clone, clap::Args)]
pub struct FeedArgs {
    /// Total time allowed for one fetch, body included.
    #[arg(long, env = "RSS_FEED_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub feed_timeout: Duration,

    /// Time allowed to connect to a publisher.
    #[arg(long, env = "RSS_FEED_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub feed_connect_timeout: Duration,

    /// How long a listing waits for the first fetch of a feed never
    /// fetched yet (the fetch goes on, and is stored, if it takes longer).
    #[arg(long, env = "RSS_FEED_WAIT", value_parser = parse_duration, default_value = "3s")]
    pub feed_wait: Duration,

    /// Largest feed document accepted (e.g. 5MiB).
    #[arg(long, env = "RSS_FEED_MAX_BYTES", value_parser = parse_bytes, default_value = "5MiB")]
    pub feed_max_bytes: u64,

    /// Items read from one feed document (the first N).
    #[arg(long, env = "RSS_FEED_MAX_ITEMS", default_value_t = 50)]
    pub feed_max_items: usize,

    /// An item's full content kept, before it is sanitized (e.g. 256KiB).
    #[arg(long, env = "RSS_FEED_MAX_CONTENT_BYTES", value_parser = parse_bytes, default_value = "256KiB")]
    pub feed_max_content_bytes: u64,

    /// Fetches in flight at once, across all users.
    #[arg(long, env = "RSS_FEED_CONCURRENCY", default_value_t = 32)]
    pub feed_concurrency: usize,

    /// Fetches in flight at once from one host (and port): politeness, and
    /// one slow site cannot take every fetch slot.
    #[arg(long, env = "RSS_FEED_CONCURRENCY_PER_HOST", default_value_t = 4)]
    pub feed_concurrency_per_host: usize,

    /// Fetches in flight at once for one user's feeds: one person's slow
    /// feeds cannot hold up everyone else's.
    #[arg(long, env = "RSS_FEED_CONCURRENCY_PER_USER", default_value_t = 8)]
    pub feed_concurrency_per_user: usize,
}

impl FeedArgs {
    /// The pipeline settings these flags describe.
    pub fn settings(&self) -> FeedSettings {
        FeedSettings {
            fetch: FetchSettings {
                connect_timeout: self.feed_connect_timeout,
                timeout: self.feed_timeout,
                max_bytes: self.feed_max_bytes,
                ..FetchSettings::default()
            },
            limits: ParseLimits {
                max_items: self.feed_max_items,
                max_content_bytes: usize::try_from(self.feed_max_content_bytes)
                    .unwrap_or(usize::MAX),
                ..ParseLimits::default()
            },
            slots: SlotLimits {
                total: self.feed_concurrency,
                per_host: self.feed_concurrency_per_host,
                per_user: self.feed_concurrency_per_user,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let config = Config::try_parse_from(["middletier"]).unwrap();
        assert_eq!(config.port, 9191);
        assert_eq!(config.server.host, "127.0.0.1");
        assert_eq!(config.store, StoreKind::Memory);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        let cassandra = config.cassandra.settings();
        assert_eq!(cassandra.nodes, ["127.0.0.1:9042"]);
        assert_eq!(cassandra.keyspace, "rss");
        assert_eq!(cassandra.replication, Replication::Simple(1));
        assert_eq!(cassandra.consistency, Consistency::LocalQuorum);
        assert!(!config.allow_private_feeds);
        assert!(
            !config.enable_fault_injection,
            "fault injection is off by default"
        );
        assert!(config.allow_feed_addresses.is_empty());
        let settings = config.feeds.settings();
        assert_eq!(config.feeds.feed_wait, Duration::from_secs(3));
        let refresh = config.refresh.settings();
        assert_eq!(refresh.retention.keep, 200);
        assert_eq!(refresh.policy.min, Duration::from_secs(600));
        assert_eq!(refresh.policy.max, Duration::from_secs(6 * 3600));
        assert_eq!(
            config.reader_settings().subscribe_timeout,
            Duration::from_secs(4)
        );
        assert_eq!(config.file_store_cache, 64 * 1024 * 1024);
        assert_eq!(settings.fetch.max_bytes, 5 * 1024 * 1024);
        assert_eq!(settings.fetch.max_redirects, 5);
    }

    #[test]
    fn flags_take_human_units() {
        let config = Config::try_parse_from([
            "middletier",
            "--port",
            "0",
            "--allow-private-feeds",
            "--refresh-min-interval",
            "500ms",
            "--feed-max-bytes",
            "64KiB",
            "--allow-feed-addresses",
            "127.0.0.1,10.20.0.0/16",
        ])
        .unwrap();
        assert_eq!(config.allow_feed_addresses.len(), 2);
        assert_eq!(config.port, 0);
        assert!(config.allow_private_feeds);
        assert_eq!(
            config.refresh.settings().policy.min,
            Duration::from_millis(500)
        );
        assert_eq!(config.feeds.feed_max_bytes, 64 * 1024);
    }

    #[test]
    fn the_config_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}

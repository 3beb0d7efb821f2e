//! The middletier's flags. Each also reads its `RSS_*` environment variable;
//! defaults serve one person on one machine.

use std::time::Duration;

use clap::Parser;
use common::config::{DiscoveryArgs, ServerArgs, parse_bytes, parse_duration};

use crate::feeds::FeedSettings;
use crate::feeds::fetch::FetchSettings;
use crate::feeds::parse::ParseLimits;

/// Names the flag that sets the port, for bind errors.
pub const PORT_HINT: &str = "--port / RSS_MIDDLETIER_PORT";

/// Which [`SubscriptionStore`](crate::store::SubscriptionStore) to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// In-process map; lost on restart.
    Memory,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "middletier",
    version,
    about = "RSS recipe middle tier: fetches, parses and caches feeds; stores subscriptions"
)]
pub struct Config {
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "RSS_MIDDLETIER_PORT", default_value_t = 9191)]
    pub port: u16,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,

    /// Where subscriptions are kept.
    #[arg(long, env = "RSS_STORE", value_enum, default_value_t = StoreKind::Memory)]
    pub store: StoreKind,

    /// Allow feed URLs that resolve to loopback, private or link-local
    /// addresses. Off by default: it would let users make us fetch from
    /// inside our own network.
    #[arg(long, env = "RSS_ALLOW_PRIVATE_FEEDS", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_feeds: bool,

    /// Subscriptions one user may have.
    #[arg(long, env = "RSS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub max_subscriptions: usize,

    #[command(flatten)]
    pub feeds: FeedArgs,
}

/// Feed pipeline knobs (see [`crate::feeds`]).
#[derive(Debug, Clone, clap::Args)]
pub struct FeedArgs {
    /// How long a fetched feed is served from cache.
    #[arg(long, env = "RSS_FEED_CACHE_TTL", value_parser = parse_duration, default_value = "5m")]
    pub feed_cache_ttl: Duration,

    /// How long a failed fetch is remembered before trying again.
    #[arg(long, env = "RSS_FEED_ERROR_TTL", value_parser = parse_duration, default_value = "30s")]
    pub feed_error_ttl: Duration,

    /// Total time allowed for one fetch, body included.
    #[arg(long, env = "RSS_FEED_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub feed_timeout: Duration,

    /// Time allowed to connect to a publisher.
    #[arg(long, env = "RSS_FEED_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub feed_connect_timeout: Duration,

    /// How long a request waits for a slow feed before answering with the
    /// cached copy (the fetch goes on in the background).
    #[arg(long, env = "RSS_FEED_WAIT", value_parser = parse_duration, default_value = "3s")]
    pub feed_wait: Duration,

    /// Largest feed document accepted (e.g. 5MiB).
    #[arg(long, env = "RSS_FEED_MAX_BYTES", value_parser = parse_bytes, default_value = "5MiB")]
    pub feed_max_bytes: u64,

    /// Items kept per feed.
    #[arg(long, env = "RSS_FEED_MAX_ITEMS", default_value_t = 50)]
    pub feed_max_items: usize,

    /// Fetches in flight at once, across all users.
    #[arg(long, env = "RSS_FEED_CONCURRENCY", default_value_t = 32)]
    pub feed_concurrency: usize,

    /// Feed URLs kept in the cache.
    #[arg(long, env = "RSS_FEED_CACHE_CAPACITY", default_value_t = 1000)]
    pub feed_cache_capacity: usize,
}

impl FeedArgs {
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
                ..ParseLimits::default()
            },
            ttl: self.feed_cache_ttl,
            error_ttl: self.feed_error_ttl,
            wait: self.feed_wait,
            concurrency: self.feed_concurrency,
            cache_capacity: self.feed_cache_capacity,
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
        assert!(!config.allow_private_feeds);
        let settings = config.feeds.settings();
        assert_eq!(settings.ttl, Duration::from_secs(300));
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
            "--feed-cache-ttl",
            "500ms",
            "--feed-max-bytes",
            "64KiB",
        ])
        .unwrap();
        assert_eq!(config.port, 0);
        assert!(config.allow_private_feeds);
        assert_eq!(config.feeds.feed_cache_ttl, Duration::from_millis(500));
        assert_eq!(config.feeds.feed_max_bytes, 64 * 1024);
    }

    #[test]
    fn the_config_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}

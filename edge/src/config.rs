//! The edge's flags. Each also reads its `RSS_*` environment variable.

use std::time::Duration;

use clap::Parser;
use common::balancer::RetryPolicy;
use common::balancer::http::BalancerSettings;
use common::config::{DiscoveryArgs, ServerArgs, Tool, parse_duration};
use common::resilience::{BreakerSettings, CommandSettings};

/// The flag and variable that set the port, for error messages.
pub const PORT_HINT: &str = "--port / RSS_EDGE_PORT";

/// The edge's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "edge",
    version,
    about = "RSS recipe edge: the reader in the browser and a JSON API, calling the middletier behind circuit breakers"
)]
pub struct Config {
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "RSS_EDGE_PORT", default_value_t = 9090)]
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

    /// Who the user is: `none` (everyone is `default`; loopback only),
    /// `proxy` (an authenticating proxy names the user in
    /// --auth-proxy-header) or `local` (accounts with passwords). Default:
    /// `proxy` when --auth-proxy-header is set, else `none`.
    #[arg(long, env = "RSS_AUTH", value_enum)]
    pub auth: Option<crate::auth::Mode>,

    /// `--auth proxy`: the header the trusted authenticating proxy names
    /// the user in (e.g. X-Forwarded-User), believed only from
    /// --trusted-proxies.
    #[arg(long, env = "RSS_AUTH_PROXY_HEADER")]
    pub auth_proxy_header: Option<String>,

    /// `--auth local`: a file holding the key (at least 32 bytes) that
    /// signs session cookies. Give every edge the same file, or sessions
    /// end on restart and work on one edge only.
    #[arg(long, env = "RSS_SESSION_KEY_FILE")]
    pub session_key_file: Option<std::path::PathBuf>,

    /// `--auth local`: the first admin's user name, created at start if
    /// no such account exists (with --admin-password-file or
    /// RSS_ADMIN_PASSWORD). Without it, /setup creates the first account.
    #[arg(long, env = "RSS_ADMIN_USERNAME")]
    pub admin_username: Option<String>,

    /// A file holding the first admin's password (a Docker secret, say).
    #[arg(long, env = "RSS_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<std::path::PathBuf>,

    /// The first admin's password itself (prefer the file: the
    /// environment is easier to leak).
    #[arg(long, env = "RSS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<common::config::Secret>,

    /// Reverse proxies whose X-Forwarded-For, X-Forwarded-Proto and
    /// X-Forwarded-Host are believed (comma-separated addresses or CIDRs);
    /// from any other peer they are ignored.
    #[arg(long, env = "RSS_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = common::config::parse_network, default_value = "127.0.0.1/32,::1/128")]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Each command's timeout, bulkhead and breaker.
    #[command(flatten)]
    pub commands: CommandArgs,

    /// Adds and deletes one user may make per second, on average; past the
    /// burst, more get 429 at once, before they use up the bulkhead
    /// (0: no limit).
    #[arg(long, env = "RSS_USER_WRITE_RATE", default_value_t = 5)]
    pub user_write_rate: u32,

    /// ... and in a burst. Keep it under --rss-write-max-concurrent, so one
    /// user alone cannot fill the bulkhead.
    #[arg(long, env = "RSS_USER_WRITE_BURST", default_value_t = 10)]
    pub user_write_burst: u32,

    /// Timeouts and retries for calls to a middletier.
    #[command(flatten)]
    pub balancer: BalancerArgs,

    /// How often /hystrix.stream reports each command (Hystrix: 500 ms).
    #[arg(long, env = "RSS_HYSTRIX_STREAM_INTERVAL", value_parser = parse_duration, default_value = "500ms")]
    pub hystrix_stream_interval: Duration,
}

/// The commands that call the middletier, and their breakers: the
/// recipe's three, and one per kind of reader call.
#[derive(Debug, Clone, clap::Args)]
pub struct CommandArgs {
    /// Time allowed to read a user's feeds, retries included.
    #[arg(long, env = "RSS_GET_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub rss_get_timeout: Duration,

    /// Time allowed to subscribe, retries included.
    #[arg(long, env = "RSS_ADD_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub rss_add_timeout: Duration,

    /// Time allowed to unsubscribe, retries included.
    #[arg(long, env = "RSS_DEL_TIMEOUT", value_parser = parse_duration, default_value = "2s")]
    pub rss_del_timeout: Duration,

    /// Time allowed to change read or starred state, or mark feeds read
    /// (`RSSItem`, `RSSMarkRead`).
    #[arg(long, env = "RSS_STATE_TIMEOUT", value_parser = parse_duration, default_value = "2s")]
    pub rss_state_timeout: Duration,

    /// Time allowed to refresh a feed now (`RSSRefresh`): the middletier
    /// fetches it, within its own 10 s feed timeout.
    #[arg(long, env = "RSS_REFRESH_TIMEOUT", value_parser = parse_duration, default_value = "12s")]
    pub rss_refresh_timeout: Duration,

    /// Time allowed to look for the feeds of a page (`RSSDiscover`).
    #[arg(long, env = "RSS_DISCOVER_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub rss_discover_timeout: Duration,

    /// Time allowed to export or import OPML (`RSSOpmlExport`,
    /// `RSSOpmlImport`).
    #[arg(long, env = "RSS_OPML_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub rss_opml_timeout: Duration,

    /// Time allowed to read or change an account (`RSSAccount`), or to
    /// delete a user with all their data.
    #[arg(long, env = "RSS_ACCOUNT_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub rss_account_timeout: Duration,

    /// Time allowed to read one article (`RSSArticle`) or a page of the
    /// river (`RSSRiver`).
    #[arg(long, env = "RSS_ARTICLE_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub rss_article_timeout: Duration,

    /// Time allowed to fetch one image for the media proxy (`RSSMedia`):
    /// the middletier fetches it, within its own 10 s fetch timeout.
    #[arg(long, env = "RSS_MEDIA_TIMEOUT", value_parser = parse_duration, default_value = "12s")]
    pub rss_media_timeout: Duration,

    /// Time allowed to each Google Reader API call (`GReader*`): a page of
    /// up to 10,000 ids, up to 1,000 items whole, or an edit of 10,000.
    #[arg(long, env = "RSS_GREADER_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub greader_timeout: Duration,

    /// Reads in flight at once (the RSSGet bulkhead). Async calls hold no
    /// thread, so this is larger than Hystrix's default of 10; it still
    /// stops a slow middletier from piling up every request.
    #[arg(long, env = "RSS_GET_MAX_CONCURRENT", default_value_t = 64)]
    pub rss_get_max_concurrent: u32,

    /// Writes in flight at once, per command (every command but RSSGet).
    #[arg(long, env = "RSS_WRITE_MAX_CONCURRENT", default_value_t = 16)]
    pub rss_write_max_concurrent: u32,

    /// Calls in the rolling window before the breaker may open.
    #[arg(long, env = "RSS_BREAKER_VOLUME_THRESHOLD", default_value_t = 20)]
    pub breaker_volume_threshold: u64,

    /// Error percentage in the window that opens the breaker.
    #[arg(long, env = "RSS_BREAKER_ERROR_THRESHOLD", default_value_t = 50)]
    pub breaker_error_threshold: u64,

    /// How long an open breaker refuses calls before one trial.
    #[arg(long, env = "RSS_BREAKER_SLEEP_WINDOW", value_parser = parse_duration, default_value = "5s")]
    pub breaker_sleep_window: Duration,

    /// The rolling statistical window (in 10 buckets).
    #[arg(long, env = "RSS_BREAKER_WINDOW", value_parser = parse_duration, default_value = "10s")]
    pub breaker_window: Duration,
}

impl CommandArgs {
    fn command(&self, name: &str, timeout: Duration, max_concurrent: u32) -> CommandSettings {
        CommandSettings {
            max_concurrent,
            breaker: BreakerSettings {
                enabled: true,
                volume_threshold: self.breaker_volume_threshold,
                error_threshold_percentage: self.breaker_error_threshold,
                sleep_window: self.breaker_sleep_window,
            },
            window: self.breaker_window,
            ..CommandSettings::new(name, "RSS", timeout)
        }
    }

    /// Every command's settings, each under its own name.
    pub fn settings(&self) -> PerCommand<CommandSettings> {
        let write = self.rss_write_max_concurrent;
        let read = self.rss_get_max_concurrent;
        PerCommand {
            get: self.command("RSSGet", self.rss_get_timeout, self.rss_get_max_concurrent),
            add: self.command("RSSAdd", self.rss_add_timeout, write),
            del: self.command("RSSDel", self.rss_del_timeout, write),
            item: self.command("RSSItem", self.rss_state_timeout, write),
            mark_read: self.command("RSSMarkRead", self.rss_state_timeout, write),
            refresh: self.command("RSSRefresh", self.rss_refresh_timeout, write),
            discover: self.command("RSSDiscover", self.rss_discover_timeout, write),
            opml_export: self.command("RSSOpmlExport", self.rss_opml_timeout, write),
            opml_import: self.command("RSSOpmlImport", self.rss_opml_timeout, write),
            account: self.command("RSSAccount", self.rss_account_timeout, write),
            article: self.command("RSSArticle", self.rss_article_timeout, read),
            river: self.command("RSSRiver", self.rss_article_timeout, read),
            media: self.command("RSSMedia", self.rss_media_timeout, read),
            greader_feeds: self.command("GReaderFeeds", self.greader_timeout, read),
            greader_ids: self.command("GReaderIds", self.greader_timeout, read),
            greader_items: self.command("GReaderItems", self.greader_timeout, read),
            greader_stream: self.command("GReaderStream", self.greader_timeout, read),
            greader_edit: self.command("GReaderEdit", self.greader_timeout, write),
            greader_mark_all: self.command("GReaderMarkAll", self.rss_state_timeout, write),
            greader_subscribe: self.command("GReaderSubscribe", self.rss_add_timeout, write),
            greader_unsubscribe: self.command("GReaderUnsubscribe", self.rss_del_timeout, write),
        }
    }
}

/// How many commands call the middletier.
pub const COMMANDS: usize = 21;

/// One of something per command that calls the middletier, each by name
/// (settings here; the commands themselves in the middletier client), so
/// no list order can hand one command another's breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct PerCommand<T> {
    /// `RSSGet`: a user's feeds and items.
    pub get: T,
    /// `RSSAdd`: subscribe.
    pub add: T,
    /// `RSSDel`: unsubscribe.
    pub del: T,
    /// `RSSItem`: one item's read/starred state.
    pub item: T,
    /// `RSSMarkRead`: mark a feed, or everything, read.
    pub mark_read: T,
    /// `RSSRefresh`: fetch a feed now.
    pub refresh: T,
    /// `RSSDiscover`: find the feeds of a page.
    pub discover: T,
    /// `RSSOpmlExport`.
    pub opml_export: T,
    /// `RSSOpmlImport`.
    pub opml_import: T,
    /// `RSSAccount`: read or change an account (`--auth local`).
    pub account: T,
    /// `RSSArticle`: one item whole.
    pub article: T,
    /// `RSSRiver`: a page of every feed's items.
    pub river: T,
    /// `RSSMedia`: one image for the media proxy.
    pub media: T,
    /// `GReaderFeeds`: subscriptions and unread counts for sync apps.
    pub greader_feeds: T,
    /// `GReaderIds`: a page of a stream's item ids.
    pub greader_ids: T,
    /// `GReaderItems`: items whole, by id.
    pub greader_items: T,
    /// `GReaderStream`: a page of a stream's items whole.
    pub greader_stream: T,
    /// `GReaderEdit`: read and starred state of many items.
    pub greader_edit: T,
    /// `GReaderMarkAll`: mark a stream read.
    pub greader_mark_all: T,
    /// `GReaderSubscribe`: subscribe from a sync app.
    pub greader_subscribe: T,
    /// `GReaderUnsubscribe`: unsubscribe from a sync app.
    pub greader_unsubscribe: T,
}

impl<T> PerCommand<T> {
    /// The same names, each with `f` of its value.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerCommand<U> {
        PerCommand {
            get: f(self.get),
            add: f(self.add),
            del: f(self.del),
            item: f(self.item),
            mark_read: f(self.mark_read),
            refresh: f(self.refresh),
            discover: f(self.discover),
            opml_export: f(self.opml_export),
            opml_import: f(self.opml_import),
            account: f(self.account),
            article: f(self.article),
            river: f(self.river),
            media: f(self.media),
            greader_feeds: f(self.greader_feeds),
            greader_ids: f(self.greader_ids),
            greader_items: f(self.greader_items),
            greader_stream: f(self.greader_stream),
            greader_edit: f(self.greader_edit),
            greader_mark_all: f(self.greader_mark_all),
            greader_subscribe: f(self.greader_subscribe),
            greader_unsubscribe: f(self.greader_unsubscribe),
        }
    }

    /// Every value, in the order the dashboard shows them.
    pub fn all(&self) -> [&T; COMMANDS] {
        [
            &self.get,
            &self.add,
            &self.del,
            &self.item,
            &self.mark_read,
            &self.refresh,
            &self.discover,
            &self.opml_export,
            &self.opml_import,
            &self.account,
            &self.article,
            &self.river,
            &self.media,
            &self.greader_feeds,
            &self.greader_ids,
            &self.greader_items,
            &self.greader_stream,
            &self.greader_edit,
            &self.greader_mark_all,
            &self.greader_subscribe,
            &self.greader_unsubscribe,
        ]
    }
}

/// Ribbon's knobs for calls to the middletier.
#[derive(Debug, Clone, clap::Args)]
pub struct BalancerArgs {
    /// Time to connect to a middletier instance.
    #[arg(long, env = "RSS_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "1s")]
    pub connect_timeout: Duration,

    /// Time one attempt may take (capped by what is left of the command's timeout).
    #[arg(long, env = "RSS_ATTEMPT_TIMEOUT", value_parser = parse_duration, default_value = "4s")]
    pub attempt_timeout: Duration,

    /// Retries of a timed-out attempt on the same instance (Ribbon's MaxAutoRetries).
    #[arg(long, env = "RSS_RETRIES_SAME_SERVER", default_value_t = 1)]
    pub retries_same_server: u32,

    /// Other instances tried after a failure (Ribbon's MaxAutoRetriesNextServer).
    #[arg(long, env = "RSS_RETRIES_NEXT_SERVER", default_value_t = 1)]
    pub retries_next_server: u32,

    /// How long an instance that refused a connection is skipped.
    #[arg(long, env = "RSS_UNAVAILABLE_COOLDOWN", value_parser = parse_duration, default_value = "10s")]
    pub unavailable_cooldown: Duration,
}

impl BalancerArgs {
    /// The balancer's settings these flags describe.
    pub fn settings(&self) -> BalancerSettings {
        BalancerSettings {
            connect_timeout: self.connect_timeout,
            attempt_timeout: self.attempt_timeout,
            cooldown: self.unavailable_cooldown,
            retry: RetryPolicy {
                same_server: self.retries_same_server,
                next_servers: self.retries_next_server,
            },
            ..BalancerSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let config = Config::try_parse_from(["edge"]).unwrap();
        assert_eq!(config.port, 9090);
        assert_eq!(config.auth_proxy_header, None);
        assert_eq!(config.auth, None);
        let commands = config.commands.settings();
        let named: Vec<(&str, u64)> = commands
            .all()
            .iter()
            .map(|c| (c.name.as_str(), c.timeout.as_secs()))
            .collect();
        assert_eq!(
            named,
            [
                ("RSSGet", 10),
                ("RSSAdd", 5),
                ("RSSDel", 2),
                ("RSSItem", 2),
                ("RSSMarkRead", 2),
                ("RSSRefresh", 12),
                ("RSSDiscover", 5),
                ("RSSOpmlExport", 5),
                ("RSSOpmlImport", 5),
                ("RSSAccount", 5),
                ("RSSArticle", 5),
                ("RSSRiver", 5),
                ("RSSMedia", 12),
                ("GReaderFeeds", 10),
                ("GReaderIds", 10),
                ("GReaderItems", 10),
                ("GReaderStream", 10),
                ("GReaderEdit", 10),
                ("GReaderMarkAll", 2),
                ("GReaderSubscribe", 5),
                ("GReaderUnsubscribe", 2),
            ]
        );
        let get = &commands.get;
        assert_eq!(get.breaker, BreakerSettings::default());
        assert_eq!(get.window, Duration::from_secs(10));
        assert_eq!(config.balancer.settings().retry, RetryPolicy::default());
        assert_eq!(config.hystrix_stream_interval, Duration::from_millis(500));
    }

    #[test]
    fn the_config_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}

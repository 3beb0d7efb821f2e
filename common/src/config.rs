//! Flags every binary shares, and parsers for the values they take.
//!
//! Configuration follows Archaius' idea that every knob has a default good
//! enough for a newcomer and can be overridden without a rebuild; here each
//! clap flag also reads an `RSS_*` environment variable (the README's
//! Configuration table lists them), which is what docker-compose sets.

use std::time::Duration;

use crate::telemetry::LogFormat;

/// Listen address and logging, common to registry, middletier and edge.
/// (Each binary declares its own `--port`, since each has its own default
/// and environment variable.)
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; 0.0.0.0 listens on every interface.
    #[arg(long, env = "RSS_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Host name other services use to reach this one (put in the registry
    /// record). Defaults to the listen host.
    #[arg(long, env = "RSS_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,

    /// Log lines as `text` for people or `json` for machines; the filter
    /// comes from RUST_LOG (default `info`).
    #[arg(long, env = "RSS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Time a client has to send a request's headers before the
    /// connection is closed (slow clients must not tie up the server).
    #[arg(long, env = "RSS_HEADER_READ_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body, from the end of
    /// its headers.
    #[arg(long, env = "RSS_BODY_READ_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub body_read_timeout: Duration,

    /// On shutdown, how long requests in flight may take to finish before
    /// their connections are dropped and the process exits.
    #[arg(long, env = "RSS_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,

    /// How long a connection with no request in flight and no traffic is
    /// kept open.
    #[arg(long, env = "RSS_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "45s")]
    pub idle_timeout: Duration,

    /// Connections served at once; more wait until one closes.
    #[arg(long, env = "RSS_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
}

impl ServerArgs {
    /// The connection limits these flags describe.
    pub fn serve_settings(&self) -> crate::server::ServeSettings {
        crate::server::ServeSettings {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            drain_timeout: self.drain_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// Tools every binary carries besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Tool {
    /// Ask the running service's /healthcheck on this machine; exit 0 if it
    /// answers 200, 1 otherwise. For container healthchecks: small images
    /// have no curl.
    Healthcheck,
}

/// Where the registry is and how this process talks to it (see
/// [`crate::discovery`]). Flattened into the middletier's and the edge's
/// flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DiscoveryArgs {
    /// Registry base URLs, comma-separated, tried in order (failover). An
    /// empty value runs without a registry.
    #[arg(
        long,
        env = "RSS_REGISTRY_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8761/eureka/v2/"
    )]
    pub registry_url: Vec<String>,

    /// How often this instance renews its lease (Eureka's default: 30 s).
    #[arg(long, env = "RSS_RENEWAL_INTERVAL", value_parser = parse_duration, default_value = "30s")]
    pub renewal_interval: Duration,

    /// How long the registry keeps this instance without a renewal
    /// (Eureka's default: 90 s, three missed renewals).
    #[arg(long, env = "RSS_LEASE_DURATION", value_parser = parse_duration, default_value = "90s")]
    pub lease_duration: Duration,

    /// How often the local copy of the registry is refreshed.
    #[arg(long, env = "RSS_REGISTRY_FETCH_INTERVAL", value_parser = parse_duration, default_value = "5s")]
    pub registry_fetch_interval: Duration,

    /// How long one watch of the registry waits for a change (our
    /// registry's long poll, `GET apps/watch`): a change reaches this
    /// process within milliseconds, and an idle registry gets one request
    /// per timeout. A registry without it (Eureka's own) is polled every
    /// `--registry-fetch-interval` instead. `0s`: always poll.
    #[arg(long, env = "RSS_REGISTRY_WATCH_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub registry_watch_timeout: Duration,

    /// How often the whole registry is fetched even when the deltas say
    /// nothing was missed (their check counts instances per status only).
    #[arg(long, env = "RSS_REGISTRY_FULL_FETCH_INTERVAL", value_parser = parse_duration, default_value = "60s")]
    pub registry_full_fetch_interval: Duration,

    /// Id in the registry; default `{advertise host}:{vip}:{port}`.
    #[arg(long, env = "RSS_INSTANCE_ID")]
    pub instance_id: Option<String>,
}

/// Why a service's discovery client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverySetupError {
    /// A flag's value cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built (no TLS roots, say).
    #[error("could not set up an HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

impl DiscoveryArgs {
    /// The discovery client of a service registered as `app`/`vip` and
    /// listening on `port`. It advertises `--advertise-host`, or else a host
    /// its callers can reach (see
    /// [`default_advertise_host`](crate::discovery::default_advertise_host)).
    pub fn client(
        &self,
        server: &ServerArgs,
        app: &str,
        vip: &str,
        port: u16,
    ) -> Result<crate::discovery::DiscoveryClient, DiscoverySetupError> {
        use crate::discovery::{
            DiscoveryClient, Registration, advertise_ip, default_advertise_host,
        };
        let settings = self.settings().map_err(DiscoverySetupError::Config)?;
        let host = server
            .advertise_host
            .clone()
            .unwrap_or_else(|| default_advertise_host(&server.host, &settings.registry_urls));
        let registration = Registration::new(app, vip, &host, port, self.instance_id.clone())
            .with_ip(advertise_ip(&host, &settings.registry_urls));
        Ok(DiscoveryClient::new(settings, Some(registration))?)
    }

    /// The client settings these flags describe.
    pub fn settings(&self) -> Result<crate::discovery::DiscoverySettings, String> {
        Ok(crate::discovery::DiscoverySettings {
            registry_urls: crate::discovery::parse_registry_urls(&self.registry_url)?,
            renewal_interval: self.renewal_interval,
            lease_duration: self.lease_duration,
            fetch_interval: self.registry_fetch_interval,
            full_fetch_interval: self.registry_full_fetch_interval,
            watch_timeout: self.registry_watch_timeout,
            ..crate::discovery::DiscoverySettings::default()
        })
    }
}

/// A value that must not appear in logs or `Debug` output (a password, a
/// token): it prints as `***`, and the secret itself is read with
/// [`Secret::expose`], which makes each use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(value))
    }
}

/// Parses a network flag: a CIDR (`10.20.0.0/16`, `fd00::/8`) or a single
/// address (`10.1.2.3`, taken as `/32` or `/128`).
pub fn parse_network(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{raw:?} is not an address or network; use e.g. 10.1.2.3 or 10.20.0.0/16")
        })
}

/// Parses a duration flag: a bare number is seconds (`30`, `0.5`), anything
/// else is humantime (`500ms`, `5s`, `5m`, `1h 30m`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{raw:?} is not a valid number of seconds"));
    }
    humantime::parse_duration(raw)
        .map_err(|e| format!("{raw:?} is not a duration ({e}); use e.g. 30, 500ms, 5s or 5m"))
}

/// Parses a size flag: bytes, or a number with a binary unit
/// (`5MiB`, `512KiB`, `1GiB`; `K`, `M`, `G` mean the same).
pub fn parse_bytes(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a size; use e.g. 5MiB, 512KiB or 1048576"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_defaults_bound_slow_clients_and_stops() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            server: ServerArgs,
        }
        let flags = <Flags as clap::Parser>::try_parse_from(["x"]).unwrap();
        assert_eq!(
            flags.server.serve_settings(),
            crate::server::ServeSettings::default()
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(("user", secret.clone()))).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn sizes_accept_binary_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("5MiB"), Ok(5 << 20));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }
}

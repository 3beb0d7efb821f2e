//! The registry's flags. Each also reads its `RSS_*` environment variable.

use std::time::Duration;

use clap::Parser;
use common::config::{ServerArgs, Tool, parse_duration};

/// The flag and variable that set the port, for error messages.
pub const PORT_HINT: &str = "--port / RSS_REGISTRY_PORT";

/// The registry's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "registry",
    version,
    about = "RSS recipe service registry (Eureka-compatible REST, JSON and XML)"
)]
pub struct Config {
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "RSS_REGISTRY_PORT", default_value_t = 8761)]
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

    /// How often expired leases are removed. Eureka uses 60 s; a shorter
    /// pass costs little and forgets dead instances sooner.
    #[arg(long, env = "RSS_EVICTION_INTERVAL", value_parser = parse_duration, default_value = "5s")]
    pub eviction_interval: Duration,

    /// How long changes stay in the delta (Eureka: 3 min). Clients that
    /// fetch less often than this fall back to full fetches.
    #[arg(long, env = "RSS_DELTA_RETENTION", value_parser = parse_duration, default_value = "3m")]
    pub delta_retention: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let config = Config::try_parse_from(["registry"]).unwrap();
        assert_eq!(config.port, 8761);
        assert_eq!(config.eviction_interval, Duration::from_secs(5));
        assert_eq!(config.delta_retention, Duration::from_secs(180));
    }

    #[test]
    fn the_config_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}

//! `rss-recipes`: the whole stack in one process, for `cargo run --release`.
//!
//! It starts the registry, a middletier and the edge on their usual ports,
//! each exactly as its own binary would run it (the same library code, the
//! same HTTP between them, the same registration), and prints the URL to
//! open. Ctrl-C stops it cleanly: the middletier and the edge deregister
//! and drain while the registry still runs; then the registry stops.
//!
//! Flags here cover what a newcomer changes; every other `RSS_*` variable
//! of the three services (timeouts, breaker settings, ...) applies too.
//!
//! Only the edge follows `--host`: the registry and the middletier have no
//! authentication (anyone who reaches the middletier reads and writes
//! every user's feeds), so they listen on loopback whatever `--host` says.

use std::process::ExitCode;

use clap::Parser;
use std::time::Duration;

use common::discovery::parse_registry_urls;
use common::discovery::{DiscoveryClient, DiscoverySettings, http_base};
use common::telemetry::LogFormat;
use middletier::config::StoreKind;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "rss-recipes",
    version,
    about = "The RSS recipe in one process: registry, middletier and edge"
)]
struct Args {
    /// Address the reader (the edge) listens on. The registry and the
    /// middletier, which have no authentication, stay on loopback.
    #[arg(long, env = "RSS_HOST", default_value = "127.0.0.1")]
    host: String,

    /// The registry's port (its page lists who is registered).
    #[arg(long, env = "RSS_REGISTRY_PORT", default_value_t = 8761)]
    registry_port: u16,

    /// The middletier's port.
    #[arg(long, env = "RSS_MIDDLETIER_PORT", default_value_t = 9191)]
    middletier_port: u16,

    /// The edge's port: the reader is at http://{host}:{edge_port}/.
    #[arg(long, env = "RSS_EDGE_PORT", default_value_t = 9090)]
    edge_port: u16,

    /// Where subscriptions are kept: `file` (survives restarts), `memory`,
    /// or `cassandra` (see `middletier --help` for its settings).
    #[arg(long, env = "RSS_STORE", value_enum, default_value_t = StoreKind::File)]
    store: StoreKind,

    /// Where the `file` store keeps its database.
    #[arg(long, env = "RSS_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,

    /// Allow feeds on loopback, private or link-local addresses.
    #[arg(long, env = "RSS_ALLOW_PRIVATE_FEEDS", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    allow_private_feeds: bool,

    /// `text` or `json` log lines; the filter comes from RUST_LOG.
    #[arg(long, env = "RSS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{0}")]
    Config(#[from] clap::Error),
    #[error(transparent)]
    Registry(#[from] common::server::BindError),
    #[error(transparent)]
    Middletier(#[from] middletier::StartError),
    #[error(transparent)]
    Edge(#[from] edge::StartError),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let _telemetry = common::telemetry::init(args.log_format, "rss-recipes");
    let shutdown = common::shutdown::on_signal();
    match run(args, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start");
            eprintln!("rss-recipes: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, shutdown: CancellationToken) -> Result<(), StartError> {
    // Each service takes its defaults (and RSS_* variables) as its own
    // binary would; then the flags above are applied on top.
    // The services without authentication listen on loopback (see the
    // module docs): IPv6's when the reader is on an IPv6 address.
    let loopback = if args
        .host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_ipv6())
    {
        "::1"
    } else {
        "127.0.0.1"
    };
    let mut registry = registry::config::Config::try_parse_from(["registry"])?;
    registry.port = args.registry_port;
    registry.port_hint = "--registry-port / RSS_REGISTRY_PORT";
    registry.server.host = loopback.to_owned();
    let registry = registry::Application::build(registry).await?;
    let registry_url = format!("{}/eureka/v2/", http_base(loopback, registry.port()));

    let mut middletier = middletier::config::Config::try_parse_from(["middletier"])?;
    middletier.port = args.middletier_port;
    middletier.port_hint = "--middletier-port / RSS_MIDDLETIER_PORT";
    middletier.server.host = loopback.to_owned();
    middletier.discovery.registry_url = vec![registry_url.clone()];
    middletier.allow_private_feeds = args.allow_private_feeds;
    middletier.store = args.store;
    middletier.data_dir = args.data_dir.clone();
    let middletier = middletier::Application::build(middletier).await?;

    let mut edge = edge::config::Config::try_parse_from(["edge"])?;
    edge.port = args.edge_port;
    edge.port_hint = "--edge-port / RSS_EDGE_PORT";
    edge.server.host = args.host.clone();
    edge.discovery.registry_url = vec![registry_url.clone()];
    let edge = edge::Application::build(edge).await?;
    let edge_host = if args.host == "0.0.0.0" || args.host == "::" {
        loopback
    } else {
        &args.host
    };
    let reader = format!("{}/", http_base(edge_host, edge.port()));
    let registry_page = format!("{}/", http_base(loopback, registry.port()));

    // Stop order: the middletier and the edge first (they deregister while
    // the registry still answers), the registry last.
    let services = CancellationToken::new();
    let registry_stop = CancellationToken::new();
    let registry_task = tokio::spawn(registry.run_until_stopped(registry_stop.clone()));
    let mut middletier_task = Some(tokio::spawn(middletier.run_until_stopped(services.clone())));
    // Start the edge once the middletier is listed, so the first page a
    // newcomer opens is served live rather than from a fallback.
    wait_for_middletier(&registry_url, &shutdown).await;
    let mut edge_task = Some(tokio::spawn(edge.run_until_stopped(services.clone())));
    announce(&args, &reader, &registry_page);
    if let (Some(m), Some(e)) = (middletier_task.as_mut(), edge_task.as_mut()) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            ended = m => {
                report("middletier", ended);
                middletier_task = None;
                tracing::error!("the middletier stopped on its own; stopping everything");
            }
            ended = e => {
                report("edge", ended);
                edge_task = None;
                tracing::error!("the edge stopped on its own; stopping everything");
            }
        }
    }
    services.cancel();
    for (name, task) in [("middletier", middletier_task), ("edge", edge_task)] {
        if let Some(task) = task {
            report(name, task.await);
        }
    }
    registry_stop.cancel();
    report("registry", registry_task.await);
    Ok(())
}

/// Waits (up to 10 s, or until a stop is asked for) until the registry
/// lists a middletier that is UP.
async fn wait_for_middletier(registry_url: &str, shutdown: &CancellationToken) {
    let Ok(registry_urls) = parse_registry_urls(&[registry_url.to_owned()]) else {
        return;
    };
    let settings = DiscoverySettings {
        registry_urls,
        ..DiscoverySettings::default()
    };
    let Ok(probe) = DiscoveryClient::new(settings, None) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline && !shutdown.is_cancelled() {
        if probe.fetch().await.is_ok() && !probe.up_instances(middletier::VIP).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!(
        "the middletier is not registered yet; the reader will show saved feeds until it is"
    );
}

/// Says where to go, and where the subscriptions are kept.
fn announce(args: &Args, reader: &str, registry: &str) {
    match args.store {
        StoreKind::File => {
            tracing::info!(dir = %args.data_dir.display(), "subscriptions are kept in the file store")
        }
        StoreKind::Memory => tracing::info!(
            "subscriptions are kept in memory: they are lost when this process stops"
        ),
        StoreKind::Cassandra => tracing::info!("subscriptions are kept in Cassandra"),
    }
    tracing::info!(url = %reader, registry = %registry, "ready");
    if args.log_format == LogFormat::Text {
        println!("\n    RSS reader ready: open {reader}    (Ctrl-C stops it)\n");
    }
}

fn report(name: &str, ended: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => tracing::info!(service = name, "stopped"),
        Ok(Err(e)) => tracing::error!(service = name, error = %e, "failed"),
        Err(e) => tracing::error!(service = name, error = %e, "crashed"),
    }
}

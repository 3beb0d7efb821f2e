//! Binding and serving, with errors a newcomer can act on.
//!
//! - [`bind`]: listen, with an error that names the flag to change;
//! - [`serve`]: the connection loop, with read timeouts and a bounded drain
//!   ([`serve::ServeSettings`]);
//! - [`serve_registered`]: the same, in step with the registry (register,
//!   `UP`, and leave before draining);
//! - [`run_until_signal`]: what each binary's `main` does.

pub mod serve;

pub use serve::{CLIENT_POOL_IDLE, ServeSettings, serve};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Why a service could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "port {port} on {host} is already in use (is another copy running?): stop it, or choose another port with {hint} (0 picks a free one)"
    )]
    /// Another process listens there.
    InUse {
        /// The listen address.
        host: String,
        /// The port asked for.
        port: u16,
        /// The flag and variable that set the port.
        hint: &'static str,
    },
    /// Any other reason the address cannot be bound.
    #[error("cannot listen on {host}:{port}: {source}; check --host / RSS_HOST and {hint}")]
    Other {
        /// The listen address.
        host: String,
        /// The port asked for.
        port: u16,
        /// The flag and variable that set the port.
        hint: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Binds `host:port`, logs the address actually bound, and returns the
/// listener with its port: the one asked for, or the free one picked for a
/// 0, which is the one to advertise in the registry.
///
/// `hint` names the flag and variable that set the port, e.g.
/// `"--port / RSS_MIDDLETIER_PORT"`, so the error says what to change.
pub async fn bind(
    service: &'static str,
    host: &str,
    port: u16,
    hint: &'static str,
) -> Result<(TcpListener, u16), BindError> {
    let listener = TcpListener::bind((host, port)).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse {
                host: host.to_owned(),
                port,
                hint,
            }
        } else {
            BindError::Other {
                host: host.to_owned(),
                port,
                hint,
                source,
            }
        }
    })?;
    let bound = match listener.local_addr() {
        Ok(addr) => {
            tracing::info!(service, addr = %addr, port = addr.port(), "listening");
            addr.port()
        }
        Err(_) => port,
    };
    Ok((listener, bound))
}

/// Serves `router` while registered in the registry, in the order that
/// loses no request:
///
/// 1. the listener is already bound, so register as `STARTING`, start
///    serving, wait until `ready` (the service's dependencies can serve),
///    then re-register as `UP`, and heartbeat from then on;
/// 2. on `shutdown`: stop heartbeating, mark `DOWN` and cancel the lease
///    while still serving (callers stop choosing us; any that still come,
///    from a stale copy, are answered), then stop accepting and drain
///    in-flight requests, for at most the drain timeout.
///
/// Without a registry (`discovery` disabled) it is plain [`serve`].
pub async fn serve_registered(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    discovery: &crate::discovery::DiscoveryClient,
    ready: impl std::future::Future<Output = ()>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use crate::discovery::Status;
    if !discovery.is_enabled() {
        return serve(listener, router, settings, shutdown).await;
    }
    if let Err(e) = discovery.register().await {
        tracing::warn!(error = %e, "could not register as STARTING; heartbeats will retry");
    }
    let stop_serving = CancellationToken::new();
    // The server and the heartbeat run as tasks of their own; they end with
    // this future even if it is dropped rather than run to its end (its
    // caller crashed, or a test dropped it), so nothing outlives it.
    let mut server = AbortOnDropHandle::new(tokio::spawn(serve(
        listener,
        router,
        settings,
        stop_serving.clone(),
    )));
    let stop_heartbeat = CancellationToken::new();
    let heartbeat = AbortOnDropHandle::new(discovery.spawn_heartbeat(stop_heartbeat.clone()));
    tokio::select! {
        () = ready => {
            if let Err(e) = discovery.set_status(Status::Up).await {
                tracing::warn!(error = %e, "could not register as UP; heartbeats will retry");
            }
        }
        () = shutdown.cancelled() => {}
    }

    // Wait for the stop signal, or for the server to end by itself (it
    // failed); either way, leave the registry before returning.
    let ended_early = tokio::select! {
        () = shutdown.cancelled() => None,
        result = &mut server => Some(result),
    };
    stop_heartbeat.cancel();
    let _ = heartbeat.await;
    discovery.deregister().await;
    stop_serving.cancel();
    let result = match ended_early {
        Some(result) => result,
        None => server.await,
    };
    result.unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)))
}

/// What each service binary's `main` does once its flags are parsed: catch
/// SIGINT/SIGTERM first (so a signal during start-up is not lost), build the
/// service, run it until the signal, and turn each ending into a log line
/// and an exit code. A failure to start also goes to stderr, where a person
/// running the binary looks first.
pub async fn run_until_signal<App, Error, Run>(
    service: &str,
    build: impl std::future::Future<Output = Result<App, Error>>,
    run: impl FnOnce(App, CancellationToken) -> Run,
) -> std::process::ExitCode
where
    Error: std::fmt::Display,
    Run: std::future::Future<Output = std::io::Result<()>>,
{
    let shutdown = crate::shutdown::on_signal();
    let app = match build.await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "{service} could not start");
            eprintln!("{service}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(app, shutdown).await {
        Ok(()) => {
            tracing::info!("{service} stopped");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{service} failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `<binary> healthcheck`: GET http://{host}:{port}/healthcheck, where
/// `host` is the listen address (127.0.0.1 for a wildcard one).
/// Exit 0 when it answers 200; otherwise say why on stderr and exit 1.
pub async fn probe(host: &str, port: u16) -> std::process::ExitCode {
    let wildcard = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    let host = if wildcard { "127.0.0.1" } else { host };
    let url = format!("{}/healthcheck", crate::discovery::http_base(host, port));
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .no_proxy()
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => std::process::ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("healthcheck: {url} answered {}", response.status());
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {url} did not answer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_names_the_flag_to_change() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind("test", "127.0.0.1", port, "--port / RSS_TEST_PORT")
            .await
            .unwrap_err();
        assert!(matches!(err, BindError::InUse { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(&port.to_string()) && msg.contains("--port"),
            "{msg}"
        );
    }
}

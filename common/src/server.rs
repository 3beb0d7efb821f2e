//! Binding and serving, with errors a newcomer can act on.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why a service could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "port {port} on {host} is already in use (is another copy running?): stop it, or choose another port with {hint} (0 picks a free one)"
    )]
    InUse {
        host: String,
        port: u16,
        hint: &'static str,
    },
    #[error("cannot listen on {host}:{port}: {source}; check --host / RSS_HOST and {hint}")]
    Other {
        host: String,
        port: u16,
        hint: &'static str,
        source: std::io::Error,
    },
}

/// Binds `host:port` and logs the address actually bound (the port may be 0).
///
/// `hint` names the flag and variable that set the port, e.g.
/// `"--port / RSS_MIDDLETIER_PORT"`, so the error says what to change.
pub async fn bind(
    service: &'static str,
    host: &str,
    port: u16,
    hint: &'static str,
) -> Result<TcpListener, BindError> {
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
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(service, addr = %addr, port = addr.port(), "listening");
    }
    Ok(listener)
}

/// Serves `router` until `shutdown` fires, then stops accepting and waits for
/// in-flight requests to finish (axum's graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
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

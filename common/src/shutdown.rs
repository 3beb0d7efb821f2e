//! Graceful shutdown: one [`CancellationToken`] for the whole process.
//!
//! SIGINT (Ctrl-C) or SIGTERM (what `docker stop` and Kubernetes send)
//! cancels it; every server and background task holds a clone and ends when
//! it fires, so a stop drains in-flight requests instead of cutting them.
//! The drain is bounded (see [`crate::server::serve`]); a person who does
//! not want to wait even that long presses Ctrl-C again, and a second
//! signal exits the process at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled on the first SIGINT or SIGTERM; a
/// second signal exits the process at once (status 130, as a shell reports
/// an interrupted program). Must be called inside a tokio runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trip = token.clone();
    tokio::spawn(async move {
        let name = signal().await;
        tracing::info!(
            signal = name,
            "shutdown requested; draining (a second signal exits at once)"
        );
        trip.cancel();
        let again = signal().await;
        tracing::warn!(
            signal = again,
            "second signal: exiting now, without waiting for the drain"
        );
        eprintln!("{again} again: exiting now");
        std::process::exit(130);
    });
    token
}

/// A background task's loop: runs `tick` every `period` (the first after
/// one period) until `shutdown` fires. A tick that overruns delays the next
/// rather than causing a burst to catch up.
pub async fn every_until<F, Fut>(period: Duration, shutdown: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => tick().await,
        }
    }
}

/// Waits for SIGINT or SIGTERM and says which arrived.
pub async fn signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No SIGINT handler could be installed: wait for SIGTERM only.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    }
}

//! Fault injection, for resilience tests and game days.
//!
//! Off unless the middletier starts with `--enable-fault-injection`; only
//! then does `/admin/faults` exist, to switch faults on and off while the
//! process runs:
//!
//! - `latency_ms`: every `/middletier/...` request waits this long first
//!   (a slow dependency, to watch the edge's timeouts and breakers);
//! - `store_down`: every store call fails as if the store were unreachable.
//!
//! ```sh
//! curl -X PUT -H 'content-type: application/json' -d '{"latency_ms": 3000}' http://127.0.0.1:9191/admin/faults
//! curl -X PUT -H 'content-type: application/json' -d '{"latency_ms": 0, "store_down": false}' http://127.0.0.1:9191/admin/faults
//! ```
//!
//! This replaces what cannot be staged on one machine (a slow network, a
//! Cassandra cluster losing quorum) with the same symptoms, in the real
//! binary. Never enable it where untrusted clients can reach the port.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The faults in force. Shared by the routes, the middleware and the store.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    latency_ms: AtomicU64,
    store_down: AtomicBool,
}

/// The body of `GET`/`PUT /admin/faults`; fields left out are unchanged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FaultSettings {
    pub latency_ms: Option<u64>,
    pub store_down: Option<bool>,
}

impl Faults {
    fn settings(&self) -> FaultSettings {
        FaultSettings {
            latency_ms: Some(self.latency_ms.load(Ordering::Relaxed)),
            store_down: Some(self.store_down.load(Ordering::Relaxed)),
        }
    }

    /// Whether the injected store outage is on (the store's
    /// [`crate::store::Metered`] asks before every call, and fails it).
    pub(crate) fn store_is_down(&self) -> bool {
        self.store_down.load(Ordering::Relaxed)
    }

    pub(crate) fn apply(&self, settings: &FaultSettings) {
        if let Some(ms) = settings.latency_ms {
            self.latency_ms.store(ms, Ordering::Relaxed);
        }
        if let Some(down) = settings.store_down {
            self.store_down.store(down, Ordering::Relaxed);
        }
        tracing::warn!(?settings, "fault injection changed");
    }
}

/// `GET /admin/faults` and `PUT /admin/faults`.
pub(crate) fn routes(faults: Arc<Faults>) -> Router {
    Router::new()
        .route(
            "/admin/faults",
            get(|State(f): State<Arc<Faults>>| async move { Json(f.settings()) }).put(
                |State(f): State<Arc<Faults>>, Json(body): Json<FaultSettings>| async move {
                    f.apply(&body);
                    Json(f.settings())
                },
            ),
        )
        .with_state(faults)
}

/// Middleware: delays each request by the injected latency.
pub(crate) async fn delay(
    State(faults): State<Arc<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    let ms = faults.latency_ms.load(Ordering::Relaxed);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    next.run(request).await
}

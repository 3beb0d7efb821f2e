//! What every handler shares: the middletier client and the edge's
//! settings. Its own module, below the handlers, so that no handler
//! module has to reach up into `lib.rs` for it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::history;
use crate::middletier::Middletier;

/// Shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    pub middletier: Middletier,
    /// Who is asking, and everything about signing in.
    pub auth: std::sync::Arc<crate::auth::Auth>,
    /// Whose forwarding headers are believed (see [`crate::client`]).
    pub trusted_proxies: std::sync::Arc<[ipnet::IpNet]>,
    pub hystrix_interval: Duration,
    /// Each command's recent rate and errors, for the dashboard.
    pub history: std::sync::Arc<history::History>,
    /// Cancelled when shutdown begins, so long-lived streams end and the
    /// graceful drain is not held up by them.
    pub streams_stop: CancellationToken,
}

//! The registry's home page: a read-only view of who is registered, like
//! Eureka's dashboard. Server-rendered, refreshes itself every 5 s.
//!
//! It needs nothing but its own stylesheet, so that is all its CSP allows:
//! no script, no inline style, no images, no forms.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use common::discovery::eureka::Status;
use common::discovery::now_ms;

use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub(crate) struct Home {
    apps: Vec<AppRow>,
    instance_count: usize,
    renewals_last_minute: u64,
    uptime: String,
    version: u64,
    hashcode: String,
}

struct AppRow {
    name: String,
    up: usize,
    instances: Vec<InstanceRow>,
}

struct InstanceRow {
    id: String,
    status: &'static str,
    /// CSS class for the status badge.
    tone: &'static str,
    overridden: bool,
    address: String,
    vip: String,
    last_renewal: String,
    expires_in: String,
    registered: String,
}

/// The page's policy: its stylesheet, and nothing else.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/registry.css`.
pub(crate) async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/registry.css"),
    )
}

pub(crate) async fn home(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, PAGE_POLICY)],
        render(&state),
    )
}

fn render(state: &AppState) -> Home {
    let now = now_ms();
    let table = state.read();
    let apps = table
        .apps()
        .map(|(name, leases)| AppRow {
            name: name.clone(),
            up: leases
                .values()
                .filter(|l| l.effective_status() == Status::Up)
                .count(),
            instances: leases
                .values()
                .map(|lease| {
                    let status = lease.effective_status();
                    InstanceRow {
                        id: lease.id.clone(),
                        status: status.as_str(),
                        tone: match status {
                            Status::Up => "up",
                            Status::Starting => "starting",
                            _ => "down",
                        },
                        overridden: lease.overridden.is_some(),
                        address: format!(
                            "{}:{}",
                            lease
                                .record
                                .host_name()
                                .or_else(|| lease.record.ip_addr())
                                .unwrap_or_default(),
                            lease
                                .record
                                .port()
                                .map(|p| p.to_string())
                                .unwrap_or_default()
                        ),
                        vip: lease.record.vip_address().unwrap_or_default(),
                        last_renewal: ago(now.saturating_sub(lease.last_renewal_ms)),
                        expires_in: span(lease.expires_at_ms().saturating_sub(now)),
                        registered: ago(now.saturating_sub(lease.registered_ms)),
                    }
                })
                .collect(),
        })
        .collect();
    Home {
        apps,
        instance_count: table.len(),
        renewals_last_minute: table.renewals_last_minute(now),
        uptime: span(now.saturating_sub(state.started_ms)),
        version: table.version(),
        hashcode: table.hashcode(),
    }
}

/// "3 s", "4 min", "2 h": a duration as a person reads it.
fn span(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

fn ago(ms: u64) -> String {
    format!("{} ago", span(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(span(0), "0 s");
        assert_eq!(span(90_000), "90 s");
        assert_eq!(span(600_000), "10 min");
        assert_eq!(span(3 * 3_600_000), "3 h");
        assert_eq!(ago(5_000), "5 s ago");
    }
}

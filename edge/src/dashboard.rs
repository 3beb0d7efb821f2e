//! Watching the breakers: `/hystrix.stream` for the Hystrix Dashboard and
//! Turbine, and `/dashboard`, our own page of the same numbers plus the
//! middletier instances this edge knows.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use common::discovery::now_ms;
use common::resilience::Snapshot;
use common::resilience::hystrix::{command_event, thread_pool_event};
use common::resilience::window::Event as CommandEvent;
use futures::{Stream, StreamExt};
use serde::Serialize;

use crate::AppState;

/// `GET /hystrix.stream`: every interval, one `HystrixCommand` and one
/// `HystrixThreadPool` event per command, from the first moment (so a
/// dashboard pointed at a fresh edge is never empty). The stream ends when
/// the edge shuts down, so it never holds up a graceful stop.
pub(crate) async fn hystrix_stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let interval = state.hystrix_interval;
    let first = futures::stream::once(std::future::ready(()));
    let ticks = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(interval).await;
        Some(((), ()))
    });
    let middletier = state.middletier.clone();
    let events = first.chain(ticks).flat_map(move |()| {
        let now = now_ms();
        let batch: Vec<Result<Event, Infallible>> = middletier
            .commands()
            .iter()
            .flat_map(|command| {
                let snapshot = command.snapshot();
                [
                    command_event(&snapshot, now),
                    thread_pool_event(&snapshot, now),
                ]
            })
            .map(|json| Ok(Event::default().data(json.to_string())))
            .collect();
        futures::stream::iter(batch)
    });
    let until_shutdown = events.take_until(state.streams_stop.clone().cancelled_owned());
    Sse::new(until_shutdown).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(5))
            .text("ping"),
    )
}

#[derive(Debug, Serialize)]
pub(crate) struct DashboardData {
    pub vip: String,
    pub commands: Vec<CommandRow>,
    pub instances: Vec<InstanceRow>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CommandRow {
    pub name: String,
    pub state: &'static str,
    /// Calls per second over the window.
    pub rate: f64,
    pub error_percentage: u64,
    pub success: u64,
    pub failure: u64,
    pub timeout: u64,
    pub short_circuited: u64,
    pub rejected: u64,
    pub fallback: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub concurrent: u32,
    pub max_concurrent: u32,
    pub timeout_ms: u128,
}

#[derive(Debug, Serialize)]
pub(crate) struct InstanceRow {
    pub id: String,
    pub address: String,
    pub available: bool,
}

fn row(snapshot: &Snapshot) -> CommandRow {
    let count = |event| snapshot.counts.get(event);
    let calls = count(CommandEvent::Success)
        + count(CommandEvent::Failure)
        + count(CommandEvent::Timeout)
        + count(CommandEvent::ShortCircuited)
        + count(CommandEvent::Rejected)
        + count(CommandEvent::BadRequest);
    CommandRow {
        name: snapshot.settings.name.clone(),
        state: snapshot.state.as_str(),
        rate: calls as f64 / snapshot.settings.window.as_secs_f64().max(1.0),
        error_percentage: snapshot.health.error_percentage,
        success: count(CommandEvent::Success),
        failure: count(CommandEvent::Failure),
        timeout: count(CommandEvent::Timeout),
        short_circuited: count(CommandEvent::ShortCircuited),
        rejected: count(CommandEvent::Rejected),
        fallback: count(CommandEvent::FallbackSuccess),
        p50: snapshot.latency_total.at(50.0),
        p90: snapshot.latency_total.at(90.0),
        p99: snapshot.latency_total.at(99.0),
        concurrent: snapshot.concurrent,
        max_concurrent: snapshot.settings.max_concurrent,
        timeout_ms: snapshot.settings.timeout.as_millis(),
    }
}

fn data(state: &AppState) -> DashboardData {
    let client = state.middletier.client();
    DashboardData {
        vip: client.vip().to_owned(),
        commands: state
            .middletier
            .commands()
            .iter()
            .map(|c| row(&c.snapshot()))
            .collect(),
        instances: client
            .instances()
            .into_iter()
            .map(|(instance, available)| InstanceRow {
                address: format!("{}:{}", instance.host, instance.port),
                id: instance.id,
                available,
            })
            .collect(),
    }
}

/// `GET /dashboard/data`.
pub(crate) async fn dashboard_data(State(state): State<AppState>) -> Json<DashboardData> {
    Json(data(&state))
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    data: DashboardData,
    window_secs: u64,
}

/// `GET /dashboard`.
pub(crate) async fn dashboard(State(state): State<AppState>) -> DashboardPage {
    let window_secs = state.middletier.get.settings().window.as_secs();
    DashboardPage {
        data: data(&state),
        window_secs,
    }
}

//! Watching the breakers: `/hystrix.stream` for the Hystrix Dashboard and
//! Turbine, and `/dashboard`, our own page of the same numbers, each
//! command's last five minutes drawn as small charts ([`crate::history`]),
//! and the middletier instances this edge knows.

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

use crate::history::{self, History, Point, sparkline};
use crate::state::AppState;

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
    /// The last minutes, oldest first, one point per [`history::EVERY`].
    pub history: Vec<Point>,
    /// The same as SVG polyline points, so the page draws it without
    /// JavaScript: requests per second, and error percentage.
    pub rate_line: String,
    pub error_line: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct InstanceRow {
    pub id: String,
    pub address: String,
    pub available: bool,
}

/// The size of a sparkline, in SVG user units.
const SPARK_WIDTH: f64 = 118.0;
const SPARK_HEIGHT: f64 = 24.0;

fn row(snapshot: &Snapshot, history: &History) -> CommandRow {
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
        history: Vec::new(),
        rate_line: String::new(),
        error_line: String::new(),
    }
    .with_history(history.of(&snapshot.settings.name))
}

impl CommandRow {
    fn with_history(mut self, points: Vec<Point>) -> Self {
        let rates: Vec<f64> = points.iter().map(|p| p.rate).collect();
        let errors: Vec<f64> = points.iter().map(|p| p.error_percentage as f64).collect();
        self.rate_line = sparkline(&rates, 1.0, SPARK_WIDTH, SPARK_HEIGHT);
        self.error_line = sparkline(&errors, 100.0, SPARK_WIDTH, SPARK_HEIGHT);
        self.history = points;
        self
    }
}

/// Samples every command into the history until `stop`.
pub(crate) async fn sample(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut ticks = tokio::time::interval(history::EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        for command in state.middletier.commands() {
            let now = row(&command.snapshot(), &History::default());
            state.history.record(
                &now.name,
                Point {
                    rate: now.rate,
                    error_percentage: now.error_percentage,
                },
            );
        }
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
            .map(|c| row(&c.snapshot(), &state.history))
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
    let window_secs = state.middletier.commands.get.settings().window.as_secs();
    DashboardPage {
        data: data(&state),
        window_secs,
    }
}

//! A command: one kind of call to a dependency, run behind a circuit
//! breaker, a bulkhead and a timeout, with a fallback, and measured.
//!
//! This is the shape of a Hystrix command. The order of the gates, outermost
//! first:
//!
//! 1. **breaker**: open → short-circuit at once (no waiting, no call);
//! 2. **bulkhead**: at most `max_concurrent` calls in flight; one more is
//!    rejected at once, so a slow dependency cannot tie up every request;
//! 3. **timeout**: the work gets a deadline (handed to it, so retries inside
//!    can fit under it) and is cancelled when it passes.
//!
//! The work runs as a task of its own, as Hystrix ran it on a thread of its
//! pool: when the caller gives up first (a browser closes the tab, a proxy
//! times out), the call still runs to its end or its timeout, keeps its
//! bulkhead slot meanwhile, and its outcome is recorded. Otherwise a
//! middletier slow enough that every user gives up before the timeout
//! would never be seen failing, and the breaker would never open.
//!
//! Every outcome is counted in the rolling window (which feeds the breaker,
//! `/hystrix.stream` and the dashboard) and in Prometheus
//! (`command_events_total{command,event}`, `command_latency_seconds`).
//! A *bad request* (the caller's mistake, e.g. a 4xx) is passed through
//! untouched: it is not the dependency's failure, so it neither trips the
//! breaker nor triggers the fallback.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::breaker::{BreakerSettings, CircuitBreaker, Permit, State, Transition};
use super::window::{Counts, Event, Health, RollingWindow, percentile};

/// How one command behaves.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// e.g. `RSSGet`.
    pub name: String,
    /// Hystrix's command group, e.g. `RSS`.
    pub group: String,
    /// How long a call may take, retries included.
    pub timeout: Duration,
    /// The bulkhead: calls in flight at once.
    pub max_concurrent: u32,
    /// The breaker's settings.
    pub breaker: BreakerSettings,
    /// The rolling statistical window (Hystrix: 10 s in 10 buckets).
    pub window: Duration,
    /// Buckets in the window.
    pub window_buckets: u32,
}

impl CommandSettings {
    /// Hystrix's defaults, with the given name, group and timeout.
    pub fn new(name: &str, group: &str, timeout: Duration) -> Self {
        Self {
            name: name.to_owned(),
            group: group.to_owned(),
            timeout,
            max_concurrent: 10,
            breaker: BreakerSettings::default(),
            window: Duration::from_secs(10),
            window_buckets: 10,
        }
    }
}

/// How the work says it went wrong.
#[derive(Debug)]
pub enum Failure<E> {
    /// The caller's fault: passed through, not held against the dependency.
    BadRequest(E),
    /// The dependency failed.
    Error(E),
}

/// Why a command did not produce the work's result.
#[derive(Debug)]
pub enum CommandError<E> {
    /// The caller's mistake, passed through.
    BadRequest(E),
    /// The dependency failed.
    Error(E),
    /// No result within the timeout.
    Timeout(Duration),
    /// The breaker is open: the call was not made.
    ShortCircuited,
    /// The bulkhead is full: the call was not made.
    Rejected,
    /// The work's task was cancelled: the process is stopping.
    Cancelled,
}

impl<E: fmt::Display> fmt::Display for CommandError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::BadRequest(e) | CommandError::Error(e) => e.fmt(f),
            CommandError::Timeout(limit) => write!(f, "no answer within {} ms", limit.as_millis()),
            CommandError::ShortCircuited => {
                f.write_str("the circuit breaker is open after repeated failures")
            }
            CommandError::Rejected => f.write_str("too many calls are already waiting on it"),
            CommandError::Cancelled => {
                f.write_str("the call was cancelled: the service is stopping")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CommandError<E> {}

/// A result from the work itself, or from the fallback (with the reason).
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// The work's own result.
    Primary(T),
    /// The fallback's result, and why the work's was not available.
    Fallback(T, CommandError<E>),
}

/// A command's state at one moment, for the stream and the dashboard.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The command's settings.
    pub settings: CommandSettings,
    /// The breaker's state.
    pub state: State,
    /// Hystrix's `isCircuitBreakerOpen`: open or half-open.
    pub is_open: bool,
    /// Rolling counts over the window.
    pub counts: Counts,
    /// Totals and error percentage over the window.
    pub health: Health,
    /// Calls in flight now.
    pub concurrent: u32,
    /// The most calls in flight at once over the window.
    pub rolling_max_concurrent: u32,
    /// Milliseconds; Hystrix's percentiles 0, 25, 50, 75, 90, 95, 99, 99.5, 100.
    pub latency_execute: Percentiles,
    /// Latency including the time spent in the gates and the fallback.
    pub latency_total: Percentiles,
}

/// Latency percentiles in milliseconds, plus the mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// The mean, in milliseconds.
    pub mean: f64,
    /// `(percentile, milliseconds)` for each of [`Percentiles::POINTS`].
    pub values: [(f64, f64); 9],
}

impl Percentiles {
    /// The percentiles Hystrix reports.
    pub const POINTS: [f64; 9] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 100.0];

    fn of(sorted_us: &[u32]) -> Self {
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mean = if sorted_us.is_empty() {
            0.0
        } else {
            sorted_us.iter().map(|&us| f64::from(us)).sum::<f64>() / sorted_us.len() as f64 / 1000.0
        };
        let mut values = [(0.0, 0.0); 9];
        for (slot, p) in values.iter_mut().zip(Self::POINTS) {
            *slot = (p, ms(percentile(sorted_us, p)));
        }
        Self { mean, values }
    }

    /// The value at percentile `p` (one of [`Self::POINTS`]).
    pub fn at(&self, p: f64) -> f64 {
        self.values
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(0.0, |(_, v)| *v)
    }
}

/// A command. Cheap to clone; clones share the breaker and statistics.
#[derive(Clone)]
pub struct Command {
    inner: Arc<Inner>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("name", &self.inner.settings.name)
            .field("state", &self.core().breaker.state())
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: CommandSettings,
    /// Breaker and window change together, under one short lock that is
    /// never held across an `.await`.
    core: Mutex<Core>,
    /// The bulkhead; a permit is held for the whole execution.
    bulkhead: Arc<Semaphore>,
    in_flight: AtomicU32,
}

struct Core {
    breaker: CircuitBreaker,
    window: RollingWindow,
}

/// One execution between admission and its end: reports to the breaker
/// exactly once, and gives back the in-flight count. If the work's task
/// ends without reporting (it panicked, or the runtime is stopping), the
/// drop reports a failure, so a half-open breaker's trial is never lost.
struct Execution {
    command: Command,
    permit: Option<Permit>,
    started: Instant,
}

impl Execution {
    fn finish(mut self, event: Event, ran: Option<Duration>) {
        if let Some(permit) = self.permit.take() {
            self.command.finish(permit, event, ran, self.started);
        }
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.command.finish(
                permit,
                Event::Failure,
                Some(self.started.elapsed()),
                self.started,
            );
        }
        self.command.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Command {
    /// A command with `settings`, its breaker closed.
    pub fn new(settings: CommandSettings) -> Self {
        let core = Core {
            breaker: CircuitBreaker::new(settings.breaker),
            window: RollingWindow::new(settings.window, settings.window_buckets, Instant::now()),
        };
        metrics::gauge!("command_circuit_open", "command" => settings.name.clone()).set(0.0);
        Self {
            inner: Arc::new(Inner {
                bulkhead: Arc::new(Semaphore::new(settings.max_concurrent.max(1) as usize)),
                settings,
                core: Mutex::new(core),
                in_flight: AtomicU32::new(0),
            }),
        }
    }

    /// Its name (`RSSGet`, ...).
    pub fn name(&self) -> &str {
        &self.inner.settings.name
    }

    /// Its settings.
    pub fn settings(&self) -> &CommandSettings {
        &self.inner.settings
    }

    /// Runs `work` with no fallback: any failure is returned.
    pub async fn execute<T, E, W, Fut>(&self, work: W) -> Result<T, CommandError<E>>
    where
        W: FnOnce(Instant) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure<E>>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let started = Instant::now();
        let span = self.span();
        let result = self.run(work, started).instrument(span.clone()).await;
        if let Err(e) = &result
            && !matches!(e, CommandError::BadRequest(_))
        {
            span.record("fallback", "none");
            self.note(Event::FallbackMissing, None, started);
        }
        result
    }

    /// Runs `work`; when it fails (for any reason but a bad request), asks
    /// `fallback` for a substitute. `None` from the fallback is a fallback
    /// failure, and the original error is returned.
    pub async fn execute_or<T, E, W, Fut, F>(
        &self,
        work: W,
        fallback: F,
    ) -> Result<Outcome<T, E>, CommandError<E>>
    where
        W: FnOnce(Instant) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure<E>>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&CommandError<E>) -> Option<T>,
    {
        let started = Instant::now();
        let span = self.span();
        match self.run(work, started).instrument(span.clone()).await {
            Ok(value) => Ok(Outcome::Primary(value)),
            Err(e @ CommandError::BadRequest(_)) => Err(e),
            Err(e) => match fallback(&e) {
                Some(value) => {
                    span.record("fallback", "success");
                    self.note(Event::FallbackSuccess, None, started);
                    Ok(Outcome::Fallback(value, e))
                }
                None => {
                    span.record("fallback", "failure");
                    self.note(Event::FallbackFailure, None, started);
                    Err(e)
                }
            },
        }
    }

    /// The span of one execution (with tracing on): the breaker's state when
    /// it was asked, the outcome, and the fallback used, if any. The
    /// balancer's attempts are its children.
    fn span(&self) -> tracing::Span {
        let settings = &self.inner.settings;
        crate::telemetry::span(|| {
            tracing::info_span!(
                "command",
                otel.name = %settings.name,
                otel.status_code = Empty,
                command = %settings.name,
                group = %settings.group,
                breaker = Empty,
                event = Empty,
                fallback = Empty,
            )
        })
    }

    async fn run<T, E, W, Fut>(&self, work: W, started: Instant) -> Result<T, CommandError<E>>
    where
        W: FnOnce(Instant) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure<E>>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let inner = &self.inner;
        let span = tracing::Span::current();
        let admitted = {
            let mut core = self.core();
            // The state the breaker was in when asked, on the command's span.
            span.record("breaker", core.breaker.state().as_str());
            core.breaker.admit(started)
        };
        let Some(permit) = admitted else {
            self.note(Event::ShortCircuited, None, started);
            return Err(CommandError::ShortCircuited);
        };
        let Ok(slot) = inner.bulkhead.clone().try_acquire_owned() else {
            self.finish(permit, Event::Rejected, None, started);
            return Err(CommandError::Rejected);
        };
        let concurrent = inner.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let execution = Execution {
            command: self.clone(),
            permit: Some(permit),
            started,
        };
        self.core().window.observe_concurrency(concurrent, started);

        let timeout = inner.settings.timeout;
        let deadline = started + timeout;
        // Its own task, so it ends (and is recorded) even if our caller
        // stops waiting; the slot and the execution go with it.
        let task = tokio::spawn(
            async move {
                let _slot = slot;
                let result = tokio::time::timeout_at(deadline, work(deadline)).await;
                let ran = Some(started.elapsed());
                match result {
                    Ok(Ok(value)) => {
                        execution.finish(Event::Success, ran);
                        Ok(value)
                    }
                    Ok(Err(Failure::BadRequest(e))) => {
                        execution.finish(Event::BadRequest, ran);
                        Err(CommandError::BadRequest(e))
                    }
                    Ok(Err(Failure::Error(e))) => {
                        execution.finish(Event::Failure, ran);
                        Err(CommandError::Error(e))
                    }
                    Err(_elapsed) => {
                        execution.finish(Event::Timeout, ran);
                        Err(CommandError::Timeout(timeout))
                    }
                }
            }
            .instrument(span),
        );
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_cancelled) => Err(CommandError::Cancelled),
        }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a primary outcome and lets the breaker react to it.
    fn finish(&self, permit: Permit, event: Event, ran: Option<Duration>, started: Instant) {
        let now = Instant::now();
        let healthy = matches!(event, Event::Success | Event::BadRequest);
        let transition = {
            let mut core = self.core();
            core.window.record(event, now);
            core.window
                .record_latency(ran, now.saturating_duration_since(started), now);
            let health = core.window.counts(now).health();
            let transition = core.breaker.record(permit, healthy, health, now);
            if transition == Some(Transition::Closed) {
                // A closed breaker judges the dependency afresh.
                core.window.reset();
            }
            transition
        };
        self.export(event, now.saturating_duration_since(started));
        if let Some(transition) = transition {
            let name = &self.inner.settings.name;
            let open = transition != Transition::Closed;
            metrics::gauge!("command_circuit_open", "command" => name.clone()).set(if open {
                1.0
            } else {
                0.0
            });
            match transition {
                Transition::Opened => tracing::warn!(command = %name, "circuit breaker opened"),
                Transition::Reopened => {
                    tracing::warn!(command = %name, "trial call failed; circuit breaker stays open")
                }
                Transition::Closed => {
                    tracing::info!(command = %name, "trial call succeeded; circuit breaker closed")
                }
            }
        }
    }

    /// Records an event that does not affect the breaker.
    fn note(&self, event: Event, ran: Option<Duration>, started: Instant) {
        let now = Instant::now();
        {
            let mut core = self.core();
            core.window.record(event, now);
            if event == Event::ShortCircuited {
                core.window
                    .record_latency(ran, now.saturating_duration_since(started), now);
            }
        }
        self.export(event, now.saturating_duration_since(started));
    }

    fn export(&self, event: Event, took: Duration) {
        let name = self.inner.settings.name.clone();
        if !matches!(
            event,
            Event::FallbackSuccess | Event::FallbackFailure | Event::FallbackMissing
        ) {
            // The primary outcome, on the command's span (current here).
            let span = tracing::Span::current();
            span.record("event", event.as_str());
            if !matches!(event, Event::Success | Event::BadRequest) {
                span.record("otel.status_code", "ERROR");
            }
        }
        metrics::counter!("command_events_total", "command" => name.clone(), "event" => event.as_str()).increment(1);
        if !matches!(
            event,
            Event::FallbackSuccess | Event::FallbackFailure | Event::FallbackMissing
        ) {
            metrics::histogram!("command_latency_seconds", "command" => name)
                .record(took.as_secs_f64());
        }
    }

    /// The command's state now.
    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let core = self.core();
        let counts = core.window.counts(now);
        let (execute, total) = core.window.latencies(now);
        Snapshot {
            settings: self.inner.settings.clone(),
            state: core.breaker.state(),
            is_open: core.breaker.is_open(),
            counts,
            health: counts.health(),
            concurrent: self.inner.in_flight.load(Ordering::Relaxed),
            rolling_max_concurrent: core.window.max_concurrent(now),
            latency_execute: Percentiles::of(&execute),
            latency_total: Percentiles::of(&total),
        }
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;

//! The rolling window: what happened to a command in the last N seconds.
//!
//! Hystrix keeps its health statistics in a window of 10 buckets of 1 s;
//! each second the oldest bucket is dropped and a new one started, so the
//! numbers describe the last 10 s without storing every call. We do the same,
//! plus a bounded sample of latencies per bucket for percentiles.

use std::time::Duration;

use tokio::time::Instant;

/// Everything a command execution can end in, named as Hystrix names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The work succeeded.
    Success,
    /// The work failed.
    Failure,
    /// The work timed out.
    Timeout,
    /// The breaker refused the call.
    ShortCircuited,
    /// The bulkhead was full (Hystrix: `SEMAPHORE_REJECTED`).
    Rejected,
    /// The caller's fault (a 4xx): neither success nor failure of the dependency.
    BadRequest,
    /// The fallback answered.
    FallbackSuccess,
    /// The fallback had nothing to answer with.
    FallbackFailure,
    /// The call failed and there was no fallback to try.
    FallbackMissing,
}

impl Event {
    /// Every event, in the order the Hystrix stream lists them.
    pub const ALL: [Event; 9] = [
        Event::Success,
        Event::Failure,
        Event::Timeout,
        Event::ShortCircuited,
        Event::Rejected,
        Event::BadRequest,
        Event::FallbackSuccess,
        Event::FallbackFailure,
        Event::FallbackMissing,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Timeout => "timeout",
            Event::ShortCircuited => "short_circuited",
            Event::Rejected => "rejected",
            Event::BadRequest => "bad_request",
            Event::FallbackSuccess => "fallback_success",
            Event::FallbackFailure => "fallback_failure",
            Event::FallbackMissing => "fallback_missing",
        }
    }
}

/// A count per event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; 9]);

impl Counts {
    /// How many of `event` the window holds.
    pub fn get(&self, event: Event) -> u64 {
        self.0[event.index()]
    }

    fn add(&mut self, event: Event) {
        self.0[event.index()] += 1;
    }

    fn merge(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// Hystrix's health counts: requests that reached (or were refused by)
    /// the dependency's protection, and how many of them failed. Short
    /// circuits and bad requests count in neither.
    pub fn health(&self) -> Health {
        let errors =
            self.get(Event::Failure) + self.get(Event::Timeout) + self.get(Event::Rejected);
        let total = errors + self.get(Event::Success);
        Health {
            total,
            errors,
            error_percentage: (errors * 100).checked_div(total).unwrap_or(0),
        }
    }
}

/// Volume and error rate over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Calls that count for the breaker.
    pub total: u64,
    /// Those that failed (failure, timeout, short-circuited, rejected).
    pub errors: u64,
    /// `errors` as a percentage of `total`.
    pub error_percentage: u64,
}

/// Latency samples kept per bucket; beyond this, newer samples overwrite
/// older ones, so memory is bounded however busy the command is.
const SAMPLES_PER_BUCKET: usize = 1024;

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Which bucket (counted from the window's origin) this slot holds.
    number: u64,
    counts: Counts,
    max_concurrent: u32,
    execute_us: Vec<u32>,
    total_us: Vec<u32>,
    samples_seen: usize,
}

/// N buckets of equal length, reused in a ring.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    origin: Instant,
    bucket_len: Duration,
    buckets: Vec<Bucket>,
}

impl RollingWindow {
    /// A window of `length` split into `buckets` buckets (Hystrix: 10 s, 10).
    pub fn new(length: Duration, buckets: u32, origin: Instant) -> Self {
        let buckets = buckets.max(1);
        Self {
            origin,
            bucket_len: (length / buckets).max(Duration::from_millis(1)),
            buckets: vec![Bucket::default(); buckets as usize],
        }
    }

    /// How much time the window covers.
    pub fn length(&self) -> Duration {
        self.bucket_len * self.buckets.len() as u32
    }

    fn number_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / self.bucket_len.as_nanos().max(1)) as u64
    }

    /// The bucket for `now`, emptied first if it still holds an old second.
    fn current(&mut self, now: Instant) -> &mut Bucket {
        let number = self.number_at(now);
        let slot = (number % self.buckets.len() as u64) as usize;
        let bucket = &mut self.buckets[slot];
        if bucket.number != number {
            *bucket = Bucket {
                number,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// Buckets that belong to the window ending at `now`.
    fn live(&self, now: Instant) -> impl Iterator<Item = &Bucket> {
        let newest = self.number_at(now);
        let oldest = (newest + 1).saturating_sub(self.buckets.len() as u64);
        // Slots never used hold number 0 and nothing else, so counting them
        // while the window is young adds nothing.
        self.buckets
            .iter()
            .filter(move |b| b.number >= oldest && b.number <= newest)
    }

    /// Counts one `event` at `now`.
    pub fn record(&mut self, event: Event, now: Instant) {
        self.current(now).counts.add(event);
    }

    /// Records how long the work ran (`execute`, absent when it never ran)
    /// and how long the caller waited in all (`total`, fallback included).
    pub fn record_latency(&mut self, execute: Option<Duration>, total: Duration, now: Instant) {
        let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let bucket = self.current(now);
        let slot = bucket.samples_seen % SAMPLES_PER_BUCKET;
        bucket.samples_seen += 1;
        let put = |samples: &mut Vec<u32>, value: u32| {
            if samples.len() < SAMPLES_PER_BUCKET {
                samples.push(value);
            } else {
                samples[slot] = value;
            }
        };
        if let Some(execute) = execute {
            put(&mut bucket.execute_us, micros(execute));
        }
        put(&mut bucket.total_us, micros(total));
    }

    /// Notes a concurrency level, for the rolling maximum.
    pub fn observe_concurrency(&mut self, current: u32, now: Instant) {
        let bucket = self.current(now);
        bucket.max_concurrent = bucket.max_concurrent.max(current);
    }

    /// The counts over the window ending at `now`.
    pub fn counts(&self, now: Instant) -> Counts {
        let mut sum = Counts::default();
        for bucket in self.live(now) {
            sum.merge(&bucket.counts);
        }
        sum
    }

    /// The most calls in flight at once over the window ending at `now`.
    pub fn max_concurrent(&self, now: Instant) -> u32 {
        self.live(now).map(|b| b.max_concurrent).max().unwrap_or(0)
    }

    /// Latency samples in the window, sorted, in microseconds:
    /// (execution, total).
    pub fn latencies(&self, now: Instant) -> (Vec<u32>, Vec<u32>) {
        let mut execute: Vec<u32> = self
            .live(now)
            .flat_map(|b| b.execute_us.iter().copied())
            .collect();
        let mut total: Vec<u32> = self
            .live(now)
            .flat_map(|b| b.total_us.iter().copied())
            .collect();
        execute.sort_unstable();
        total.sort_unstable();
        (execute, total)
    }

    /// Forgets everything (a breaker that closes starts from a clean slate).
    pub fn reset(&mut self) {
        for bucket in &mut self.buckets {
            *bucket = Bucket::default();
        }
    }
}

/// The `p`th percentile (0–100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn counts_cover_the_window_and_nothing_older() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        window.record(Event::Failure, t0);
        window.record(Event::Success, t0 + 5 * SECOND);
        let counts = window.counts(t0 + 9 * SECOND);
        assert_eq!(
            (counts.get(Event::Failure), counts.get(Event::Success)),
            (1, 1)
        );
        // Ten seconds on, the first bucket has rolled out of the window.
        let counts = window.counts(t0 + 10 * SECOND);
        assert_eq!(
            (counts.get(Event::Failure), counts.get(Event::Success)),
            (0, 1)
        );
        assert_eq!(window.counts(t0 + 15 * SECOND), Counts::default());
    }

    #[test]
    fn a_reused_bucket_is_emptied_first() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        window.record(Event::Failure, t0);
        window.record(Event::Success, t0 + 10 * SECOND);
        let counts = window.counts(t0 + 10 * SECOND);
        assert_eq!(
            (counts.get(Event::Failure), counts.get(Event::Success)),
            (0, 1)
        );
    }

    #[test]
    fn health_counts_errors_like_hystrix() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        for event in [
            Event::Success,
            Event::Failure,
            Event::Timeout,
            Event::Rejected,
            Event::ShortCircuited,
            Event::BadRequest,
        ] {
            window.record(event, t0);
        }
        let health = window.counts(t0).health();
        assert_eq!(
            health,
            Health {
                total: 4,
                errors: 3,
                error_percentage: 75
            }
        );
    }

    #[test]
    fn latencies_are_bounded_per_bucket_and_give_percentiles() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        for ms in 1..=2000u64 {
            window.record_latency(
                Some(Duration::from_millis(ms)),
                Duration::from_millis(ms),
                t0,
            );
        }
        let (execute, total) = window.latencies(t0);
        assert_eq!(execute.len(), SAMPLES_PER_BUCKET);
        assert_eq!(total.len(), SAMPLES_PER_BUCKET);
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&sorted, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn the_rolling_maximum_of_concurrency_is_kept() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        window.observe_concurrency(3, t0);
        window.observe_concurrency(1, t0 + SECOND);
        assert_eq!(window.max_concurrent(t0 + SECOND), 3);
        assert_eq!(window.max_concurrent(t0 + 11 * SECOND), 0);
    }

    #[test]
    fn reset_forgets_everything() {
        let t0 = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(10), 10, t0);
        window.record(Event::Failure, t0);
        window.reset();
        assert_eq!(window.counts(t0), Counts::default());
    }
}

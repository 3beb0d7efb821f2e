//! The dashboard's memory: each command's request rate and error
//! percentage, sampled every few seconds over the last minutes, so the
//! page can draw how things went rather than only how they are.
//!
//! [`History`] is a plain ring of samples per command; [`sparkline`] turns
//! a series into SVG polyline points. Both are pure and unit-tested; the
//! sampling task in [`crate::Application`] feeds them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// How often a sample is taken.
pub(crate) const EVERY: Duration = Duration::from_secs(5);
/// Samples kept per command: five minutes' worth.
pub(crate) const KEEP: usize = 60;

/// One sample of one command.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Point {
    /// Calls per second over the command's window.
    pub rate: f64,
    /// Errors, as a percentage of calls.
    pub error_percentage: u64,
}

/// The last [`KEEP`] samples of each command.
#[derive(Debug, Default)]
pub(crate) struct History {
    series: Mutex<HashMap<String, VecDeque<Point>>>,
}

impl History {
    /// Adds a sample, dropping the oldest beyond [`KEEP`].
    pub(crate) fn record(&self, command: &str, point: Point) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let ring = series.entry(command.to_owned()).or_default();
        if ring.len() == KEEP {
            ring.pop_front();
        }
        ring.push_back(point);
    }

    /// A command's samples, oldest first.
    pub(crate) fn of(&self, command: &str) -> Vec<Point> {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .get(command)
            .map(|ring| ring.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// SVG polyline points for `values` in a `width` × `height` box, the
/// newest at the right edge and [`KEEP`] samples across; the top is
/// `max` (or the largest value, if larger). Empty for no values.
pub(crate) fn sparkline(values: &[f64], max: f64, width: f64, height: f64) -> String {
    let top = values
        .iter()
        .copied()
        .fold(max, f64::max)
        .max(f64::MIN_POSITIVE);
    let step = width / (KEEP.saturating_sub(1).max(1)) as f64;
    let offset = KEEP.saturating_sub(values.len()) as f64 * step;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = offset + i as f64 * step;
            let y = height - (v.max(0.0) / top) * height;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest() {
        let history = History::default();
        for i in 0..(KEEP + 5) {
            history.record(
                "RSSGet",
                Point {
                    rate: i as f64,
                    error_percentage: 0,
                },
            );
        }
        let points = history.of("RSSGet");
        assert_eq!(points.len(), KEEP);
        assert_eq!(points[0].rate, 5.0);
        assert_eq!(points[KEEP - 1].rate, (KEEP + 4) as f64);
        assert!(history.of("RSSAdd").is_empty());
    }

    #[test]
    fn sparklines_end_at_the_right_edge_and_scale_to_the_top() {
        assert_eq!(sparkline(&[], 1.0, 100.0, 20.0), "");
        let line = sparkline(&[0.0, 5.0, 10.0], 1.0, 118.0, 20.0);
        assert_eq!(line, "114.0,20.0 116.0,10.0 118.0,0.0");
        // A fixed top (100 %) keeps small error rates small.
        assert_eq!(sparkline(&[50.0], 100.0, 118.0, 20.0), "118.0,10.0");
    }
}

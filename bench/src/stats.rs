//! Latency and outcome recording: an HDR histogram of latencies in microseconds, counts of
//! answers by status, and the report lines with the goal next to each figure.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Outcomes of one kind of request.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency of every answered request, µs (1 µs to 60 s, 3 significant digits).
    pub latency: Histogram<u64>,
    /// Answers by HTTP status; transport failures under 0.
    pub statuses: BTreeMap<u16, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// Records one answer (`status` 0 = no answer) that took `took`.
    pub fn record(&mut self, status: u16, took: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        let micros = u64::try_from(took.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        self.latency.saturating_record(micros);
    }

    /// Adds another recorder's counts.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency.add(&other.latency);
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
    }

    /// Answers with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// Answers that were not 2xx, transport failures included.
    pub fn failed(&self) -> u64 {
        self.total() - self.ok()
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// The `q` quantile (0–1) of the latency in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// `p50 … p99 … p99.9 … max …` in milliseconds.
    pub fn percentiles(&self) -> String {
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.latency.max() as f64 / 1000.0
        )
    }

    /// `201 × 9123, 409 × 2, no answer × 1`.
    pub fn status_summary(&self) -> String {
        if self.statuses.is_empty() {
            return "none".to_owned();
        }
        self.statuses
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no answer × {n}")
                } else {
                    format!("{s} × {n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One report line: a label, the figure, and the goal with whether it was met.
pub fn goal_line(label: &str, figure: &str, goal: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    };
    println!("  {label:<34} {figure:<28} goal {goal:<18} {verdict}");
}

/// Latencies of commit → processed, from the orders' own timestamps, in milliseconds.
pub fn lag_histogram(lags: &[Duration]) -> Recorder {
    let mut rec = Recorder::default();
    for lag in lags {
        rec.record(200, *lag);
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_counts_successes_and_failures_by_status() {
        let mut rec = Recorder::default();
        rec.record(201, Duration::from_millis(2));
        rec.record(201, Duration::from_millis(4));
        rec.record(409, Duration::from_millis(1));
        rec.record(0, Duration::from_secs(1));
        assert_eq!((rec.ok(), rec.failed(), rec.total()), (2, 2, 4));
        assert_eq!(rec.status_summary(), "no answer × 1, 201 × 2, 409 × 1");
        assert!(rec.ms(1.0) >= 999.0, "{}", rec.ms(1.0));
    }

    #[test]
    fn merged_recorders_add_up() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.record(201, Duration::from_micros(500));
        b.record(201, Duration::from_micros(1500));
        b.record(503, Duration::from_micros(100));
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.statuses.get(&503), Some(&1));
        assert_eq!(a.latency.len(), 3);
    }
}

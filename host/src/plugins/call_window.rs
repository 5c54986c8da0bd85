//! Live plugin calls per slot and version over the last minutes, for the operator console and
//! `/metrics`: calls, failures and latency quantiles in one-minute buckets, the last
//! [`WINDOW_MINUTES`] kept. Only calls that served a request are counted (the active version
//! and any fallback that answered), not dry runs, smoke tests or shadow calls.
//!
//! Latencies go into an HDR histogram per bucket (`hdrhistogram`, 2 significant digits: a
//! quantile is within 1 % of the true value); a snapshot adds up the buckets in the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::contract::Slot;

/// Minutes a snapshot covers (the current, partial minute included).
pub const WINDOW_MINUTES: u64 = 5;
/// Largest latency recorded exactly, in microseconds (a minute; longer calls count as this).
const MAX_MICROS: u64 = 60_000_000;
/// Gauges on `/metrics`, labelled `slot` and `version`, refreshed when it is scraped.
pub const WINDOW_CALLS: &str = "plugin_window_calls";
pub const WINDOW_FAILURES: &str = "plugin_window_failures";
pub const WINDOW_P50: &str = "plugin_window_latency_p50_seconds";
pub const WINDOW_P99: &str = "plugin_window_latency_p99_seconds";

/// One version's calls over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionWindow {
    pub slot: Slot,
    /// The version label: the first 12 hex digits of its sha256.
    pub version: String,
    /// Calls in the window.
    pub calls: u64,
    /// Calls that failed (trap, timeout, memory, bad output, the guest's own error, input
    /// too large).
    pub failures: u64,
    /// Median latency of the timed calls, milliseconds (`None` before any).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// When its latest call in the window was counted.
    pub last_call_at: DateTime<Utc>,
}

/// One minute of one version.
struct Bucket {
    /// Minutes since the Unix epoch.
    minute: u64,
    calls: u64,
    failures: u64,
    latency_us: Histogram<u64>,
    last_call_at: DateTime<Utc>,
}

/// The rolling window of every slot and version.
#[derive(Default)]
pub(crate) struct CallWindow {
    /// The buckets of each (slot, version), oldest first.
    versions: Mutex<HashMap<(Slot, String), VecDeque<Bucket>>>,
    /// The versions whose gauges the last [`CallWindow::publish`] set.
    published: Mutex<Vec<(Slot, String)>>,
}

fn minute_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60
}

impl CallWindow {
    /// Counts one call of `version` in `slot` that took `elapsed` (`None`: refused before it
    /// ran) and succeeded or not.
    pub fn record(&self, slot: Slot, version: &str, elapsed: Option<Duration>, ok: bool) {
        self.record_at(SystemTime::now(), slot, version, elapsed, ok);
    }

    pub(crate) fn record_at(
        &self,
        at: SystemTime,
        slot: Slot,
        version: &str,
        elapsed: Option<Duration>,
        ok: bool,
    ) {
        let minute = minute_of(at);
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let buckets = versions.entry((slot, version.to_owned())).or_default();
        if buckets.back().is_none_or(|b| b.minute < minute) {
            let Ok(latency_us) = Histogram::new_with_bounds(1, MAX_MICROS, 2) else {
                return;
            };
            buckets.push_back(Bucket {
                minute,
                calls: 0,
                failures: 0,
                latency_us,
                last_call_at: DateTime::<Utc>::from(at),
            });
            while buckets
                .front()
                .is_some_and(|b| b.minute + WINDOW_MINUTES <= minute)
            {
                buckets.pop_front();
            }
        }
        // A clock step backwards lands in the newest bucket rather than reordering them.
        let Some(bucket) = buckets.back_mut() else {
            return;
        };
        bucket.calls += 1;
        if !ok {
            bucket.failures += 1;
        }
        if let Some(elapsed) = elapsed {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(MAX_MICROS);
            bucket
                .latency_us
                .saturating_record(micros.clamp(1, MAX_MICROS));
        }
        bucket.last_call_at = DateTime::<Utc>::from(at);
    }

    /// Every version with calls in the window, by slot then version.
    pub fn snapshot(&self) -> Vec<VersionWindow> {
        self.snapshot_at(SystemTime::now())
    }

    pub(crate) fn snapshot_at(&self, at: SystemTime) -> Vec<VersionWindow> {
        let now = minute_of(at);
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        versions.retain(|(slot, version), buckets| {
            buckets.retain(|b| b.minute + WINDOW_MINUTES > now);
            let Some(last) = buckets.back() else {
                return false;
            };
            let Ok(mut latency) = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 2) else {
                return true;
            };
            let (mut calls, mut failures) = (0, 0);
            for b in buckets.iter() {
                calls += b.calls;
                failures += b.failures;
                // Same bounds on both sides: adding cannot fail.
                let _ = latency.add(&b.latency_us);
            }
            let quantile = |q: f64| {
                (!latency.is_empty()).then(|| latency.value_at_quantile(q) as f64 / 1000.0)
            };
            out.push(VersionWindow {
                slot: *slot,
                version: version.clone(),
                calls,
                failures,
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
                last_call_at: last.last_call_at,
            });
            true
        });
        out.sort_by(|a, b| (a.slot, &a.version).cmp(&(b.slot, &b.version)));
        out
    }

    /// Sets the `/metrics` gauges from a snapshot; versions that left the window since the
    /// last call are set to zero.
    pub fn publish(&self) {
        let snapshot = self.snapshot();
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, version) in published.iter() {
            if !snapshot
                .iter()
                .any(|w| w.slot == *slot && &w.version == version)
            {
                let labels = [
                    ("slot", slot.as_str().to_owned()),
                    ("version", version.clone()),
                ];
                for name in [WINDOW_CALLS, WINDOW_FAILURES, WINDOW_P50, WINDOW_P99] {
                    metrics::gauge!(name, &labels).set(0.0);
                }
            }
        }
        published.clear();
        for w in &snapshot {
            let labels = [
                ("slot", w.slot.as_str().to_owned()),
                ("version", w.version.clone()),
            ];
            metrics::gauge!(WINDOW_CALLS, &labels).set(w.calls as f64);
            metrics::gauge!(WINDOW_FAILURES, &labels).set(w.failures as f64);
            metrics::gauge!(WINDOW_P50, &labels).set(w.p50_ms.unwrap_or(0.0) / 1000.0);
            metrics::gauge!(WINDOW_P99, &labels).set(w.p99_ms.unwrap_or(0.0) / 1000.0);
            published.push((w.slot, w.version.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_minute(minute: u64, second: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(minute * 60 + second)
    }

    #[test]
    fn calls_failures_and_quantiles_add_up_over_the_window_per_version() {
        let window = CallWindow::default();
        let t = at_minute(1_000, 5);
        for ms in 1..=100 {
            window.record_at(t, Slot::Tax, "aaaa", Some(Duration::from_millis(ms)), true);
        }
        window.record_at(t, Slot::Tax, "aaaa", None, false);
        window.record_at(
            at_minute(1_002, 0),
            Slot::Tax,
            "bbbb",
            Some(Duration::from_micros(300)),
            false,
        );

        let snap = window.snapshot_at(at_minute(1_002, 30));
        assert_eq!(snap.len(), 2);
        let a = &snap[0];
        assert_eq!((a.version.as_str(), a.calls, a.failures), ("aaaa", 101, 1));
        let p50 = a.p50_ms.unwrap();
        let p99 = a.p99_ms.unwrap();
        assert!((49.5..=50.6).contains(&p50), "p50 {p50}");
        assert!((98.0..=100.0).contains(&p99), "p99 {p99}");
        let b = &snap[1];
        assert_eq!((b.version.as_str(), b.calls, b.failures), ("bbbb", 1, 1));
        assert!((0.29..=0.31).contains(&b.p50_ms.unwrap()));
    }

    #[test]
    fn minutes_older_than_the_window_are_dropped_and_an_idle_version_disappears() {
        let window = CallWindow::default();
        window.record_at(
            at_minute(10, 0),
            Slot::Email,
            "old",
            Some(Duration::from_millis(2)),
            true,
        );
        window.record_at(
            at_minute(10, 0),
            Slot::Email,
            "new",
            Some(Duration::from_millis(2)),
            true,
        );
        window.record_at(
            at_minute(13, 0),
            Slot::Email,
            "new",
            Some(Duration::from_millis(4)),
            true,
        );

        // Minute 14 still covers minute 10 (10, 11, 12, 13, 14).
        let snap = window.snapshot_at(at_minute(14, 59));
        assert_eq!(snap.iter().map(|w| w.calls).collect::<Vec<_>>(), vec![2, 1]);
        // Minute 15 no longer does.
        let snap = window.snapshot_at(at_minute(15, 0));
        assert_eq!(snap.len(), 1);
        assert_eq!((snap[0].version.as_str(), snap[0].calls), ("new", 1));
        assert!((3.9..=4.1).contains(&snap[0].p50_ms.unwrap()));
        assert!(window.snapshot_at(at_minute(18, 0)).is_empty());
    }
}

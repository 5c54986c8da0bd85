//! The server phases of one pipeline run: the closed loop with the server's counters read
//! before and after and its memory sampled throughout, and the open loop with every order's
//! commit → processed latency read back once the pipeline has caught up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::counters::{Counters, Drain, wait_for_drain};
use super::summary::Value;
use crate::load::{self, Fixture, Outcome, Plan};
use crate::server::{Memory, read_cpu, read_memory, reset_peak_memory};

/// How often the server's memory is sampled during the closed loop.
const MEMORY_EVERY: Duration = Duration::from_millis(100);
/// How often `/metrics` is polled while waiting for the backlog.
pub const DRAIN_POLL: Duration = Duration::from_millis(50);

/// What the closed loop measured.
pub struct ClosedLoop {
    /// The clients' view: answers and their latency.
    pub outcome: Outcome,
    /// The server's counters just before the first order was sent.
    pub before: Counters,
    /// The server's counters once the last answer arrived.
    pub after: Counters,
    /// Time between the two readings.
    pub window: Duration,
    /// Whether the high-water mark was reset to the current RSS just before the load, so
    /// that `end`'s peak is the peak of the load alone.
    pub peak_reset: bool,
    /// Memory just before the load.
    pub start: Option<Memory>,
    /// Memory once the load stopped (`peak_kib` is the most ever resident).
    pub end: Option<Memory>,
    /// The largest `VmRSS` sampled during the load.
    pub sampled_peak_kib: Option<u64>,
    /// CPU time the server used during the load (user + system, all its threads).
    pub server_cpu: Option<Duration>,
    /// CPU time this load generator used meanwhile: it shares the machine's cores.
    pub client_cpu: Option<Duration>,
}

impl ClosedLoop {
    /// 201 answers per second, as the clients counted them.
    pub fn accepted_client(&self) -> f64 {
        self.outcome.rate()
    }

    /// Orders committed per second, as the server counted them.
    pub fn accepted_counter(&self) -> f64 {
        (self.after.placed - self.before.placed) / self.window.as_secs_f64().max(1e-9)
    }

    /// Orders moved to processed per second during the load.
    pub fn processed_rate(&self) -> f64 {
        (self.after.processed - self.before.processed) / self.window.as_secs_f64().max(1e-9)
    }

    /// Orders processed during the load ÷ orders committed during it.
    pub fn processed_share(&self) -> f64 {
        let placed = self.after.placed - self.before.placed;
        if placed <= 0.0 {
            return 0.0;
        }
        (self.after.processed - self.before.processed) / placed
    }

    /// Server CPU microseconds per order committed during the load: the cost that sets how
    /// many orders per second the machine's cores can take in and complete.
    pub fn server_cpu_us_per_order(&self) -> Option<f64> {
        let placed = self.after.placed - self.before.placed;
        let cpu = self.server_cpu?;
        (placed > 0.0).then(|| cpu.as_secs_f64() * 1e6 / placed)
    }

    /// Write-ahead log pages the store wrote per order committed during the load.
    pub fn log_pages_per_order(&self) -> Option<f64> {
        self.before.log_pages_per_order(&self.after)
    }

    /// Committed orders not yet processed (or failed) when the load stopped.
    pub fn backlog(&self) -> f64 {
        self.after.backlog()
    }

    /// The most the process held resident during the load: the high-water mark when it was
    /// reset before the load or rose during it (so it was reached then), else the largest
    /// sample.
    pub fn peak_kib(&self) -> Option<u64> {
        match (self.start, self.end) {
            (_, Some(end)) if self.peak_reset => Some(end.peak_kib),
            (Some(start), Some(end)) if end.peak_kib > start.peak_kib => Some(end.peak_kib),
            _ => self.sampled_peak_kib,
        }
    }

    /// The backlog in seconds of the load's intake.
    pub fn backlog_seconds(&self) -> f64 {
        self.backlog() / self.accepted_counter().max(1e-9)
    }
}

/// Drives `plan` (closed loop) while sampling the memory of process `pid`, reading the
/// server's counters right before and right after.
pub async fn closed_loop(fixture: &Fixture, pid: u32, plan: &Plan) -> anyhow::Result<ClosedLoop> {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak: Option<u64> = None;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(memory) = read_memory(pid) {
                    peak = Some(peak.map_or(memory.rss_kib, |p| p.max(memory.rss_kib)));
                }
                tokio::time::sleep(MEMORY_EVERY).await;
            }
            peak
        })
    };
    let peak_reset = reset_peak_memory(pid);
    let start = read_memory(pid).ok();
    let before = Counters::read(&fixture.api).await?;
    let cpu_before = (read_cpu(pid).ok(), read_cpu(std::process::id()).ok());
    let started = Instant::now();
    let outcome = load::drive(fixture, plan).await;
    let cpu_after = (read_cpu(pid).ok(), read_cpu(std::process::id()).ok());
    let after = Counters::read(&fixture.api).await?;
    let window = started.elapsed();
    let used =
        |before: Option<Duration>, after: Option<Duration>| Some(after?.saturating_sub(before?));
    let end = read_memory(pid).ok();
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.await.ok().flatten();
    let sampled_peak_kib = match (sampled, end) {
        (Some(s), Some(e)) => Some(s.max(e.rss_kib)),
        (s, e) => s.or(e.map(|e| e.rss_kib)),
    };
    Ok(ClosedLoop {
        outcome,
        before,
        after,
        window,
        peak_reset,
        start,
        end,
        sampled_peak_kib,
        server_cpu: used(cpu_before.0, cpu_after.0),
        client_cpu: used(cpu_before.1, cpu_after.1),
    })
}

/// What the open loop measured.
pub struct OpenLoop {
    /// Offered orders per second.
    pub offered: f64,
    /// The clients' view.
    pub outcome: Outcome,
    /// Waiting for the pipeline to catch up after the load stopped.
    pub drain: Drain,
    /// Commit → processed of every order read back, from its `createdAt` and `processedAt`.
    pub lags: Vec<Duration>,
    /// Orders still not processed when read back.
    pub unprocessed: usize,
    /// From the load's stop to the start of the read-back: every unprocessed order waited
    /// at least this long.
    pub waited: Duration,
    /// Write-ahead log pages the store wrote per order, from before the load until the
    /// pipeline caught up (so each order's whole write set).
    pub log_pages_per_order: Option<f64>,
}

impl OpenLoop {
    /// Requests sent per second.
    pub fn sent_rate(&self) -> f64 {
        self.outcome.orders.total() as f64 / self.outcome.elapsed.as_secs_f64().max(1e-9)
    }

    /// Commit → processed at quantile `q`, in milliseconds (see [`lag_quantile`]).
    pub fn lag_ms(&self, q: f64) -> Option<Value> {
        lag_quantile(&self.lags, self.unprocessed, self.waited, q)
    }
}

/// Sends at `rate` for `duration`, waits (up to `limit`) for the pipeline to catch up, then
/// reads back the commit → processed latency of every acknowledged order (or of
/// `sample` of them, when given).
pub async fn open_loop(
    fixture: &Fixture,
    clients: usize,
    rate: f64,
    duration: Duration,
    limit: Duration,
    sample: Option<usize>,
) -> OpenLoop {
    let plan = Plan {
        clients,
        duration,
        rate: Some(rate),
        progress: true,
    };
    let before = Counters::read(&fixture.api).await.ok();
    let outcome = load::drive(fixture, &plan).await;
    let stopped = Instant::now();
    let drain = wait_for_drain(&fixture.api, DRAIN_POLL, limit).await;
    let waited = stopped.elapsed();
    let ids = &outcome.created;
    let (lags, unprocessed) = load::processing_lags(
        fixture,
        ids,
        sample.unwrap_or(ids.len()),
        Duration::from_secs(5),
    )
    .await;
    let log_pages_per_order = before.and_then(|before| before.log_pages_per_order(&drain.last));
    OpenLoop {
        offered: rate,
        outcome,
        drain,
        lags,
        unprocessed,
        waited,
        log_pages_per_order,
    }
}

/// The `q` quantile (nearest rank) of commit → processed over the processed orders' `lags`
/// and `unprocessed` orders known only to have waited longer than `waited`. Exact when no
/// unprocessed order can reach the rank; otherwise a lower bound. `None` without orders.
pub fn lag_quantile(
    lags: &[Duration],
    unprocessed: usize,
    waited: Duration,
    q: f64,
) -> Option<Value> {
    let mut all: Vec<f64> = lags.iter().map(|l| l.as_secs_f64() * 1e3).collect();
    let floor = waited.as_secs_f64() * 1e3;
    all.extend(std::iter::repeat_n(floor, unprocessed));
    if all.is_empty() {
        return None;
    }
    all.sort_by(f64::total_cmp);
    let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
    let picked = all[rank - 1];
    // Raising the unprocessed orders to their true lags can only move this rank when one of
    // them sits at or below it.
    if unprocessed == 0 || picked < floor {
        Some(Value::exact(picked))
    } else {
        Some(Value::more_than(picked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn lag_quantiles_of_processed_orders_are_exact() {
        let lags = ms(&[5, 1, 3, 2, 4]);
        let q = lag_quantile(&lags, 0, Duration::ZERO, 0.5).unwrap();
        assert_eq!(q, Value::exact(3.0));
    }

    #[test]
    fn unprocessed_orders_above_the_rank_leave_it_exact() {
        let lags = ms(&[1; 99]);
        let q = lag_quantile(&lags, 1, Duration::from_secs(10), 0.99).unwrap();
        assert_eq!(q, Value::exact(1.0));
    }

    #[test]
    fn unprocessed_orders_at_the_rank_make_it_a_lower_bound() {
        let lags = ms(&[1; 90]);
        let q = lag_quantile(&lags, 10, Duration::from_secs(10), 0.99).unwrap();
        assert_eq!(q, Value::more_than(10_000.0));
    }
}

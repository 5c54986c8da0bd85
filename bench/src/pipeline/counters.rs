//! The server's own pipeline counters, read from `GET /metrics`: orders committed by the api
//! role, orders the consumer moved to `processed`, orders it gave up on (`failed`), and the
//! pages the embedded store wrote to its write-ahead log. A counter the server has not
//! incremented yet is absent from the exposition and reads 0.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::api::Api;

/// Orders committed (the pipeline's intake).
const PLACED: &str = "orderd_orders_placed_total";
/// Orders moved to `processed` (the pipeline's output).
const PROCESSED: &str = "orderd_orders_processed_total";
/// Orders given up on after the delivery attempt limit; they never become processed.
const FAILED: &str = "orderd_orders_failed_total";
/// Pages (4 KiB) the embedded SQLite store wrote to its write-ahead log.
const LOG_PAGES: &str = "orderd_sqlite_log_pages_total";

/// One reading of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub placed: f64,
    pub processed: f64,
    pub failed: f64,
    pub log_pages: f64,
}

impl Counters {
    /// Orders committed but neither processed nor failed yet.
    pub fn backlog(&self) -> f64 {
        (self.placed - self.processed - self.failed).max(0.0)
    }

    /// Log pages written per order placed between `self` and `later`; `None` without orders
    /// or without an embedded store (MongoDB writes no SQLite log).
    pub fn log_pages_per_order(&self, later: &Counters) -> Option<f64> {
        let placed = later.placed - self.placed;
        let pages = later.log_pages - self.log_pages;
        (placed > 0.0 && pages > 0.0).then(|| pages / placed)
    }

    /// Reads the counters from `GET /metrics`.
    pub async fn read(api: &Api) -> anyhow::Result<Self> {
        let resp = api
            .http
            .get(api.url("/metrics"))
            .send()
            .await
            .context("Failed to read /metrics")?;
        if !resp.status().is_success() {
            bail!("/metrics answered {}", resp.status());
        }
        let text = resp.text().await.context("Failed to read /metrics")?;
        Ok(Self::parse(&text))
    }

    /// The counters in a Prometheus text exposition (label sets of one name are summed).
    pub fn parse(text: &str) -> Self {
        Self {
            placed: sample_sum(text, PLACED),
            processed: sample_sum(text, PROCESSED),
            failed: sample_sum(text, FAILED),
            log_pages: sample_sum(text, LOG_PAGES),
        }
    }
}

/// The sum of every sample of metric `name` in `text`.
fn sample_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            let value = match rest.rfind('}') {
                Some(end) => &rest[end + 1..],
                None => rest,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// How often a long wait for the backlog reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How waiting for the backlog ended.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// From the call until processed (+ failed) caught up with placed, or until giving up.
    pub took: Duration,
    /// Whether it caught up.
    pub caught_up: bool,
    /// The last reading.
    pub last: Counters,
}

/// Polls the counters every `every` until every committed order is processed (or failed),
/// giving up after `limit`; says how many are left every few seconds.
pub async fn wait_for_drain(api: &Api, every: Duration, limit: Duration) -> Drain {
    let started = Instant::now();
    let mut last = Counters::default();
    let (mut told, mut told_processed) = (Instant::now(), None);
    loop {
        if let Ok(now) = Counters::read(api).await {
            let since = *told_processed.get_or_insert(now.processed);
            if told.elapsed() >= PROGRESS_EVERY {
                let rate = (now.processed - since) / told.elapsed().as_secs_f64();
                eprintln!(
                    "  [{:>4.0}s] {:.0} orders waiting, processing {rate:.0}/s",
                    started.elapsed().as_secs_f64(),
                    now.backlog()
                );
                (told, told_processed) = (Instant::now(), Some(now.processed));
            }
            last = now;
            if now.backlog() == 0.0 {
                return Drain {
                    took: started.elapsed(),
                    caught_up: true,
                    last,
                };
            }
        }
        if started.elapsed() >= limit {
            return Drain {
                took: started.elapsed(),
                caught_up: false,
                last,
            };
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_exposition_and_absent_ones_are_zero() {
        let text = "# TYPE orderd_orders_placed_total counter\n\
                    orderd_orders_placed_total 1200\n\
                    orderd_orders_placed_total_extra 7\n\
                    orderd_orders_processed_total{role=\"consumer\"} 1000\n\
                    orderd_orders_processed_total{role=\"other\"} 150\n\
                    orderd_sqlite_log_pages_total 36000\n";
        let counters = Counters::parse(text);
        assert_eq!(
            counters,
            Counters {
                placed: 1200.0,
                processed: 1150.0,
                failed: 0.0,
                log_pages: 36000.0
            }
        );
        assert_eq!(counters.backlog(), 50.0);
        let start = Counters::default();
        assert_eq!(start.log_pages_per_order(&counters), Some(30.0));
        assert_eq!(counters.log_pages_per_order(&counters), None);
    }
}

//! A short history of the order pipeline for the operator console's live chart: every
//! [`SAMPLE_EVERY`] the api role samples the store's order totals and outbox counts and the
//! queue figures this process knows, and keeps the last [`KEPT_SAMPLES`] (ten minutes), so a
//! page opened now shows the minutes before it.
//!
//! Rates come from the store's running totals, so they count every instance's orders, not only
//! this process's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::delivery::DeliveryHealth;
use crate::domain::OutboxStatus;
use crate::storage::{OrderTotals, Store, StoreResult};

/// Time between two samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(3);
/// Samples kept: ten minutes at [`SAMPLE_EVERY`].
pub const KEPT_SAMPLES: usize = 200;

/// The pipeline at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSample {
    pub at: DateTime<Utc>,
    /// Orders committed per second since the previous sample (0 for the first).
    pub accepted_per_sec: f64,
    /// Orders that reached `processed` per second since the previous sample.
    pub processed_per_sec: f64,
    /// Orders ever committed.
    pub placed_total: u64,
    /// Orders ever processed.
    pub processed_total: u64,
    /// Outbox events waiting to be published.
    pub outbox_pending: u64,
    /// Outbox events the relay gave up on.
    pub outbox_dead: u64,
    /// Messages in the queue (visible and in flight), when a consumer of this process samples
    /// it.
    pub queue_backlog: Option<u64>,
    /// Messages in the dead-letter queue, when a consumer of this process samples it.
    pub dead_lettered: Option<u64>,
}

/// The kept samples, oldest first.
#[derive(Debug, Default)]
pub struct PipelineHistory {
    samples: Mutex<VecDeque<PipelineSample>>,
}

impl PipelineHistory {
    /// Every kept sample, oldest first.
    pub fn samples(&self) -> Vec<PipelineSample> {
        self.lock().iter().cloned().collect()
    }

    /// The newest sample, if any.
    pub fn latest(&self) -> Option<PipelineSample> {
        self.lock().back().cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<PipelineSample>> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one sample now and keeps it.
    pub async fn sample_once(
        &self,
        store: &dyn Store,
        delivery: &DeliveryHealth,
    ) -> StoreResult<PipelineSample> {
        let (totals, pending, dead) = futures::try_join!(
            store.order_totals(),
            store.count_outbox(OutboxStatus::Pending),
            store.count_outbox(OutboxStatus::Dead),
        )?;
        let sample = self.push(
            crate::http::now(),
            totals,
            pending,
            dead,
            delivery.backlog(),
            delivery.dead_lettered(),
        );
        Ok(sample)
    }

    fn push(
        &self,
        at: DateTime<Utc>,
        totals: OrderTotals,
        outbox_pending: u64,
        outbox_dead: u64,
        queue_backlog: Option<u64>,
        dead_lettered: Option<u64>,
    ) -> PipelineSample {
        let mut samples = self.lock();
        let rate = |now: u64, before: u64, secs: f64| {
            if secs > 0.0 {
                now.saturating_sub(before) as f64 / secs
            } else {
                0.0
            }
        };
        let (accepted_per_sec, processed_per_sec) = match samples.back() {
            Some(prev) => {
                let secs = (at - prev.at).num_milliseconds() as f64 / 1000.0;
                (
                    rate(totals.placed, prev.placed_total, secs),
                    rate(totals.processed, prev.processed_total, secs),
                )
            }
            None => (0.0, 0.0),
        };
        let sample = PipelineSample {
            at,
            accepted_per_sec,
            processed_per_sec,
            placed_total: totals.placed,
            processed_total: totals.processed,
            outbox_pending,
            outbox_dead,
            queue_backlog,
            dead_lettered,
        };
        samples.push_back(sample.clone());
        while samples.len() > KEPT_SAMPLES {
            samples.pop_front();
        }
        sample
    }
}

/// Samples into `history` every [`SAMPLE_EVERY`] until `shutdown`; a failed sample is logged
/// and skipped.
pub fn spawn_sampler(
    history: Arc<PipelineHistory>,
    store: Arc<dyn Store>,
    delivery: Arc<DeliveryHealth>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            if let Err(err) = history.sample_once(store.as_ref(), &delivery).await {
                tracing::warn!(error = ?err, "could not sample the order pipeline for the console");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(placed: u64, processed: u64) -> OrderTotals {
        OrderTotals { placed, processed }
    }

    #[test]
    fn rates_are_the_growth_of_the_totals_per_second_between_samples() {
        let history = PipelineHistory::default();
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let first = history.push(t0, totals(10, 4), 6, 1, Some(3), None);
        assert_eq!(
            (first.accepted_per_sec, first.processed_per_sec),
            (0.0, 0.0)
        );
        let later = t0 + chrono::Duration::milliseconds(2_500);
        let second = history.push(later, totals(20, 9), 2, 1, Some(0), Some(1));
        assert_eq!(
            (second.accepted_per_sec, second.processed_per_sec),
            (4.0, 2.0)
        );
        assert_eq!(history.samples(), vec![first, second.clone()]);
        assert_eq!(history.latest(), Some(second));
    }

    #[test]
    fn only_the_newest_samples_are_kept() {
        let history = PipelineHistory::default();
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        for i in 0..(KEPT_SAMPLES as i64 + 5) {
            history.push(
                t0 + chrono::Duration::seconds(i),
                totals(i as u64, 0),
                0,
                0,
                None,
                None,
            );
        }
        let samples = history.samples();
        assert_eq!(samples.len(), KEPT_SAMPLES);
        assert_eq!(samples[0].placed_total, 5);
    }
}

//! A short history of the order pipeline for the operator console's live chart: every
//! [`SAMPLE_EVERY`] the api role counts the orders placed and processed since its last sample,
//! the outbox counts and the queue figures this process knows, and keeps the last
//! [`KEPT_SAMPLES`] (ten minutes), so a page opened now shows the minutes before it.
//!
//! Rates come from the store, so they count every instance's orders, not only this process's.
//! Each sample counts a window of whole seconds ending a second before it is taken, so that
//! orders committed just after the moment their id was made are not missed; consecutive
//! windows meet exactly, so no order is counted twice.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::delivery::DeliveryHealth;
use crate::domain::OutboxStatus;
use crate::storage::{OrderCounts, Store, StoreResult};

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
    /// The end of the counted window (whole seconds); the next sample counts from here.
    #[serde(skip)]
    pub counted_to: DateTime<Utc>,
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
        let now = crate::http::now();
        let to = counted_to(now);
        // The first sample has no window behind it: it starts the count.
        let from = self.latest().map_or(to, |prev| prev.counted_to.min(to));
        let (counts, pending, dead) = futures::try_join!(
            store.order_counts(from, to),
            store.count_outbox(OutboxStatus::Pending),
            store.count_outbox(OutboxStatus::Dead),
        )?;
        let sample = self.push(
            now,
            (from, to),
            counts,
            pending,
            dead,
            delivery.backlog(),
            delivery.dead_lettered(),
        );
        Ok(sample)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        at: DateTime<Utc>,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        counts: OrderCounts,
        outbox_pending: u64,
        outbox_dead: u64,
        queue_backlog: Option<u64>,
        dead_lettered: Option<u64>,
    ) -> PipelineSample {
        let mut samples = self.lock();
        let secs = (to - from).num_seconds();
        let rate = |n: u64| {
            if secs > 0 {
                n as f64 / secs as f64
            } else {
                0.0
            }
        };
        let (accepted_per_sec, processed_per_sec) = (rate(counts.placed), rate(counts.processed));
        let sample = PipelineSample {
            at,
            accepted_per_sec,
            processed_per_sec,
            counted_to: to,
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

/// The end of the window a sample taken at `now` counts: the start of the second before.
fn counted_to(now: DateTime<Utc>) -> DateTime<Utc> {
    let second = now.timestamp() - 1;
    DateTime::from_timestamp(second, 0).unwrap_or(now)
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

    fn counts(placed: u64, processed: u64) -> OrderCounts {
        OrderCounts { placed, processed }
    }

    fn second(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_000_000 + n, 0).unwrap()
    }

    #[test]
    fn rates_are_the_orders_of_the_window_per_second() {
        let history = PipelineHistory::default();
        let first = history.push(
            second(0),
            (second(-1), second(-1)),
            counts(0, 0),
            6,
            1,
            Some(3),
            None,
        );
        assert_eq!(
            (first.accepted_per_sec, first.processed_per_sec),
            (0.0, 0.0)
        );
        let later = history.push(
            second(3),
            (second(-1), second(2)),
            counts(12, 6),
            2,
            1,
            Some(0),
            Some(1),
        );
        assert_eq!(
            (later.accepted_per_sec, later.processed_per_sec),
            (4.0, 2.0)
        );
        assert_eq!(later.counted_to, second(2));
        assert_eq!(history.samples(), vec![first, later.clone()]);
        assert_eq!(history.latest(), Some(later));
    }

    #[test]
    fn a_sample_counts_up_to_the_start_of_the_second_before_it() {
        let now = DateTime::from_timestamp(1_000_000, 700_000_000).unwrap();
        assert_eq!(counted_to(now), second(-1));
    }

    #[test]
    fn only_the_newest_samples_are_kept() {
        let history = PipelineHistory::default();
        for i in 0..(KEPT_SAMPLES as i64 + 5) {
            history.push(
                second(i),
                (second(i - 1), second(i)),
                counts(i as u64, 0),
                0,
                0,
                None,
                None,
            );
        }
        let samples = history.samples();
        assert_eq!(samples.len(), KEPT_SAMPLES);
        assert_eq!(samples[0].accepted_per_sec, 5.0);
    }
}

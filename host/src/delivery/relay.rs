//! The outbox relay: moves committed outbox events to the queue.
//!
//! Each pass claims due events with a lease (several relays, in one process or many, never
//! publish one event at the same time), sends them in batches as large as the queue takes (ten
//! on SQS; a whole pass on the embedded queue) — all batches of the pass at once —, and marks the sent ones published in one store call. The store never leases an event while an earlier event of its order is
//! unpublished, so one order's events reach the queue in the order they were written.
//! A failed publish counts an attempt and backs the event off exponentially, with jitter, up
//! to a cap; after `max_attempts` it is `dead` (counted in `/metrics` — the
//! `orderd_outbox_events{status}` gauges are read from the store at scrape time — listed and
//! retried through the admin outbox endpoints).
//!
//! When the outbox and the queue share one SQLite file (the embedded store with the embedded
//! queue), a pass is a single write transaction instead: due events are marked published and
//! enqueued together ([`EmbeddedQueue::publish_outbox`]), so there is no lease and no window in
//! which an event is on the queue but not yet marked.
//!
//! The loop is sqlxmq-style: [`Relay::try_run_once`] does one pass and reports whether it
//! found work; [`Relay::run`] owns the waiting: at once again after work, otherwise until an
//! order commits in this process (`wake`), the poll interval passes (events written by other
//! instances), or shutdown. A pass in progress always finishes; unfinished leases simply run
//! out and the events are claimed again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::backoff;
use super::queue::embedded::EmbeddedQueue;
use super::queue::{OutgoingMessage, Queue, SendReport};
use super::role_health::{RELAY, RoleHealth};
pub use super::worker::Outcome;
use crate::domain::OutboxEvent;
use crate::storage::OutboxStore;
use crate::storage::sqlite::SqliteDb;

/// Relay settings (`[relay]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Pause between polls when idle; the in-process wake-up makes local orders faster.
    pub poll_interval_ms: u64,
    /// How long a claim protects events from other relays; a relay that dies mid-publish
    /// delays its events by this much.
    pub lease_ms: u64,
    /// Events claimed per pass (published in batches as large as the queue takes).
    pub claim_limit: u32,
    /// Publish attempts before an event is `dead`.
    pub max_attempts: u32,
    /// Backoff after the first failure; doubles per attempt.
    pub backoff_base_ms: u64,
    /// Longest backoff between attempts.
    pub backoff_cap_ms: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 250,
            lease_ms: 30_000,
            claim_limit: 500,
            max_attempts: 10,
            backoff_base_ms: 500,
            backoff_cap_ms: 300_000,
        }
    }
}

/// Counts events published at `at` and records each one's commit → publish lag.
fn record_published<'a>(events: impl ExactSizeIterator<Item = &'a OutboxEvent>, at: DateTime<Utc>) {
    metrics::counter!("orderd_outbox_published_total").increment(events.len() as u64);
    for e in events {
        let lag = (at - e.occurred_at).to_std().unwrap_or_default();
        metrics::histogram!("orderd_relay_commit_to_publish_seconds").record(lag.as_secs_f64());
    }
}

/// One relay instance.
pub struct Relay {
    outbox: Arc<dyn OutboxStore>,
    queue: Arc<dyn Queue>,
    /// Lease owner name, unique per instance.
    owner: String,
    settings: RelaySettings,
    /// Notified after an order commits in this process.
    wake: Arc<Notify>,
    /// Marked after every pass, for `/api/ready`.
    health: Arc<RoleHealth>,
    /// The outbox's SQLite file, when the store is the embedded one: with the embedded queue in
    /// the same file a pass is one transaction ([`EmbeddedQueue::publish_outbox`]).
    outbox_db: Option<SqliteDb>,
}

impl Relay {
    pub fn new(
        outbox: Arc<dyn OutboxStore>,
        queue: Arc<dyn Queue>,
        settings: RelaySettings,
        wake: Arc<Notify>,
    ) -> Self {
        let owner = format!("relay-{}-{}", std::process::id(), crate::domain::Id::new());
        Self {
            outbox,
            queue,
            owner,
            settings,
            wake,
            health: Arc::new(RoleHealth::new(RELAY)),
            outbox_db: None,
        }
    }

    /// Tells the relay that the outbox lives in `db`: when the queue is the embedded one in
    /// the same file, each pass claims, enqueues and marks in one write transaction instead of
    /// three.
    pub fn with_outbox_db(mut self, db: Option<SqliteDb>) -> Self {
        self.outbox_db = db;
        self
    }

    /// Reports passes to `health` instead of a handle of its own.
    pub fn with_health(mut self, health: Arc<RoleHealth>) -> Self {
        self.health = health;
        self
    }

    /// This instance's lease owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// One pass: claim due events, publish them, record the outcome.
    pub async fn try_run_once(&self) -> anyhow::Result<Outcome> {
        let now = Utc::now();
        if let Some(queue) = self.same_file_queue() {
            let events = queue
                .publish_outbox(now, self.settings.claim_limit.max(1))
                .await
                .context("Failed to publish outbox events")?;
            if events.is_empty() {
                return Ok(Outcome::Idle);
            }
            record_published(events.iter(), Utc::now());
            return Ok(Outcome::Processed(events.len()));
        }
        let lease = Duration::from_millis(self.settings.lease_ms);
        let events = self
            .outbox
            .claim_outbox(&self.owner, now, lease, self.settings.claim_limit.max(1))
            .await
            .context("Failed to claim outbox events")?;
        if events.is_empty() {
            return Ok(Outcome::Idle);
        }
        // Every chunk goes to the queue at once; the sent ones are marked in one store call.
        let chunk_size = self.queue.max_batch().max(1);
        let sends = events.chunks(chunk_size).map(|chunk| self.send(chunk));
        let reports = futures::future::join_all(sends).await;
        let mut published: Vec<&OutboxEvent> = Vec::with_capacity(events.len());
        let mut failed: Vec<(&OutboxEvent, String)> = Vec::new();
        for (chunk, report) in events.chunks(chunk_size).zip(reports) {
            let sent: std::collections::HashSet<&str> =
                report.sent.iter().map(String::as_str).collect();
            for event in chunk {
                let hex = event.dedup_id();
                if sent.contains(hex.as_str()) {
                    published.push(event);
                } else {
                    let reason = report.failed.iter().find(|(id, _)| *id == hex).map_or_else(
                        || "not acknowledged by the queue".to_owned(),
                        |(_, r)| r.clone(),
                    );
                    failed.push((event, reason));
                }
            }
        }
        if !published.is_empty() {
            let at = Utc::now();
            let ids: Vec<_> = published.iter().map(|e| e.id).collect();
            self.outbox
                .mark_published(&ids, &self.owner, at)
                .await
                .context("Failed to mark outbox events published")?;
            record_published(published.iter().copied(), at);
        }
        for (event, reason) in failed {
            self.fail(event, &reason).await?;
        }
        Ok(Outcome::Processed(events.len()))
    }

    /// The embedded queue, when it keeps its messages in the outbox's own file.
    fn same_file_queue(&self) -> Option<&EmbeddedQueue> {
        let db = self.outbox_db.as_ref()?;
        self.queue.as_embedded().filter(|queue| queue.shares(db))
    }

    /// Sends one chunk (≤ [`Queue::max_batch`]); a failed call reports every entry failed.
    async fn send(&self, events: &[OutboxEvent]) -> SendReport {
        let mut messages = Vec::with_capacity(events.len());
        for e in events {
            match OutgoingMessage::for_event(e) {
                Ok(message) => messages.push(message),
                Err(err) => {
                    return SendReport {
                        sent: Vec::new(),
                        failed: vec![(e.dedup_id(), format!("Failed to encode: {err}"))],
                    };
                }
            }
        }
        match self.queue.send_batch(&messages).await {
            Ok(report) => report,
            Err(err) => {
                let reason = format!("{:#}", anyhow::Error::new(err));
                SendReport {
                    sent: Vec::new(),
                    failed: events
                        .iter()
                        .map(|e| (e.dedup_id(), reason.clone()))
                        .collect(),
                }
            }
        }
    }

    async fn fail(&self, event: &OutboxEvent, reason: &str) -> anyhow::Result<()> {
        let attempts = event.attempts + 1;
        let dead = attempts >= self.settings.max_attempts;
        let delay = backoff(
            attempts,
            Duration::from_millis(self.settings.backoff_base_ms),
            Duration::from_millis(self.settings.backoff_cap_ms),
        );
        let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        self.outbox
            .mark_failed(event.id, &self.owner, reason, next, dead)
            .await
            .context("Failed to record a failed publish")?;
        metrics::counter!("orderd_outbox_publish_failures_total").increment(1);
        if dead {
            metrics::counter!("orderd_outbox_dead_total").increment(1);
            tracing::error!(event_id = %event.id, order_id = %event.order_id, attempts, reason, "Outbox event is dead after the attempt limit");
        } else {
            tracing::warn!(event_id = %event.id, attempts, retry_in_ms = delay.as_millis() as u64, reason, "Failed to publish an outbox event; will retry");
        }
        Ok(())
    }

    /// Runs passes until `shutdown`; the pass in progress when it fires is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(1));
        let mut failures = 0u32;
        tracing::info!(owner = %self.owner, queue = self.queue.backend_name(), "Outbox relay started");
        while !shutdown.is_cancelled() {
            // Register before looking, so a commit during the pass still wakes the wait below.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pass = self.try_run_once().await;
            match &pass {
                Ok(_) => self.health.mark_good(),
                Err(err) => self.health.mark_failing(err),
            }
            let pause = match pass {
                Ok(Outcome::Processed(_)) => {
                    failures = 0;
                    continue;
                }
                Ok(Outcome::Idle) => {
                    failures = 0;
                    poll
                }
                Err(err) => {
                    failures += 1;
                    let pause = backoff(failures, poll, Duration::from_secs(30));
                    tracing::error!(
                        error = format!("{err:#}"),
                        retry_in_ms = pause.as_millis() as u64,
                        "Outbox relay pass failed"
                    );
                    pause
                }
            };
            tokio::select! {
                _ = &mut notified, if failures == 0 => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        tracing::info!(owner = %self.owner, "Outbox relay stopped");
    }
}

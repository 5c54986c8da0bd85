//! The consumer: takes events off the queue and does their work exactly once in effect.
//!
//! Messages are long-polled in batches and handled concurrently, bounded by a semaphore. While
//! a message is being handled its visibility timeout is extended, and it is deleted only after
//! its work is recorded (see [`handle`] for the per-event steps and the duplicate filters).
//! Messages that cannot be handled — malformed bodies, unknown event types, unknown orders —
//! are never acknowledged: they return after their visibility timeout and reach the
//! dead-letter queue after the receive limit, logged and counted. A transient failure (SMTP or
//! store down) leaves the message to come back; at the limit the order becomes `failed`.
//!
//! Loops follow the sqlxmq shape: [`Consumer::try_run_once`] handles one batch and reports
//! whether there was one; [`Consumer::run`] long-polls until shutdown, then stops fetching and
//! drains what it holds up to a deadline (anything still held returns to the queue when its
//! visibility timeout passes).

pub mod email;
mod handle;
pub mod health;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use email::{EmailKind, EmailRenderer, stored_order};
pub use handle::Verdict;

use crate::delivery::backoff::backoff;
use crate::delivery::queue::{MAX_BATCH, Queue, ReceivedMessage};
use crate::delivery::worker::Outcome;
use crate::mail::Mailer;
use crate::storage::Store;

/// Consumer settings (`[consumer]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Messages handled at once.
    pub concurrency: usize,
    /// Messages asked for per receive (≤ 10).
    pub batch_size: usize,
    /// Long-poll wait per receive (SQS allows up to 20 s).
    pub wait_ms: u64,
    /// Visibility timeout given on receive and renewed while a message is handled.
    pub visibility_ms: u64,
    /// How long a claim on an e-mail send protects it from a concurrent delivery of the same
    /// event; a consumer that dies mid-send delays the retry by this much.
    pub email_claim_ms: u64,
    /// On shutdown, how long held messages may take to finish.
    pub drain_ms: u64,
    /// Address of the consumer's own health endpoint (`/processor/api/health`), served when
    /// the consumer runs without the api role.
    pub health_addr: String,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            batch_size: MAX_BATCH,
            wait_ms: 10_000,
            visibility_ms: 30_000,
            email_claim_ms: 60_000,
            drain_ms: 10_000,
            health_addr: "127.0.0.1:8001".to_owned(),
        }
    }
}

impl ConsumerSettings {
    fn visibility(&self) -> Duration {
        Duration::from_millis(self.visibility_ms.max(1))
    }
}

/// One consumer instance. Share it in an `Arc`.
pub struct Consumer {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    mailer: Arc<Mailer>,
    renderer: Arc<dyn EmailRenderer>,
    settings: ConsumerSettings,
    /// Owner name for e-mail send claims, unique per instance.
    owner: String,
    /// Bounds messages in hand.
    permits: Arc<Semaphore>,
}

impl Consumer {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        mailer: Arc<Mailer>,
        renderer: Arc<dyn EmailRenderer>,
        settings: ConsumerSettings,
    ) -> Self {
        let owner = format!(
            "consumer-{}-{}",
            std::process::id(),
            crate::domain::Id::new()
        );
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Self {
            store,
            queue,
            mailer,
            renderer,
            settings,
            owner,
            permits,
        }
    }

    /// The queue this consumer reads.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// One pass without waiting: receive a batch, handle every message, settle each.
    pub async fn try_run_once(&self) -> anyhow::Result<Outcome> {
        let batch = self.settings.batch_size.clamp(1, MAX_BATCH);
        let messages = self
            .queue
            .receive(batch, Duration::ZERO, self.settings.visibility())
            .await
            .context("Failed to receive messages")?;
        if messages.is_empty() {
            return Ok(Outcome::Idle);
        }
        let n = messages.len();
        futures::future::join_all(messages.into_iter().map(|m| async move {
            let _permit = self.permits.acquire().await;
            self.handle(m).await
        }))
        .await;
        Ok(Outcome::Processed(n))
    }

    /// Handles one message start to finish, renewing its visibility while it runs.
    pub async fn handle(&self, message: ReceivedMessage) -> Verdict {
        let visibility = self.settings.visibility();
        let every = (visibility / 2).max(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let work = self.process(&message);
        tokio::pin!(work);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let verdict = loop {
            tokio::select! {
                verdict = &mut work => break verdict,
                _ = beat.tick() => {
                    if let Err(err) = self.queue.change_visibility(&message.receipt, visibility).await {
                        tracing::warn!(error = %err, message_id = %message.message_id, "Failed to extend a message's visibility");
                    }
                }
            }
        };
        metrics::histogram!("orderd_consumer_handle_seconds")
            .record(started.elapsed().as_secs_f64());
        self.settle(&message, &verdict).await;
        verdict
    }

    /// Runs until `shutdown`: long-poll, hand messages to tasks, then drain.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let batch = self.settings.batch_size.clamp(1, MAX_BATCH);
        let wait = Duration::from_millis(self.settings.wait_ms);
        let mut tasks = JoinSet::new();
        let mut failures = 0u32;
        tracing::info!(owner = %self.owner, queue = self.queue.backend_name(), "Consumer started");
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = self.permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
            let received = tokio::select! {
                r = self.queue.receive(batch.min(free), wait, self.settings.visibility()) => r,
                _ = shutdown.cancelled() => break,
            };
            match received {
                Ok(messages) => {
                    failures = 0;
                    for message in messages {
                        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                            break;
                        };
                        let this = Arc::clone(&self);
                        tasks.spawn(async move {
                            this.handle(message).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    failures += 1;
                    let pause = backoff(
                        failures,
                        Duration::from_millis(200),
                        Duration::from_secs(30),
                    );
                    tracing::error!(
                        error = format!("{:#}", anyhow::Error::new(err)),
                        retry_in_ms = pause.as_millis() as u64,
                        "Failed to receive messages"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        let held = tasks.len();
        let drained = tokio::time::timeout(Duration::from_millis(self.settings.drain_ms), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "Consumer drain deadline passed; unfinished messages return to the queue"
            );
            tasks.abort_all();
        }
        tracing::info!(owner = %self.owner, held, "Consumer stopped");
    }
}

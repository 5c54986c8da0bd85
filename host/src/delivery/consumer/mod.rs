//! The consumer: takes events off the queue and does their work exactly once in effect.
//!
//! Messages are long-polled in batches and each batch is handled as a unit (see [`batch`]: two
//! store calls and one queue delete per batch, e-mails sent concurrently), with up to
//! `concurrency` messages in hand across batches. While a batch is being handled its messages'
//! visibility is extended, and each message is deleted only after its work is recorded.
//!
//! A message that fails comes back after a delay that grows with its receive count
//! (`retry_base_ms` doubling up to `retry_cap_ms`). The attempt budget is a duration
//! (`attempt_budget_ms`, counted from the event's commit): once the next retry would fall past
//! it, an `order.created` order becomes `failed` (an admin can retry or cancel it) and the
//! message is deleted. Messages that can never be handled — malformed bodies, unknown event
//! types, unknown orders — are not acknowledged: they reach the dead-letter queue after the
//! queue's receive limit, logged and counted.
//!
//! Loops follow the sqlxmq shape: [`Consumer::try_run_once`] handles one batch and reports
//! whether there was one; [`Consumer::run`] long-polls until shutdown, then stops fetching and
//! drains what it holds up to `drain_ms` (anything still held returns to the queue when its
//! visibility timeout passes).
//!
//! A handler that panics ends its own task only: the panic is logged and counted (see
//! [`contain`]) and the message returns after its visibility timeout.

mod batch;
pub mod email;
pub mod health;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use batch::Verdict;
pub use email::{EmailKind, EmailRenderer, stored_order};

use crate::delivery::backoff::{backoff, ceiling};
use crate::delivery::queue::{Queue, ReceivedMessage};
use crate::delivery::role_health::{CONSUMER, RoleHealth};
use crate::delivery::supervisor::contain;
use crate::delivery::worker::Outcome;
use crate::domain::outbox::Envelope;
use crate::domain::{EventType, OrderStatus};
use crate::mail::Mailer;
use crate::storage::Store;

/// Messages asked for per receive by default: a batch is started and recorded in one store
/// write each, so larger batches cost less per message; half of `concurrency` keeps a second
/// batch being received while one is handled. SQS clamps it to ten.
const DEFAULT_BATCH: usize = 32;

/// Consumer settings (`[consumer]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Messages handled at once, across batches (the default keeps eight batches of 32 in
    /// hand: each batch spends most of its time waiting on the store's writer and the mail
    /// transport, so more of them in flight keep the cores busy; BENCHMARKS.md, Pipeline).
    pub concurrency: usize,
    /// Messages asked for per receive, at most what the queue takes per call (10 on SQS).
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
    /// Visibility after a message's first failed attempt; doubles per receive.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts of a message.
    pub retry_cap_ms: u64,
    /// How long after its commit an event may keep being retried; past it an order becomes
    /// `failed`. The default covers an SMTP outage of more than 30 minutes.
    pub attempt_budget_ms: u64,
    /// Address of the consumer's own health endpoint (`/processor/api/health`), served when
    /// the consumer runs without the api role.
    pub health_addr: String,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            concurrency: 256,
            batch_size: DEFAULT_BATCH,
            wait_ms: 10_000,
            visibility_ms: 30_000,
            email_claim_ms: 60_000,
            drain_ms: 10_000,
            retry_base_ms: 1_000,
            retry_cap_ms: 300_000,
            attempt_budget_ms: 3_600_000,
            health_addr: "127.0.0.1:8001".to_owned(),
        }
    }
}

impl ConsumerSettings {
    fn visibility(&self) -> Duration {
        Duration::from_millis(self.visibility_ms.max(1))
    }

    /// How long a message stays away after its `receive_count`-th attempt failed.
    pub fn retry_delay(&self, receive_count: u32) -> Duration {
        ceiling(
            receive_count.max(1),
            Duration::from_millis(self.retry_base_ms.max(1)),
            Duration::from_millis(self.retry_cap_ms.max(1)),
        )
    }

    /// The receives the retry schedule makes within the attempt budget, plus one: the least
    /// receive limit (dead-letter redrive) under which the budget, not the queue, decides when
    /// a failing event is given up.
    pub fn receives_for_budget(&self) -> u32 {
        let budget = Duration::from_millis(self.attempt_budget_ms);
        let mut elapsed = Duration::ZERO;
        let mut receives = 1u32;
        while elapsed < budget && receives < 10_000 {
            elapsed += self.retry_delay(receives);
            receives += 1;
        }
        receives
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
    /// Marked after every receive, for `/api/ready`; counts handler panics.
    health: Arc<RoleHealth>,
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
            health: Arc::new(RoleHealth::new(CONSUMER)),
        }
    }

    /// Reports receives and handler panics to `health` instead of a handle of its own.
    pub fn with_health(mut self, health: Arc<RoleHealth>) -> Self {
        self.health = health;
        self
    }

    /// The queue this consumer reads.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// One pass without waiting: receive a batch, handle it, settle each message.
    pub async fn try_run_once(&self) -> anyhow::Result<Outcome> {
        let batch = self.settings.batch_size.clamp(1, self.queue.max_batch());
        let messages = self
            .queue
            .receive(batch, Duration::ZERO, self.settings.visibility())
            .await
            .context("Failed to receive messages")?;
        if messages.is_empty() {
            return Ok(Outcome::Idle);
        }
        let n = messages.len();
        self.handle(messages).await;
        Ok(Outcome::Processed(n))
    }

    /// Handles one received batch start to finish, renewing its visibility while it runs,
    /// then settles every message; one verdict per message.
    pub async fn handle(&self, messages: Vec<ReceivedMessage>) -> Vec<Verdict> {
        let visibility = self.settings.visibility();
        let every = (visibility / 2).max(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let work = self.process_batch(&messages);
        tokio::pin!(work);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let verdicts = loop {
            tokio::select! {
                verdicts = &mut work => break verdicts,
                _ = beat.tick() => {
                    for message in &messages {
                        if let Err(err) = self.queue.change_visibility(&message.receipt, visibility).await {
                            tracing::warn!(error = %err, message_id = %message.message_id, "Failed to extend a message's visibility");
                        }
                    }
                }
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        for _ in &messages {
            metrics::histogram!("orderd_consumer_handle_seconds").record(elapsed);
        }
        self.settle(&messages, &verdicts).await;
        verdicts
    }

    /// Deletes the handled messages in one call; gives the failed ones their retry delay, or
    /// gives up on them past the attempt budget; leaves poison for the dead-letter queue.
    async fn settle(&self, messages: &[ReceivedMessage], verdicts: &[Verdict]) {
        let mut done: Vec<String> = Vec::new();
        for (message, verdict) in messages.iter().zip(verdicts) {
            let at_limit = self
                .queue
                .max_receives()
                .is_some_and(|limit| message.receive_count >= limit);
            match verdict {
                Verdict::Done => {
                    metrics::counter!("orderd_consumer_messages_total", "outcome" => "processed")
                        .increment(1);
                    done.push(message.receipt.clone());
                }
                Verdict::Poison(reason) => {
                    metrics::counter!("orderd_consumer_messages_total", "outcome" => "poison", "reason" => *reason).increment(1);
                    tracing::error!(reason, message_id = %message.message_id, receive_count = message.receive_count, at_limit, "Message cannot be handled; it goes to the dead-letter queue after the receive limit");
                    let delay = if at_limit {
                        // Return it now so the next receive moves it to the dead-letter queue.
                        Duration::ZERO
                    } else {
                        self.settings.retry_delay(message.receive_count)
                    };
                    let _ = self.queue.change_visibility(&message.receipt, delay).await;
                }
                Verdict::Retry(err) => {
                    metrics::counter!("orderd_consumer_messages_total", "outcome" => "retry")
                        .increment(1);
                    let delay = self.settings.retry_delay(message.receive_count);
                    if at_limit || self.past_budget(message, delay) {
                        tracing::error!(error = format!("{err:#}"), message_id = %message.message_id, receive_count = message.receive_count, "Message handling failed and its attempt budget is spent; giving up");
                        if self.give_up(message).await {
                            done.push(message.receipt.clone());
                        }
                        continue;
                    }
                    tracing::warn!(error = format!("{err:#}"), message_id = %message.message_id, receive_count = message.receive_count, retry_in_ms = delay.as_millis() as u64, "Message handling failed; it will be retried");
                    let _ = self.queue.change_visibility(&message.receipt, delay).await;
                }
            }
        }
        if !done.is_empty()
            && let Err(err) = self.queue.delete_batch(&done).await
        {
            // The work is recorded: a redelivery finds the events in the inbox.
            tracing::warn!(error = %err, messages = done.len(), "Failed to delete handled messages");
        }
    }

    /// Whether retrying `message` after `delay` would fall past the attempt budget, counted
    /// from when the message was sent to the queue (a re-published event starts anew), else
    /// from the event's commit.
    fn past_budget(&self, message: &ReceivedMessage, delay: Duration) -> bool {
        let Ok(envelope) = serde_json::from_str::<Envelope>(&message.body) else {
            return false;
        };
        let since = message.sent_at.unwrap_or(envelope.occurred_at);
        let age = (Utc::now() - since).to_std().unwrap_or_default();
        age + delay > Duration::from_millis(self.settings.attempt_budget_ms)
    }

    /// The attempt budget of an event is spent: an `order.created` order becomes `failed`
    /// (nothing is held: an admin can retry or cancel it). `true` when the message may go.
    async fn give_up(&self, message: &ReceivedMessage) -> bool {
        let Ok(envelope) = serde_json::from_str::<Envelope>(&message.body) else {
            return false;
        };
        if EventType::parse(&envelope.event_type) != Some(EventType::OrderCreated) {
            metrics::counter!("orderd_emails_abandoned_total").increment(1);
            tracing::error!(event_id = %envelope.event_id, order_id = %envelope.order_id, event_type = %envelope.event_type, "Gave up on an event's e-mail after its attempt budget");
            return true;
        }
        let id = envelope.order_id;
        match self
            .store
            .transition_order(
                id,
                &[OrderStatus::Pending, OrderStatus::Processing],
                OrderStatus::Failed,
                Utc::now(),
            )
            .await
        {
            Ok(_) => {
                metrics::counter!("orderd_orders_failed_total").increment(1);
                tracing::error!(order_id = %id, event_id = %envelope.event_id, "Order failed after its delivery attempt budget");
                true
            }
            // Already processed, cancelled or failed: nothing is held.
            Err(crate::storage::StoreError::Conflict(_) | crate::storage::StoreError::NotFound) => {
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, order_id = %id, "Failed to mark an order failed; the message will come back");
                false
            }
        }
    }

    /// Runs until `shutdown`: long-poll, hand messages to tasks, then drain.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let batch = self.settings.batch_size.clamp(1, self.queue.max_batch());
        let wait = Duration::from_millis(self.settings.wait_ms);
        let mut tasks = JoinSet::new();
        let mut failures = 0u32;
        // Whether messages were handled since the queue was last found empty.
        let mut busy = false;
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
                Ok(messages) if messages.is_empty() => {
                    self.health.mark_good();
                    failures = 0;
                    if busy && tasks.is_empty() {
                        // The queue ran dry after a burst: give its memory back.
                        busy = false;
                        crate::memory::release_free_memory().await;
                    }
                }
                Ok(messages) => {
                    self.health.mark_good();
                    failures = 0;
                    busy = true;
                    let n = u32::try_from(messages.len()).unwrap_or(u32::MAX);
                    let Ok(permit) = Arc::clone(&self.permits).acquire_many_owned(n).await else {
                        break;
                    };
                    let this = Arc::clone(&self);
                    tasks.spawn(async move {
                        let item = format!(
                            "batch of {n} from message {}",
                            messages.first().map_or("-", |m| m.message_id.as_str())
                        );
                        contain(&this.health, &item, this.handle(messages)).await;
                        drop(permit);
                    });
                }
                Err(err) => {
                    let err = anyhow::Error::new(err).context("Failed to receive messages");
                    self.health.mark_failing(&err);
                    failures += 1;
                    let pause = backoff(
                        failures,
                        Duration::from_millis(200),
                        Duration::from_secs(30),
                    );
                    tracing::error!(
                        error = format!("{err:#}"),
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

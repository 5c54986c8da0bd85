//! The message queue between the outbox relay and the consumer, with Amazon SQS's semantics:
//! batches of a bounded size (ten on SQS, [`Queue::max_batch`]), long-poll receive with a visibility timeout, delete and
//! change-visibility by receipt handle, an approximate receive count, and redrive to a
//! dead-letter queue after a configurable number of receives.
//!
//! Two backends implement [`Queue`]: [`embedded::EmbeddedQueue`] (the default; tables in the
//! store's SQLite file) and [`sqs::SqsQueue`] (a real SQS API, e.g. AWS, LocalStack or moto).

pub mod embedded;
pub mod sqs;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The most messages SQS accepts in one send or returns from one receive.
pub const MAX_BATCH: usize = 10;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Deduplication id (the outbox event id, suffixed when the event is re-published): FIFO
    /// queues drop a repeat within five minutes, and it identifies the entry in a batch result.
    pub dedup_id: String,
    /// Ordering group (the order id): FIFO queues deliver one group's messages in order.
    pub group_id: String,
    /// The JSON envelope.
    pub body: String,
}

impl OutgoingMessage {
    /// The message that publishes `event`: its envelope as JSON, grouped by its order.
    pub fn for_event(event: &crate::domain::OutboxEvent) -> serde_json::Result<Self> {
        Ok(Self {
            dedup_id: event.dedup_id(),
            group_id: event.order_id.to_hex(),
            body: serde_json::to_string(&event.envelope())?,
        })
    }
}

/// A received message, invisible to other receivers until its visibility timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's id for the message (stable across receives).
    pub message_id: String,
    /// Handle for `delete` and `change_visibility`; new on every receive.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included (≥ 1).
    pub receive_count: u32,
    /// When the message was sent to the queue, where the backend says (SQS `SentTimestamp`,
    /// the embedded queue's send time).
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a batch send did with each entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Dedup ids of the entries the queue accepted.
    pub sent: Vec<String>,
    /// Dedup ids of refused entries with the reason; the caller retries them later.
    pub failed: Vec<(String, String)>,
}

/// Approximate message counts, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be received.
    pub visible: u64,
    /// Received and not yet deleted or returned.
    pub in_flight: u64,
}

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// More entries in one call than the backend takes ([`Queue::max_batch`]); nothing was sent.
    #[error("a batch holds at most {max} messages, got {len}")]
    BatchTooLarge { len: usize, max: usize },
    /// The receipt handle is unknown or stale (the message was deleted or received again).
    #[error("receipt handle is not valid any more")]
    InvalidReceipt,
    /// The backend failed (I/O, network, refused request).
    #[error("queue backend failed")]
    Backend(#[source] anyhow::Error),
}

impl QueueError {
    pub fn backend(err: impl Into<anyhow::Error>) -> Self {
        QueueError::Backend(err.into())
    }
}

pub type QueueResult<T> = Result<T, QueueError>;

/// A queue with SQS semantics. Every call is safe to make from many tasks and processes.
#[async_trait]
pub trait Queue: Send + Sync {
    /// The most messages one send, receive or delete call takes: [`MAX_BATCH`] (SQS's limit)
    /// unless a backend allows more.
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
    /// The embedded queue behind this handle, if it is one (the relay publishes in one
    /// transaction when the outbox shares its file; see [`embedded::EmbeddedQueue::shares`]).
    fn as_embedded(&self) -> Option<&embedded::EmbeddedQueue> {
        None
    }
    /// Sends up to [`Queue::max_batch`] messages; per-entry failures are reported, not raised.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> QueueResult<SendReport>;
    /// Receives up to `max` (≤ [`Queue::max_batch`]) messages, waiting up to `wait` for the first
    /// one; each stays invisible for `visibility`. A message already received as often as the
    /// redrive limit moves to the dead-letter queue instead of being returned.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>>;
    /// Deletes a received message. A stale receipt (the message came back and was received
    /// again) deletes nothing and is not an error, as in SQS.
    async fn delete(&self, receipt: &str) -> QueueResult<()>;
    /// Deletes up to [`Queue::max_batch`] received messages in one call (SQS
    /// `DeleteMessageBatch`); stale receipts delete nothing and are not errors.
    async fn delete_batch(&self, receipts: &[String]) -> QueueResult<()> {
        check_batch(receipts.len(), self.max_batch())?;
        for receipt in receipts {
            match self.delete(receipt).await {
                Ok(()) | Err(QueueError::InvalidReceipt) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
    /// Makes a received message invisible for `visibility` from now (0 returns it at once).
    /// `InvalidReceipt` when the message is no longer held under this receipt.
    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> QueueResult<()>;
    /// Approximate counts.
    async fn depth(&self) -> QueueResult<QueueDepth>;
    /// The dead-letter queue that messages move to after [`Queue::max_receives`] receives.
    fn dead_letter_queue(&self) -> Option<Arc<dyn Queue>>;
    /// Receives after which a message moves to the dead-letter queue (`None`: never).
    fn max_receives(&self) -> Option<u32>;
    /// Backend name for logs and metrics ("embedded", "sqs").
    fn backend_name(&self) -> &'static str;
}

/// Which queue backend to use and how; part of the service settings (`[queue]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// "embedded" (default) or "sqs".
    pub backend: QueueBackend,
    /// Queue name; the dead-letter queue is this name + "-dlq" (before ".fifo").
    pub name: String,
    /// Receives after which a message moves to the dead-letter queue. Raised at startup to
    /// what the consumer's retry schedule makes within `consumer.attempt_budget_ms`, so this
    /// limit only decides for messages that can never be handled.
    pub max_receives: u32,
    /// SQS only: a FIFO queue (per-order ordering and deduplication by event id).
    pub fifo: bool,
    /// SQS only: endpoint override (LocalStack, moto); `None` means AWS.
    pub endpoint: Option<String>,
    /// SQS only: region; `None` means the AWS default chain.
    pub region: Option<String>,
    /// SQS only: a queue URL to use as is instead of looking the name up.
    pub url: Option<String>,
}

/// The queue backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    Embedded,
    Sqs,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            backend: QueueBackend::Embedded,
            name: "orderd-events".to_owned(),
            max_receives: 5,
            fifo: false,
            endpoint: None,
            region: None,
            url: None,
        }
    }
}

/// The dead-letter queue name for `name`: `orders` → `orders-dlq`,
/// `orders.fifo` → `orders-dlq.fifo` (SQS requires FIFO names to end in `.fifo`).
pub fn dead_letter_name(name: &str) -> String {
    match name.strip_suffix(".fifo") {
        Some(base) => format!("{base}-dlq.fifo"),
        None => format!("{name}-dlq"),
    }
}

/// Refuses a batch larger than `max`.
pub(crate) fn check_batch(len: usize, max: usize) -> QueueResult<()> {
    if len > max {
        return Err(QueueError::BatchTooLarge { len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_names_keep_the_fifo_suffix_last() {
        assert_eq!(dead_letter_name("orderd-events"), "orderd-events-dlq");
        assert_eq!(
            dead_letter_name("orderd-events.fifo"),
            "orderd-events-dlq.fifo"
        );
    }

    #[test]
    fn a_batch_of_ten_is_accepted_and_eleven_is_refused() {
        assert!(check_batch(MAX_BATCH, MAX_BATCH).is_ok());
        assert!(matches!(
            check_batch(MAX_BATCH + 1, MAX_BATCH),
            Err(QueueError::BatchTooLarge { len: 11, max: 10 })
        ));
    }
}

//! The operator console's storage port: what the console reads beyond the other ports — how
//! many orders were placed and processed in a time window (the host samples them for the
//! delivery chart) and an order's trail (its outbox events and the e-mail each one sent).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::{Id, OutboxEvent};

/// Orders of the pipeline in a time window, for the rates of the console's chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Orders committed in the window (by the creation time in their id; every status now).
    pub placed: u64,
    /// Orders that reached `processed` in the window (a later cancellation keeps them counted).
    pub processed: u64,
}

/// An e-mail the consumer sent for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSent {
    pub sent_at: DateTime<Utc>,
    /// The Message-ID header it went out with.
    pub message_id: String,
}

/// One outbox event of an order and the e-mail sent for it, if one was.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTrail {
    pub event: OutboxEvent,
    pub email: Option<EmailSent>,
}

/// Reads of the operator console.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Orders placed and processed in `[from, to)`. Both are read as index ranges (ids, which
    /// begin with their creation second, and `processed_at`), so the cost follows the number
    /// of orders in the window, not the size of the table. Whole seconds: ids keep no finer
    /// time.
    async fn order_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<OrderCounts>;
    /// The outbox events of `order_id` still kept (published events are pruned after their
    /// retention), in write order, each with its sent e-mail. Empty for an unknown order.
    async fn order_trail(&self, order_id: Id) -> StoreResult<Vec<EventTrail>>;
}

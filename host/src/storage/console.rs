//! The operator console's storage port: what the console reads beyond the other ports — the
//! running totals of placed and processed orders (the host samples them for the delivery
//! chart) and an order's trail (its outbox events and the e-mail each one sent).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::{Id, OutboxEvent};

/// Running totals of the order pipeline, for rates between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderTotals {
    /// Orders ever committed (every status).
    pub placed: u64,
    /// Orders that ever reached `processed` (a later cancellation keeps them counted).
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
    /// The pipeline totals now.
    async fn order_totals(&self) -> StoreResult<OrderTotals>;
    /// The outbox events of `order_id` still kept (published events are pruned after their
    /// retention), in write order, each with its sent e-mail. Empty for an unknown order.
    async fn order_trail(&self, order_id: Id) -> StoreResult<Vec<EventTrail>>;
}

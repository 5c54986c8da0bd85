//! The consumer's storage port: a received batch of events is started in one call and
//! completed in another, so handling ten messages costs two store round trips (two
//! transactions where the backend has them) instead of about six per message.
//!
//! Starting an event checks the inbox, loads the order and its customer, moves an
//! `order.created` order `pending → processing`, and claims the event's e-mail send. Completing
//! it records the send, moves the order `processing → processed` and records the event in the
//! inbox — or releases or keeps the claim when the send failed. Every step is conditional, so
//! a batch started or completed twice (a redelivery after a crash) does nothing twice.
//!
//! Each backend runs a call as one transaction (SQLite: one write; MongoDB: one
//! multi-document transaction with bulk operations).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::{EventType, Id, Order, OrderStatus, User};

/// One received event the consumer starts to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStart {
    pub event_id: Id,
    pub order_id: Id,
    pub kind: EventType,
}

/// What starting one event found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The event was handled to the end before (it is in the inbox): acknowledge it.
    AlreadyDone,
    /// No such order: the message can never be handled.
    UnknownOrder,
    /// The order's customer is gone: the message can never be handled.
    UnknownCustomer,
    /// The order needs no e-mail for this event any more (processed, cancelled or failed
    /// before its confirmation went out): complete it without sending.
    NothingToSend(Box<Order>),
    /// The e-mail was sent by an earlier delivery: complete it without sending.
    AlreadySent(Box<Order>),
    /// Another delivery holds an unexpired claim on the send: try again later.
    InProgress,
    /// The send is claimed for this delivery until the claim expires: send, then complete.
    Send {
        order: Box<Order>,
        customer: Box<User>,
    },
}

/// How a started event ended on the consumer's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The e-mail was handed to the mail server (or file) with this Message-ID.
    Sent { message_id: String },
    /// Nothing had to be sent ([`Started::NothingToSend`], [`Started::AlreadySent`]).
    NothingSent,
    /// Rendering or sending failed before the mail server could have accepted it: release the
    /// claim so a redelivery may send at once.
    Release,
    /// The send's outcome is unknown (the server may have accepted it): keep the claim until
    /// it expires, so no other delivery sends it meanwhile.
    KeepClaim,
}

/// One event to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFinish {
    pub event_id: Id,
    pub order_id: Id,
    pub kind: EventType,
    pub outcome: Finish,
}

impl DeliveryFinish {
    /// Whether completing this event finishes its work (the message may be deleted).
    pub fn completes(&self) -> bool {
        matches!(self.outcome, Finish::Sent { .. } | Finish::NothingSent)
    }
}

/// Batched consumer writes. Results come back in the order of the items.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Starts every item (see the module docs) with e-mail claims owned by `owner` until
    /// `claim_until`.
    async fn start_deliveries(
        &self,
        items: &[DeliveryStart],
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Started>>;

    /// Completes every item; for each, the order as it became `processed` by this call, if it
    /// did (for the commit → processed figures).
    async fn finish_deliveries(
        &self,
        items: &[DeliveryFinish],
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Order>>>;
}

/// Whether an `order.created` event has nothing to send for an order in `status` (only a
/// `processing` order gets its confirmation).
pub fn needs_no_confirmation(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Processed | OrderStatus::Cancelled | OrderStatus::Failed
    )
}

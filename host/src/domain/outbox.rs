//! Outbox events: what the order service commits together with an order, and the versioned
//! JSON envelope the relay publishes to the queue.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Id, Order};

/// Kinds of event the order service emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
}

impl EventType {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderCancelled => "order.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "order.created" => Some(EventType::OrderCreated),
            "order.cancelled" => Some(EventType::OrderCancelled),
            _ => None,
        }
    }
}

/// Delivery state of an outbox event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting to be published (possibly after a backoff).
    Pending,
    /// Accepted by the queue.
    Published,
    /// Gave up after the attempt limit; an admin may retry it.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Published => "published",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "published" => Some(OutboxStatus::Published),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// An event as stored in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Event id; the inbox and e-mail send-record key, and the base of the queue
    /// deduplication id (see [`OutboxEvent::dedup_id`]).
    pub id: Id,
    pub order_id: Id,
    pub event_type: EventType,
    /// Event-specific data (small; the consumer reads the order from the store).
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    pub status: OutboxStatus,
    /// Publish attempts so far.
    pub attempts: u32,
    /// Not to be published before this time (backoff).
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    /// How many times the event was put back for another delivery after it was published (an
    /// admin's retry of a failed order re-publishes its original `order.created`).
    pub republished: u32,
}

impl OutboxEvent {
    /// A new pending event for `order_id`.
    pub fn new(
        order_id: Id,
        event_type: EventType,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Id::new(),
            order_id,
            event_type,
            payload,
            occurred_at: at,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            published_at: None,
            republished: 0,
        }
    }

    /// The `order.created` event of a newly placed `order`, committed with it at `at`.
    pub fn order_created(order: &Order, at: DateTime<Utc>) -> Self {
        Self::new(
            order.id,
            EventType::OrderCreated,
            serde_json::json!({
                "userId": order.user_id,
                "total": order.total,
                "currency": order.currency,
            }),
            at,
        )
    }

    /// The queue deduplication id: the event id, with `-r<n>` after its `n`th re-publication.
    /// A FIFO queue drops a repeated deduplication id for five minutes, so a re-published
    /// event needs a new one; the consumer still recognises it by the event id in its body.
    pub fn dedup_id(&self) -> String {
        match self.republished {
            0 => self.id.to_hex(),
            n => format!("{}-r{n}", self.id.to_hex()),
        }
    }

    /// The message body put on the queue.
    pub fn envelope(&self) -> Envelope {
        Envelope {
            version: Envelope::VERSION,
            event_id: self.id,
            event_type: self.event_type.as_str().to_owned(),
            occurred_at: self.occurred_at,
            order_id: self.order_id,
            payload: self.payload.clone(),
        }
    }
}

/// The versioned JSON message body: `{version, eventId, type, occurredAt, orderId, payload}`.
/// `type` is a plain string so a consumer can dead-letter types it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub version: u32,
    pub event_id: Id,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub order_id: Id,
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl Envelope {
    pub const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_round_trips_as_camel_case_json() {
        let ev = OutboxEvent::new(
            Id::new(),
            EventType::OrderCreated,
            serde_json::json!({"total": 118}),
            Utc::now(),
        );
        let json = serde_json::to_value(ev.envelope()).unwrap();
        assert_eq!(json["type"], "order.created");
        assert_eq!(json["eventId"], ev.id.to_hex());
        assert_eq!(json["orderId"], ev.order_id.to_hex());
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev.envelope());
    }

    #[test]
    fn a_republished_event_gets_a_new_dedup_id_and_keeps_its_event_id() {
        let mut ev = OutboxEvent::new(
            Id::new(),
            EventType::OrderCreated,
            serde_json::json!({}),
            Utc::now(),
        );
        let first = ev.envelope();
        assert_eq!(ev.dedup_id(), ev.id.to_hex());

        ev.republished = 1;
        assert_eq!(ev.dedup_id(), format!("{}-r1", ev.id.to_hex()));
        ev.republished = 2;
        assert_eq!(ev.dedup_id(), format!("{}-r2", ev.id.to_hex()));
        assert_eq!(
            ev.envelope(),
            first,
            "the message body names the same event"
        );
    }
}

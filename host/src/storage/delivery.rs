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
//! The default methods compose the single-event ports (each step its own round trip); backends
//! override them with one transaction per batch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{EmailClaim, InboxStore, OrderStore, StoreError, StoreResult, UserStore};
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
pub trait DeliveryStore: OrderStore + InboxStore + UserStore {
    /// Starts every item (see the module docs) with e-mail claims owned by `owner` until
    /// `claim_until`.
    async fn start_deliveries(
        &self,
        items: &[DeliveryStart],
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Started>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(start_one(self, item, owner, now, claim_until).await?);
        }
        Ok(out)
    }

    /// Completes every item; for each, the order as it became `processed` by this call, if it
    /// did (for the commit → processed figures).
    async fn finish_deliveries(
        &self,
        items: &[DeliveryFinish],
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Order>>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(finish_one(self, item, owner, now).await?);
        }
        Ok(out)
    }
}

async fn start_one<S: DeliveryStore + ?Sized>(
    store: &S,
    item: &DeliveryStart,
    owner: &str,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
) -> StoreResult<Started> {
    if store.inbox_contains(item.event_id).await? {
        return Ok(Started::AlreadyDone);
    }
    let Some(mut order) = store.order(item.order_id).await? else {
        return Ok(Started::UnknownOrder);
    };
    if item.kind == EventType::OrderCreated {
        if order.status == OrderStatus::Pending {
            match store
                .transition_order(
                    order.id,
                    &[OrderStatus::Pending],
                    OrderStatus::Processing,
                    now,
                )
                .await
            {
                Ok(updated) => order = updated,
                Err(StoreError::Conflict(_)) => match store.order(order.id).await? {
                    Some(current) => order = current,
                    None => return Ok(Started::UnknownOrder),
                },
                Err(StoreError::NotFound) => return Ok(Started::UnknownOrder),
                Err(err) => return Err(err),
            }
        }
        if needs_no_confirmation(order.status) {
            return Ok(Started::NothingToSend(Box::new(order)));
        }
        if order.status != OrderStatus::Processing {
            // Not ours to move on (cannot normally happen): let a later delivery look again.
            return Ok(Started::InProgress);
        }
    }
    let Some(customer) = store.user_by_id(order.user_id).await? else {
        return Ok(Started::UnknownCustomer);
    };
    Ok(
        match store
            .claim_email(item.event_id, owner, now, claim_until)
            .await?
        {
            EmailClaim::AlreadySent => Started::AlreadySent(Box::new(order)),
            EmailClaim::InProgress => Started::InProgress,
            EmailClaim::Claimed => Started::Send {
                order: Box::new(order),
                customer: Box::new(customer),
            },
        },
    )
}

async fn finish_one<S: DeliveryStore + ?Sized>(
    store: &S,
    item: &DeliveryFinish,
    owner: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Order>> {
    match &item.outcome {
        Finish::Release => {
            store.release_email(item.event_id, owner).await?;
            return Ok(None);
        }
        Finish::KeepClaim => return Ok(None),
        Finish::Sent { message_id } => {
            store.finish_email(item.event_id, message_id, now).await?;
        }
        Finish::NothingSent => {}
    }
    let mut processed = None;
    if item.kind == EventType::OrderCreated {
        match store
            .transition_order(
                item.order_id,
                &[OrderStatus::Processing],
                OrderStatus::Processed,
                now,
            )
            .await
        {
            Ok(order) => processed = Some(order),
            // Processed, cancelled or failed meanwhile, or gone: nothing left to move.
            Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
            Err(err) => return Err(err),
        }
    }
    store.inbox_record(item.event_id, now).await?;
    Ok(processed)
}

/// Whether an `order.created` event has nothing to send for an order in `status` (only a
/// `processing` order gets its confirmation).
pub fn needs_no_confirmation(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Processed | OrderStatus::Cancelled | OrderStatus::Failed
    )
}

//! The batched consumer writes on SQLite: a batch of events is started in one write
//! transaction and completed in another, running the same statements as the single-event
//! ports (`orders.rs`, `inbox.rs`, `users.rs`) one after the other. Within the writer's group
//! commit this is one savepoint per batch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Transaction;

use super::SqliteStore;
use super::inbox::{claim, finish, inbox_has, inbox_insert, release};
use super::orders::{advance, load_order, transition};
use super::users::user_by_id;
use crate::domain::{EventType, Order, OrderStatus};
use crate::storage::delivery::needs_no_confirmation;
use crate::storage::{
    DeliveryFinish, DeliveryStart, DeliveryStore, EmailClaim, Finish, Started, StoreError,
    StoreResult,
};

fn start(
    tx: &Transaction<'_>,
    item: &DeliveryStart,
    owner: &str,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
) -> StoreResult<Started> {
    if inbox_has(tx, item.event_id)? {
        return Ok(Started::AlreadyDone);
    }
    let Some(mut order) = load_order(tx, item.order_id)? else {
        return Ok(Started::UnknownOrder);
    };
    if item.kind == EventType::OrderCreated {
        if order.status == OrderStatus::Pending {
            // Loaded above in this transaction: no second read.
            order = advance(tx, order, OrderStatus::Processing, now)?;
        }
        if needs_no_confirmation(order.status) {
            return Ok(Started::NothingToSend(Box::new(order)));
        }
    }
    let Some(customer) = user_by_id(tx, order.user_id)? else {
        return Ok(Started::UnknownCustomer);
    };
    Ok(match claim(tx, item.event_id, owner, now, claim_until)? {
        EmailClaim::AlreadySent => Started::AlreadySent(Box::new(order)),
        EmailClaim::InProgress => Started::InProgress,
        EmailClaim::Claimed => Started::Send {
            order: Box::new(order),
            customer: Box::new(customer),
        },
    })
}

fn complete(
    tx: &Transaction<'_>,
    item: &DeliveryFinish,
    owner: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Order>> {
    match &item.outcome {
        Finish::Release => {
            release(tx, item.event_id, owner)?;
            return Ok(None);
        }
        Finish::KeepClaim => return Ok(None),
        Finish::Sent { message_id } => finish(tx, item.event_id, message_id, now)?,
        Finish::NothingSent => {}
    }
    let mut processed = None;
    if item.kind == EventType::OrderCreated {
        match transition(
            tx,
            item.order_id,
            &[OrderStatus::Processing],
            OrderStatus::Processed,
            now,
        ) {
            Ok(order) => processed = Some(order),
            // Processed, cancelled or failed meanwhile, or gone: nothing left to move.
            Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
            Err(err) => return Err(err),
        }
    }
    inbox_insert(tx, item.event_id, now)?;
    Ok(processed)
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn start_deliveries(
        &self,
        items: &[DeliveryStart],
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Started>> {
        let (items, owner) = (items.to_vec(), owner.to_owned());
        self.db
            .write(move |tx| {
                items
                    .iter()
                    .map(|item| start(tx, item, &owner, now, claim_until))
                    .collect()
            })
            .await
    }

    async fn finish_deliveries(
        &self,
        items: &[DeliveryFinish],
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Order>>> {
        let (items, owner) = (items.to_vec(), owner.to_owned());
        self.db
            .write(move |tx| {
                items
                    .iter()
                    .map(|item| complete(tx, item, &owner, now))
                    .collect()
            })
            .await
    }
}

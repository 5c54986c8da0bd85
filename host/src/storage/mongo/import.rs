//! Imported orders on MongoDB: the order and its event in one transaction, skipped when the
//! order's id exists.

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use mongodb::{BoxFuture, ClientSession};

use super::order_docs::order_doc;
use super::outbox::event_doc;
use super::{Collections, MongoStore};
use crate::domain::{Order, OutboxEvent};
use crate::storage::{ImportStore, StoreResult};

/// What the import transaction writes.
struct Import<'a> {
    c: &'a Collections,
    order: Document,
    event: Option<Document>,
}

async fn import_in(s: &mut ClientSession, x: &mut Import<'_>) -> mongodb::error::Result<bool> {
    let id = x.order.get("_id").cloned();
    let existing =
        x.c.orders
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .session(&mut *s)
            .await?;
    if existing.is_some() {
        return Ok(false);
    }
    x.c.orders
        .insert_one(x.order.clone())
        .session(&mut *s)
        .await?;
    if let Some(event) = &x.event {
        x.c.outbox
            .insert_one(event.clone())
            .session(&mut *s)
            .await?;
    }
    Ok(true)
}

#[async_trait]
impl ImportStore for MongoStore {
    async fn import_order(&self, order: &Order, event: Option<&OutboxEvent>) -> StoreResult<bool> {
        let import = Import {
            c: &self.c,
            order: order_doc(order),
            // The first (and only) event of the order, as when an order is placed.
            event: event.map(|e| event_doc(e, 1)).transpose()?,
        };
        self.transaction(
            "Failed to import an order",
            import,
            |s, x| -> BoxFuture<'_, mongodb::error::Result<bool>> { Box::pin(import_in(s, x)) },
        )
        .await
    }
}

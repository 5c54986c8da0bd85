//! Imported orders on SQLite: one write transaction per order, skipped when its id exists.

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::SqliteStore;
use super::error::SqlContext;
use super::orders::insert_order;
use super::outbox::insert_event;
use crate::domain::{Order, OutboxEvent};
use crate::storage::{ImportStore, StoreResult};

#[async_trait]
impl ImportStore for SqliteStore {
    async fn import_order(&self, order: &Order, event: Option<&OutboxEvent>) -> StoreResult<bool> {
        let (order, event) = (order.clone(), event.cloned());
        self.db
            .write(move |tx| {
                let exists = tx
                    .query_row(
                        "SELECT 1 FROM orders WHERE id = ?1",
                        [order.id.to_hex()],
                        |_| Ok(()),
                    )
                    .optional()
                    .ctx("Failed to look up an imported order")?
                    .is_some();
                if exists {
                    return Ok(false);
                }
                insert_order(tx, &order)?;
                if let Some(event) = &event {
                    insert_event(tx, event)?;
                }
                Ok(true)
            })
            .await
    }
}

//! The operator console's reads on SQLite: pipeline totals and an order's trail.

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::SqliteStore;
use super::error::{SqlContext, time_from_micros};
use super::outbox::events_of_order;
use crate::domain::Id;
use crate::storage::{ConsoleStore, EmailSent, EventTrail, OrderTotals, StoreError, StoreResult};

#[async_trait]
impl ConsoleStore for SqliteStore {
    /// One scan of `orders` (no index covers `processed_at`); the host samples it every few
    /// seconds, not per request.
    async fn order_totals(&self) -> StoreResult<OrderTotals> {
        self.db
            .read(|conn| {
                let (placed, processed): (i64, i64) = conn
                    .prepare_cached("SELECT COUNT(*), COUNT(processed_at) FROM orders")
                    .ctx("Failed to prepare the order totals")?
                    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .ctx("Failed to count orders")?;
                Ok(OrderTotals {
                    placed: u64::try_from(placed).unwrap_or(0),
                    processed: u64::try_from(processed).unwrap_or(0),
                })
            })
            .await
    }

    async fn order_trail(&self, order_id: Id) -> StoreResult<Vec<EventTrail>> {
        self.db
            .read(move |conn| {
                let events = events_of_order(conn, order_id)?;
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT sent_at, message_id FROM email_sends
                         WHERE event_id = ?1 AND sent_at IS NOT NULL AND message_id IS NOT NULL",
                    )
                    .ctx("Failed to prepare the e-mail send lookup")?;
                let mut out = Vec::with_capacity(events.len());
                for event in events {
                    let email = stmt
                        .query_row([event.id.to_hex()], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                        })
                        .optional()
                        .ctx("Failed to read an e-mail send record")?
                        .map(|(sent_at, message_id)| {
                            Ok::<_, StoreError>(EmailSent {
                                sent_at: time_from_micros(sent_at)?,
                                message_id,
                            })
                        })
                        .transpose()?;
                    out.push(EventTrail { event, email });
                }
                Ok(out)
            })
            .await
    }
}

//! The operator console's reads on SQLite: orders placed and processed in a window, and an
//! order's trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::error::{SqlContext, micros, time_from_micros};
use super::outbox::events_of_order;
use crate::domain::Id;
use crate::storage::{ConsoleStore, EmailSent, EventTrail, OrderCounts, StoreError, StoreResult};

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn order_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<OrderCounts> {
        let ids = (Id::first_at(from).to_hex(), Id::first_at(to).to_hex());
        self.db
            .read(move |conn| {
                let (placed, processed): (i64, i64) = conn
                    .prepare_cached(
                        "SELECT (SELECT COUNT(*) FROM orders WHERE id >= ?1 AND id < ?2),
                                (SELECT COUNT(*) FROM orders
                                 WHERE processed_at >= ?3 AND processed_at < ?4)",
                    )
                    .ctx("Failed to prepare the order counts")?
                    .query_row(params![ids.0, ids.1, micros(from), micros(to)], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .ctx("Failed to count orders")?;
                Ok(OrderCounts {
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

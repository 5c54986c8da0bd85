//! The operator console's reads on MongoDB: orders placed and processed in a window, and an
//! order's trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;

use super::MongoStore;
use super::codec::{date, get_id, get_opt_str, get_opt_time, oid, oids};
use super::error::MongoContext;
use super::outbox::event_from_doc;
use crate::domain::Id;
use crate::storage::{ConsoleStore, EmailSent, EventTrail, OrderCounts, StoreResult};

/// Most events one order's trail reads (an order has a created event, perhaps a cancelled
/// one; retries re-use the created event).
const MAX_TRAIL_EVENTS: i64 = 100;

#[async_trait]
impl ConsoleStore for MongoStore {
    async fn order_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<OrderCounts> {
        let ids = doc! { "$gte": oid(Id::first_at(from)), "$lt": oid(Id::first_at(to)) };
        let placed = self
            .c
            .orders
            .count_documents(doc! { "_id": ids })
            .await
            .ctx("Failed to count the orders placed in a window")?;
        let processed = self
            .c
            .orders
            .count_documents(doc! { "processedAt": { "$gte": date(from), "$lt": date(to) } })
            .await
            .ctx("Failed to count the orders processed in a window")?;
        Ok(OrderCounts { placed, processed })
    }

    async fn order_trail(&self, order_id: Id) -> StoreResult<Vec<EventTrail>> {
        let docs = self
            // `$in` rather than equality: the same match, and one the MongoDB wire emulator
            // used in tests also answers (it matches no ObjectId field but `_id` on equality).
            .find_events(
                doc! { "orderId": { "$in": [oid(order_id)] } },
                MAX_TRAIL_EVENTS,
                0,
            )
            .await?;
        let events = docs
            .iter()
            .map(event_from_doc)
            .collect::<StoreResult<Vec<_>>>()?;
        let ids: Vec<Id> = events.iter().map(|e| e.id).collect();
        let mut sent = std::collections::HashMap::new();
        if !ids.is_empty() {
            let mut cursor = self
                .c
                .email_sends
                .find(doc! { "_id": { "$in": oids(&ids) } })
                .await
                .ctx("Failed to query e-mail send records")?;
            while let Some(d) = cursor
                .try_next()
                .await
                .ctx("Failed to read an e-mail send record")?
            {
                if let (Some(at), Some(message_id)) =
                    (get_opt_time(&d, "sentAt")?, get_opt_str(&d, "messageId")?)
                {
                    sent.insert(
                        get_id(&d, "_id")?,
                        EmailSent {
                            sent_at: at,
                            message_id,
                        },
                    );
                }
            }
        }
        Ok(events
            .into_iter()
            .map(|event| EventTrail {
                email: sent.remove(&event.id),
                event,
            })
            .collect())
    }
}

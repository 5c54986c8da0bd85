//! The transactional outbox on MongoDB: events written with their orders, leased by relays,
//! marked published, failed or dead.
//!
//! Write order: every event carries `orderSeq`, its position among its order's events, taken
//! from the order document's `eventSeq` counter inside the same transaction that writes the
//! event, so it is exact even when several instances write events of one order. Across orders,
//! "oldest first" is `occurredAt`, then `_id`.
//!
//! Per-order ordering: an event is claimable only while no event of the same order with a
//! lower `orderSeq` is still `pending` (leased, backing off or due). A `dead` event does not
//! block the events after it, as in the embedded store.
//!
//! Leases: a claim is a conditional update of one event (`pending`, due, lease free or
//! expired) that sets `leaseOwner`/`leaseUntil`; MongoDB applies it atomically, so two relays
//! never lease one event at the same time. Lease times are on the server's clock (`clock.rs`),
//! so a relay whose clock runs ahead does not take a lease another still holds.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};

use super::MongoStore;
use super::codec::{
    bson_to_json, date, get_enum, get_i64, get_id, get_opt_str, get_opt_time, get_time, get_u32,
    json_to_bson, oid, oids, opt_date,
};
use super::error::MongoContext;
use crate::domain::{EventType, Id, OutboxEvent, OutboxStatus};
use crate::storage::windows::MAX_ERROR_CHARS;
use crate::storage::{Conflict, OutboxStore, StoreError, StoreResult};

/// Candidates read per page while looking for claimable events, as a multiple of the limit.
const PAGE_FACTOR: i64 = 4;

/// Most candidate pages one claim looks at before returning what it has (blocked events at the
/// head of the queue must not make a claim scan the whole backlog).
const MAX_PAGES: u64 = 8;

/// The event as stored; `order_seq` is its position among its order's events (1 for
/// `order.created`).
pub(super) fn event_doc(e: &OutboxEvent, order_seq: i64) -> StoreResult<Document> {
    Ok(doc! {
        "_id": oid(e.id),
        "orderId": oid(e.order_id),
        "orderSeq": order_seq,
        "type": e.event_type.as_str(),
        "payload": json_to_bson(&e.payload)?,
        "occurredAt": date(e.occurred_at),
        "status": e.status.as_str(),
        "attempts": i64::from(e.attempts),
        "nextAttemptAt": date(e.next_attempt_at),
        "leaseOwner": Bson::Null,
        "leaseUntil": Bson::Null,
        "lastError": e.last_error.as_deref().map(Bson::from).unwrap_or(Bson::Null),
        "publishedAt": opt_date(e.published_at),
        "republished": i64::from(e.republished),
    })
}

pub(super) fn event_from_doc(d: &Document) -> StoreResult<OutboxEvent> {
    Ok(OutboxEvent {
        id: get_id(d, "_id")?,
        order_id: get_id(d, "orderId")?,
        event_type: get_enum(d, "type", EventType::parse)?,
        payload: bson_to_json("payload", d.get("payload"))?,
        occurred_at: get_time(d, "occurredAt")?,
        status: get_enum(d, "status", OutboxStatus::parse)?,
        attempts: get_u32(d, "attempts")?,
        next_attempt_at: get_time(d, "nextAttemptAt")?,
        last_error: get_opt_str(d, "lastError")?,
        published_at: get_opt_time(d, "publishedAt")?,
        // Events written before failed orders could be retried have no count: never.
        republished: match d.get("republished") {
            None | Some(Bson::Null) => 0,
            Some(_) => get_u32(d, "republished")?,
        },
    })
}

/// Pending, due, and not leased by anyone (or the lease ran out) at `now`.
fn claimable(now: DateTime<Utc>) -> Document {
    doc! {
        "status": OutboxStatus::Pending.as_str(),
        "nextAttemptAt": { "$lte": date(now) },
        "$or": [ { "leaseUntil": Bson::Null }, { "leaseUntil": { "$lte": date(now) } } ],
    }
}

impl MongoStore {
    /// Per order among `orders`, the lowest `orderSeq` still pending.
    async fn first_pending_seq(&self, orders: Vec<ObjectId>) -> StoreResult<HashMap<Id, i64>> {
        let mut first = HashMap::new();
        if orders.is_empty() {
            return Ok(first);
        }
        let mut cursor = self
            .c
            .outbox
            .find(doc! { "orderId": { "$in": orders }, "status": OutboxStatus::Pending.as_str() })
            .projection(doc! { "orderId": 1, "orderSeq": 1 })
            .await
            .ctx("Failed to query the pending events of orders")?;
        while let Some(d) = cursor
            .try_next()
            .await
            .ctx("Failed to read a pending event")?
        {
            let (order, seq) = (get_id(&d, "orderId")?, get_i64(&d, "orderSeq")?);
            first
                .entry(order)
                .and_modify(|s: &mut i64| *s = (*s).min(seq))
                .or_insert(seq);
        }
        Ok(first)
    }

    pub(super) async fn find_events(
        &self,
        filter: Document,
        limit: i64,
        skip: u64,
    ) -> StoreResult<Vec<Document>> {
        self.c
            .outbox
            .find(filter)
            .sort(doc! { "occurredAt": 1, "_id": 1 })
            .skip(skip)
            .limit(limit)
            .await
            .ctx("Failed to query the outbox")?
            .try_collect()
            .await
            .ctx("Failed to read outbox events")
    }
}

#[async_trait]
impl OutboxStore for MongoStore {
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        // Leases are compared and set on the server's clock (see `clock.rs`).
        let now = now + self.clock_skew().await?;
        let until = chrono::Duration::from_std(lease)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| {
                StoreError::backend(anyhow::anyhow!("Outbox lease of {lease:?} is out of range"))
            })?;
        let mut claimed = Vec::new();
        if limit == 0 {
            return Ok(claimed);
        }
        let page = i64::from(limit) * PAGE_FACTOR;
        // Candidates looked at and not leased (held back, or taken by another relay meanwhile);
        // the next page skips them. Leased ones drop out of `claimable` by themselves.
        let mut passed: Vec<ObjectId> = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut filter = claimable(now);
            if !passed.is_empty() {
                filter.insert("_id", doc! { "$nin": passed.clone() });
            }
            let candidates = self.find_events(filter, page, 0).await?;
            // Events other than the first of their order may be held back by an earlier one.
            let later: Vec<ObjectId> = candidates
                .iter()
                .filter(|d| get_i64(d, "orderSeq").map(|s| s > 1).unwrap_or(true))
                .filter_map(|d| d.get_object_id("orderId").ok())
                .collect();
            let first = self.first_pending_seq(later).await?;
            for candidate in &candidates {
                let (id, order, seq) = (
                    get_id(candidate, "_id")?,
                    get_id(candidate, "orderId")?,
                    get_i64(candidate, "orderSeq")?,
                );
                if first.get(&order).is_some_and(|&f| f < seq) {
                    passed.push(oid(id));
                    continue;
                }
                let mut filter = claimable(now);
                filter.insert("_id", oid(id));
                let leased = self
                    .c
                    .outbox
                    .find_one_and_update(
                        filter,
                        doc! { "$set": { "leaseOwner": owner, "leaseUntil": date(until) } },
                    )
                    .await
                    .ctx("Failed to lease an outbox event")?;
                match leased {
                    Some(before) => {
                        claimed.push(event_from_doc(&before)?);
                        if claimed.len() == limit as usize {
                            return Ok(claimed);
                        }
                    }
                    // Another relay leased it since it was read.
                    None => passed.push(oid(id)),
                }
            }
            if (candidates.len() as i64) < page {
                break;
            }
        }
        Ok(claimed)
    }

    async fn mark_published(&self, ids: &[Id], owner: &str, at: DateTime<Utc>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.c
            .outbox
            .update_many(
                doc! { "_id": { "$in": oids(ids) }, "leaseOwner": owner, "status": OutboxStatus::Pending.as_str() },
                doc! { "$set": {
                    "status": OutboxStatus::Published.as_str(),
                    "publishedAt": date(at),
                    "leaseOwner": Bson::Null,
                    "leaseUntil": Bson::Null,
                } },
            )
            .await
            .ctx("Failed to mark events published")?;
        Ok(())
    }

    /// An event no longer leased by `owner` (its lease expired and another relay took it) is
    /// left alone: that relay now decides its fate.
    async fn mark_failed(
        &self,
        id: Id,
        owner: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> StoreResult<()> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let status = if dead {
            OutboxStatus::Dead
        } else {
            OutboxStatus::Pending
        };
        self.c
            .outbox
            .update_one(
                doc! { "_id": oid(id), "leaseOwner": owner, "status": OutboxStatus::Pending.as_str() },
                doc! {
                    "$inc": { "attempts": 1_i64 },
                    "$set": {
                        "lastError": error,
                        "nextAttemptAt": date(next_attempt_at),
                        "status": status.as_str(),
                        "leaseOwner": Bson::Null,
                        "leaseUntil": Bson::Null,
                    },
                },
            )
            .await
            .ctx("Failed to record a failed publish")?;
        Ok(())
    }

    async fn list_outbox(&self, status: OutboxStatus, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs = self
            .find_events(doc! { "status": status.as_str() }, i64::from(limit), 0)
            .await?;
        docs.iter().map(event_from_doc).collect()
    }

    async fn retry_outbox(&self, id: Id, now: DateTime<Utc>) -> StoreResult<()> {
        let revived = self
            .c
            .outbox
            .update_one(
                doc! { "_id": oid(id), "status": OutboxStatus::Dead.as_str() },
                doc! { "$set": {
                    "status": OutboxStatus::Pending.as_str(),
                    "attempts": 0_i64,
                    "nextAttemptAt": date(now),
                    "leaseOwner": Bson::Null,
                    "leaseUntil": Bson::Null,
                } },
            )
            .await
            .ctx("Failed to retry an outbox event")?;
        if revived.matched_count == 1 {
            return Ok(());
        }
        let current = self
            .c
            .outbox
            .find_one(doc! { "_id": oid(id) })
            .projection(doc! { "status": 1 })
            .await
            .ctx("Failed to look up an outbox event")?;
        match current {
            None => Err(StoreError::NotFound),
            Some(d) => match d.get_str("status").ok().and_then(OutboxStatus::parse) {
                Some(current) => Err(Conflict::OutboxStatus(current).into()),
                None => Err(StoreError::backend(anyhow::anyhow!(
                    "Corrupt outbox status in {d}"
                ))),
            },
        }
    }

    async fn count_outbox(&self, status: OutboxStatus) -> StoreResult<u64> {
        self.c
            .outbox
            .count_documents(doc! { "status": status.as_str() })
            .await
            .ctx("Failed to count outbox events")
    }

    async fn oldest_pending(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let oldest = self
            .c
            .outbox
            .find_one(doc! { "status": OutboxStatus::Pending.as_str() })
            .sort(doc! { "occurredAt": 1 })
            .projection(doc! { "occurredAt": 1 })
            .await
            .ctx("Failed to read the oldest pending event")?;
        oldest.map(|d| get_time(&d, "occurredAt")).transpose()
    }
}

//! Orders on MongoDB: the order transaction (idempotency key, conditional stock decrements,
//! order, outbox event), conditional transitions, cancellation with restock, the retry of a
//! failed order, listings by user and by status, idempotency look-ups and counts.
//!
//! The three multi-document writes (place, cancel, retry) run through the driver's convenient
//! transaction API (`start_transaction().and_run`) with snapshot read concern and majority
//! write concern: it retries the whole callback on `TransientTransactionError` (e.g. a write
//! conflict with a concurrent order on the same product) and the commit on
//! `UnknownTransactionCommitResult`, with backoff, as MongoDB's drivers specification
//! prescribes. A domain refusal (short stock, taken key, wrong status) is returned from the
//! callback as a [`Refusal`], which aborts the transaction, so nothing is written.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ReadConcern, ReturnDocument, WriteConcern};
use mongodb::{BoxFuture, ClientSession};

use super::codec::{date, get_enum, get_i64, oid};
use super::error::{MongoContext, Refusal, backend, is_duplicate_key};
use super::order_docs::{
    idempotency_doc, idempotency_from_doc, idempotency_id, order_doc, order_from_doc, statuses,
    transition_set,
};
use super::outbox::event_doc;
use super::{Collections, MongoStore};
use crate::domain::{EventType, Id, Order, OrderStatus, OutboxEvent, OutboxStatus};
use crate::storage::windows::IDEMPOTENCY_WINDOW;
use crate::storage::{Conflict, IdempotencyRecord, OrderStore, StockTake, StoreResult};

/// What the order transaction writes.
struct Placement<'a> {
    c: &'a Collections,
    takes: &'a [StockTake],
    order: Document,
    event: Document,
    idempotency: Option<(Document, DateTime<Utc>)>,
    /// The customer and their cap on open orders, when one applies.
    cap: Option<(Id, u32)>,
}

/// Refuses the order when its customer already has `max` orders `pending` or `processing`.
///
/// The count runs inside the snapshot transaction, where two concurrent orders of one customer
/// could both see `max - 1` and both commit. So a customer at `max - 1` also touches their
/// user document: of two such transactions one then fails with a write conflict, is retried,
/// and counts the other's order. Below that, no extra write is made.
async fn check_open_orders(
    s: &mut ClientSession,
    c: &Collections,
    user: Id,
    max: u32,
) -> mongodb::error::Result<()> {
    let open = c
        .orders
        .count_documents(doc! {
            "userId": oid(user),
            "status": { "$in": statuses(&[OrderStatus::Pending, OrderStatus::Processing]) },
        })
        .session(&mut *s)
        .await?;
    if open >= u64::from(max) {
        return Err(Refusal::Conflict(Conflict::OpenOrders).into_error());
    }
    if open + 1 == u64::from(max) {
        c.users
            .update_one(
                doc! { "_id": oid(user) },
                doc! { "$inc": { "openOrderGuard": 1_i64 } },
            )
            .session(&mut *s)
            .await?;
    }
    Ok(())
}

/// Takes the idempotency key unless a record younger than the retention holds it. Read then
/// write inside the snapshot transaction: a concurrent transaction taking the same key makes
/// one of the two fail with a write conflict (retried, then refused) or a duplicate key.
async fn take_key(
    s: &mut ClientSession,
    c: &Collections,
    record: &Document,
    created_at: DateTime<Utc>,
) -> mongodb::error::Result<()> {
    let id = record.get("_id").cloned().unwrap_or(Bson::Null);
    let taken = || Refusal::Conflict(Conflict::IdempotencyKeyTaken).into_error();
    let expired_before = date(created_at - IDEMPOTENCY_WINDOW);
    let existing = c
        .idempotency_keys
        .find_one(doc! { "_id": id.clone() })
        .session(&mut *s)
        .await?;
    match existing {
        None => match c
            .idempotency_keys
            .insert_one(record.clone())
            .session(&mut *s)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(taken()),
            Err(e) => Err(e),
        },
        Some(_) => {
            // Older than the retention but not yet removed by the TTL monitor: replace it.
            let replaced = c
                .idempotency_keys
                .replace_one(
                    doc! { "_id": id, "createdAt": { "$lte": expired_before } },
                    record.clone(),
                )
                .session(&mut *s)
                .await?;
            if replaced.matched_count == 1 {
                Ok(())
            } else {
                Err(taken())
            }
        }
    }
}

async fn place_in(s: &mut ClientSession, p: &mut Placement<'_>) -> mongodb::error::Result<()> {
    if let Some((record, created_at)) = &p.idempotency {
        take_key(s, p.c, record, *created_at).await?;
    }
    if let Some((user, max)) = p.cap {
        check_open_orders(s, p.c, user, max).await?;
    }
    let mut short = Vec::new();
    for take in p.takes {
        let quantity = i64::from(take.quantity);
        let taken =
            p.c.products
                .update_one(
                    doc! { "_id": oid(take.product_id), "stock": { "$gte": quantity } },
                    doc! { "$inc": { "stock": -quantity } },
                )
                .session(&mut *s)
                .await?;
        if taken.matched_count == 0 && !short.contains(&take.product_id) {
            short.push(take.product_id);
        }
    }
    if !short.is_empty() {
        return Err(Refusal::InsufficientStock(short).into_error());
    }
    p.c.orders
        .insert_one(p.order.clone())
        .session(&mut *s)
        .await?;
    p.c.outbox
        .insert_one(p.event.clone())
        .session(&mut *s)
        .await?;
    Ok(())
}

/// What the cancel transaction needs.
struct Cancellation<'a> {
    c: &'a Collections,
    id: Id,
    from: Vec<&'static str>,
    at: DateTime<Utc>,
    event: &'a OutboxEvent,
}

/// Why a conditional update of order `id` matched nothing: it is gone, or its status is
/// another one.
async fn refusal_for(
    c: &Collections,
    s: Option<&mut ClientSession>,
    id: Id,
) -> mongodb::error::Result<Refusal> {
    let find = c
        .orders
        .find_one(doc! { "_id": oid(id) })
        .projection(doc! { "status": 1 });
    let current = match s {
        Some(s) => find.session(s).await?,
        None => find.await?,
    };
    Ok(match current {
        None => Refusal::NotFound,
        Some(d) => match d.get_str("status").ok().and_then(OrderStatus::parse) {
            Some(current) => Refusal::Conflict(Conflict::OrderStatus(current)),
            None => Refusal::Corrupt(format!("Corrupt order status in {d}")),
        },
    })
}

async fn cancel_in(
    s: &mut ClientSession,
    x: &mut Cancellation<'_>,
) -> mongodb::error::Result<Order> {
    let updated = x
        .c
        .orders
        .find_one_and_update(
            doc! { "_id": oid(x.id), "status": { "$in": x.from.clone() } },
            doc! { "$set": transition_set(OrderStatus::Cancelled, x.at), "$inc": { "eventSeq": 1_i64 } },
        )
        .return_document(ReturnDocument::After)
        .session(&mut *s)
        .await?;
    let Some(updated) = updated else {
        return Err(refusal_for(x.c, Some(s), x.id).await?.into_error());
    };
    let order = order_from_doc(&updated).map_err(Refusal::corrupt)?;
    let seq = get_i64(&updated, "eventSeq").map_err(Refusal::corrupt)?;
    for item in &order.items {
        // A product missing from the catalog has nothing to give stock back to.
        x.c.products
            .update_one(
                doc! { "_id": oid(item.product_id) },
                doc! { "$inc": { "stock": i64::from(item.quantity) }, "$set": { "updatedAt": date(x.at) } },
            )
            .session(&mut *s)
            .await?;
    }
    let event = event_doc(x.event, seq).map_err(Refusal::corrupt)?;
    x.c.outbox.insert_one(event).session(&mut *s).await?;
    Ok(order)
}

/// What the retry transaction needs.
struct Retry<'a> {
    c: &'a Collections,
    id: Id,
    at: DateTime<Utc>,
}

async fn retry_in(s: &mut ClientSession, x: &mut Retry<'_>) -> mongodb::error::Result<Order> {
    let updated =
        x.c.orders
            .find_one_and_update(
                doc! { "_id": oid(x.id), "status": OrderStatus::Failed.as_str() },
                doc! { "$set": transition_set(OrderStatus::Pending, x.at) },
            )
            .return_document(ReturnDocument::After)
            .session(&mut *s)
            .await?;
    let Some(updated) = updated else {
        return Err(refusal_for(x.c, Some(s), x.id).await?.into_error());
    };
    let order = order_from_doc(&updated).map_err(Refusal::corrupt)?;
    let event =
        x.c.outbox
            .find_one_and_update(
                doc! { "orderId": oid(x.id), "type": EventType::OrderCreated.as_str() },
                doc! {
                    "$set": {
                        "status": OutboxStatus::Pending.as_str(),
                        "attempts": 0_i64,
                        "nextAttemptAt": date(x.at),
                        "leaseOwner": Bson::Null,
                        "leaseUntil": Bson::Null,
                    },
                    "$inc": { "republished": 1_i64 },
                },
            )
            .session(&mut *s)
            .await?;
    let Some(event) = event else {
        return Err(Refusal::Corrupt(format!(
            "order {} has no {} event to re-publish",
            x.id,
            EventType::OrderCreated.as_str()
        ))
        .into_error());
    };
    let event_id = event.get("_id").cloned().unwrap_or(Bson::Null);
    x.c.inbox
        .delete_one(doc! { "_id": event_id })
        .session(&mut *s)
        .await?;
    Ok(order)
}

impl MongoStore {
    /// Orders matching `filter`, newest first (descending id), starting before `before`.
    async fn newest_orders(
        &self,
        mut filter: Document,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(before) = before {
            filter.insert("_id", doc! { "$lt": oid(before) });
        }
        let docs: Vec<Document> = self
            .c
            .orders
            .find(filter)
            .sort(doc! { "_id": -1 })
            .limit(i64::from(limit))
            .await
            .ctx("Failed to query orders")?
            .try_collect()
            .await
            .ctx("Failed to read orders")?;
        docs.iter().map(order_from_doc).collect()
    }

    /// Runs `body` in one transaction (snapshot read concern, majority write concern) with the
    /// driver's retries; a [`Refusal`] from `body` aborts it and comes back as its storage error.
    pub(super) async fn transaction<R, C, F>(
        &self,
        context: &'static str,
        ctx: C,
        body: F,
    ) -> StoreResult<R>
    where
        R: Send,
        C: Send,
        F: for<'b> FnMut(
                &'b mut ClientSession,
                &'b mut C,
            ) -> BoxFuture<'b, mongodb::error::Result<R>>
            + Send,
    {
        let mut session = self
            .client
            .start_session()
            .await
            .ctx("Failed to start a MongoDB session")?;
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .and_run(ctx, body)
            .await
            .map_err(|e| backend(e, context))
    }
}

#[async_trait]
impl OrderStore for MongoStore {
    async fn place_order_capped(
        &self,
        order: &Order,
        takes: &[StockTake],
        event: &OutboxEvent,
        idempotency: Option<&IdempotencyRecord>,
        max_open: Option<u32>,
    ) -> StoreResult<()> {
        let placement = Placement {
            c: &self.c,
            takes,
            order: order_doc(order),
            event: event_doc(event, 1)?,
            idempotency: idempotency.map(|r| (idempotency_doc(r), r.created_at)),
            cap: max_open.map(|max| (order.user_id, max)),
        };
        self.transaction("Failed to place an order", placement, |s, p| {
            Box::pin(place_in(s, p))
        })
        .await
    }

    async fn order(&self, id: Id) -> StoreResult<Option<Order>> {
        let found = self
            .c
            .orders
            .find_one(doc! { "_id": oid(id) })
            .await
            .ctx("Failed to look up an order")?;
        found.as_ref().map(order_from_doc).transpose()
    }

    async fn orders_of_user(
        &self,
        user_id: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        self.newest_orders(doc! { "userId": oid(user_id) }, before, limit)
            .await
    }

    async fn transition_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<Order> {
        let updated = self
            .c
            .orders
            .find_one_and_update(
                doc! { "_id": oid(id), "status": { "$in": statuses(from) } },
                doc! { "$set": transition_set(to, at) },
            )
            .return_document(ReturnDocument::After)
            .await
            .ctx("Failed to update an order's status")?;
        match updated {
            Some(d) => order_from_doc(&d),
            None => Err(refusal_for(&self.c, None, id)
                .await
                .ctx("Failed to look up an order")?
                .into()),
        }
    }

    async fn cancel_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        at: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> StoreResult<Order> {
        let cancellation = Cancellation {
            c: &self.c,
            id,
            from: statuses(from),
            at,
            event,
        };
        self.transaction("Failed to cancel an order", cancellation, |s, x| {
            Box::pin(cancel_in(s, x))
        })
        .await
    }

    async fn idempotency_record(
        &self,
        user_id: Id,
        key: &str,
        max_age: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let mut filter = doc! { "_id": idempotency_id(user_id, key) };
        if let Some(oldest) = Utc::now().checked_sub_signed(max_age) {
            filter.insert("createdAt", doc! { "$gte": date(oldest) });
        }
        let found = self
            .c
            .idempotency_keys
            .find_one(filter)
            .await
            .ctx("Failed to look up an idempotency key")?;
        found.as_ref().map(idempotency_from_doc).transpose()
    }

    async fn count_orders(&self) -> StoreResult<Vec<(OrderStatus, u64)>> {
        let mut cursor = self
            .c
            .orders
            .aggregate([doc! { "$group": { "_id": "$status", "n": { "$sum": 1 } } }])
            .await
            .ctx("Failed to count orders")?;
        let mut out = Vec::new();
        while let Some(d) = cursor
            .try_next()
            .await
            .ctx("Failed to read an order count")?
        {
            let status = get_enum(&d, "_id", OrderStatus::parse)?;
            let n = get_i64(&d, "n")?;
            out.push((status, u64::try_from(n).unwrap_or(0)));
        }
        Ok(out)
    }

    async fn orders_by_status(
        &self,
        status: OrderStatus,
        user_id: Option<Id>,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        let mut filter = doc! { "status": status.as_str() };
        if let Some(user_id) = user_id {
            filter.insert("userId", oid(user_id));
        }
        self.newest_orders(filter, before, limit).await
    }

    async fn retry_failed_order(&self, id: Id, at: DateTime<Utc>) -> StoreResult<Order> {
        let retry = Retry { c: &self.c, id, at };
        self.transaction("Failed to retry an order", retry, |s, x| {
            Box::pin(retry_in(s, x))
        })
        .await
    }
}

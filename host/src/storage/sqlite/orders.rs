//! Orders on SQLite: the order transaction (stock decrements, order, outbox event,
//! idempotency record), conditional transitions, cancellation with restock, the retry of a
//! failed order, listings by user and by status, idempotency look-ups. Every write is one
//! transaction on the writer thread.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, Transaction, params};

use super::SqliteStore;
use super::error::{
    SqlContext, get, get_currency, get_hash, get_id, get_json, get_opt_time, get_time, micros,
    parse_enum, to_json,
};
use super::outbox::{insert_event, republish_created};
use crate::domain::{Id, Order, OrderStatus, OutboxEvent};
use crate::storage::windows::IDEMPOTENCY_WINDOW;
use crate::storage::{Conflict, IdempotencyRecord, OrderStore, StockTake, StoreError, StoreResult};

macro_rules! columns {
    () => {
        "id, user_id, status, currency, subtotal, tax_total, total, items, tax_lines, \
         shipping_address, created_at, updated_at, processing_at, processed_at, cancelled_at, failed_at"
    };
}

fn order_from_row(row: &Row<'_>) -> StoreResult<Order> {
    let status: String = get(row, "status")?;
    let address: Option<String> = get(row, "shipping_address")?;
    Ok(Order {
        id: get_id(row, "id")?,
        user_id: get_id(row, "user_id")?,
        status: parse_enum(&status, "order status", OrderStatus::parse)?,
        currency: get_currency(row, "currency")?,
        items: get_json(row, "items")?,
        subtotal: get(row, "subtotal")?,
        tax_total: get(row, "tax_total")?,
        total: get(row, "total")?,
        tax_lines: get_json(row, "tax_lines")?,
        shipping_address: address
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| {
                StoreError::backend(anyhow::Error::new(e).context("Corrupt shipping address"))
            })?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        processing_at: get_opt_time(row, "processing_at")?,
        processed_at: get_opt_time(row, "processed_at")?,
        cancelled_at: get_opt_time(row, "cancelled_at")?,
        failed_at: get_opt_time(row, "failed_at")?,
    })
}

fn query_orders(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Order>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .ctx("Failed to prepare an order query")?;
    let mut rows = stmt.query(params).ctx("Failed to query orders")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx("Failed to read an order")? {
        out.push(order_from_row(row)?);
    }
    Ok(out)
}

pub(super) fn load_order(conn: &Connection, id: Id) -> StoreResult<Option<Order>> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM orders WHERE id = ?1");
    Ok(query_orders(conn, SQL, [id.to_hex()])?.pop())
}

pub(super) fn insert_order(tx: &Transaction<'_>, o: &Order) -> StoreResult<()> {
    tx.prepare_cached(concat!(
        "INSERT INTO orders (",
        columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .ctx("Failed to prepare the order insert")?
    .execute(params![
        o.id.to_hex(),
        o.user_id.to_hex(),
        o.status.as_str(),
        o.currency.as_str(),
        o.subtotal,
        o.tax_total,
        o.total,
        to_json(&o.items)?,
        to_json(&o.tax_lines)?,
        o.shipping_address.as_ref().map(to_json).transpose()?,
        micros(o.created_at),
        micros(o.updated_at),
        o.processing_at.map(micros),
        o.processed_at.map(micros),
        o.cancelled_at.map(micros),
        o.failed_at.map(micros),
    ])
    .ctx("Failed to insert an order")?;
    Ok(())
}

/// Counts one customer's open orders; its `status IN` term is the partial index's condition.
pub(super) const OPEN_ORDERS_SQL: &str =
    "SELECT COUNT(*) FROM orders WHERE user_id = ?1 AND status IN ('pending', 'processing')";

/// How many of `user`'s orders are `pending` or `processing` (an index range of
/// `orders_open_by_user`, inside the order's own transaction).
fn open_orders_of(tx: &Transaction<'_>, user: Id) -> StoreResult<u64> {
    tx.prepare_cached(OPEN_ORDERS_SQL)
        .ctx("Failed to prepare the open-order count")?
        .query_row([user.to_hex()], |row| row.get::<_, i64>(0))
        .ctx("Failed to count open orders")
        .map(|n| u64::try_from(n).unwrap_or(0))
}

/// Takes the key unless a record younger than [`IDEMPOTENCY_WINDOW`] holds it.
fn insert_idempotency(tx: &Transaction<'_>, r: &IdempotencyRecord) -> StoreResult<()> {
    let expired_before = r.created_at - IDEMPOTENCY_WINDOW;
    let taken = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, response_body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (user_id, key) DO UPDATE SET
                 request_hash = excluded.request_hash, status = excluded.status,
                 response_body = excluded.response_body, created_at = excluded.created_at
             WHERE idempotency_keys.created_at <= ?7",
        )
        .ctx("Failed to prepare the idempotency insert")?
        .execute(params![
            r.user_id.to_hex(),
            r.key,
            &r.request_hash[..],
            r.status,
            r.response_body,
            micros(r.created_at),
            micros(expired_before),
        ])
        .ctx("Failed to record an idempotency key")?;
    if taken == 0 {
        return Err(Conflict::IdempotencyKeyTaken.into());
    }
    Ok(())
}

/// Decrements every take's stock if enough is left; returns the products that were short
/// (each once, in the order of `takes`). Earlier decrements stay in the transaction, which
/// the caller rolls back when anything was short.
fn take_stock(tx: &Transaction<'_>, takes: &[StockTake]) -> StoreResult<Vec<Id>> {
    let mut stmt = tx
        .prepare_cached("UPDATE products SET stock = stock - ?2 WHERE id = ?1 AND stock >= ?2")
        .ctx("Failed to prepare the stock decrement")?;
    let mut short = Vec::new();
    for take in takes {
        let changed = stmt
            .execute(params![take.product_id.to_hex(), take.quantity])
            .ctx("Failed to decrement stock")?;
        if changed != 1 && !short.contains(&take.product_id) {
            short.push(take.product_id);
        }
    }
    Ok(short)
}

/// Sets the status and the matching transition timestamp.
fn write_status(
    tx: &Transaction<'_>,
    id: Id,
    to: OrderStatus,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE orders SET status = ?2, updated_at = ?3,
             processing_at = CASE WHEN ?2 = 'processing' THEN ?3 ELSE processing_at END,
             processed_at  = CASE WHEN ?2 = 'processed'  THEN ?3 ELSE processed_at  END,
             cancelled_at  = CASE WHEN ?2 = 'cancelled'  THEN ?3 ELSE cancelled_at  END,
             failed_at     = CASE WHEN ?2 = 'failed'     THEN ?3
                                  WHEN ?2 = 'pending'    THEN NULL ELSE failed_at   END
         WHERE id = ?1",
    )
    .ctx("Failed to prepare the status update")?
    .execute(params![id.to_hex(), to.as_str(), micros(at)])
    .ctx("Failed to update an order's status")?;
    Ok(())
}

/// Loads the order and moves it to `to` if its status is in `from` (the writer serializes
/// this read-check-write, so it is atomic).
pub(super) fn transition(
    tx: &Transaction<'_>,
    id: Id,
    from: &[OrderStatus],
    to: OrderStatus,
    at: DateTime<Utc>,
) -> StoreResult<Order> {
    let order = load_order(tx, id)?.ok_or(StoreError::NotFound)?;
    if !from.contains(&order.status) {
        return Err(Conflict::OrderStatus(order.status).into());
    }
    advance(tx, order, to, at)
}

/// Moves `order`, just loaded in this transaction and checked by the caller, to `to`.
pub(super) fn advance(
    tx: &Transaction<'_>,
    mut order: Order,
    to: OrderStatus,
    at: DateTime<Utc>,
) -> StoreResult<Order> {
    write_status(tx, order.id, to, at)?;
    order.mark(to, at);
    Ok(order)
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn place_order_capped(
        &self,
        order: &Order,
        takes: &[StockTake],
        event: &OutboxEvent,
        idempotency: Option<&IdempotencyRecord>,
        max_open: Option<u32>,
    ) -> StoreResult<()> {
        let (order, takes, event, idempotency) = (
            order.clone(),
            takes.to_vec(),
            event.clone(),
            idempotency.cloned(),
        );
        self.db
            .write(move |tx| {
                if let Some(record) = &idempotency {
                    insert_idempotency(tx, record)?;
                }
                if let Some(max) = max_open
                    && open_orders_of(tx, order.user_id)? >= u64::from(max)
                {
                    return Err(Conflict::OpenOrders.into());
                }
                let short = take_stock(tx, &takes)?;
                if !short.is_empty() {
                    return Err(StoreError::InsufficientStock(short));
                }
                insert_order(tx, &order)?;
                insert_event(tx, &event)
            })
            .await
    }

    async fn order(&self, id: Id) -> StoreResult<Option<Order>> {
        self.db.read(move |conn| load_order(conn, id)).await
    }

    async fn orders_of_user(
        &self,
        user_id: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        // "g" sorts after every 24-hex id, so no cursor means "from the newest".
        let before = before
            .map(|id| id.to_hex())
            .unwrap_or_else(|| "g".to_owned());
        self.db
            .read(move |conn| {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(),
                    " FROM orders WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                );
                query_orders(conn, SQL, params![user_id.to_hex(), before, limit])
            })
            .await
    }

    async fn transition_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<Order> {
        let from = from.to_vec();
        self.db
            .write(move |tx| transition(tx, id, &from, to, at))
            .await
    }

    async fn cancel_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        at: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> StoreResult<Order> {
        let (from, event) = (from.to_vec(), event.clone());
        self.db
            .write(move |tx| {
                let order = transition(tx, id, &from, OrderStatus::Cancelled, at)?;
                let mut restock = tx
                    .prepare_cached(
                        "UPDATE products SET stock = stock + ?2, updated_at = ?3 WHERE id = ?1",
                    )
                    .ctx("Failed to prepare the restock")?;
                for item in &order.items {
                    // A product missing from the catalog has nothing to give stock back to.
                    restock
                        .execute(params![item.product_id.to_hex(), item.quantity, micros(at)])
                        .ctx("Failed to restock a product")?;
                }
                insert_event(tx, &event)?;
                Ok(order)
            })
            .await
    }

    async fn idempotency_record(
        &self,
        user_id: Id,
        key: &str,
        max_age: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let key = key.to_owned();
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let oldest = Utc::now()
            .checked_sub_signed(max_age)
            .map(micros)
            .unwrap_or(i64::MIN);
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT user_id, key, request_hash, status, response_body, created_at
                         FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND created_at >= ?3",
                    )
                    .ctx("Failed to prepare the idempotency query")?;
                let mut rows = stmt
                    .query(params![user_id.to_hex(), key, oldest])
                    .ctx("Failed to query an idempotency key")?;
                let Some(row) = rows.next().ctx("Failed to read an idempotency key")? else {
                    return Ok(None);
                };
                Ok(Some(IdempotencyRecord {
                    user_id: get_id(row, "user_id")?,
                    key: get(row, "key")?,
                    request_hash: get_hash(row, "request_hash")?,
                    status: get(row, "status")?,
                    response_body: get(row, "response_body")?,
                    created_at: get_time(row, "created_at")?,
                }))
            })
            .await
    }

    async fn count_orders(&self) -> StoreResult<Vec<(OrderStatus, u64)>> {
        self.db
            .read(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT status, COUNT(*) FROM orders GROUP BY status")
                    .ctx("Failed to prepare the order count")?;
                let mut rows = stmt.query([]).ctx("Failed to count orders")?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().ctx("Failed to read an order count")? {
                    let status: String = row.get(0).ctx("Failed to read a status")?;
                    let count: i64 = row.get(1).ctx("Failed to read a count")?;
                    let status = parse_enum(&status, "order status", OrderStatus::parse)?;
                    out.push((status, u64::try_from(count).unwrap_or(0)));
                }
                Ok(out)
            })
            .await
    }

    async fn orders_by_status(
        &self,
        status: OrderStatus,
        user_id: Option<Id>,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        // As in `orders_of_user`: "g" sorts after every 24-hex id.
        let before = before
            .map(|id| id.to_hex())
            .unwrap_or_else(|| "g".to_owned());
        self.db
            .read(move |conn| match user_id {
                None => {
                    const SQL: &str = concat!(
                        "SELECT ",
                        columns!(),
                        " FROM orders WHERE status = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                    );
                    query_orders(conn, SQL, params![status.as_str(), before, limit])
                }
                Some(user_id) => {
                    const SQL: &str = concat!(
                        "SELECT ",
                        columns!(),
                        " FROM orders WHERE user_id = ?1 AND status = ?2 AND id < ?3",
                        " ORDER BY id DESC LIMIT ?4"
                    );
                    let user_id = user_id.to_hex();
                    query_orders(conn, SQL, params![user_id, status.as_str(), before, limit])
                }
            })
            .await
    }

    async fn retry_failed_order(&self, id: Id, at: DateTime<Utc>) -> StoreResult<Order> {
        self.db
            .write(move |tx| {
                let order = transition(tx, id, &[OrderStatus::Failed], OrderStatus::Pending, at)?;
                let event_id = republish_created(tx, id, at)?;
                tx.prepare_cached("DELETE FROM inbox WHERE event_id = ?1")
                    .ctx("Failed to prepare the inbox removal")?
                    .execute([event_id])
                    .ctx("Failed to remove an event from the inbox")?;
                Ok(order)
            })
            .await
    }
}

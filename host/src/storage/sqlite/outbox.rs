//! The transactional outbox on SQLite: events written with their orders, leased by relays,
//! marked published, failed or dead.
//!
//! Per-order ordering: an event is claimable only while no earlier (lower `seq`) event of the
//! same order is still `pending`, whether that one is leased, backing off or due. A `dead`
//! event does not block the events after it: one poisoned event must not stall its order
//! forever, so e.g. an `order.cancelled` may be published after its `order.created` died.
//! Once an admin retries it, the event is pending again and, having the lower `seq`, goes
//! first among its order's pending events.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::SqliteStore;
use super::error::{
    SqlContext, get, get_id, get_json, get_opt_time, get_time, get_u32, micros, parse_enum, to_json,
};
use crate::domain::{EventType, Id, OutboxEvent, OutboxStatus};
use crate::storage::windows::MAX_ERROR_CHARS;
use crate::storage::{Conflict, OutboxStore, StoreError, StoreResult};

macro_rules! columns {
    () => {
        "seq, id, order_id, type, payload, occurred_at, status, attempts, next_attempt_at, \
         last_error, published_at, republished"
    };
}

/// The `seq`s of the events due at `?1`, at most `?2`, oldest first: pending, past their
/// backoff, not leased, and with no earlier pending event of their order.
macro_rules! due {
    () => {
        "SELECT o.seq FROM outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
           AND (o.lease_until IS NULL OR o.lease_until <= ?1)
           AND NOT EXISTS (
               SELECT 1 FROM outbox e
               WHERE e.order_id = o.order_id AND e.status = 'pending' AND e.seq < o.seq)
         ORDER BY o.next_attempt_at, o.seq LIMIT ?2"
    };
}

fn event_from_row(row: &Row<'_>) -> StoreResult<(i64, OutboxEvent)> {
    let event_type: String = get(row, "type")?;
    let status: String = get(row, "status")?;
    let event = OutboxEvent {
        id: get_id(row, "id")?,
        order_id: get_id(row, "order_id")?,
        event_type: parse_enum(&event_type, "event type", EventType::parse)?,
        payload: get_json(row, "payload")?,
        occurred_at: get_time(row, "occurred_at")?,
        status: parse_enum(&status, "outbox status", OutboxStatus::parse)?,
        attempts: get_u32(row, "attempts")?,
        next_attempt_at: get_time(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        published_at: get_opt_time(row, "published_at")?,
        republished: get_u32(row, "republished")?,
    };
    Ok((get(row, "seq")?, event))
}

/// The events of `order_id`, in write order (the operator console's order trail).
pub(super) fn events_of_order(conn: &Connection, order_id: Id) -> StoreResult<Vec<OutboxEvent>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM outbox WHERE order_id = ?1 ORDER BY seq"
    );
    query_events(conn, SQL, [order_id.to_hex()])
}

fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<OutboxEvent>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .ctx("Failed to prepare an outbox query")?;
    let mut rows = stmt.query(params).ctx("Failed to query the outbox")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx("Failed to read an outbox event")? {
        out.push(event_from_row(row)?);
    }
    // RETURNING gives no order guarantee: restore write order.
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

/// Inserts an event inside the caller's transaction (the order transactions use it).
pub(super) fn insert_event(tx: &Transaction<'_>, e: &OutboxEvent) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (id, order_id, type, payload, occurred_at, status, attempts,
                             next_attempt_at, last_error, published_at, republished)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .ctx("Failed to prepare the outbox insert")?
    .execute(params![
        e.id.to_hex(),
        e.order_id.to_hex(),
        e.event_type.as_str(),
        to_json(&e.payload)?,
        micros(e.occurred_at),
        e.status.as_str(),
        e.attempts,
        micros(e.next_attempt_at),
        e.last_error,
        e.published_at.map(micros),
        e.republished,
    ])
    .ctx("Failed to insert an outbox event")?;
    Ok(())
}

/// Marks up to `limit` due events published at `now` and returns them, in one statement
/// inside the caller's transaction — for a queue in the same database file, whose enqueue
/// commits or rolls back with it, so no lease is taken: nothing happens between the claim and
/// the mark outside this transaction. Due means what [`OutboxStore::claim_outbox`] means (not
/// leased by a relay of the lease path, no earlier pending event of the same order).
pub(crate) fn publish_due_in(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<OutboxEvent>> {
    const SQL: &str = concat!(
        "UPDATE outbox SET status = 'published', published_at = ?1,
                           lease_owner = NULL, lease_until = NULL
         WHERE seq IN (",
        due!(),
        ") RETURNING ",
        columns!()
    );
    query_events(tx, SQL, params![micros(now), limit])
}

/// Puts the `order.created` event of `order_id` back to pending inside the caller's
/// transaction (the retry of a failed order): attempts 0, due at `at`, lease released,
/// `republished` + 1. Returns the event id as stored (24-hex).
pub(super) fn republish_created(
    tx: &Transaction<'_>,
    order_id: Id,
    at: DateTime<Utc>,
) -> StoreResult<String> {
    let id: Option<String> = tx
        .prepare_cached(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?3,
                    lease_owner = NULL, lease_until = NULL, republished = republished + 1
             WHERE order_id = ?1 AND type = ?2
             RETURNING id",
        )
        .ctx("Failed to prepare the event re-publication")?
        .query_row(
            params![
                order_id.to_hex(),
                EventType::OrderCreated.as_str(),
                micros(at)
            ],
            |row| row.get(0),
        )
        .optional()
        .ctx("Failed to re-publish an order's event")?;
    id.ok_or_else(|| {
        StoreError::backend(anyhow::anyhow!(
            "Order {order_id} has no {} event to re-publish",
            EventType::OrderCreated.as_str()
        ))
    })
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let owner = owner.to_owned();
        let until = chrono::Duration::from_std(lease)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| {
                StoreError::backend(anyhow::anyhow!("Outbox lease of {lease:?} is out of range"))
            })?;
        self.db
            .write(move |tx| {
                const SQL: &str = concat!(
                    "UPDATE outbox SET lease_owner = ?3, lease_until = ?4 WHERE seq IN (",
                    due!(),
                    ") RETURNING ",
                    columns!()
                );
                query_events(tx, SQL, params![micros(now), limit, owner, micros(until)])
            })
            .await
    }

    async fn mark_published(&self, ids: &[Id], owner: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let (ids, owner) = (ids.to_vec(), owner.to_owned());
        self.db
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE outbox SET status = 'published', published_at = ?3,
                                lease_owner = NULL, lease_until = NULL
                         WHERE id = ?1 AND lease_owner = ?2 AND status = 'pending'",
                    )
                    .ctx("Failed to prepare the publish mark")?;
                for id in ids {
                    stmt.execute(params![id.to_hex(), owner, micros(at)])
                        .ctx("Failed to mark an event published")?;
                }
                Ok(())
            })
            .await
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
        let owner = owner.to_owned();
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let status = if dead {
            OutboxStatus::Dead
        } else {
            OutboxStatus::Pending
        };
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4,
                            status = ?5, lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'pending'",
                )
                .ctx("Failed to prepare the failure mark")?
                .execute(params![id.to_hex(), owner, error, micros(next_attempt_at), status.as_str()])
                .ctx("Failed to record a failed publish")?;
                Ok(())
            })
            .await
    }

    async fn list_outbox(&self, status: OutboxStatus, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        self.db
            .read(move |conn| {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(),
                    " FROM outbox WHERE status = ?1 ORDER BY seq LIMIT ?2"
                );
                query_events(conn, SQL, params![status.as_str(), limit])
            })
            .await
    }

    async fn retry_outbox(&self, id: Id, now: DateTime<Utc>) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                let status: Option<String> = tx
                    .prepare_cached("SELECT status FROM outbox WHERE id = ?1")
                    .ctx("Failed to prepare the outbox lookup")?
                    .query_row([id.to_hex()], |row| row.get(0))
                    .optional()
                    .ctx("Failed to look up an outbox event")?;
                let status = status.ok_or(StoreError::NotFound)?;
                match parse_enum(&status, "outbox status", OutboxStatus::parse)? {
                    OutboxStatus::Dead => {}
                    other => return Err(Conflict::OutboxStatus(other).into()),
                }
                tx.prepare_cached(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                            lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1",
                )
                .ctx("Failed to prepare the outbox retry")?
                .execute(params![id.to_hex(), micros(now)])
                .ctx("Failed to retry an outbox event")?;
                Ok(())
            })
            .await
    }

    async fn count_outbox(&self, status: OutboxStatus) -> StoreResult<u64> {
        self.db
            .read(move |conn| {
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM outbox WHERE status = ?1")
                    .ctx("Failed to prepare the outbox count")?
                    .query_row([status.as_str()], |row| row.get(0))
                    .ctx("Failed to count outbox events")?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn oldest_pending(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db
            .read(|conn| {
                let us: Option<i64> = conn
                    .prepare_cached("SELECT MIN(occurred_at) FROM outbox WHERE status = 'pending'")
                    .ctx("Failed to prepare the outbox age query")?
                    .query_row([], |row| row.get(0))
                    .ctx("Failed to read the oldest pending event")?;
                us.map(super::error::time_from_micros).transpose()
            })
            .await
    }
}

//! The embedded queue: SQS semantics on a table in the store's SQLite file, so the default
//! single-binary setup needs no broker and a crash loses nothing (a message is a committed
//! row until it is deleted).
//!
//! * Receive is one write transaction: pick the rows that became visible first (walking the
//!   `(queue, visible_at, seq)` index, so a backlog costs nothing extra), move those
//!   already received `max_receives` times to the dead-letter queue, and stamp the rest with a
//!   new receipt, `receive_count + 1` and `visible_at = now + visibility`.
//! * Long polling waits on an in-process `Notify` that every send in this process signals,
//!   and also polls every `poll_interval`, so a second process sharing the file (and messages
//!   whose visibility timeout ran out) are seen too. Idle polls are reads, not writes.
//! * Receipts are `<seq>.<random>`: a stale receipt (the message was received again since)
//!   deletes nothing, as in SQS.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use super::{
    Queue, QueueDepth, QueueError, QueueResult, ReceivedMessage, SendReport, check_batch,
    dead_letter_name,
};
use crate::domain::Id;
use crate::storage::StoreError;
use crate::storage::sqlite::{SqlContext, SqliteDb};

/// The component name of the queue's schema in `schema_migrations`.
pub const COMPONENT: &str = "queue";

/// Schema steps; step `i` is version `i + 1`. Append only.
pub const STEPS: &[&str] = &[V1];

const V1: &str = r#"
CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    group_id      TEXT    NOT NULL,
    dedup_id      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
) STRICT;
CREATE INDEX queue_messages_ready ON queue_messages (queue, visible_at, seq);
"#;

/// The most messages one call sends, receives or deletes. SQS stops at ten per call; rows in
/// one local transaction have no such limit, and larger batches let the relay publish a
/// whole pass and the consumer record a whole batch in one write each.
pub const EMBEDDED_MAX_BATCH: usize = 256;

/// Default pause between idle polls of the table (other processes, expired visibility).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// One named queue in the SQLite file.
pub struct EmbeddedQueue {
    db: SqliteDb,
    name: String,
    /// Receives after which a message moves to `dead_letter`.
    max_receives: Option<u32>,
    dead_letter: Option<Arc<EmbeddedQueue>>,
    /// Signalled by every send through this handle; wakes long polls at once.
    sent: Arc<Notify>,
    /// Pause between polls while a long poll waits.
    poll_interval: Duration,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("name", &self.name)
            .field("max_receives", &self.max_receives)
            .finish()
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn backend(err: StoreError) -> QueueError {
    QueueError::backend(anyhow::Error::new(err).context("Failed to access the embedded queue"))
}

impl EmbeddedQueue {
    /// Opens queue `name` in `db` (creating the table on first use) with a dead-letter queue
    /// named [`dead_letter_name`]`(name)` that receives messages after `max_receives` receives.
    pub async fn open(db: SqliteDb, name: &str, max_receives: u32) -> anyhow::Result<Arc<Self>> {
        Self::open_with_poll(db, name, max_receives, DEFAULT_POLL_INTERVAL).await
    }

    /// [`EmbeddedQueue::open`] with the pause between polls of a waiting receive.
    pub async fn open_with_poll(
        db: SqliteDb,
        name: &str,
        max_receives: u32,
        poll_interval: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        db.apply_migrations(COMPONENT, STEPS)
            .await
            .context("Failed to create the embedded queue's tables")?;
        let dead_letter = Arc::new(Self::plain(
            db.clone(),
            &dead_letter_name(name),
            poll_interval,
        ));
        let mut queue = Self::plain(db, name, poll_interval);
        queue.max_receives = Some(max_receives.max(1));
        queue.dead_letter = Some(dead_letter);
        Ok(Arc::new(queue))
    }

    fn plain(db: SqliteDb, name: &str, poll_interval: Duration) -> Self {
        Self {
            db,
            name: name.to_owned(),
            max_receives: None,
            dead_letter: None,
            sent: Arc::new(Notify::new()),
            poll_interval,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn any_visible(&self, now: i64) -> QueueResult<bool> {
        let name = self.name.clone();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT 1 FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 LIMIT 1",
                )
                .ctx("Failed to prepare the queue poll")?
                .query_row(params![name, now], |_| Ok(()))
                .optional()
                .ctx("Failed to poll the queue")
                .map(|found| found.is_some())
            })
            .await
            .map_err(backend)
    }

    /// One receive attempt without waiting.
    async fn receive_now(
        &self,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        let name = self.name.clone();
        let dead = self.dead_letter.as_ref().map(|q| q.name.clone());
        let limit = self.max_receives;
        let visibility = micros(visibility);
        let tokens: Vec<u64> = {
            let mut rng = rand::thread_rng();
            (0..max).map(|_| rng.r#gen()).collect()
        };
        let (received, moved) = self
            .db
            .write(move |tx| {
                let now = now_micros();
                let mut rows = Vec::new();
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT seq, message_id, body, receive_count, sent_at FROM queue_messages
                             WHERE queue = ?1 AND visible_at <= ?2
                             ORDER BY visible_at, seq LIMIT ?3",
                        )
                        .ctx("Failed to prepare the queue receive")?;
                    let mut found = stmt
                        .query(params![name, now, max as i64])
                        .ctx("Failed to receive")?;
                    while let Some(row) = found.next().ctx("Failed to read a queue message")? {
                        let seq: i64 = row.get(0).ctx("Failed to read a queue message")?;
                        let message_id: String =
                            row.get(1).ctx("Failed to read a queue message")?;
                        let body: String = row.get(2).ctx("Failed to read a queue message")?;
                        let count: i64 = row.get(3).ctx("Failed to read a queue message")?;
                        let sent_at: i64 = row.get(4).ctx("Failed to read a queue message")?;
                        rows.push((
                            seq,
                            message_id,
                            body,
                            u32::try_from(count).unwrap_or(u32::MAX),
                            chrono::DateTime::from_timestamp_micros(sent_at),
                        ));
                    }
                }
                let mut received = Vec::new();
                let mut moved = 0usize;
                for ((seq, message_id, body, count, sent_at), token) in
                    rows.into_iter().zip(tokens)
                {
                    if let (Some(limit), Some(dead)) = (limit, dead.as_deref())
                        && count >= limit
                    {
                        tx.prepare_cached(
                            "UPDATE queue_messages SET queue = ?2, visible_at = ?3, receipt = NULL
                             WHERE seq = ?1",
                        )
                        .ctx("Failed to prepare the dead-letter move")?
                        .execute(params![seq, dead, now])
                        .ctx("Failed to move a message to the dead-letter queue")?;
                        moved += 1;
                        continue;
                    }
                    let receipt = format!("{seq}.{token:016x}");
                    tx.prepare_cached(
                        "UPDATE queue_messages
                         SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3
                         WHERE seq = ?1",
                    )
                    .ctx("Failed to prepare the receive update")?
                    .execute(params![seq, now.saturating_add(visibility), receipt])
                    .ctx("Failed to mark a message received")?;
                    received.push(ReceivedMessage {
                        message_id,
                        receipt,
                        body,
                        receive_count: count + 1,
                        sent_at,
                    });
                }
                Ok((received, moved))
            })
            .await
            .map_err(backend)?;
        if moved > 0 {
            metrics::counter!("orderd_queue_dead_lettered_total", "backend" => "embedded")
                .increment(moved as u64);
            tracing::warn!(queue = %self.name, moved, "Moved messages to the dead-letter queue after the receive limit");
            if let Some(dead) = &self.dead_letter {
                dead.sent.notify_waiters();
            }
        }
        Ok(received)
    }
}

/// Splits a receipt into the row it names; `None` when it is not one of ours.
/// Enqueues `messages` on queue `name` inside the caller's transaction, visible at once.
fn insert_messages(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    messages: &[super::OutgoingMessage],
) -> Result<(), StoreError> {
    let now = now_micros();
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO queue_messages
             (queue, message_id, group_id, dedup_id, body, sent_at, visible_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .ctx("Failed to prepare the queue send")?;
    for m in messages {
        stmt.execute(params![
            name,
            Id::new().to_hex(),
            m.group_id,
            m.dedup_id,
            m.body,
            now
        ])
        .ctx("Failed to enqueue a message")?;
    }
    Ok(())
}

impl EmbeddedQueue {
    /// Whether this queue keeps its messages in `db`'s file, through the same handle.
    pub fn shares(&self, db: &SqliteDb) -> bool {
        self.db.same_handle(db)
    }

    /// The relay's pass when the outbox is in this queue's own database file
    /// ([`EmbeddedQueue::shares`]): up to `limit` due events are marked published and enqueued
    /// in one write transaction, so both happen or neither, and no lease is needed. The lease
    /// path (claim, send, mark: three writes) is what other queues need. Returns the events
    /// published.
    pub async fn publish_outbox(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> QueueResult<Vec<crate::domain::OutboxEvent>> {
        let name = self.name.clone();
        let events = self
            .db
            .write(move |tx| {
                let events = crate::storage::sqlite::publish_due_in(tx, now, limit)?;
                let messages = events
                    .iter()
                    .map(super::OutgoingMessage::for_event)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        StoreError::backend(anyhow::anyhow!(e).context("Failed to encode an event"))
                    })?;
                insert_messages(tx, &name, &messages)?;
                Ok(events)
            })
            .await
            .map_err(backend)?;
        if !events.is_empty() {
            self.sent.notify_waiters();
        }
        Ok(events)
    }
}

fn receipt_seq(receipt: &str) -> Option<i64> {
    receipt
        .split_once('.')
        .and_then(|(seq, _)| seq.parse().ok())
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn max_batch(&self) -> usize {
        EMBEDDED_MAX_BATCH
    }

    fn as_embedded(&self) -> Option<&EmbeddedQueue> {
        Some(self)
    }

    async fn send_batch(&self, messages: &[super::OutgoingMessage]) -> QueueResult<SendReport> {
        check_batch(messages.len(), EMBEDDED_MAX_BATCH)?;
        if messages.is_empty() {
            return Ok(SendReport::default());
        }
        let name = self.name.clone();
        let batch = messages.to_vec();
        let sent = self
            .db
            .write(move |tx| {
                insert_messages(tx, &name, &batch)?;
                Ok(batch.into_iter().map(|m| m.dedup_id).collect::<Vec<_>>())
            })
            .await
            .map_err(backend)?;
        self.sent.notify_waiters();
        Ok(SendReport {
            sent,
            failed: Vec::new(),
        })
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        check_batch(max, EMBEDDED_MAX_BATCH)?;
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for the wake-up before looking, so a send in between is not missed.
            let notified = self.sent.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.any_visible(now_micros()).await? {
                let got = self.receive_now(max, visibility).await?;
                if !got.is_empty() {
                    return Ok(got);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let pause = self.poll_interval.min(deadline - now);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> QueueResult<()> {
        let Some(seq) = receipt_seq(receipt) else {
            return Err(QueueError::InvalidReceipt);
        };
        let receipt = receipt.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM queue_messages WHERE seq = ?1 AND receipt = ?2")
                    .ctx("Failed to prepare the queue delete")?
                    .execute(params![seq, receipt])
                    .ctx("Failed to delete a message")
            })
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> QueueResult<()> {
        check_batch(receipts.len(), EMBEDDED_MAX_BATCH)?;
        let rows: Vec<(i64, String)> = receipts
            .iter()
            .filter_map(|r| receipt_seq(r).map(|seq| (seq, r.clone())))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached("DELETE FROM queue_messages WHERE seq = ?1 AND receipt = ?2")
                    .ctx("Failed to prepare the queue delete")?;
                for (seq, receipt) in &rows {
                    stmt.execute(params![seq, receipt])
                        .ctx("Failed to delete a message")?;
                }
                Ok(())
            })
            .await
            .map_err(backend)
    }

    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> QueueResult<()> {
        let Some(seq) = receipt_seq(receipt) else {
            return Err(QueueError::InvalidReceipt);
        };
        let receipt = receipt.to_owned();
        let name = self.name.clone();
        let visibility = micros(visibility);
        let changed = self
            .db
            .write(move |tx| {
                let now = now_micros();
                tx.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?4
                     WHERE seq = ?1 AND receipt = ?2 AND queue = ?3 AND visible_at > ?5",
                )
                .ctx("Failed to prepare the visibility change")?
                .execute(params![
                    seq,
                    receipt,
                    name,
                    now.saturating_add(visibility),
                    now
                ])
                .ctx("Failed to change a message's visibility")
            })
            .await
            .map_err(backend)?;
        if changed == 0 {
            return Err(QueueError::InvalidReceipt);
        }
        if visibility == 0 {
            self.sent.notify_waiters();
        }
        Ok(())
    }

    async fn depth(&self) -> QueueResult<QueueDepth> {
        let name = self.name.clone();
        self.db
            .read(move |conn| {
                let now = now_micros();
                conn.prepare_cached(
                    "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0)
                     FROM queue_messages WHERE queue = ?1",
                )
                .ctx("Failed to prepare the queue depth")?
                .query_row(params![name, now], |row| {
                    Ok(QueueDepth {
                        visible: row.get::<_, i64>(0)? as u64,
                        in_flight: row.get::<_, i64>(1)? as u64,
                    })
                })
                .ctx("Failed to count queue messages")
            })
            .await
            .map_err(backend)
    }

    fn dead_letter_queue(&self) -> Option<Arc<dyn Queue>> {
        self.dead_letter.clone().map(|q| q as Arc<dyn Queue>)
    }

    fn max_receives(&self) -> Option<u32> {
        self.max_receives
    }

    fn backend_name(&self) -> &'static str {
        "embedded"
    }
}

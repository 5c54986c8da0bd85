//! The consumer's duplicate filters on SQLite: the processed-event inbox and e-mail send
//! records with expiring claims.
//!
//! A claim belongs to one delivery attempt (`owner`): while it is unexpired every other claim
//! — even one with the same owner string — is `InProgress`, so two concurrent deliveries can
//! never both send. An expired or released claim may be taken over; a sent record is final.
//!
//! Each step is a function on a connection, so the batched consumer writes (`delivery.rs`)
//! run the same statements inside one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::error::{SqlContext, micros};
use crate::domain::Id;
use crate::storage::{EmailClaim, InboxStore, StoreResult};

/// Whether `event_id` is in the inbox.
pub(super) fn inbox_has(conn: &Connection, event_id: Id) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM inbox WHERE event_id = ?1")
        .ctx("Failed to prepare the inbox lookup")?
        .query_row([event_id.to_hex()], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .ctx("Failed to look up the inbox")
}

/// Records `event_id` in the inbox; `false` when it already was.
pub(super) fn inbox_insert(
    conn: &Connection,
    event_id: Id,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO inbox (event_id, processed_at) VALUES (?1, ?2)")
        .ctx("Failed to prepare the inbox insert")?
        .execute(params![event_id.to_hex(), micros(at)])
        .ctx("Failed to record a processed event")?;
    Ok(inserted == 1)
}

/// Claims the e-mail send of `event_id` for `owner` until `until` (see the module docs).
pub(super) fn claim(
    conn: &Connection,
    event_id: Id,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<EmailClaim> {
    let current: Option<(Option<i64>, Option<i64>, Option<String>)> = conn
        .prepare_cached("SELECT sent_at, claimed_until, owner FROM email_sends WHERE event_id = ?1")
        .ctx("Failed to prepare the e-mail claim lookup")?
        .query_row([event_id.to_hex()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()
        .ctx("Failed to look up an e-mail claim")?;
    match current {
        Some((Some(_), _, _)) => return Ok(EmailClaim::AlreadySent),
        Some((None, Some(claimed_until), Some(_))) if claimed_until > micros(now) => {
            return Ok(EmailClaim::InProgress);
        }
        _ => {}
    }
    conn.prepare_cached(
        "INSERT INTO email_sends (event_id, owner, claimed_until) VALUES (?1, ?2, ?3)
         ON CONFLICT (event_id) DO UPDATE SET owner = excluded.owner,
             claimed_until = excluded.claimed_until",
    )
    .ctx("Failed to prepare the e-mail claim")?
    .execute(params![event_id.to_hex(), owner, micros(until)])
    .ctx("Failed to claim an e-mail send")?;
    Ok(EmailClaim::Claimed)
}

/// Records the e-mail of `event_id` as sent (a sent record is never overwritten).
pub(super) fn finish(
    conn: &Connection,
    event_id: Id,
    message_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO email_sends (event_id, sent_at, message_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (event_id) DO UPDATE SET sent_at = excluded.sent_at,
             message_id = excluded.message_id, owner = NULL, claimed_until = NULL
         WHERE email_sends.sent_at IS NULL",
    )
    .ctx("Failed to prepare the e-mail send record")?
    .execute(params![event_id.to_hex(), micros(at), message_id])
    .ctx("Failed to record an e-mail send")?;
    Ok(())
}

/// Releases `owner`'s unsent claim on the e-mail of `event_id`.
pub(super) fn release(conn: &Connection, event_id: Id, owner: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE email_sends SET owner = NULL, claimed_until = NULL
         WHERE event_id = ?1 AND owner = ?2 AND sent_at IS NULL",
    )
    .ctx("Failed to prepare the e-mail claim release")?
    .execute(params![event_id.to_hex(), owner])
    .ctx("Failed to release an e-mail claim")?;
    Ok(())
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn inbox_contains(&self, event_id: Id) -> StoreResult<bool> {
        self.db.read(move |conn| inbox_has(conn, event_id)).await
    }

    async fn inbox_record(&self, event_id: Id, at: DateTime<Utc>) -> StoreResult<bool> {
        self.db
            .write(move |tx| inbox_insert(tx, event_id, at))
            .await
    }

    async fn claim_email(
        &self,
        event_id: Id,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<EmailClaim> {
        let owner = owner.to_owned();
        self.db
            .write(move |tx| claim(tx, event_id, &owner, now, until))
            .await
    }

    async fn finish_email(
        &self,
        event_id: Id,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let message_id = message_id.to_owned();
        self.db
            .write(move |tx| finish(tx, event_id, &message_id, at))
            .await
    }

    async fn release_email(&self, event_id: Id, owner: &str) -> StoreResult<()> {
        let owner = owner.to_owned();
        self.db.write(move |tx| release(tx, event_id, &owner)).await
    }
}

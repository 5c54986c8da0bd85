//! The consumer's duplicate filters on MongoDB: the processed-event inbox (TTL-expired after
//! the configured retention) and e-mail send records with expiring claims.
//!
//! A claim is taken by inserting the send record, or, when one exists, by one conditional
//! update (not sent, claim free or expired) that MongoDB applies atomically, so of several
//! concurrent deliveries exactly one sends. A sent record is final.
//!
//! The documents and conditions are built by the functions here, so the batched consumer
//! writes (`delivery.rs`) store exactly the same shapes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};

use super::MongoStore;
use super::codec::{date, oid};
use super::error::{MongoContext, backend, is_duplicate_key};
use crate::domain::Id;
use crate::storage::{EmailClaim, InboxStore, StoreResult};

/// The inbox entry of a processed event (the TTL index expires it by `processedAt`).
pub(super) fn inbox_doc(event_id: Id, at: DateTime<Utc>) -> Document {
    doc! { "_id": oid(event_id), "processedAt": date(at) }
}

/// A new send record, claimed by `owner` until `until`.
pub(super) fn claim_doc(event_id: Id, owner: &str, until: DateTime<Utc>) -> Document {
    doc! {
        "_id": oid(event_id),
        "owner": owner,
        "claimedUntil": date(until),
        "sentAt": Bson::Null,
        "messageId": Bson::Null,
    }
}

/// A new send record of an e-mail that went out without a claim on record.
pub(super) fn sent_doc(event_id: Id, message_id: &str, at: DateTime<Utc>) -> Document {
    doc! {
        "_id": oid(event_id),
        "owner": Bson::Null,
        "claimedUntil": Bson::Null,
        "sentAt": date(at),
        "messageId": message_id,
    }
}

/// The condition under which a send record may be claimed at `now`: not sent, and its claim
/// free or expired.
pub(super) fn claimable(now: DateTime<Utc>) -> Document {
    doc! {
        "sentAt": Bson::Null,
        "$or": [ { "claimedUntil": Bson::Null }, { "claimedUntil": { "$lte": date(now) } } ],
    }
}

/// The `$set` that claims a send record for `owner` until `until`.
pub(super) fn claim_set(owner: &str, until: DateTime<Utc>) -> Document {
    doc! { "owner": owner, "claimedUntil": date(until) }
}

/// The `$set` that records a send at `at`, with the Message-ID (or, in an update pipeline, the
/// expression giving it), and frees the claim.
pub(super) fn sent_set(message_id: impl Into<Bson>, at: DateTime<Utc>) -> Document {
    doc! {
        "sentAt": date(at),
        "messageId": message_id.into(),
        "owner": Bson::Null,
        "claimedUntil": Bson::Null,
    }
}

/// The `$set` that frees a send record's claim.
pub(super) fn unclaimed() -> Document {
    doc! { "owner": Bson::Null, "claimedUntil": Bson::Null }
}

/// Whether a stored send record says its e-mail went out.
pub(super) fn is_sent(record: &Document) -> bool {
    !matches!(record.get("sentAt"), None | Some(Bson::Null))
}

#[async_trait]
impl InboxStore for MongoStore {
    async fn inbox_contains(&self, event_id: Id) -> StoreResult<bool> {
        let found = self
            .c
            .inbox
            .find_one(doc! { "_id": oid(event_id) })
            .projection(doc! { "_id": 1 })
            .await
            .ctx("Failed to look up the inbox")?;
        Ok(found.is_some())
    }

    async fn inbox_record(&self, event_id: Id, at: DateTime<Utc>) -> StoreResult<bool> {
        match self.c.inbox.insert_one(inbox_doc(event_id, at)).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(backend(e, "Failed to record a processed event")),
        }
    }

    async fn claim_email(
        &self,
        event_id: Id,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<EmailClaim> {
        // Claims are compared and set on the server's clock (see `clock.rs`).
        let skew = self.clock_skew().await?;
        let (now, until) = (now + skew, until + skew);
        let first = self
            .c
            .email_sends
            .insert_one(claim_doc(event_id, owner, until))
            .await;
        match first {
            Ok(_) => return Ok(EmailClaim::Claimed),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(backend(e, "Failed to claim an e-mail send")),
        }
        let mut free = doc! { "_id": oid(event_id) };
        free.extend(claimable(now));
        let taken_over = self
            .c
            .email_sends
            .find_one_and_update(free, doc! { "$set": claim_set(owner, until) })
            .await
            .ctx("Failed to claim an e-mail send")?;
        if taken_over.is_some() {
            return Ok(EmailClaim::Claimed);
        }
        let record = self
            .c
            .email_sends
            .find_one(doc! { "_id": oid(event_id) })
            .projection(doc! { "sentAt": 1 })
            .await
            .ctx("Failed to look up an e-mail send")?;
        Ok(if record.as_ref().is_some_and(is_sent) {
            EmailClaim::AlreadySent
        } else {
            EmailClaim::InProgress
        })
    }

    async fn finish_email(
        &self,
        event_id: Id,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let finished = self
            .c
            .email_sends
            .update_one(
                doc! { "_id": oid(event_id), "sentAt": Bson::Null },
                doc! { "$set": sent_set(message_id, at) },
            )
            .await
            .ctx("Failed to record an e-mail send")?;
        if finished.matched_count == 1 {
            return Ok(());
        }
        // No record yet (sent without a claim), or already sent (then this is a no-op).
        match self
            .c
            .email_sends
            .insert_one(sent_doc(event_id, message_id, at))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(backend(e, "Failed to record an e-mail send")),
        }
    }

    async fn release_email(&self, event_id: Id, owner: &str) -> StoreResult<()> {
        self.c
            .email_sends
            .update_one(
                doc! { "_id": oid(event_id), "owner": owner, "sentAt": Bson::Null },
                doc! { "$set": unclaimed() },
            )
            .await
            .ctx("Failed to release an e-mail claim")?;
        Ok(())
    }
}

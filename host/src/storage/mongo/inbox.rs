//! The consumer's duplicate filters on MongoDB: the processed-event inbox (TTL-expired after
//! the configured retention) and e-mail send records with expiring claims.
//!
//! A claim is taken by inserting the send record, or, when one exists, by one conditional
//! update (not sent, claim free or expired) that MongoDB applies atomically, so of several
//! concurrent deliveries exactly one sends. A sent record is final.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, doc};

use super::MongoStore;
use super::codec::{date, oid};
use super::error::{MongoContext, backend, is_duplicate_key};
use crate::domain::Id;
use crate::storage::{EmailClaim, InboxStore, StoreResult};

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
        match self
            .c
            .inbox
            .insert_one(doc! { "_id": oid(event_id), "processedAt": date(at) })
            .await
        {
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
        let first = self
            .c
            .email_sends
            .insert_one(doc! {
                "_id": oid(event_id),
                "owner": owner,
                "claimedUntil": date(until),
                "sentAt": Bson::Null,
                "messageId": Bson::Null,
            })
            .await;
        match first {
            Ok(_) => return Ok(EmailClaim::Claimed),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(backend(e, "Failed to claim an e-mail send")),
        }
        let taken_over = self
            .c
            .email_sends
            .find_one_and_update(
                doc! {
                    "_id": oid(event_id),
                    "sentAt": Bson::Null,
                    "$or": [ { "claimedUntil": Bson::Null }, { "claimedUntil": { "$lte": date(now) } } ],
                },
                doc! { "$set": { "owner": owner, "claimedUntil": date(until) } },
            )
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
        let sent = record.is_some_and(|d| !matches!(d.get("sentAt"), None | Some(Bson::Null)));
        Ok(if sent {
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
                doc! { "$set": { "sentAt": date(at), "messageId": message_id, "owner": Bson::Null, "claimedUntil": Bson::Null } },
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
            .insert_one(doc! {
                "_id": oid(event_id),
                "owner": Bson::Null,
                "claimedUntil": Bson::Null,
                "sentAt": date(at),
                "messageId": message_id,
            })
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
                doc! { "$set": { "owner": Bson::Null, "claimedUntil": Bson::Null } },
            )
            .await
            .ctx("Failed to release an e-mail claim")?;
        Ok(())
    }
}

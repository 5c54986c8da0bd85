//! Retention on MongoDB: sweeps that delete every record past its retention (see
//! `storage::retention` for what is kept regardless). Sweeps rather than TTL indexes because
//! what may go depends on other documents (a failed order keeps its event and send record; a
//! slot keeps its active and newest versions), and so that a prune deletes exactly what is
//! past its retention when it runs. Each kind is selected by a query, filtered here, and
//! deleted by id in batches.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};

use super::MongoStore;
use super::codec::{date, get_id, oids};
use super::error::MongoContext;
use crate::domain::{Id, OrderStatus, OutboxStatus};
use crate::storage::retention::{Pruned, Retention, RetentionStore, cutoff, versions_to_prune};
use crate::storage::{PluginStore, StoreResult};

/// Ids deleted per `deleteMany`.
const BATCH: usize = 1000;

/// The `key` ids of the documents of `collection` matching `filter`.
async fn ids_of(
    collection: &Collection<Document>,
    filter: Document,
    key: &str,
) -> StoreResult<Vec<Id>> {
    let docs: Vec<Document> = collection
        .find(filter)
        .projection(doc! { key: 1 })
        .await
        .ctx("Failed to select records past their retention")?
        .try_collect()
        .await
        .ctx("Failed to read records past their retention")?;
    docs.iter().map(|d| get_id(d, key)).collect()
}

/// Deletes the documents of `collection` whose `key` is among `ids`; returns how many.
async fn delete_by(collection: &Collection<Document>, key: &str, ids: &[Id]) -> StoreResult<u64> {
    let mut deleted = 0;
    for chunk in ids.chunks(BATCH) {
        deleted += collection
            .delete_many(doc! { key: { "$in": oids(chunk) } })
            .await
            .ctx("Failed to delete records past their retention")?
            .deleted_count;
    }
    Ok(deleted)
}

impl MongoStore {
    /// The ids of failed orders and of their outbox events.
    async fn failed_orders_and_events(&self) -> StoreResult<(HashSet<Id>, HashSet<Id>)> {
        let orders = ids_of(
            &self.c.orders,
            doc! { "status": OrderStatus::Failed.as_str() },
            "_id",
        )
        .await?;
        let events = if orders.is_empty() {
            Vec::new()
        } else {
            ids_of(
                &self.c.outbox,
                doc! { "orderId": { "$in": oids(&orders) } },
                "_id",
            )
            .await?
        };
        Ok((orders.into_iter().collect(), events.into_iter().collect()))
    }

    async fn prune_refresh(&self, before: DateTime<Utc>) -> StoreResult<(u64, u64)> {
        let families = ids_of(
            &self.c.refresh_families,
            doc! { "expiresAt": { "$lt": date(before) } },
            "_id",
        )
        .await?;
        // Tokens first: a family is never gone while tokens of it remain.
        let tokens = delete_by(&self.c.refresh_tokens, "familyId", &families).await?;
        let families = delete_by(&self.c.refresh_families, "_id", &families).await?;
        Ok((families, tokens))
    }

    async fn prune_events(
        &self,
        before: DateTime<Utc>,
        failed_orders: &HashSet<Id>,
    ) -> StoreResult<u64> {
        let docs: Vec<Document> = self
            .c
            .outbox
            .find(doc! {
                "status": OutboxStatus::Published.as_str(),
                "publishedAt": { "$lt": date(before) },
            })
            .projection(doc! { "_id": 1, "orderId": 1 })
            .await
            .ctx("Failed to select old published events")?
            .try_collect()
            .await
            .ctx("Failed to read old published events")?;
        let mut ids = Vec::with_capacity(docs.len());
        for d in &docs {
            if !failed_orders.contains(&get_id(d, "orderId")?) {
                ids.push(get_id(d, "_id")?);
            }
        }
        delete_by(&self.c.outbox, "_id", &ids).await
    }

    async fn prune_sends(
        &self,
        before: DateTime<Utc>,
        failed_events: &HashSet<Id>,
    ) -> StoreResult<u64> {
        let mut ids = ids_of(
            &self.c.email_sends,
            doc! { "sentAt": { "$lt": date(before) } },
            "_id",
        )
        .await?;
        ids.extend(
            ids_of(
                &self.c.email_sends,
                doc! { "sentAt": Bson::Null, "claimedUntil": { "$lt": date(before) } },
                "_id",
            )
            .await?,
        );
        ids.retain(|id| !failed_events.contains(id));
        delete_by(&self.c.email_sends, "_id", &ids).await
    }

    async fn prune_versions(&self, before: DateTime<Utc>, kept: u32) -> StoreResult<u64> {
        let active = self.active_plugins().await?;
        let slots: Vec<String> = self
            .c
            .plugin_versions
            .distinct("slot", doc! {})
            .await
            .ctx("Failed to list plugin slots")?
            .into_iter()
            .filter_map(|slot| slot.as_str().map(str::to_owned))
            .collect();
        let mut ids = Vec::new();
        for slot in slots {
            let versions = self.plugin_versions(&slot).await?;
            let active = active
                .iter()
                .find(|a| a.slot == slot)
                .and_then(|a| a.version_id);
            ids.extend(versions_to_prune(&versions, active, before, kept));
        }
        delete_by(&self.c.plugin_versions, "_id", &ids).await
    }
}

#[async_trait]
impl RetentionStore for MongoStore {
    async fn prune(&self, now: DateTime<Utc>, retention: &Retention) -> StoreResult<Pruned> {
        let (refresh_families, refresh_tokens) = self
            .prune_refresh(cutoff(now, retention.refresh_families))
            .await?;
        let (failed_orders, failed_events) = self.failed_orders_and_events().await?;
        let email_sends = self
            .prune_sends(cutoff(now, retention.email_sends), &failed_events)
            .await?;
        let published_events = self
            .prune_events(cutoff(now, retention.published_events), &failed_orders)
            .await?;
        let plugin_versions = self
            .prune_versions(
                cutoff(now, retention.plugin_versions),
                retention.plugin_versions_kept,
            )
            .await?;
        Ok(Pruned {
            refresh_families,
            refresh_tokens,
            published_events,
            email_sends,
            plugin_versions,
        })
    }
}

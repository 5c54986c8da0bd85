//! The batched consumer writes on MongoDB, in the same shape as on SQLite: a batch of events is
//! started in one multi-document transaction and completed in another
//! ([`MongoStore::transaction`]: snapshot reads, majority writes, the whole callback run again
//! on a transient error such as a write conflict).
//!
//! Each transaction reads what the batch needs with one `$in` query per collection, decides
//! every item in order against that in-memory view — as the single-event ports (`inbox.rs`,
//! `orders.rs`) would one after the other, so two items of one order or of one event see each
//! other's changes — and then writes each kind of change with one bulk operation.
//!
//! Inside a transaction a duplicate key aborts the whole transaction, so records are read
//! first and only the missing ones inserted. A concurrent delivery writing the same documents
//! makes one of the two transactions fail with a write conflict; the driver runs it again on a
//! fresh snapshot, where it finds the other's claims and transitions. Every conditional bulk
//! update must match each document it was decided on, or the transaction is aborted.
//!
//! `start.rs` and `finish.rs` hold the two transactions; the reading and checking helpers they
//! share are here.

mod finish;
mod start;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::{ClientSession, Collection};

use super::MongoStore;
use super::codec::{date, get_id, oids};
use super::error::Refusal;
use crate::domain::{Id, Order};
use crate::storage::{
    Conflict, DeliveryFinish, DeliveryStart, DeliveryStore, Started, StoreResult,
};
use finish::{Finishing, finish_in};
use start::{Starting, start_in};

type DbResult<T> = mongodb::error::Result<T>;

/// The ids in first-seen order, each once.
fn distinct(ids: impl IntoIterator<Item = Id>) -> Vec<Id> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// `at` as MongoDB stores it (milliseconds), so an order marked in memory equals the order
/// read back.
fn as_stored(at: DateTime<Utc>) -> DateTime<Utc> {
    date(at).to_chrono()
}

/// `{ "$in": ids }`.
fn among(ids: &[Id]) -> Document {
    doc! { "$in": oids(ids) }
}

/// The documents of `coll` with an `_id` among `ids` that also match `filter` (only the
/// `projection` fields when given), read in the transaction of `s`.
async fn find_among(
    s: &mut ClientSession,
    coll: &Collection<Document>,
    ids: &[Id],
    filter: Document,
    projection: Option<Document>,
) -> DbResult<Vec<Document>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = doc! { "_id": among(ids) };
    query.extend(filter);
    let mut find = coll.find(query);
    if let Some(projection) = projection {
        find = find.projection(projection);
    }
    let mut cursor = find.session(&mut *s).await?;
    cursor.stream(&mut *s).try_collect().await
}

/// The `_id`s of `docs`.
fn ids_of(docs: &[Document]) -> DbResult<HashSet<Id>> {
    docs.iter()
        .map(|d| get_id(d, "_id"))
        .collect::<StoreResult<_>>()
        .map_err(Refusal::corrupt)
}

/// `docs` decoded by `decode`, by the id `key` gives each.
fn decoded<T>(
    docs: &[Document],
    decode: fn(&Document) -> StoreResult<T>,
    key: fn(&T) -> Id,
) -> DbResult<HashMap<Id, T>> {
    docs.iter()
        .map(|d| decode(d).map(|value| (key(&value), value)))
        .collect::<StoreResult<_>>()
        .map_err(Refusal::corrupt)
}

/// Aborts the transaction unless a conditional bulk update matched all `expected` documents
/// the batch decided on. With snapshot reads a concurrent change is a write conflict before
/// this, so it only stops a server that does not isolate transactions from acting on a view
/// that is no longer true.
fn all_matched(matched: u64, expected: usize, what: &'static str) -> DbResult<()> {
    if matched == expected as u64 {
        return Ok(());
    }
    Err(Refusal::Conflict(Conflict::Changed(what)).into_error())
}

#[async_trait]
impl DeliveryStore for MongoStore {
    async fn start_deliveries(
        &self,
        items: &[DeliveryStart],
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Started>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let skew = self.clock_skew().await?;
        let starting = Starting {
            c: &self.c,
            items,
            owner,
            now,
            claim_now: now + skew,
            claim_until: claim_until + skew,
        };
        self.transaction("Failed to start deliveries", starting, |s, x| {
            Box::pin(start_in(s, x))
        })
        .await
    }

    async fn finish_deliveries(
        &self,
        items: &[DeliveryFinish],
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<Order>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let finishing = Finishing {
            c: &self.c,
            items,
            owner,
            now,
        };
        self.transaction("Failed to complete deliveries", finishing, |s, x| {
            Box::pin(finish_in(s, x))
        })
        .await
    }
}

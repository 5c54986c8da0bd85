//! Completing a batch of events on MongoDB, in one transaction: releasing claims is one
//! update; recording sends reads the send records of the batch and then sets the unsent ones
//! with one pipeline update (each its own Message-ID) and inserts the missing ones as sent;
//! the `order.created` events' orders still `processing` are read and moved to `processed`
//! with one update; the completed events missing from the inbox are inserted with one insert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};

use super::{DbResult, all_matched, among, as_stored, decoded, distinct, find_among, ids_of};
use crate::domain::{EventType, Id, Order, OrderStatus};
use crate::storage::mongo::Collections;
use crate::storage::mongo::codec::oid;
use crate::storage::mongo::inbox::{inbox_doc, is_sent, sent_doc, sent_set, unclaimed};
use crate::storage::mongo::order_docs::{order_from_doc, transition_set};
use crate::storage::{DeliveryFinish, Finish};

/// What the finish transaction needs.
pub(super) struct Finishing<'a> {
    pub(super) c: &'a Collections,
    pub(super) items: &'a [DeliveryFinish],
    pub(super) owner: &'a str,
    pub(super) now: DateTime<Utc>,
}

/// Completes every item of the batch; for each, the order this call moved to `processed`.
pub(super) async fn finish_in(
    s: &mut ClientSession,
    x: &mut Finishing<'_>,
) -> DbResult<Vec<Option<Order>>> {
    let released = distinct(
        x.items
            .iter()
            .filter(|i| i.outcome == Finish::Release)
            .map(|i| i.event_id),
    );
    if !released.is_empty() {
        x.c.email_sends
            .update_many(
                doc! { "_id": among(&released), "owner": x.owner, "sentAt": Bson::Null },
                doc! { "$set": unclaimed() },
            )
            .session(&mut *s)
            .await?;
    }
    record_sends(s, x).await?;
    let mut processed = process_orders(s, x).await?;
    record_inbox(s, x).await?;
    // The first item naming an order this call moved reports it.
    Ok(x.items
        .iter()
        .map(|i| {
            if i.completes() && i.kind == EventType::OrderCreated {
                processed.remove(&i.order_id)
            } else {
                None
            }
        })
        .collect())
}

/// Records the batch's sends: the first Message-ID of each event wins, a sent record is never
/// overwritten, a missing record is inserted as sent.
async fn record_sends(s: &mut ClientSession, x: &Finishing<'_>) -> DbResult<()> {
    let mut sends: Vec<(Id, &str)> = Vec::new();
    for item in x.items {
        if let Finish::Sent { message_id } = &item.outcome
            && !sends.iter().any(|(id, _)| *id == item.event_id)
        {
            sends.push((item.event_id, message_id));
        }
    }
    let ids: Vec<Id> = sends.iter().map(|(id, _)| *id).collect();
    let projection = Some(doc! { "sentAt": 1 });
    let stored = find_among(s, &x.c.email_sends, &ids, doc! {}, projection).await?;
    let known = ids_of(&stored)?;
    let sent = ids_of(&stored.into_iter().filter(is_sent).collect::<Vec<_>>())?;

    let unsent: Vec<(Id, &str)> = sends
        .iter()
        .copied()
        .filter(|(id, _)| known.contains(id) && !sent.contains(id))
        .collect();
    if !unsent.is_empty() {
        let ids: Vec<Id> = unsent.iter().map(|(id, _)| *id).collect();
        let pipeline = vec![doc! { "$set": sent_set(message_ids(&unsent), x.now) }];
        let result =
            x.c.email_sends
                .update_many(doc! { "_id": among(&ids), "sentAt": Bson::Null }, pipeline)
                .session(&mut *s)
                .await?;
        all_matched(result.matched_count, ids.len(), "an e-mail send record")?;
    }
    let missing: Vec<Document> = sends
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(id, message_id)| sent_doc(*id, message_id, x.now))
        .collect();
    if !missing.is_empty() {
        x.c.email_sends
            .insert_many(missing)
            .session(&mut *s)
            .await?;
    }
    Ok(())
}

/// An update-pipeline expression giving each send record the Message-ID of its event. The
/// Message-IDs are `$literal`s, so none is ever read as a field path or an operator.
fn message_ids(sends: &[(Id, &str)]) -> Document {
    let branches: Vec<Document> = sends
        .iter()
        .map(|(id, message_id)| {
            doc! {
                "case": { "$eq": ["$_id", oid(*id)] },
                "then": { "$literal": *message_id },
            }
        })
        .collect();
    doc! { "$switch": { "branches": branches, "default": "$messageId" } }
}

/// Moves the orders of the batch's completed `order.created` events that are still
/// `processing` to `processed`; the orders this call moved, by id.
async fn process_orders(s: &mut ClientSession, x: &Finishing<'_>) -> DbResult<HashMap<Id, Order>> {
    let ids = distinct(
        x.items
            .iter()
            .filter(|i| i.completes() && i.kind == EventType::OrderCreated)
            .map(|i| i.order_id),
    );
    let processing = doc! { "status": OrderStatus::Processing.as_str() };
    let found = find_among(s, &x.c.orders, &ids, processing.clone(), None).await?;
    let mut orders = decoded(&found, order_from_doc, |o| o.id)?;
    if orders.is_empty() {
        return Ok(orders);
    }
    let moving: Vec<Id> = orders.keys().copied().collect();
    let mut filter = doc! { "_id": among(&moving) };
    filter.extend(processing);
    let result =
        x.c.orders
            .update_many(
                filter,
                doc! { "$set": transition_set(OrderStatus::Processed, x.now) },
            )
            .session(&mut *s)
            .await?;
    all_matched(result.matched_count, moving.len(), "an order")?;
    for order in orders.values_mut() {
        order.mark(OrderStatus::Processed, as_stored(x.now));
    }
    Ok(orders)
}

/// Records the batch's completed events in the inbox (those not there yet).
async fn record_inbox(s: &mut ClientSession, x: &Finishing<'_>) -> DbResult<()> {
    let ids = distinct(x.items.iter().filter(|i| i.completes()).map(|i| i.event_id));
    let found = find_among(s, &x.c.inbox, &ids, doc! {}, Some(doc! { "_id": 1 })).await?;
    let recorded = ids_of(&found)?;
    let missing: Vec<Document> = ids
        .into_iter()
        .filter(|id| !recorded.contains(id))
        .map(|id| inbox_doc(id, x.now))
        .collect();
    if !missing.is_empty() {
        x.c.inbox.insert_many(missing).session(&mut *s).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_set_as_literals_keyed_by_event() {
        let (a, b) = (Id::new(), Id::new());
        let expr = message_ids(&[(a, "<a@orderd>"), (b, "$b")]);
        let branches = expr
            .get_document("$switch")
            .unwrap()
            .get_array("branches")
            .unwrap();
        assert_eq!(
            branches[1],
            Bson::Document(doc! {
                "case": { "$eq": ["$_id", oid(b)] },
                "then": { "$literal": "$b" },
            })
        );
        assert_eq!(branches.len(), 2);
    }
}

//! Starting a batch of events on MongoDB, in one transaction: the inbox entries, orders,
//! customers and e-mail send records of the whole batch are read with one `$in` query each;
//! every item is decided in order against that view (an `order.created` item moves its order
//! `pending → processing`, then the send is claimed as `inbox.rs` claims it); then the orders
//! are moved with one update, free or expired claims taken over with another, and missing send
//! records inserted, claimed, with one insert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};

use super::{DbResult, all_matched, among, as_stored, decoded, distinct, find_among, ids_of};
use crate::domain::{EventType, Id, Order, OrderStatus, User};
use crate::storage::delivery::needs_no_confirmation;
use crate::storage::mongo::Collections;
use crate::storage::mongo::codec::{get_id, get_opt_time};
use crate::storage::mongo::error::Refusal;
use crate::storage::mongo::inbox::{claim_doc, claim_set, claimable, is_sent};
use crate::storage::mongo::order_docs::{order_from_doc, transition_set};
use crate::storage::mongo::users::user_from_doc;
use crate::storage::{DeliveryStart, EmailClaim, Started, StoreResult};

/// What the start transaction needs.
pub(super) struct Starting<'a> {
    pub(super) c: &'a Collections,
    pub(super) items: &'a [DeliveryStart],
    pub(super) owner: &'a str,
    /// The time of the order transitions.
    pub(super) now: DateTime<Utc>,
    /// `now` and the claims' end on the server's clock (see `clock.rs`): what e-mail claims
    /// are compared with and set to.
    pub(super) claim_now: DateTime<Utc>,
    pub(super) claim_until: DateTime<Utc>,
}

/// Where one start item stands after the inbox and order steps.
enum Step {
    /// Decided without an e-mail claim.
    Decided(Started),
    /// The e-mail must be claimed; the order as this item left it.
    Claim(Box<Order>),
}

/// Starts every item of the batch; the results in item order.
pub(super) async fn start_in(
    s: &mut ClientSession,
    x: &mut Starting<'_>,
) -> DbResult<Vec<Started>> {
    let c = x.c;
    let events = distinct(x.items.iter().map(|i| i.event_id));
    let inbox = find_among(s, &c.inbox, &events, doc! {}, Some(doc! { "_id": 1 })).await?;
    let done = ids_of(&inbox)?;
    let open = distinct(
        x.items
            .iter()
            .filter(|i| !done.contains(&i.event_id))
            .map(|i| i.order_id),
    );
    let found = find_among(s, &c.orders, &open, doc! {}, None).await?;
    let mut orders = decoded(&found, order_from_doc, |o| o.id)?;

    let mut moved = Vec::new();
    let steps: Vec<Step> = x
        .items
        .iter()
        .map(|item| {
            if done.contains(&item.event_id) {
                return Step::Decided(Started::AlreadyDone);
            }
            let Some(order) = orders.get_mut(&item.order_id) else {
                return Step::Decided(Started::UnknownOrder);
            };
            if item.kind == EventType::OrderCreated {
                if order.status == OrderStatus::Pending {
                    order.mark(OrderStatus::Processing, as_stored(x.now));
                    moved.push(order.id);
                }
                if needs_no_confirmation(order.status) {
                    return Step::Decided(Started::NothingToSend(Box::new(order.clone())));
                }
            }
            Step::Claim(Box::new(order.clone()))
        })
        .collect();
    if !moved.is_empty() {
        let result = c
            .orders
            .update_many(
                doc! { "_id": among(&moved), "status": OrderStatus::Pending.as_str() },
                doc! { "$set": transition_set(OrderStatus::Processing, x.now) },
            )
            .session(&mut *s)
            .await?;
        all_matched(result.matched_count, moved.len(), "an order")?;
    }

    let claiming = || {
        x.items
            .iter()
            .zip(&steps)
            .filter_map(|(item, step)| match step {
                Step::Claim(order) => Some((item.event_id, order.user_id)),
                Step::Decided(_) => None,
            })
    };
    let users = distinct(claiming().map(|(_, user)| user));
    let found = find_among(s, &c.users, &users, doc! {}, None).await?;
    let customers = decoded(&found, user_from_doc, |u| u.id)?;
    let sends = distinct(claiming().map(|(event, _)| event));
    let projection = doc! { "sentAt": 1, "claimedUntil": 1 };
    let records = find_among(s, &c.email_sends, &sends, doc! {}, Some(projection)).await?;
    let mut claims = Claims::from_docs(&records).map_err(Refusal::corrupt)?;

    let started = x
        .items
        .iter()
        .zip(steps)
        .map(|(item, step)| match step {
            Step::Decided(started) => started,
            Step::Claim(order) => claim_for(&mut claims, &customers, item, order, x),
        })
        .collect();
    claims.write(s, x).await?;
    Ok(started)
}

/// Claims the e-mail of `item` for the customer of `order`, if the customer exists.
fn claim_for(
    claims: &mut Claims,
    customers: &HashMap<Id, User>,
    item: &DeliveryStart,
    order: Box<Order>,
    x: &Starting<'_>,
) -> Started {
    let Some(customer) = customers.get(&order.user_id) else {
        return Started::UnknownCustomer;
    };
    match claims.claim(item.event_id, x.claim_now, x.claim_until) {
        EmailClaim::AlreadySent => Started::AlreadySent(order),
        EmailClaim::InProgress => Started::InProgress,
        EmailClaim::Claimed => Started::Send {
            order,
            customer: Box::new(customer.clone()),
        },
    }
}

/// What the batch knows of one e-mail send record.
#[derive(Debug, Clone, Copy)]
struct SendRecord {
    /// Whether the record is stored (else claiming it inserts it).
    stored: bool,
    /// Whether the e-mail went out (final).
    sent: bool,
    /// Until when a delivery holds the send, if one does.
    claimed_until: Option<DateTime<Utc>>,
}

/// The start transaction's view of the send records of its events, and the claims it made.
#[derive(Debug, Default)]
struct Claims {
    records: HashMap<Id, SendRecord>,
    /// Events whose send record is inserted, claimed.
    inserts: Vec<Id>,
    /// Events whose stored, free or expired record is taken over.
    takeovers: Vec<Id>,
}

impl Claims {
    fn from_docs(docs: &[Document]) -> StoreResult<Self> {
        let mut records = HashMap::new();
        for d in docs {
            let record = SendRecord {
                stored: true,
                sent: is_sent(d),
                claimed_until: get_opt_time(d, "claimedUntil")?,
            };
            records.insert(get_id(d, "_id")?, record);
        }
        Ok(Self {
            records,
            ..Self::default()
        })
    }

    /// Claims the send of `event_id` until `until` under the rules of `inbox.rs`: a sent
    /// record is final, an unexpired claim excludes every other, anything else is taken.
    fn claim(&mut self, event_id: Id, now: DateTime<Utc>, until: DateTime<Utc>) -> EmailClaim {
        let record = self.records.entry(event_id).or_insert(SendRecord {
            stored: false,
            sent: false,
            claimed_until: None,
        });
        if record.sent {
            return EmailClaim::AlreadySent;
        }
        if record.claimed_until.is_some_and(|t| t > now) {
            return EmailClaim::InProgress;
        }
        let writes = if record.stored {
            &mut self.takeovers
        } else {
            &mut self.inserts
        };
        if !writes.contains(&event_id) {
            writes.push(event_id);
        }
        record.claimed_until = Some(until);
        EmailClaim::Claimed
    }

    /// Writes the claims made: one conditional update of the taken-over records, one insert of
    /// the new ones.
    async fn write(&self, s: &mut ClientSession, x: &Starting<'_>) -> DbResult<()> {
        if !self.takeovers.is_empty() {
            let mut free = doc! { "_id": among(&self.takeovers) };
            free.extend(claimable(x.claim_now));
            let result =
                x.c.email_sends
                    .update_many(free, doc! { "$set": claim_set(x.owner, x.claim_until) })
                    .session(&mut *s)
                    .await?;
            all_matched(
                result.matched_count,
                self.takeovers.len(),
                "an e-mail claim",
            )?;
        }
        if !self.inserts.is_empty() {
            let docs = self
                .inserts
                .iter()
                .map(|id| claim_doc(*id, x.owner, x.claim_until));
            x.c.email_sends.insert_many(docs).session(&mut *s).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::storage::mongo::inbox::sent_doc;

    #[test]
    fn claims_in_a_batch_follow_the_single_event_rules() {
        let t = DateTime::from_timestamp_millis(1_767_268_800_000).unwrap();
        let until = t + Duration::seconds(30);
        let (sent, held, expired, new) = (Id::new(), Id::new(), Id::new(), Id::new());
        let docs = [
            sent_doc(sent, "<s@orderd>", t),
            claim_doc(held, "c-0", t + Duration::milliseconds(1)),
            claim_doc(expired, "c-0", t),
        ];
        let mut claims = Claims::from_docs(&docs).unwrap();

        assert_eq!(claims.claim(sent, t, until), EmailClaim::AlreadySent);
        assert_eq!(claims.claim(held, t, until), EmailClaim::InProgress);
        assert_eq!(claims.claim(expired, t, until), EmailClaim::Claimed);
        assert_eq!(claims.claim(new, t, until), EmailClaim::Claimed);
        // The same event again in the batch finds this batch's own claim.
        assert_eq!(claims.claim(new, t, until), EmailClaim::InProgress);
        assert_eq!(claims.claim(expired, t, until), EmailClaim::InProgress);
        assert_eq!(
            (claims.inserts, claims.takeovers),
            (vec![new], vec![expired])
        );
    }

    #[test]
    fn a_claim_that_ends_at_once_is_written_once_however_often_it_is_taken() {
        let t = DateTime::from_timestamp_millis(1_767_268_800_000).unwrap();
        let event = Id::new();
        let mut claims = Claims::default();

        assert_eq!(claims.claim(event, t, t), EmailClaim::Claimed);
        assert_eq!(claims.claim(event, t, t), EmailClaim::Claimed);
        assert_eq!(claims.inserts, vec![event]);
        assert!(claims.takeovers.is_empty());
    }
}

//! Failed orders: listing orders by status (every customer's, or one customer's), and the
//! retry of a failed order — pending again, its original `order.created` event re-published
//! (attempts reset, re-publication counted, inbox entry gone, e-mail send record kept), and
//! refused for any other status.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use orderd::domain::{Id, Order, OrderStatus, OutboxStatus};
use orderd::storage::{Conflict, EmailClaim, Store, StoreError};

use super::{Harness, now, order_of, outbox_total, place, stock_of, stocked};

const LEASE: StdDuration = StdDuration::from_secs(30);

fn ids(orders: &[Order]) -> Vec<Id> {
    orders.iter().map(|o| o.id).collect()
}

/// Moves a pending order to `failed` the way the consumer gives up on one.
async fn fail(store: &Arc<dyn Store>, id: Id, at: DateTime<Utc>) -> Order {
    store
        .transition_order(id, &[OrderStatus::Pending], OrderStatus::Processing, at)
        .await
        .unwrap();
    store
        .transition_order(id, &[OrderStatus::Processing], OrderStatus::Failed, at)
        .await
        .unwrap()
}

pub async fn orders_in_one_status_come_newest_first_across_customers_page_by_page(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let (ada, bob) = (Id::new(), Id::new());
    let (mut failed, mut pending) = (Vec::new(), Vec::new());
    for buyer in [ada, bob, ada, bob, bob] {
        // Written as failed, so that no backend needs a transition to get there.
        let (mut order, takes, event) = order_of(buyer, &[(&tea, 1)]);
        order.mark(OrderStatus::Failed, order.created_at);
        store
            .place_order(&order, &takes, &event, None)
            .await
            .unwrap();
        failed.push(order.id);
        // Orders in another status, between them, are not listed.
        pending.push(place(&store, buyer, &[(&tea, 1)]).await.0.id);
    }
    failed.reverse();
    pending.reverse();

    let first = store
        .orders_by_status(OrderStatus::Failed, None, None, 2)
        .await
        .unwrap();
    let second = store
        .orders_by_status(OrderStatus::Failed, None, Some(first[1].id), 2)
        .await
        .unwrap();
    let third = store
        .orders_by_status(OrderStatus::Failed, None, Some(second[1].id), 2)
        .await
        .unwrap();

    assert_eq!(ids(&first), failed[0..2]);
    assert_eq!(ids(&second), failed[2..4]);
    assert_eq!(ids(&third), failed[4..5]);
    assert!(
        [&first, &second, &third]
            .iter()
            .all(|page| page.iter().all(|o| o.status == OrderStatus::Failed))
    );
    let all_pending = store
        .orders_by_status(OrderStatus::Pending, None, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&all_pending), pending);
    let none = store
        .orders_by_status(OrderStatus::Cancelled, None, None, 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

pub async fn a_customers_orders_in_one_status_are_only_theirs(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let (ada, bob) = (Id::new(), Id::new());
    let t = now();
    let mut adas_failed = Vec::new();
    for buyer in [ada, bob, ada, bob] {
        let (order, _) = place(&store, buyer, &[(&tea, 1)]).await;
        fail(&store, order.id, t).await;
        if buyer == ada {
            adas_failed.push(order.id);
        }
    }
    let (adas_pending, _) = place(&store, ada, &[(&tea, 1)]).await;
    adas_failed.reverse();

    let failed = store
        .orders_by_status(OrderStatus::Failed, Some(ada), None, 10)
        .await
        .unwrap();
    let first = store
        .orders_by_status(OrderStatus::Failed, Some(ada), None, 1)
        .await
        .unwrap();
    let rest = store
        .orders_by_status(OrderStatus::Failed, Some(ada), Some(first[0].id), 10)
        .await
        .unwrap();
    let pending = store
        .orders_by_status(OrderStatus::Pending, Some(ada), None, 10)
        .await
        .unwrap();

    assert_eq!(ids(&failed), adas_failed);
    assert_eq!(ids(&first), adas_failed[..1]);
    assert_eq!(ids(&rest), adas_failed[1..]);
    assert_eq!(ids(&pending), vec![adas_pending.id]);
    let everyones = store
        .orders_by_status(OrderStatus::Failed, None, None, 10)
        .await
        .unwrap();
    assert_eq!(everyones.len(), 4);
}

pub async fn retrying_a_failed_order_makes_it_pending_and_republishes_its_created_event(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (mut order, created) = place(&store, Id::new(), &[(&tea, 2)]).await;
    let t0 = now() + Duration::seconds(1);
    // Published after one failed attempt; its confirmation was sent and recorded; a later
    // delivery found the order failed and recorded the event as processed.
    store.claim_outbox("relay", t0, LEASE, 10).await.unwrap();
    store
        .mark_failed(created.id, "relay", "queue down", t0, false)
        .await
        .unwrap();
    store.claim_outbox("relay", t0, LEASE, 10).await.unwrap();
    store
        .mark_published(&[created.id], "relay", t0)
        .await
        .unwrap();
    let until = t0 + Duration::seconds(60);
    assert_eq!(
        store
            .claim_email(created.id, "consumer", t0, until)
            .await
            .unwrap(),
        EmailClaim::Claimed
    );
    store
        .finish_email(created.id, "<sent@orderd>", t0)
        .await
        .unwrap();
    fail(&store, order.id, t0).await;
    store.inbox_record(created.id, t0).await.unwrap();
    let t1 = t0 + Duration::seconds(1);

    let retried = store.retry_failed_order(order.id, t1).await.unwrap();

    order.mark(OrderStatus::Processing, t0);
    order.mark(OrderStatus::Failed, t0);
    order.mark(OrderStatus::Pending, t1);
    assert_eq!(retried, order);
    assert_eq!(retried.failed_at, None);
    assert_eq!(store.order(order.id).await.unwrap(), Some(order.clone()));
    let pending = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let event = &pending[0];
    assert_eq!(
        (event.id, event.event_type, event.order_id),
        (created.id, created.event_type, order.id)
    );
    assert_eq!(
        (event.attempts, event.next_attempt_at, event.republished),
        (0, t1, 1)
    );
    assert_eq!(event.dedup_id(), format!("{}-r1", created.id.to_hex()));
    assert_eq!(outbox_total(&store).await, 1, "no new event is written");
    // Any relay may publish it at once; the consumer handles it anew, but the e-mail that was
    // sent stays sent.
    let claimed = store.claim_outbox("relay-2", t1, LEASE, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        [created.id]
    );
    assert!(!store.inbox_contains(created.id).await.unwrap());
    assert_eq!(
        store
            .claim_email(created.id, "consumer-2", t1, until)
            .await
            .unwrap(),
        EmailClaim::AlreadySent
    );
    assert_eq!(stock_of(&store, tea.id).await, 8, "a retry takes no stock");

    // Failed again and retried again: the next re-publication is counted.
    store
        .mark_published(&[created.id], "relay-2", t1)
        .await
        .unwrap();
    fail(&store, order.id, t1).await;
    store.retry_failed_order(order.id, t1).await.unwrap();
    let pending = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(pending[0].republished, 2);
}

pub async fn only_a_failed_order_can_be_retried(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (order, created) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t = now();

    let err = store.retry_failed_order(order.id, t).await.unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::OrderStatus(OrderStatus::Pending))
        ),
        "{err:?}"
    );
    assert_eq!(store.order(order.id).await.unwrap(), Some(order));
    assert_eq!(
        store.list_outbox(OutboxStatus::Pending, 10).await.unwrap(),
        vec![created],
        "the event is untouched"
    );
    let err = store.retry_failed_order(Id::new(), t).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

//! Orders: the order transaction (stock, order, event, idempotency record), its refusals
//! writing nothing, the oversell race, transitions, cancellation, listing, counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use orderd::domain::{EventType, Id, OrderStatus, OutboxEvent, OutboxStatus};
use orderd::storage::{Conflict, IdempotencyRecord, StoreError};

use super::{Harness, now, order_of, order_total, outbox_total, place, stock_of, stocked, user};

fn record(user_id: Id, key: &str, created_at: chrono::DateTime<chrono::Utc>) -> IdempotencyRecord {
    IdempotencyRecord {
        user_id,
        key: key.to_owned(),
        request_hash: [7; 32],
        status: 201,
        response_body: br#"{"id":"x"}"#.to_vec(),
        created_at,
    }
}

pub async fn placing_an_order_takes_stock_and_stores_order_event_and_idempotency_record(
    h: &dyn Harness,
) {
    let store = h.store();
    let ps = stocked(&store, 2, 10).await;
    let buyer = Id::new();
    let (order, takes, event) = order_of(buyer, &[(&ps[0], 3), (&ps[1], 1)]);
    let rec = record(buyer, "key-1", now());

    store
        .place_order(&order, &takes, &event, Some(&rec))
        .await
        .unwrap();

    assert_eq!(stock_of(&store, ps[0].id).await, 7);
    assert_eq!(stock_of(&store, ps[1].id).await, 9);
    assert_eq!(store.order(order.id).await.unwrap(), Some(order));
    assert_eq!(
        store.list_outbox(OutboxStatus::Pending, 10).await.unwrap(),
        vec![event]
    );
    let stored = store
        .idempotency_record(buyer, "key-1", StdDuration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(stored, Some(rec));
}

pub async fn a_short_line_refuses_the_order_naming_every_short_product_and_writing_nothing(
    h: &dyn Harness,
) {
    let store = h.store();
    let plenty = stocked(&store, 1, 5).await.remove(0);
    let one = stocked(&store, 1, 1).await.remove(0);
    let none = stocked(&store, 1, 0).await.remove(0);
    let buyer = Id::new();
    let (order, takes, event) = order_of(buyer, &[(&plenty, 2), (&one, 2), (&none, 1)]);
    let rec = record(buyer, "short", now());

    let err = store
        .place_order(&order, &takes, &event, Some(&rec))
        .await
        .unwrap_err();

    let StoreError::InsufficientStock(mut short) = err else {
        panic!("expected InsufficientStock, got {err:?}")
    };
    short.sort();
    let mut expected = vec![one.id, none.id];
    expected.sort();
    assert_eq!(short, expected);
    assert_eq!(stock_of(&store, plenty.id).await, 5);
    assert_eq!(stock_of(&store, one.id).await, 1);
    assert_eq!(stock_of(&store, none.id).await, 0);
    assert_eq!(store.order(order.id).await.unwrap(), None);
    assert_eq!(order_total(&store).await, 0);
    assert_eq!(outbox_total(&store).await, 0);
    assert_eq!(
        store
            .idempotency_record(buyer, "short", StdDuration::from_secs(3600))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_taken_idempotency_key_refuses_the_order_and_writes_nothing(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let buyer = Id::new();
    let (first, takes, event) = order_of(buyer, &[(&tea, 1)]);
    let rec = record(buyer, "same-key", now());
    store
        .place_order(&first, &takes, &event, Some(&rec))
        .await
        .unwrap();

    let (second, takes, event) = order_of(buyer, &[(&tea, 4)]);
    let mut replay = record(buyer, "same-key", now());
    replay.request_hash = [9; 32];
    let err = store
        .place_order(&second, &takes, &event, Some(&replay))
        .await
        .unwrap_err();

    assert!(
        matches!(err, StoreError::Conflict(Conflict::IdempotencyKeyTaken)),
        "{err:?}"
    );
    assert_eq!(stock_of(&store, tea.id).await, 9);
    assert_eq!(store.order(second.id).await.unwrap(), None);
    assert_eq!(
        (order_total(&store).await, outbox_total(&store).await),
        (1, 1)
    );
    let kept = store
        .idempotency_record(buyer, "same-key", StdDuration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(kept, Some(rec));
    // Keys belong to one user: another user may use the same one.
    let (other, takes, event) = order_of(Id::new(), &[(&tea, 1)]);
    let theirs = record(other.user_id, "same-key", now());
    store
        .place_order(&other, &takes, &event, Some(&theirs))
        .await
        .unwrap();
}

pub async fn an_idempotency_record_is_returned_only_while_younger_than_the_max_age(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let buyer = Id::new();
    let (order, takes, event) = order_of(buyer, &[(&tea, 1)]);
    let rec = record(buyer, "aged", now() - Duration::hours(2));
    store
        .place_order(&order, &takes, &event, Some(&rec))
        .await
        .unwrap();

    let within = store
        .idempotency_record(buyer, "aged", StdDuration::from_secs(3 * 3600))
        .await
        .unwrap();
    let beyond = store
        .idempotency_record(buyer, "aged", StdDuration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(within, Some(rec));
    assert_eq!(beyond, None);
}

pub async fn two_hundred_concurrent_orders_never_oversell_fifty_units(h: &dyn Harness) {
    let store = h.store();
    let tea = Arc::new(stocked(&store, 1, 50).await.remove(0));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (store, tea) = (Arc::clone(&store), Arc::clone(&tea));
            tokio::spawn(async move {
                let (order, takes, event) = order_of(Id::new(), &[(&tea, 1)]);
                store.place_order(&order, &takes, &event, None).await
            })
        })
        .collect();
    let (mut ok, mut short) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::InsufficientStock(ids)) => {
                assert_eq!(ids, vec![tea.id]);
                short += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!((ok, short), (50, 150));
    assert_eq!(stock_of(&store, tea.id).await, 0);
    assert_eq!(order_total(&store).await, 50);
    assert_eq!(store.count_outbox(OutboxStatus::Pending).await.unwrap(), 50);
}

pub async fn allowed_transitions_move_the_order_and_stamp_the_time(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (mut order, _) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t1 = now() + Duration::seconds(1);
    let t2 = t1 + Duration::seconds(1);

    let processing = store
        .transition_order(
            order.id,
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            t1,
        )
        .await
        .unwrap();
    order.mark(OrderStatus::Processing, t1);
    assert_eq!(processing, order);
    let processed = store
        .transition_order(
            order.id,
            &[OrderStatus::Processing],
            OrderStatus::Processed,
            t2,
        )
        .await
        .unwrap();
    order.mark(OrderStatus::Processed, t2);
    assert_eq!(processed, order);

    assert_eq!(store.order(order.id).await.unwrap(), Some(order.clone()));
    assert_eq!(order.processing_at, Some(t1));
    assert_eq!(order.processed_at, Some(t2));
}

pub async fn a_transition_from_another_status_is_a_conflict_naming_the_current_one(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (order, _) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t = now();

    let err = store
        .transition_order(
            order.id,
            &[OrderStatus::Processing],
            OrderStatus::Processed,
            t,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::OrderStatus(OrderStatus::Pending))
        ),
        "{err:?}"
    );
    assert_eq!(store.order(order.id).await.unwrap(), Some(order));
    let err = store
        .transition_order(
            Id::new(),
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            t,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn cancelling_restocks_and_writes_the_event_together(h: &dyn Harness) {
    let store = h.store();
    let ps = stocked(&store, 2, 10).await;
    let (mut order, _) = place(&store, Id::new(), &[(&ps[0], 3), (&ps[1], 2)]).await;
    let t = now() + Duration::seconds(1);
    let cancel = OutboxEvent::new(
        order.id,
        EventType::OrderCancelled,
        serde_json::json!({}),
        t,
    );
    let sources = OrderStatus::sources_of(OrderStatus::Cancelled);

    let cancelled = store
        .cancel_order(order.id, &sources, t, &cancel)
        .await
        .unwrap();

    order.mark(OrderStatus::Cancelled, t);
    assert_eq!(cancelled, order);
    assert_eq!(
        (
            stock_of(&store, ps[0].id).await,
            stock_of(&store, ps[1].id).await
        ),
        (10, 10)
    );
    let events = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], cancel);

    // A second cancellation is refused and gives nothing back twice.
    let again = OutboxEvent::new(
        order.id,
        EventType::OrderCancelled,
        serde_json::json!({}),
        t,
    );
    let err = store
        .cancel_order(order.id, &sources, t, &again)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::OrderStatus(OrderStatus::Cancelled))
        ),
        "{err:?}"
    );
    assert_eq!(
        (
            stock_of(&store, ps[0].id).await,
            stock_of(&store, ps[1].id).await
        ),
        (10, 10)
    );
    assert_eq!(outbox_total(&store).await, 2);
}

pub async fn a_users_orders_come_newest_first_page_by_page(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let ada = user();
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(place(&store, ada.id, &[(&tea, 1)]).await.0.id);
    }
    place(&store, Id::new(), &[(&tea, 1)]).await;
    placed.reverse();

    let first = store.orders_of_user(ada.id, None, 2).await.unwrap();
    let second = store
        .orders_of_user(ada.id, Some(first[1].id), 2)
        .await
        .unwrap();
    let third = store
        .orders_of_user(ada.id, Some(second[1].id), 2)
        .await
        .unwrap();

    let ids = |os: &[orderd::domain::Order]| os.iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), placed[0..2]);
    assert_eq!(ids(&second), placed[2..4]);
    assert_eq!(ids(&third), placed[4..5]);
    assert!(third.iter().all(|o| o.user_id == ada.id));
}

pub async fn orders_are_counted_by_status(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(place(&store, Id::new(), &[(&tea, 1)]).await.0.id);
    }
    let t = now();
    store
        .transition_order(ids[0], &[OrderStatus::Pending], OrderStatus::Processing, t)
        .await
        .unwrap();
    store
        .transition_order(ids[1], &[OrderStatus::Pending], OrderStatus::Processing, t)
        .await
        .unwrap();
    store
        .transition_order(ids[1], &[OrderStatus::Processing], OrderStatus::Failed, t)
        .await
        .unwrap();

    let counts: HashMap<OrderStatus, u64> =
        store.count_orders().await.unwrap().into_iter().collect();

    let count = |s| counts.get(&s).copied().unwrap_or(0);
    assert_eq!(count(OrderStatus::Pending), 2);
    assert_eq!(count(OrderStatus::Processing), 1);
    assert_eq!(count(OrderStatus::Failed), 1);
    assert_eq!(
        count(OrderStatus::Processed) + count(OrderStatus::Cancelled),
        0
    );
}

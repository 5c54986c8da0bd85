//! The consumer's batched port with batches whose items depend on each other, on an earlier
//! batch, or on a concurrent one: every backend must give the results that handling the items
//! one at a time, in order, would give.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use orderd::domain::{EventType, Id, OrderStatus};
use orderd::storage::{DeliveryStart, EmailClaim, Finish, Started};

use super::delivery::{customer_order, finish};
use super::{Harness, now, place, stocked};

pub async fn the_same_event_twice_in_one_batch_is_claimed_sent_and_processed_once(h: &dyn Harness) {
    let store = h.store();
    let (order, start) = customer_order(&store).await;
    let t = now();

    let started = store
        .start_deliveries(&[start, start], "c-1", t, t + Duration::seconds(30))
        .await
        .unwrap();

    match &started[0] {
        Started::Send { order: o, .. } => assert_eq!(o.status, OrderStatus::Processing),
        other => panic!("expected Send, got {other:?}"),
    }
    assert_eq!(started[1], Started::InProgress);
    let sent = |message_id: &str| {
        finish(
            start,
            Finish::Sent {
                message_id: message_id.into(),
            },
        )
    };
    let processed = store
        .finish_deliveries(&[sent("<1@orderd>"), sent("<2@orderd>")], "c-1", t)
        .await
        .unwrap();

    let moved = processed[0]
        .as_ref()
        .expect("the first item moved the order");
    assert_eq!(
        (moved.id, moved.status, moved.processed_at),
        (order.id, OrderStatus::Processed, Some(t))
    );
    assert_eq!(processed[1], None);
    assert!(store.inbox_contains(start.event_id).await.unwrap());
    let later = t + Duration::minutes(5);
    assert_eq!(
        store
            .claim_email(start.event_id, "c-2", later, later)
            .await
            .unwrap(),
        EmailClaim::AlreadySent
    );
}

pub async fn the_items_of_a_batch_are_handled_in_order_each_seeing_the_earlier_ones(
    h: &dyn Harness,
) {
    let store = h.store();
    let (order, created) = customer_order(&store).await;
    let other = DeliveryStart {
        event_id: Id::new(),
        order_id: order.id,
        kind: EventType::OrderCancelled,
    };
    let t = now();

    let started = store
        .start_deliveries(&[created, other], "c-1", t, t + Duration::seconds(30))
        .await
        .unwrap();

    // The second item finds the order as the first one left it.
    for got in &started {
        match got {
            Started::Send { order: o, .. } => {
                assert_eq!(
                    (o.status, o.processing_at),
                    (OrderStatus::Processing, Some(t))
                )
            }
            other => panic!("expected Send, got {other:?}"),
        }
    }
    let sent = |start: DeliveryStart, message_id: &str| {
        finish(
            start,
            Finish::Sent {
                message_id: message_id.into(),
            },
        )
    };
    let processed = store
        .finish_deliveries(
            &[sent(other, "<o@orderd>"), sent(created, "<c@orderd>")],
            "c-1",
            t,
        )
        .await
        .unwrap();
    // Only the `order.created` item moves the order on, whatever its place in the batch.
    assert_eq!(processed[0], None);
    let moved = processed[1]
        .as_ref()
        .expect("the created item moved the order");
    assert_eq!((moved.id, moved.status), (order.id, OrderStatus::Processed));
}

pub async fn a_batch_mixing_done_and_new_events_handles_each_on_its_own(h: &dyn Harness) {
    let store = h.store();
    let (done, start_done) = customer_order(&store).await;
    let (fresh, start_fresh) = customer_order(&store).await;
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (orphan, orphan_event) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let start_orphan = DeliveryStart {
        event_id: orphan_event.id,
        order_id: orphan.id,
        kind: EventType::OrderCreated,
    };
    let unknown = DeliveryStart {
        event_id: Id::new(),
        order_id: Id::new(),
        kind: EventType::OrderCreated,
    };
    let t = now();
    let until = t + Duration::seconds(30);
    store
        .start_deliveries(&[start_done], "c-0", t, until)
        .await
        .unwrap();
    let message = Finish::Sent {
        message_id: "<d@orderd>".into(),
    };
    store
        .finish_deliveries(&[finish(start_done, message)], "c-0", t)
        .await
        .unwrap();
    let t2 = t + Duration::seconds(1);

    let started = store
        .start_deliveries(
            &[start_done, start_fresh, start_orphan, unknown],
            "c-1",
            t2,
            until,
        )
        .await
        .unwrap();

    assert_eq!(started[0], Started::AlreadyDone);
    assert!(matches!(&started[1], Started::Send { order, .. } if order.id == fresh.id));
    assert_eq!(started[2], Started::UnknownCustomer);
    assert_eq!(started[3], Started::UnknownOrder);
    let processed = store
        .finish_deliveries(
            &[
                finish(start_done, Finish::NothingSent),
                finish(
                    start_fresh,
                    Finish::Sent {
                        message_id: "<f@orderd>".into(),
                    },
                ),
            ],
            "c-1",
            t2,
        )
        .await
        .unwrap();
    assert_eq!(processed[0], None);
    let moved = processed[1].as_ref().expect("the fresh order was moved");
    assert_eq!((moved.id, moved.processed_at), (fresh.id, Some(t2)));
    let stored = store.order(done.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.processed_at),
        (OrderStatus::Processed, Some(t))
    );
    assert!(store.inbox_contains(start_fresh.event_id).await.unwrap());
}

pub async fn concurrent_batches_of_the_same_events_claim_each_send_once(h: &dyn Harness) {
    let store = h.store();
    let mut starts = Vec::new();
    for _ in 0..6 {
        starts.push(customer_order(&store).await.1);
    }
    let t = now();
    let batches: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(&store);
            // Each delivery holds the events in another order.
            let mut batch = starts.clone();
            batch.rotate_left(n * 2);
            tokio::spawn(async move {
                let started = store
                    .start_deliveries(&batch, &format!("c-{n}"), t, t + Duration::seconds(30))
                    .await
                    .unwrap();
                batch.into_iter().zip(started).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut sends: HashMap<Id, usize> = HashMap::new();
    for batch in batches {
        for (start, started) in batch.await.unwrap() {
            match started {
                Started::Send { order, .. } => {
                    assert_eq!(order.status, OrderStatus::Processing);
                    *sends.entry(start.event_id).or_default() += 1;
                }
                Started::InProgress => {}
                other => panic!("expected Send or InProgress, got {other:?}"),
            }
        }
    }

    for start in &starts {
        assert_eq!(sends.get(&start.event_id), Some(&1), "{sends:?}");
        let order = store.order(start.order_id).await.unwrap().unwrap();
        assert_eq!(
            (order.status, order.processing_at),
            (OrderStatus::Processing, Some(t))
        );
    }
}

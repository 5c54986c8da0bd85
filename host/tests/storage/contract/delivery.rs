//! The consumer's batched port: starting and completing a batch of events.

use std::sync::Arc;

use chrono::Duration;
use orderd::domain::{EventType, Id, Order, OrderStatus};
use orderd::storage::{DeliveryFinish, DeliveryStart, EmailClaim, Finish, Started, Store};

use super::{Harness, now, place, stocked, user};

/// A customer with one pending order; the order and its `order.created` start item.
pub async fn customer_order(store: &Arc<dyn Store>) -> (Order, DeliveryStart) {
    let customer = user();
    store.create_user(&customer).await.unwrap();
    let tea = stocked(store, 1, 10).await.remove(0);
    let (order, event) = place(store, customer.id, &[(&tea, 1)]).await;
    let start = DeliveryStart {
        event_id: event.id,
        order_id: order.id,
        kind: EventType::OrderCreated,
    };
    (order, start)
}

pub fn finish(start: DeliveryStart, outcome: Finish) -> DeliveryFinish {
    DeliveryFinish {
        event_id: start.event_id,
        order_id: start.order_id,
        kind: start.kind,
        outcome,
    }
}

pub async fn a_started_batch_moves_orders_to_processing_and_claims_their_emails(h: &dyn Harness) {
    let store = h.store();
    let (a, start_a) = customer_order(&store).await;
    let (b, start_b) = customer_order(&store).await;
    let unknown = DeliveryStart {
        event_id: Id::new(),
        order_id: Id::new(),
        kind: EventType::OrderCreated,
    };
    let t = now();
    let until = t + Duration::seconds(30);

    let started = store
        .start_deliveries(&[start_a, unknown, start_b], "c-1", t, until)
        .await
        .unwrap();

    assert_eq!(started.len(), 3);
    for (got, order) in [(&started[0], &a), (&started[2], &b)] {
        match got {
            Started::Send {
                order: started,
                customer,
            } => {
                assert_eq!(started.id, order.id);
                assert_eq!(started.status, OrderStatus::Processing);
                assert_eq!(started.processing_at, Some(t));
                assert_eq!(customer.id, order.user_id);
            }
            other => panic!("expected Send, got {other:?}"),
        }
    }
    assert_eq!(started[1], Started::UnknownOrder);
    let stored = store.order(a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::Processing);
    // The claims exclude a concurrent delivery of the same events.
    let again = store
        .start_deliveries(&[start_a, start_b], "c-2", t, until)
        .await
        .unwrap();
    assert_eq!(again, vec![Started::InProgress, Started::InProgress]);
}

pub async fn a_completed_batch_records_sends_processes_orders_and_fills_the_inbox(h: &dyn Harness) {
    let store = h.store();
    let (a, start_a) = customer_order(&store).await;
    let (b, start_b) = customer_order(&store).await;
    let t = now();
    let until = t + Duration::seconds(30);
    store
        .start_deliveries(&[start_a, start_b], "c-1", t, until)
        .await
        .unwrap();
    let t2 = t + Duration::seconds(1);

    let processed = store
        .finish_deliveries(
            &[
                finish(
                    start_a,
                    Finish::Sent {
                        message_id: "<a@orderd>".into(),
                    },
                ),
                finish(start_b, Finish::Release),
            ],
            "c-1",
            t2,
        )
        .await
        .unwrap();

    let done = processed[0].as_ref().expect("a was processed by this call");
    assert_eq!((done.id, done.status), (a.id, OrderStatus::Processed));
    assert_eq!(done.processed_at, Some(t2));
    assert_eq!(processed[1], None);
    assert!(store.inbox_contains(start_a.event_id).await.unwrap());
    assert!(!store.inbox_contains(start_b.event_id).await.unwrap());
    let b_now = store.order(b.id).await.unwrap().unwrap();
    assert_eq!(b_now.status, OrderStatus::Processing);

    // The processed event is done; the released one may be claimed again at once.
    let again = store
        .start_deliveries(&[start_a, start_b], "c-2", t2, until)
        .await
        .unwrap();
    assert_eq!(again[0], Started::AlreadyDone);
    assert!(matches!(again[1], Started::Send { .. }), "{:?}", again[1]);
}

pub async fn a_kept_claim_blocks_other_deliveries_until_it_expires_then_a_sent_email_is_never_resent(
    h: &dyn Harness,
) {
    let store = h.store();
    let (order, start) = customer_order(&store).await;
    let t = now();
    let until = t + Duration::seconds(30);
    store
        .start_deliveries(&[start], "c-1", t, until)
        .await
        .unwrap();
    let kept = store
        .finish_deliveries(&[finish(start, Finish::KeepClaim)], "c-1", t)
        .await
        .unwrap();
    assert_eq!(kept, vec![None]);

    let during = store
        .start_deliveries(&[start], "c-2", until - Duration::milliseconds(1), until)
        .await
        .unwrap();
    assert_eq!(during, vec![Started::InProgress]);

    let later = until + Duration::seconds(30);
    let after = store
        .start_deliveries(&[start], "c-2", until, later)
        .await
        .unwrap();
    assert!(matches!(after[0], Started::Send { .. }), "{:?}", after[0]);
    store
        .finish_deliveries(
            &[finish(
                start,
                Finish::Sent {
                    message_id: "<x@orderd>".into(),
                },
            )],
            "c-2",
            until,
        )
        .await
        .unwrap();
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().status,
        OrderStatus::Processed
    );
    // Even if the inbox entry were gone, the send record keeps the e-mail from going twice.
    let replay = store
        .start_deliveries(&[start], "c-3", later, later + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(replay, vec![Started::AlreadyDone]);
    assert_eq!(
        store
            .claim_email(start.event_id, "c-3", later, later)
            .await
            .unwrap(),
        EmailClaim::AlreadySent
    );
}

pub async fn an_order_cancelled_before_its_confirmation_gets_none_and_its_cancellation_gets_one(
    h: &dyn Harness,
) {
    let store = h.store();
    let (order, start) = customer_order(&store).await;
    let cancelled_event = orderd::domain::OutboxEvent::new(
        order.id,
        EventType::OrderCancelled,
        serde_json::json!({}),
        now(),
    );
    store
        .cancel_order(order.id, &[OrderStatus::Pending], now(), &cancelled_event)
        .await
        .unwrap();
    let cancel = DeliveryStart {
        event_id: cancelled_event.id,
        order_id: order.id,
        kind: EventType::OrderCancelled,
    };
    let t = now();
    let started = store
        .start_deliveries(&[start, cancel], "c-1", t, t + Duration::seconds(30))
        .await
        .unwrap();

    match &started[0] {
        Started::NothingToSend(o) => assert_eq!(o.status, OrderStatus::Cancelled),
        other => panic!("expected NothingToSend, got {other:?}"),
    }
    assert!(
        matches!(started[1], Started::Send { .. }),
        "{:?}",
        started[1]
    );
    let processed = store
        .finish_deliveries(
            &[
                finish(start, Finish::NothingSent),
                finish(
                    cancel,
                    Finish::Sent {
                        message_id: "<c@orderd>".into(),
                    },
                ),
            ],
            "c-1",
            t,
        )
        .await
        .unwrap();
    assert_eq!(processed, vec![None, None]);
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert!(store.inbox_contains(start.event_id).await.unwrap());
    assert!(store.inbox_contains(cancel.event_id).await.unwrap());
}

pub async fn completing_a_batch_twice_changes_nothing_the_second_time(h: &dyn Harness) {
    let store = h.store();
    let (order, start) = customer_order(&store).await;
    let t = now();
    store
        .start_deliveries(&[start], "c-1", t, t + Duration::seconds(30))
        .await
        .unwrap();
    let sent = finish(
        start,
        Finish::Sent {
            message_id: "<once@orderd>".into(),
        },
    );
    let first = store
        .finish_deliveries(std::slice::from_ref(&sent), "c-1", t)
        .await
        .unwrap();
    let second = store
        .finish_deliveries(std::slice::from_ref(&sent), "c-1", t + Duration::seconds(5))
        .await
        .unwrap();

    assert!(first[0].is_some());
    assert_eq!(second, vec![None]);
    let stored = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.processed_at, Some(t));
}

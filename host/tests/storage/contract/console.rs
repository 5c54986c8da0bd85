//! The operator console's reads: running totals of placed and processed orders, and an
//! order's trail of outbox events with the e-mail each one sent.

use std::time::Duration as StdDuration;

use chrono::{Duration, SubsecRound};
use orderd::domain::{EventType, Id, OrderStatus, OutboxEvent, OutboxStatus};
use orderd::storage::{EmailClaim, OrderCounts};

use super::{Harness, now, order_of, place, stocked};

pub async fn order_counts_are_the_orders_placed_and_processed_in_the_window(h: &dyn Harness) {
    let store = h.store();
    let second = |t: chrono::DateTime<chrono::Utc>| t.trunc_subsecs(0);
    let base = second(now());
    let (from, to) = (base - Duration::seconds(10), base + Duration::seconds(10));
    assert_eq!(
        store.order_counts(from, to).await.unwrap(),
        OrderCounts::default()
    );
    let tea = stocked(&store, 1, 100).await.remove(0);
    let buyer = Id::new();
    // Placed now, written in their final states (no backend needs a transition to get there):
    // two pending, one processed in the window, one processed in the window and later
    // cancelled, one processed before the window.
    let inside = base - Duration::seconds(5);
    let before = base - Duration::seconds(20);
    for step in 0..5 {
        let (mut order, takes, event) = order_of(buyer, &[(&tea, 1)]);
        match step {
            2 => order.mark(OrderStatus::Processed, inside),
            3 => {
                order.mark(OrderStatus::Processed, inside);
                order.mark(OrderStatus::Cancelled, inside);
            }
            4 => order.mark(OrderStatus::Processed, before),
            _ => {}
        }
        store
            .place_order(&order, &takes, &event, None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.order_counts(from, to).await.unwrap(),
        OrderCounts {
            placed: 5,
            processed: 2
        }
    );
    // The window before: none placed (their ids are from now), one processed.
    assert_eq!(
        store
            .order_counts(base - Duration::seconds(30), from)
            .await
            .unwrap(),
        OrderCounts {
            placed: 0,
            processed: 1
        }
    );
    // Windows meet without overlap: the end is not part of a window.
    assert_eq!(
        store
            .order_counts(to, to + Duration::seconds(10))
            .await
            .unwrap(),
        OrderCounts::default()
    );
}

pub async fn an_orders_trail_is_its_events_in_write_order_each_with_the_email_it_sent(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let buyer = Id::new();
    let (order, created) = place(&store, buyer, &[(&tea, 1)]).await;
    // Another order's events are not part of this trail.
    let (_, other) = place(&store, buyer, &[(&tea, 1)]).await;

    let trail = store.order_trail(order.id).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].event.id, created.id);
    assert_eq!(trail[0].event.status, OutboxStatus::Pending);
    assert_eq!(trail[0].email, None);

    // The confirmation is claimed and sent; the other order's e-mail is only claimed.
    let t0 = now();
    let until = t0 + Duration::seconds(30);
    for event in [created.id, other.id] {
        assert_eq!(
            store
                .claim_email(event, "consumer", t0, until)
                .await
                .unwrap(),
            EmailClaim::Claimed
        );
    }
    store
        .finish_email(created.id, "<confirmation@orderd>", t0)
        .await
        .unwrap();
    let claimed = store
        .claim_outbox("relay", t0, StdDuration::from_secs(30), 10)
        .await
        .unwrap();
    assert!(claimed.iter().any(|e| e.id == created.id));
    store
        .mark_published(&[created.id], "relay", t0)
        .await
        .unwrap();
    let t1 = t0 + Duration::seconds(1);
    let cancel = OutboxEvent::new(
        order.id,
        EventType::OrderCancelled,
        serde_json::json!({}),
        t1,
    );
    store
        .cancel_order(
            order.id,
            &OrderStatus::sources_of(OrderStatus::Cancelled),
            t1,
            &cancel,
        )
        .await
        .unwrap();

    let trail = store.order_trail(order.id).await.unwrap();
    let kinds: Vec<(Id, EventType)> = trail
        .iter()
        .map(|t| (t.event.id, t.event.event_type))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (created.id, EventType::OrderCreated),
            (cancel.id, EventType::OrderCancelled)
        ]
    );
    assert_eq!(trail[0].event.status, OutboxStatus::Published);
    assert_eq!(trail[0].event.published_at, Some(t0));
    let email = trail[0].email.as_ref().expect("the confirmation was sent");
    assert_eq!(email.message_id, "<confirmation@orderd>");
    assert_eq!(email.sent_at, t0);
    assert_eq!(
        trail[1].email, None,
        "the cancellation e-mail is not sent yet"
    );

    let other_trail = store.order_trail(other.order_id).await.unwrap();
    assert_eq!(other_trail.len(), 1);
    assert_eq!(other_trail[0].email, None, "a claim is not a sent e-mail");
    assert!(store.order_trail(Id::new()).await.unwrap().is_empty());
}

//! The operator console's reads: running totals of placed and processed orders, and an
//! order's trail of outbox events with the e-mail each one sent.

use std::time::Duration as StdDuration;

use chrono::Duration;
use orderd::domain::{EventType, Id, OrderStatus, OutboxEvent, OutboxStatus};
use orderd::storage::{EmailClaim, OrderTotals};

use super::{Harness, now, order_of, place, stocked};

pub async fn the_order_totals_count_every_placed_order_and_every_order_ever_processed(
    h: &dyn Harness,
) {
    let store = h.store();
    assert_eq!(store.order_totals().await.unwrap(), OrderTotals::default());
    let tea = stocked(&store, 1, 100).await.remove(0);
    let buyer = Id::new();
    let t = now();
    // Written in their final states, so that no backend needs a transition to get there: two
    // pending, one processed, one processed and later cancelled, one cancelled while pending.
    for step in 0..5 {
        let (mut order, takes, event) = order_of(buyer, &[(&tea, 1)]);
        match step {
            2 => order.mark(OrderStatus::Processed, t),
            3 => {
                order.mark(OrderStatus::Processed, t);
                order.mark(OrderStatus::Cancelled, t);
            }
            4 => order.mark(OrderStatus::Cancelled, t),
            _ => {}
        }
        store
            .place_order(&order, &takes, &event, None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.order_totals().await.unwrap(),
        OrderTotals {
            placed: 5,
            processed: 2
        }
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

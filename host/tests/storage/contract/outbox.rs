//! The outbox: leases, exclusive claims, per-order ordering, failures, dead events, retries,
//! counts.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use orderd::domain::{EventType, Id, OrderStatus, OutboxEvent, OutboxStatus, Product};
use orderd::storage::{Conflict, Store, StoreError};

use super::{Harness, now, order_of, place, stocked};

const LEASE: StdDuration = StdDuration::from_secs(30);

fn ids(events: &[OutboxEvent]) -> Vec<Id> {
    events.iter().map(|e| e.id).collect()
}

/// Places an order and cancels it: returns its (created, cancelled) events.
async fn placed_and_cancelled(store: &Arc<dyn Store>, tea: &Product) -> (OutboxEvent, OutboxEvent) {
    let (order, created) = place(store, Id::new(), &[(tea, 1)]).await;
    let cancel = OutboxEvent::new(
        order.id,
        EventType::OrderCancelled,
        serde_json::json!({}),
        now(),
    );
    store
        .cancel_order(order.id, &[OrderStatus::Pending], now(), &cancel)
        .await
        .unwrap();
    (created, cancel)
}

async fn claim(store: &Arc<dyn Store>, owner: &str, at: DateTime<Utc>) -> Vec<Id> {
    ids(&store.claim_outbox(owner, at, LEASE, 10).await.unwrap())
}

pub async fn a_claimed_event_is_leased_to_its_owner_until_the_lease_ends(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (_, event) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t = now() + Duration::seconds(1);

    let claimed = store.claim_outbox("relay-a", t, LEASE, 10).await.unwrap();
    assert_eq!(claimed, vec![event.clone()]);
    assert!(claim(&store, "relay-b", t).await.is_empty());
    let lease_end = t + Duration::seconds(30);
    assert!(
        claim(&store, "relay-b", lease_end - Duration::milliseconds(1))
            .await
            .is_empty()
    );
    // Someone who does not hold the lease cannot fail it either.
    store
        .mark_failed(event.id, "relay-c", "not mine", t, true)
        .await
        .unwrap();
    assert_eq!(store.count_outbox(OutboxStatus::Dead).await.unwrap(), 0);

    assert_eq!(claim(&store, "relay-b", lease_end).await, vec![event.id]);
    // The first owner lost the lease: its publish mark is ignored, the new owner's counts.
    store
        .mark_published(&[event.id], "relay-a", lease_end)
        .await
        .unwrap();
    assert_eq!(
        store.count_outbox(OutboxStatus::Published).await.unwrap(),
        0
    );
    store
        .mark_published(&[event.id], "relay-b", lease_end)
        .await
        .unwrap();
    let published = store
        .list_outbox(OutboxStatus::Published, 10)
        .await
        .unwrap();
    assert_eq!(ids(&published), vec![event.id]);
    assert_eq!(published[0].published_at, Some(lease_end));
    assert!(
        claim(&store, "relay-c", lease_end + Duration::hours(1))
            .await
            .is_empty()
    );
}

pub async fn concurrent_claims_never_hand_one_event_to_two_owners(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let mut written = HashSet::new();
    for _ in 0..40 {
        written.insert(place(&store, Id::new(), &[(&tea, 1)]).await.1.id);
    }
    let t = now() + Duration::seconds(1);

    let relays: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let owner = format!("relay-{n}");
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_outbox(&owner, t, LEASE, 3).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for relay in relays {
        for id in relay.await.unwrap() {
            assert!(seen.insert(id), "event {id} was handed out twice");
        }
    }

    assert_eq!(seen, written);
}

pub async fn the_events_of_one_order_are_claimed_in_write_order(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (created, cancelled) = placed_and_cancelled(&store, &tea).await;
    let (_, other) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t = now() + Duration::seconds(1);

    assert_eq!(claim(&store, "relay", t).await, vec![created.id, other.id]);
    store.mark_published(&[other.id], "relay", t).await.unwrap();
    // Backing off, the earlier event still holds back the later one.
    store
        .mark_failed(
            created.id,
            "relay",
            "queue down",
            t + Duration::seconds(60),
            false,
        )
        .await
        .unwrap();
    assert!(claim(&store, "relay", t).await.is_empty());
    assert_eq!(
        claim(&store, "relay", t + Duration::seconds(60)).await,
        vec![created.id]
    );
    store
        .mark_published(&[created.id], "relay", t)
        .await
        .unwrap();

    assert_eq!(
        claim(&store, "relay", t + Duration::seconds(60)).await,
        vec![cancelled.id]
    );
}

pub async fn a_dead_event_does_not_block_the_later_events_of_its_order(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (created, cancelled) = placed_and_cancelled(&store, &tea).await;
    let t = now() + Duration::seconds(1);
    assert_eq!(claim(&store, "relay", t).await, vec![created.id]);

    store
        .mark_failed(created.id, "relay", "poison", t, true)
        .await
        .unwrap();

    assert_eq!(claim(&store, "relay", t).await, vec![cancelled.id]);
}

pub async fn failed_events_back_off_then_die_and_a_retry_revives_them(h: &dyn Harness) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (_, event) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let t = now() + Duration::seconds(1);
    claim(&store, "relay", t).await;

    let retry_at = t + Duration::seconds(10);
    store
        .mark_failed(event.id, "relay", "queue down", retry_at, false)
        .await
        .unwrap();
    assert!(
        claim(&store, "relay", retry_at - Duration::milliseconds(1))
            .await
            .is_empty()
    );
    let again = store
        .claim_outbox("relay", retry_at, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("queue down"))
    );

    store
        .mark_failed(event.id, "relay", "still down", retry_at, true)
        .await
        .unwrap();
    let dead = store.list_outbox(OutboxStatus::Dead, 10).await.unwrap();
    assert_eq!(ids(&dead), vec![event.id]);
    assert_eq!((dead[0].status, dead[0].attempts), (OutboxStatus::Dead, 2));
    assert!(
        claim(&store, "relay", retry_at + Duration::days(1))
            .await
            .is_empty()
    );

    let revived_at = retry_at + Duration::seconds(5);
    store.retry_outbox(event.id, revived_at).await.unwrap();
    let pending = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(ids(&pending), vec![event.id]);
    assert_eq!(
        (pending[0].attempts, pending[0].next_attempt_at),
        (0, revived_at)
    );
    let err = store.retry_outbox(event.id, revived_at).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::OutboxStatus(OutboxStatus::Pending))
        ),
        "{err:?}"
    );
    let err = store.retry_outbox(Id::new(), revived_at).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(claim(&store, "relay", revived_at).await, vec![event.id]);
}

pub async fn outbox_counts_and_the_oldest_pending_time_follow_the_events(h: &dyn Harness) {
    let store = h.store();
    assert_eq!(store.oldest_pending().await.unwrap(), None);
    let tea = stocked(&store, 1, 10).await.remove(0);
    let t = now();
    let mut events = Vec::new();
    for age in [3, 2, 1] {
        let (order, takes, mut event) = order_of(Id::new(), &[(&tea, 1)]);
        event.occurred_at = t - Duration::seconds(age);
        event.next_attempt_at = event.occurred_at;
        store
            .place_order(&order, &takes, &event, None)
            .await
            .unwrap();
        events.push(event);
    }
    assert_eq!(
        store.oldest_pending().await.unwrap(),
        Some(t - Duration::seconds(3))
    );

    claim(&store, "relay", t).await;
    store
        .mark_published(&[events[0].id], "relay", t)
        .await
        .unwrap();
    store
        .mark_failed(events[1].id, "relay", "poison", t, true)
        .await
        .unwrap();

    assert_eq!(store.count_outbox(OutboxStatus::Pending).await.unwrap(), 1);
    assert_eq!(
        store.count_outbox(OutboxStatus::Published).await.unwrap(),
        1
    );
    assert_eq!(store.count_outbox(OutboxStatus::Dead).await.unwrap(), 1);
    assert_eq!(
        store.oldest_pending().await.unwrap(),
        Some(t - Duration::seconds(1))
    );
}

//! Sessions and abuse limits: the refresh grace window, token versions ("log out
//! everywhere", role changes) and the cap on a customer's open orders.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use orderd::domain::{Id, OrderStatus, Role};
use orderd::storage::{Conflict, RefreshGrant, RotateOutcome, StoreError};

use super::{Harness, now, order_of, order_total, outbox_total, place, stock_of, stocked, user};

const GRACE: StdDuration = StdDuration::from_secs(5);

fn hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..12].copy_from_slice(&Id::new().bytes());
    h[12..24].copy_from_slice(&Id::new().bytes());
    h
}

async fn family_of(store: &Arc<dyn orderd::storage::Store>, user_id: Id) -> RefreshGrant {
    let at = now();
    let grant = RefreshGrant {
        family_id: Id::new(),
        user_id,
        token_hash: hash(),
        issued_at: at,
        expires_at: at + Duration::hours(1),
    };
    store.create_family(&grant).await.unwrap();
    grant
}

pub async fn within_the_grace_window_a_rotated_token_yields_the_same_successor_and_after_it_revokes(
    h: &dyn Harness,
) {
    let store = h.store();
    let g = family_of(&store, Id::new()).await;
    let (next, t) = (hash(), now());
    let ttl = t + Duration::hours(1);
    let first = store
        .rotate_refresh_with_grace(g.token_hash, next, t, ttl, GRACE)
        .await
        .unwrap();
    assert!(matches!(first, RotateOutcome::Rotated { .. }), "{first:?}");
    // A second refresh with the same token asks for the same successor, a second later.
    let again = store
        .rotate_refresh_with_grace(g.token_hash, next, t + Duration::seconds(1), ttl, GRACE)
        .await
        .unwrap();
    assert_eq!(again, first, "the same successor within the grace window");
    // Asking for another successor is not a retry: reuse.
    let g2 = family_of(&store, Id::new()).await;
    let n2 = hash();
    store
        .rotate_refresh_with_grace(g2.token_hash, n2, t, ttl, GRACE)
        .await
        .unwrap();
    let other = store
        .rotate_refresh_with_grace(g2.token_hash, hash(), t, ttl, GRACE)
        .await
        .unwrap();
    assert!(matches!(other, RotateOutcome::Reused { .. }), "{other:?}");
    // After the window, the same request is reuse and ends the family.
    let late = store
        .rotate_refresh_with_grace(g.token_hash, next, t + Duration::seconds(6), ttl, GRACE)
        .await
        .unwrap();
    assert!(matches!(late, RotateOutcome::Reused { .. }), "{late:?}");
    assert_eq!(
        store
            .rotate_refresh_with_grace(next, hash(), t + Duration::seconds(6), ttl, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "the successor died with its family"
    );
}

pub async fn concurrent_rotations_asking_for_the_same_successor_both_get_it(h: &dyn Harness) {
    let store = h.store();
    for _ in 0..10 {
        let g = family_of(&store, Id::new()).await;
        let (next, t) = (hash(), now());
        let (s1, s2) = (Arc::clone(&store), Arc::clone(&store));
        let ttl = t + Duration::hours(1);
        let one = tokio::spawn(async move {
            s1.rotate_refresh_with_grace(g.token_hash, next, t, ttl, GRACE)
                .await
        });
        let two = tokio::spawn(async move {
            s2.rotate_refresh_with_grace(g.token_hash, next, t, ttl, GRACE)
                .await
        });
        let outcomes = [one.await.unwrap().unwrap(), two.await.unwrap().unwrap()];
        for outcome in &outcomes {
            assert!(
                matches!(outcome, RotateOutcome::Rotated { .. }),
                "{outcomes:?}"
            );
        }
        // The successor is live.
        let after = store
            .rotate_refresh_with_grace(next, hash(), t, ttl, GRACE)
            .await
            .unwrap();
        assert!(matches!(after, RotateOutcome::Rotated { .. }), "{after:?}");
    }
}

pub async fn ending_sessions_bumps_the_token_version_and_revokes_every_family_of_the_user(
    h: &dyn Harness,
) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();
    let state = store.session_state(ada.id).await.unwrap().unwrap();
    assert_eq!((state.role, state.token_version), (Role::Customer, 0));
    let (laptop, phone) = (
        family_of(&store, ada.id).await,
        family_of(&store, ada.id).await,
    );
    let bob = user();
    store.create_user(&bob).await.unwrap();
    let bobs = family_of(&store, bob.id).await;

    assert_eq!(store.end_sessions(ada.id, now()).await.unwrap(), 1);
    assert_eq!(
        store
            .session_state(ada.id)
            .await
            .unwrap()
            .unwrap()
            .token_version,
        1
    );
    let t = now();
    for g in [&laptop, &phone] {
        assert_eq!(
            store
                .rotate_refresh(g.token_hash, hash(), t, t + Duration::hours(1))
                .await
                .unwrap(),
            RotateOutcome::Invalid
        );
    }
    let untouched = store
        .rotate_refresh(bobs.token_hash, hash(), t, t + Duration::hours(1))
        .await
        .unwrap();
    assert!(
        matches!(untouched, RotateOutcome::Rotated { .. }),
        "another user's session"
    );

    store.set_role(ada.id, Role::Admin).await.unwrap();
    let state = store.session_state(ada.id).await.unwrap().unwrap();
    assert_eq!((state.role, state.token_version), (Role::Admin, 2));
    assert!(store.session_state(Id::new()).await.unwrap().is_none());
    assert!(matches!(
        store.end_sessions(Id::new(), now()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn an_order_beyond_the_open_order_cap_is_refused_and_writes_nothing(h: &dyn Harness) {
    let store = h.store();
    let products = stocked(&store, 1, 100).await;
    let tea = &products[0];
    let customer = Id::new();
    let (first, _) = place(&store, customer, &[(tea, 1)]).await;
    let (order, takes, event) = order_of(customer, &[(tea, 1)]);
    store
        .place_order_capped(&order, &takes, &event, None, Some(2))
        .await
        .expect("the second open order is within a cap of 2");
    let (orders_before, events_before) = (order_total(&store).await, outbox_total(&store).await);
    let (third, takes, event) = order_of(customer, &[(tea, 1)]);
    let refused = store
        .place_order_capped(&third, &takes, &event, None, Some(2))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(Conflict::OpenOrders))),
        "{refused:?}"
    );
    assert_eq!(order_total(&store).await, orders_before);
    assert_eq!(outbox_total(&store).await, events_before);
    assert_eq!(stock_of(&store, tea.id).await, 98);
    // Another customer is not affected.
    let (theirs, takes, event) = order_of(Id::new(), &[(tea, 1)]);
    store
        .place_order_capped(&theirs, &takes, &event, None, Some(2))
        .await
        .unwrap();
    // A processed or cancelled order is not open.
    store
        .transition_order(
            first.id,
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            now(),
        )
        .await
        .unwrap();
    store
        .transition_order(
            first.id,
            &[OrderStatus::Processing],
            OrderStatus::Processed,
            now(),
        )
        .await
        .unwrap();
    store
        .place_order_capped(&third, &takes_of(&third), &event_of(&third), None, Some(2))
        .await
        .expect("a processed order frees a place");
}

fn takes_of(order: &orderd::domain::Order) -> Vec<orderd::storage::StockTake> {
    order
        .items
        .iter()
        .map(|i| orderd::storage::StockTake {
            product_id: i.product_id,
            quantity: i.quantity,
        })
        .collect()
}

fn event_of(order: &orderd::domain::Order) -> orderd::domain::OutboxEvent {
    orderd::domain::OutboxEvent::new(
        order.id,
        orderd::domain::EventType::OrderCreated,
        serde_json::json!({"total": order.total}),
        now(),
    )
}

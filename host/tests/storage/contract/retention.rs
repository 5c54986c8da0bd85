//! Retention: a prune deletes exactly what is past its retention at the instant it is given —
//! refresh families expired for longer than the retention (with every token issued in them),
//! published events, e-mail send records and plugin versions — and keeps what must stay:
//! unpublished events, the event and send record of a failed order, a slot's active version
//! and its newest ones.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use orderd::domain::{Id, Order, OrderStatus, OutboxEvent, OutboxStatus, Product};
use orderd::storage::{
    EmailClaim, PluginVersion, Pruned, RefreshGrant, Retention, RotateOutcome, Store,
};

use super::{Harness, now, order_of, place, stocked};

const DAY: StdDuration = StdDuration::from_secs(24 * 3600);
const LEASE: StdDuration = StdDuration::from_secs(30);

fn retention() -> Retention {
    Retention {
        refresh_families: DAY,
        published_events: DAY,
        email_sends: DAY,
        plugin_versions: 30 * DAY,
        plugin_versions_kept: 1,
    }
}

fn hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..12].copy_from_slice(&Id::new().bytes());
    h[12..24].copy_from_slice(&Id::new().bytes());
    h
}

async fn family(store: &Arc<dyn Store>, at: DateTime<Utc>, expires_at: DateTime<Utc>) -> [u8; 32] {
    let token = hash();
    store
        .create_family(&RefreshGrant {
            family_id: Id::new(),
            user_id: Id::new(),
            token_hash: token,
            issued_at: at,
            expires_at,
        })
        .await
        .unwrap();
    token
}

/// A failed order of one `product`, written as failed (so no backend needs a transition to
/// get there), and its event.
async fn failed_order(store: &Arc<dyn Store>, product: &Product) -> (Order, OutboxEvent) {
    let (mut order, takes, event) = order_of(Id::new(), &[(product, 1)]);
    order.mark(OrderStatus::Failed, order.created_at);
    store
        .place_order(&order, &takes, &event, None)
        .await
        .unwrap();
    (order, event)
}

pub async fn a_prune_deletes_refresh_families_expired_longer_than_the_retention_with_their_tokens(
    h: &dyn Harness,
) {
    let store = h.store();
    let t0 = now();
    // Expires in an hour, after one rotation: two tokens.
    let first = family(&store, t0, t0 + Duration::hours(1)).await;
    let current = hash();
    store
        .rotate_refresh(first, current, t0, t0 + Duration::hours(1))
        .await
        .unwrap();
    // Expires in three hours.
    let later = family(&store, t0, t0 + Duration::hours(3)).await;

    // One minute short of a day past the first expiry: nothing goes.
    let early = t0 + Duration::hours(1) + Duration::days(1) - Duration::minutes(1);
    assert_eq!(
        store.prune(early, &retention()).await.unwrap(),
        Pruned::default()
    );
    // One minute past it: the first family and both its tokens go, the other stays.
    let due = t0 + Duration::hours(1) + Duration::days(1) + Duration::minutes(1);
    let pruned = store.prune(due, &retention()).await.unwrap();
    assert_eq!(
        (pruned.refresh_families, pruned.refresh_tokens),
        (1, 2),
        "{pruned:?}"
    );
    assert_eq!(
        store
            .rotate_refresh(current, hash(), t0, t0 + Duration::hours(1))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert!(matches!(
        store
            .rotate_refresh(later, hash(), t0, t0 + Duration::hours(3))
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
}

pub async fn a_prune_deletes_published_events_past_the_retention_but_never_unpublished_ones_or_a_failed_orders(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let (_, old) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let (_, recent) = place(&store, Id::new(), &[(&tea, 1)]).await;
    let (failed, failed_event) = failed_order(&store, &tea).await;
    let t0 = now();
    let claimed = store.claim_outbox("relay", t0, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    store
        .mark_published(&[old.id, failed_event.id], "relay", t0)
        .await
        .unwrap();
    store
        .mark_published(&[recent.id], "relay", t0 + Duration::hours(2))
        .await
        .unwrap();
    let (_, pending) = place(&store, Id::new(), &[(&tea, 1)]).await;

    let early = t0 + Duration::days(1) - Duration::minutes(1);
    assert_eq!(
        store.prune(early, &retention()).await.unwrap(),
        Pruned::default()
    );
    let due = t0 + Duration::days(1) + Duration::hours(1);
    let pruned = store.prune(due, &retention()).await.unwrap();
    assert_eq!(pruned.published_events, 1, "{pruned:?}");

    let published = store
        .list_outbox(OutboxStatus::Published, 10)
        .await
        .unwrap();
    let mut left: Vec<Id> = published.iter().map(|e| e.id).collect();
    left.sort();
    let mut expected = vec![recent.id, failed_event.id];
    expected.sort();
    assert_eq!(left, expected);
    let pending_left = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(
        pending_left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![pending.id]
    );
    // The failed order can still be retried: its event is there to publish again.
    store.retry_failed_order(failed.id, due).await.unwrap();
}

pub async fn a_prune_deletes_email_send_records_past_the_retention_but_not_a_failed_orders(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 100).await.remove(0);
    let t0 = now();
    let (old, recent, abandoned, held) = (Id::new(), Id::new(), Id::new(), Id::new());
    store.finish_email(old, "<old@orderd>", t0).await.unwrap();
    store
        .finish_email(recent, "<recent@orderd>", t0 + Duration::hours(2))
        .await
        .unwrap();
    // A claim that ran out long ago and one that runs past the cut-off.
    let claim = |id, until| {
        let store = store.clone();
        async move {
            store
                .claim_email(id, "consumer-a", t0, until)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        claim(abandoned, t0 + Duration::minutes(1)).await,
        EmailClaim::Claimed
    );
    assert_eq!(
        claim(held, t0 + Duration::hours(3)).await,
        EmailClaim::Claimed
    );
    let (_, failed_event) = failed_order(&store, &tea).await;
    store
        .finish_email(failed_event.id, "<failed@orderd>", t0)
        .await
        .unwrap();

    let early = t0 + Duration::days(1) - Duration::minutes(1);
    assert_eq!(
        store.prune(early, &retention()).await.unwrap(),
        Pruned::default()
    );
    let due = t0 + Duration::days(1) + Duration::hours(1);
    let pruned = store.prune(due, &retention()).await.unwrap();
    assert_eq!(pruned.email_sends, 2, "{pruned:?}");

    let by = |id| {
        let store = store.clone();
        async move {
            store
                .claim_email(
                    id,
                    "consumer-b",
                    t0 + Duration::minutes(2),
                    t0 + Duration::hours(4),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(by(recent).await, EmailClaim::AlreadySent);
    assert_eq!(by(failed_event.id).await, EmailClaim::AlreadySent);
    assert_eq!(by(held).await, EmailClaim::InProgress);
    // The deleted record no longer says "sent".
    assert_eq!(by(old).await, EmailClaim::Claimed);
}

fn version(slot: &str, created_at: DateTime<Utc>) -> PluginVersion {
    PluginVersion {
        id: Id::new(),
        slot: slot.to_owned(),
        sha256: format!("{:064x}", 1),
        wasm: b"\0asm".to_vec(),
        config: Vec::new(),
        policy: None,
        created_at,
        created_by: None,
    }
}

pub async fn a_prune_deletes_old_plugin_versions_but_keeps_the_active_and_the_newest(
    h: &dyn Harness,
) {
    let store = h.store();
    let t0 = now();
    let days = |n| t0 - Duration::days(n);
    // Oldest first, so ids grow with age as uploads' do.
    let tax: Vec<_> = [40, 35, 31, 0].map(|d| version("tax", days(d))).into();
    let email = version("email", days(60));
    for v in tax.iter().chain([&email]) {
        store.put_plugin_version(v).await.unwrap();
    }
    store
        .set_active_plugin("tax", Some(tax[0].id), t0)
        .await
        .unwrap();

    let early = t0 - Duration::days(10);
    assert_eq!(
        store.prune(early, &retention()).await.unwrap(),
        Pruned::default()
    );
    let pruned = store.prune(t0, &retention()).await.unwrap();
    assert_eq!(pruned.plugin_versions, 2, "{pruned:?}");

    let left: Vec<Id> = store
        .plugin_versions("tax")
        .await
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(
        left,
        vec![tax[3].id, tax[0].id],
        "the newest and the active stay"
    );
    assert_eq!(store.plugin_versions("email").await.unwrap().len(), 1);
}

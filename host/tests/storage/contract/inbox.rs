//! The consumer's duplicate filters: the processed-event inbox and e-mail send claims.

use std::sync::Arc;

use chrono::Duration;
use orderd::domain::Id;
use orderd::storage::EmailClaim;

use super::{Harness, now};

pub async fn an_event_is_recorded_in_the_inbox_once(h: &dyn Harness) {
    let store = h.store();
    let event = Id::new();
    assert!(!store.inbox_contains(event).await.unwrap());

    assert!(store.inbox_record(event, now()).await.unwrap());
    assert!(!store.inbox_record(event, now()).await.unwrap());

    assert!(store.inbox_contains(event).await.unwrap());
    assert!(!store.inbox_contains(Id::new()).await.unwrap());
}

pub async fn an_email_claim_excludes_others_until_it_expires_or_is_released(h: &dyn Harness) {
    let store = h.store();
    let event = Id::new();
    let t = now();
    let until = t + Duration::seconds(30);

    assert_eq!(
        store
            .claim_email(event, "delivery-1", t, until)
            .await
            .unwrap(),
        EmailClaim::Claimed
    );
    assert_eq!(
        store
            .claim_email(event, "delivery-2", t, until)
            .await
            .unwrap(),
        EmailClaim::InProgress
    );
    let just_before = until - Duration::milliseconds(1);
    assert_eq!(
        store
            .claim_email(event, "delivery-2", just_before, until)
            .await
            .unwrap(),
        EmailClaim::InProgress
    );
    // A crashed holder's claim expires and may be taken over.
    let later = until + Duration::seconds(30);
    assert_eq!(
        store
            .claim_email(event, "delivery-2", until, later)
            .await
            .unwrap(),
        EmailClaim::Claimed
    );

    // Only the holder can release; then anyone may claim at once.
    store.release_email(event, "delivery-1").await.unwrap();
    assert_eq!(
        store
            .claim_email(event, "delivery-3", until, later)
            .await
            .unwrap(),
        EmailClaim::InProgress
    );
    store.release_email(event, "delivery-2").await.unwrap();
    assert_eq!(
        store
            .claim_email(event, "delivery-3", until, later)
            .await
            .unwrap(),
        EmailClaim::Claimed
    );
}

pub async fn a_sent_email_is_never_claimed_again(h: &dyn Harness) {
    let store = h.store();
    let event = Id::new();
    let t = now();
    store
        .claim_email(event, "delivery-1", t, t + Duration::seconds(30))
        .await
        .unwrap();

    store.finish_email(event, "<evt@orderd>", t).await.unwrap();

    let much_later = t + Duration::days(1);
    assert_eq!(
        store
            .claim_email(
                event,
                "delivery-2",
                much_later,
                much_later + Duration::seconds(30)
            )
            .await
            .unwrap(),
        EmailClaim::AlreadySent
    );
    store.release_email(event, "delivery-1").await.unwrap();
    assert_eq!(
        store
            .claim_email(
                event,
                "delivery-1",
                much_later,
                much_later + Duration::seconds(30)
            )
            .await
            .unwrap(),
        EmailClaim::AlreadySent
    );
}

pub async fn concurrent_email_claims_grant_exactly_one(h: &dyn Harness) {
    let store = h.store();
    for _ in 0..10 {
        let event = Id::new();
        let t = now();
        let claims: Vec<_> = (0..8)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .claim_email(
                            event,
                            &format!("delivery-{n}"),
                            t,
                            t + Duration::seconds(30),
                        )
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for claim in claims {
            outcomes.push(claim.await.unwrap().unwrap());
        }
        let claimed = outcomes
            .iter()
            .filter(|o| **o == EmailClaim::Claimed)
            .count();
        let busy = outcomes
            .iter()
            .filter(|o| **o == EmailClaim::InProgress)
            .count();
        assert_eq!((claimed, busy), (1, 7), "{outcomes:?}");
    }
}

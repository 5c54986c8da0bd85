//! The store when things go wrong on a real replica set: a change stream whose collection is
//! dropped, an instance whose clock runs ahead of the others, and a commit whose reply is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::{Document, doc};
use orderd::domain::Id;
use orderd::storage::mongo::{MongoOptions, WatchTarget};
use orderd::storage::{
    EmailClaim, InboxStore, OutboxStore, RefreshGrant, RotateOutcome, TokenStore,
};

use super::{Pair, place, stocked};
use crate::support_skip::{Need, skip};

const TOKENS: &str = "change_stream_resume_tokens";

/// An instance clock 31 s ahead of the real one: more than the 30 s leases and claims below.
fn ahead() -> DateTime<Utc> {
    Utc::now() + Duration::seconds(31)
}

fn running_ahead() -> MongoOptions {
    MongoOptions {
        local_clock: ahead,
        ..MongoOptions::default()
    }
}

async fn stored_token(pair: &Pair) -> Option<Document> {
    pair.a
        .database()
        .collection::<Document>(TOKENS)
        .find_one(doc! { "_id": WatchTarget::Outbox.name() })
        .await
        .expect("read the resume tokens")
}

async fn eventually(what: &str, within: StdDuration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_dropped_collection_ends_the_stream_its_token_is_dropped_and_the_watcher_settles() {
    let Some(pair) = Pair::open(
        "a_dropped_collection_ends_the_stream_its_token_is_dropped_and_the_watcher_settles",
    )
    .await
    else {
        return;
    };
    let notify = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let task = pair
        .a
        .spawn_wakeups(WatchTarget::Outbox, notify.clone(), stop.clone());
    let wakes = Arc::new(AtomicU32::new(0));
    let counter = {
        let (notify, wakes, stop) = (notify.clone(), wakes.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = notify.notified() => { wakes.fetch_add(1, Ordering::SeqCst); }
                }
            }
        })
    };
    eventually(
        "the stream's opening wake-up",
        StdDuration::from_secs(10),
        async || wakes.load(Ordering::SeqCst) >= 1,
    )
    .await;
    let tea = stocked(&pair.b, 10).await;
    place(&pair.b, &[(&tea, 1)]).await.unwrap();
    eventually(
        "a stored resume token",
        StdDuration::from_secs(5),
        async || stored_token(&pair).await.is_some(),
    )
    .await;

    pair.b
        .database()
        .collection::<Document>("outbox")
        .drop()
        .await
        .expect("drop the outbox collection");

    eventually(
        "the dead token dropped",
        StdDuration::from_secs(5),
        async || stored_token(&pair).await.is_none(),
    )
    .await;
    // Reopened from now, the stream stays open: no reopening twice a second.
    let before = wakes.load(Ordering::SeqCst);
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    let reopened = wakes.load(Ordering::SeqCst) - before;
    assert!(
        reopened <= 1,
        "{reopened} reopenings in 3 s after the stream settled"
    );
    assert!(
        stored_token(&pair).await.is_none(),
        "no token was stored again"
    );

    stop.cancel();
    task.await.unwrap();
    counter.await.unwrap();
    pair.drop_database().await;
}

#[tokio::test]
async fn a_relay_whose_clock_runs_ahead_cannot_take_a_lease_another_relay_holds() {
    let Some(pair) = Pair::open_with(
        "a_relay_whose_clock_runs_ahead_cannot_take_a_lease_another_relay_holds",
        running_ahead(),
    )
    .await
    else {
        return;
    };
    let tea = stocked(&pair.a, 10).await;
    let order = place(&pair.a, &[(&tea, 1)]).await.unwrap();
    let lease = StdDuration::from_secs(30);

    let held = pair
        .a
        .claim_outbox("relay-a", Utc::now(), lease, 10)
        .await
        .unwrap();
    let taken = pair
        .b
        .claim_outbox("relay-b", ahead(), lease, 10)
        .await
        .unwrap();

    assert_eq!(held.len(), 1);
    assert_eq!(held[0].order_id, order.id);
    assert!(
        taken.is_empty(),
        "a clock 31 s ahead took a 30 s lease another relay holds"
    );
    // On the server's clock the lease does run out after its 30 s.
    let later = ahead() + Duration::seconds(30);
    let after = pair
        .b
        .claim_outbox("relay-b", later, lease, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "the lease ends on the server's clock");
    pair.drop_database().await;
}

#[tokio::test]
async fn an_email_claim_is_not_taken_over_by_an_instance_whose_clock_runs_ahead() {
    let Some(pair) = Pair::open_with(
        "an_email_claim_is_not_taken_over_by_an_instance_whose_clock_runs_ahead",
        running_ahead(),
    )
    .await
    else {
        return;
    };
    let event = Id::new();
    let at = Utc::now();
    let first = pair
        .a
        .claim_email(event, "consumer-a", at, at + Duration::seconds(30))
        .await
        .unwrap();
    let b_now = ahead();
    let second = pair
        .b
        .claim_email(event, "consumer-b", b_now, b_now + Duration::seconds(30))
        .await
        .unwrap();

    assert_eq!(first, EmailClaim::Claimed);
    assert_eq!(
        second,
        EmailClaim::InProgress,
        "a clock 31 s ahead took over a 30 s claim"
    );
    pair.drop_database().await;
}

#[tokio::test]
async fn a_rotation_whose_commit_reply_is_lost_is_retried_and_rotates_once() {
    const TEST: &str = "a_rotation_whose_commit_reply_is_lost_is_retried_and_rotates_once";
    let Some(pair) = Pair::open(TEST).await else {
        return;
    };
    let at = Utc::now();
    let (first, next) = ([1u8; 32], [2u8; 32]);
    let family_id = Id::new();
    pair.a
        .create_family(&RefreshGrant {
            family_id,
            user_id: Id::new(),
            token_hash: first,
            issued_at: at,
            expires_at: at + Duration::days(1),
        })
        .await
        .unwrap();
    // The server commits, then answers with a write-concern timeout: the driver cannot know
    // whether the commit holds and retries the commit alone. Were the rotation run again
    // instead, it would find the family on the successor and revoke it as a reuse.
    let admin = pair.a.database().client().database("admin");
    let armed = admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": {
                "failCommands": ["commitTransaction"],
                "writeConcernError": {
                    "code": 64,
                    "codeName": "WriteConcernFailed",
                    "errmsg": "waiting for replication timed out",
                    "errInfo": { "wtimeout": true },
                },
            },
        })
        .await;
    if let Err(err) = armed {
        skip(
            TEST,
            Need::Unavailable(&format!(
                "needs mongod started with --setParameter enableTestCommands=1 ({err})"
            )),
        );
        pair.drop_database().await;
        return;
    }

    let rotated = pair
        .a
        .rotate_refresh(first, next, at, at + Duration::days(1))
        .await
        .unwrap();

    assert!(
        matches!(rotated, RotateOutcome::Rotated { family_id: f, .. } if f == family_id),
        "{rotated:?}"
    );
    // The family is on the successor and not revoked: the successor rotates in turn.
    let again = pair
        .a
        .rotate_refresh(next, [3u8; 32], at, at + Duration::days(1))
        .await
        .unwrap();
    assert!(matches!(again, RotateOutcome::Rotated { .. }), "{again:?}");
    pair.drop_database().await;
}

//! The queue contract: SQS semantics every backend must show. Each check takes a fresh queue
//! (with a receive limit of 2) and is run against the embedded queue here and against a real
//! SQS API in `sqs.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orderd::delivery::queue::{OutgoingMessage, Queue, QueueError};

use crate::helpers::Env;

const VIS: Duration = Duration::from_secs(1);

pub fn message(n: usize) -> OutgoingMessage {
    OutgoingMessage {
        dedup_id: format!("event-{n}-{}", orderd::domain::Id::new()),
        group_id: "order-1".into(),
        body: format!("body {n}"),
    }
}

pub async fn a_full_batch_is_sent_and_one_more_refused(queue: Arc<dyn Queue>) {
    let max = queue.max_batch();
    assert!(max >= 10, "every backend takes at least SQS's ten");
    let full: Vec<_> = (0..max).map(message).collect();
    let report = queue.send_batch(&full).await.unwrap();
    assert_eq!(report.sent.len(), max);
    assert!(report.failed.is_empty());
    let over: Vec<_> = (0..=max).map(message).collect();
    assert!(matches!(
        queue.send_batch(&over).await,
        Err(QueueError::BatchTooLarge { len, max: limit }) if len == max + 1 && limit == max
    ));
    assert!(matches!(
        queue.receive(max + 1, Duration::ZERO, VIS).await,
        Err(QueueError::BatchTooLarge { .. })
    ));
    let mut bodies = Vec::new();
    while bodies.len() < max {
        let got = queue
            .receive(max, Duration::from_secs(1), VIS)
            .await
            .unwrap();
        assert!(
            !got.is_empty(),
            "only {} of {max} messages came back",
            bodies.len()
        );
        let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
        queue.delete_batch(&receipts).await.unwrap();
        bodies.extend(got.into_iter().map(|m| m.body));
    }
    bodies.sort();
    let mut expected: Vec<_> = (0..max).map(|n| format!("body {n}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
    assert!(
        queue
            .receive(max, Duration::ZERO, VIS)
            .await
            .unwrap()
            .is_empty(),
        "a deleted batch does not come back"
    );
}

pub async fn a_received_message_is_hidden_until_its_visibility_timeout_passes(
    queue: Arc<dyn Queue>,
) {
    queue.send_batch(&[message(1)]).await.unwrap();
    let first = queue.receive(1, Duration::from_secs(1), VIS).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(
        queue
            .receive(1, Duration::ZERO, VIS)
            .await
            .unwrap()
            .is_empty(),
        "visible while in flight"
    );
    tokio::time::sleep(VIS + Duration::from_millis(200)).await;
    let again = queue.receive(1, Duration::from_secs(2), VIS).await.unwrap();
    assert_eq!(again.len(), 1, "the message did not come back");
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, first[0].receipt);
    queue.delete(&again[0].receipt).await.unwrap();
}

pub async fn a_deleted_message_never_returns(queue: Arc<dyn Queue>) {
    queue.send_batch(&[message(1)]).await.unwrap();
    let m = queue
        .receive(1, Duration::from_secs(1), VIS)
        .await
        .unwrap()
        .remove(0);
    queue.delete(&m.receipt).await.unwrap();
    tokio::time::sleep(VIS + Duration::from_millis(200)).await;
    assert!(
        queue
            .receive(1, Duration::from_millis(500), VIS)
            .await
            .unwrap()
            .is_empty(),
        "a deleted message came back"
    );
}

pub async fn visibility_can_be_extended_and_a_zero_visibility_returns_the_message_at_once(
    queue: Arc<dyn Queue>,
) {
    queue.send_batch(&[message(1)]).await.unwrap();
    let m = queue
        .receive(1, Duration::from_secs(1), VIS)
        .await
        .unwrap()
        .remove(0);
    queue
        .change_visibility(&m.receipt, Duration::from_secs(3))
        .await
        .unwrap();
    tokio::time::sleep(VIS + Duration::from_millis(300)).await;
    assert!(
        queue
            .receive(1, Duration::ZERO, VIS)
            .await
            .unwrap()
            .is_empty(),
        "extension was ignored"
    );
    queue
        .change_visibility(&m.receipt, Duration::ZERO)
        .await
        .unwrap();
    let back = queue.receive(1, Duration::from_secs(2), VIS).await.unwrap();
    assert_eq!(back.len(), 1);
    queue.delete(&back[0].receipt).await.unwrap();
}

pub async fn a_message_moves_to_the_dead_letter_queue_after_the_receive_limit(
    queue: Arc<dyn Queue>,
) {
    assert_eq!(queue.max_receives(), Some(2));
    queue.send_batch(&[message(7)]).await.unwrap();
    for n in 1..=2 {
        let got = queue.receive(1, Duration::from_secs(2), VIS).await.unwrap();
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        queue
            .change_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The third receive finds it over the limit: it moves instead of being returned.
    assert!(
        queue
            .receive(1, Duration::from_millis(500), VIS)
            .await
            .unwrap()
            .is_empty()
    );
    let dlq = queue.dead_letter_queue().expect("a dead-letter queue");
    let dead = dlq.receive(1, Duration::from_secs(2), VIS).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "body 7");
    dlq.delete(&dead[0].receipt).await.unwrap();
}

pub async fn a_long_poll_returns_as_soon_as_a_message_arrives(queue: Arc<dyn Queue>) {
    let sender = queue.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send_batch(&[message(1)]).await.unwrap();
    });
    let started = Instant::now();
    let got = queue.receive(1, Duration::from_secs(5), VIS).await.unwrap();
    let waited = started.elapsed();
    send.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    queue.delete(&got[0].receipt).await.unwrap();
}

async fn embedded() -> (Env, Arc<dyn Queue>) {
    let env = Env::new().await;
    let queue = env.queue(2).await;
    (env, queue)
}

macro_rules! embedded_cases {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    let (_env, queue) = super::embedded().await;
                    super::$case(queue).await;
                }
            )*
        }
    };
}

embedded_cases!(
    a_full_batch_is_sent_and_one_more_refused,
    a_received_message_is_hidden_until_its_visibility_timeout_passes,
    a_deleted_message_never_returns,
    visibility_can_be_extended_and_a_zero_visibility_returns_the_message_at_once,
    a_message_moves_to_the_dead_letter_queue_after_the_receive_limit,
    a_long_poll_returns_as_soon_as_a_message_arrives,
);

#[tokio::test]
async fn a_second_handle_on_the_same_file_sees_messages_by_polling() {
    let env = Env::new().await;
    let writer = env.queue(2).await;
    // Another process: its own database handle on the same file, no shared wake-up.
    let other_db =
        orderd::storage::sqlite::SqliteDb::open(&env.dir.path().join("orderd.db")).unwrap();
    let reader = orderd::delivery::queue::embedded::EmbeddedQueue::open_with_poll(
        other_db,
        "events",
        2,
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let waiting = tokio::spawn(async move {
        reader
            .receive(1, Duration::from_secs(5), VIS)
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.send_batch(&[message(3)]).await.unwrap();
    let got = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "body 3");
}

#[tokio::test]
async fn a_stale_receipt_deletes_nothing() {
    let env = Env::new().await;
    let queue = env.queue(5).await;
    queue.send_batch(&[message(1)]).await.unwrap();
    let first = queue
        .receive(1, Duration::from_secs(1), VIS)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(VIS + Duration::from_millis(100)).await;
    let second = queue
        .receive(1, Duration::from_secs(2), Duration::from_secs(5))
        .await
        .unwrap()
        .remove(0);
    queue.delete(&first.receipt).await.unwrap();
    assert!(matches!(
        queue
            .change_visibility(&first.receipt, Duration::ZERO)
            .await,
        Err(QueueError::InvalidReceipt)
    ));
    queue
        .change_visibility(&second.receipt, Duration::ZERO)
        .await
        .unwrap();
    let third = queue.receive(1, Duration::from_secs(2), VIS).await.unwrap();
    assert_eq!(third.len(), 1, "the stale receipt deleted the message");
}

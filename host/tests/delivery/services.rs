//! Against real services started by the test command (`scripts/services.sh`): an SQS API
//! (moto) and an SMTP server (aiosmtpd writing a Maildir). Each test reports itself skipped
//! when its service is not configured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderd::delivery::queue::sqs::{SqsQueue, create_queues};
use orderd::delivery::queue::{Queue, QueueSettings};
use orderd::domain::{Id, OrderStatus};
use orderd::mail::{Mailer, SmtpSecurity, SmtpSettings, message_id_for};

use crate::helpers::{
    Env, assert_confirmation_of, consume_until_empty, drain_bodies, emails_in, parse_email,
    relay_until_idle, service_env,
};
use crate::queue_contract;

const SQS: &str = "ORDERD_TEST_SQS_ENDPOINT";

/// A new queue pair with a unique name on the configured SQS endpoint.
async fn sqs_queue(endpoint: &str, fifo: bool, max_receives: u32) -> Arc<dyn Queue> {
    let base = format!("orderd-test-{}", Id::new());
    let name = if fifo { format!("{base}.fifo") } else { base };
    let settings = QueueSettings {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        ..QueueSettings::default()
    };
    let client = orderd::delivery::queue::sqs::client(&settings).await;
    let created = create_queues(&client, &name, fifo, max_receives)
        .await
        .expect("create queues");
    Arc::new(
        SqsQueue::open(client, created.queue_url)
            .await
            .expect("open queue"),
    )
}

macro_rules! sqs_cases {
    ($($case:ident),* $(,)?) => {
        mod sqs_contract {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(endpoint) = crate::helpers::service_env(super::SQS, stringify!($case)) else { return };
                    let queue = super::sqs_queue(&endpoint, false, 2).await;
                    super::queue_contract::$case(queue).await;
                }
            )*
        }
    };
}

sqs_cases!(
    a_full_batch_is_sent_and_one_more_refused,
    a_received_message_is_hidden_until_its_visibility_timeout_passes,
    a_deleted_message_never_returns,
    visibility_can_be_extended_and_a_zero_visibility_returns_the_message_at_once,
    a_message_moves_to_the_dead_letter_queue_after_the_receive_limit,
    a_long_poll_returns_as_soon_as_a_message_arrives,
);

async fn sqs_end_to_end(fifo: bool, test: &str) {
    let Some(endpoint) = service_env(SQS, test) else {
        return;
    };
    let env = Env::new().await;
    let queue = sqs_queue(&endpoint, fifo, 5).await;
    let relay = env.relay(queue.clone());
    let consumer = env.consumer(queue.clone(), env.file_mailer());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let biscuits = env.product("Ginger Biscuits", 899, 100).await;
    let (order, _) = env.place(&user, &[(&tea, 2), (&biscuits, 1)]).await;
    relay_until_idle(&relay).await;
    consume_until_empty(&[&consumer], &queue, Duration::from_secs(20)).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    let mails = emails_in(&env.mail_dir);
    assert_eq!(mails.len(), 1);
    assert_confirmation_of(&mails[0], &order);
}

#[tokio::test]
async fn an_order_is_processed_with_one_confirmation_through_a_standard_sqs_queue() {
    sqs_end_to_end(
        false,
        "an_order_is_processed_with_one_confirmation_through_a_standard_sqs_queue",
    )
    .await;
}

#[tokio::test]
async fn an_order_is_processed_with_one_confirmation_through_a_fifo_sqs_queue() {
    sqs_end_to_end(
        true,
        "an_order_is_processed_with_one_confirmation_through_a_fifo_sqs_queue",
    )
    .await;
}

#[tokio::test]
async fn a_fifo_queue_drops_a_repeated_event_id() {
    let Some(endpoint) = service_env(SQS, "a_fifo_queue_drops_a_repeated_event_id") else {
        return;
    };
    let queue = sqs_queue(&endpoint, true, 5).await;
    let message = queue_contract::message(1);
    queue
        .send_batch(std::slice::from_ref(&message))
        .await
        .unwrap();
    queue.send_batch(&[message]).await.unwrap();
    let first = queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    queue.delete(&first[0].receipt).await.unwrap();
    assert!(
        queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_retried_failed_order_passes_a_fifo_queue_within_its_deduplication_window() {
    let test = "a_retried_failed_order_passes_a_fifo_queue_within_its_deduplication_window";
    let Some(endpoint) = service_env(SQS, test) else {
        return;
    };
    let env = Env::new().await;
    let queue = sqs_queue(&endpoint, true, 1).await;
    let relay = env.relay(queue.clone());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&relay).await;
    // Its one allowed delivery failed: the consumer gave up on the order and returned the
    // message, which the queue moves to the dead-letter queue on the next receive.
    let delivered = queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    for (from, to) in [
        (OrderStatus::Pending, OrderStatus::Processing),
        (OrderStatus::Processing, OrderStatus::Failed),
    ] {
        env.store
            .transition_order(order.id, &[from], to, chrono::Utc::now())
            .await
            .unwrap();
    }
    queue
        .change_visibility(&delivered[0].receipt, Duration::ZERO)
        .await
        .unwrap();

    // Retried at once, while the first message is still in the queue and well within the
    // five-minute deduplication window: the re-published event needs its own deduplication id.
    env.store
        .retry_failed_order(order.id, chrono::Utc::now())
        .await
        .unwrap();
    relay_until_idle(&relay).await;
    let consumer = env.consumer(queue.clone(), env.file_mailer());
    consume_until_empty(&[&consumer], &queue, Duration::from_secs(20)).await;

    assert_eq!(
        env.status(order.id).await,
        OrderStatus::Processed,
        "the re-published event arrived"
    );
    let mails = emails_in(&env.mail_dir);
    assert_eq!(mails.len(), 1);
    assert_confirmation_of(&mails[0], &order);
    let dead = drain_bodies(&queue.dead_letter_queue().unwrap()).await;
    assert_eq!(dead.len(), 1, "the first message was dead-lettered");
    assert!(dead[0].contains(&event.id.to_hex()));
}

/// Maildir messages whose Message-ID is `message_id` (the Maildir is shared by all tests).
fn maildir_messages(dir: &Path, message_id: &str) -> Vec<crate::helpers::Delivered> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| parse_email(&std::fs::read(e.path()).unwrap()))
        .filter(|m| m.message_id == message_id)
        .collect()
}

#[tokio::test]
async fn an_order_is_processed_with_one_confirmation_through_a_real_smtp_server() {
    let test = "an_order_is_processed_with_one_confirmation_through_a_real_smtp_server";
    let (Some(smtp), Some(maildir)) = (
        service_env("ORDERD_TEST_SMTP", test),
        service_env("ORDERD_TEST_MAILDIR", test),
    ) else {
        return;
    };
    let addr: std::net::SocketAddr = smtp.parse().expect("ORDERD_TEST_SMTP is host:port");
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let settings = SmtpSettings {
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        security: SmtpSecurity::Plain,
        ..SmtpSettings::default()
    };
    let mailer = Arc::new(Mailer::smtp("Shop <shop@example.com>", settings).unwrap());
    let consumer = env.consumer(queue.clone(), mailer);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let biscuits = env.product("Ginger Biscuits", 899, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1), (&biscuits, 3)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    consume_until_empty(&[&consumer], &queue, Duration::from_secs(20)).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);

    let id = message_id_for(event.id).trim_matches(['<', '>']).to_owned();
    let started = Instant::now();
    let mut found = maildir_messages(Path::new(&maildir), &id);
    while found.is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        found = maildir_messages(Path::new(&maildir), &id);
    }
    assert_eq!(
        found.len(),
        1,
        "exactly one message with the event's Message-ID"
    );
    assert_eq!(found[0].to, user.email.as_str());
    assert_confirmation_of(&found[0], &order);
}

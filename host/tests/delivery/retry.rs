//! Retrying a failed order: the store puts the order back to `pending` and its original
//! `order.created` event back in the outbox; the relay publishes it again and the consumer
//! processes the order, sending the confirmation only if it was never sent.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orderd::delivery::queue::Queue;
use orderd::domain::OrderStatus;
use orderd::mail::{OutgoingEmail, message_id_for};
use orderd::storage::EmailClaim;

use crate::helpers::{Env, consume_until_empty, parse_email, relay_until_idle, smtp_mailer};
use crate::smtp_sink::SmtpSink;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_retried_failed_order_is_processed_and_its_customer_gets_one_confirmation_in_all() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(2).await;
    let addr = SmtpSink::start().await.stop();
    let consumer = env.consumer(queue.clone(), smtp_mailer(addr));
    let relay = env.relay(queue.clone());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 2)]).await;
    relay_until_idle(&relay).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Failed);
    let sink = SmtpSink::start_on(addr).await;

    let retried = env
        .store
        .retry_failed_order(order.id, Utc::now())
        .await
        .unwrap();
    assert_eq!(retried.status, OrderStatus::Pending);
    relay_until_idle(&relay).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;

    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1, "one order, one confirmation");
    assert_eq!(
        parse_email(&sink.messages()[0]).message_id,
        message_id_for(event.id).trim_matches(['<', '>']),
        "sent for the original event"
    );
    assert!(env.store.inbox_contains(event.id).await.unwrap());
}

#[tokio::test]
async fn a_failed_order_whose_confirmation_was_sent_is_retried_without_a_second_email() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(2).await;
    let sink = SmtpSink::start().await;
    let mailer = smtp_mailer(sink.addr);
    let relay = env.relay(queue.clone());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&relay).await;
    // An earlier delivery sent the confirmation and recorded the send; then the store failed
    // on every attempt until the order was given up on and the message dead-lettered.
    let held = queue
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    let now = Utc::now();
    let claim = env
        .store
        .claim_email(
            event.id,
            "earlier",
            now,
            now + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert_eq!(claim, EmailClaim::Claimed);
    let message_id = message_id_for(event.id);
    mailer
        .send(&OutgoingEmail {
            to: user.email.as_str().to_owned(),
            to_name: user.username.as_str().to_owned(),
            subject: format!("Order {} confirmed", order.id),
            text: "Thank you for your order.".to_owned(),
            html: "<p>Thank you for your order.</p>".to_owned(),
            message_id: message_id.clone(),
        })
        .await
        .unwrap();
    env.store
        .finish_email(event.id, &message_id, Utc::now())
        .await
        .unwrap();
    for (from, to) in [
        (OrderStatus::Pending, OrderStatus::Processing),
        (OrderStatus::Processing, OrderStatus::Failed),
    ] {
        env.store
            .transition_order(order.id, &[from], to, Utc::now())
            .await
            .unwrap();
    }
    queue.delete(&held[0].receipt).await.unwrap();
    assert_eq!(sink.count(), 1);

    env.store
        .retry_failed_order(order.id, Utc::now())
        .await
        .unwrap();
    relay_until_idle(&relay).await;
    let consumer = env.consumer(queue.clone(), mailer);
    consume_until_empty(&[&consumer], &queue, LIMIT).await;

    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1, "the confirmation is not sent again");
    assert!(env.store.inbox_contains(event.id).await.unwrap());
}

//! The consumer on the embedded queue: duplicates, crashes, outages and poison messages.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orderd::delivery::queue::{OutgoingMessage, Queue};
use orderd::domain::{Id, OrderStatus};
use orderd::mail::message_id_for;
use orderd::storage::EmailClaim;

use crate::helpers::{
    Env, consume_until_empty, drain_bodies, emails_in, parse_email, relay_until_idle, smtp_mailer,
};
use crate::smtp_sink::SmtpSink;

const LIMIT: Duration = Duration::from_secs(20);

fn envelope_message(event: &orderd::domain::OutboxEvent) -> OutgoingMessage {
    OutgoingMessage {
        dedup_id: event.id.to_hex(),
        group_id: event.order_id.to_hex(),
        body: serde_json::to_string(&event.envelope()).unwrap(),
    }
}

#[tokio::test]
async fn the_same_event_delivered_twice_at_once_sends_one_email() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let (a, b) = (
        env.consumer(queue.clone(), smtp_mailer(sink.addr)),
        env.consumer(queue.clone(), smtp_mailer(sink.addr)),
    );
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 2)]).await;
    // Two copies of the message, handled by two consumers at the same time.
    queue
        .send_batch(&[envelope_message(&event), envelope_message(&event)])
        .await
        .unwrap();
    let one = queue
        .receive(1, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    let two = queue
        .receive(1, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    tokio::join!(a.handle(one), b.handle(two));
    consume_until_empty(&[&a, &b], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1, "one event, one e-mail");
    assert_eq!(
        parse_email(&sink.messages()[0]).message_id,
        message_id_for(event.id).trim_matches(['<', '>'])
    );
}

#[tokio::test]
async fn the_same_event_delivered_twice_one_after_another_sends_one_email() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let consumer = env.consumer(queue.clone(), smtp_mailer(sink.addr));
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    queue.send_batch(&[envelope_message(&event)]).await.unwrap();
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    queue.send_batch(&[envelope_message(&event)]).await.unwrap();
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn a_message_dropped_by_a_dead_consumer_is_redelivered_and_completed_once() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    // The dead consumer received the message, moved the order to processing and held the
    // e-mail claim, then died without deleting anything.
    let held = queue
        .receive(1, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    env.store
        .transition_order(
            order.id,
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = env
        .store
        .claim_email(
            event.id,
            "dead-consumer",
            Utc::now(),
            Utc::now() + chrono::Duration::milliseconds(1500),
        )
        .await
        .unwrap();
    assert_eq!(claim, EmailClaim::Claimed);
    drop(held);

    let consumer = env.consumer(queue.clone(), smtp_mailer(sink.addr));
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn smtp_down_for_a_while_then_up_processes_the_order_with_one_email() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let addr = sink.stop();
    let consumer = env.consumer(queue.clone(), smtp_mailer(addr));
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, _) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    consumer.try_run_once().await.unwrap();
    assert_eq!(
        env.status(order.id).await,
        OrderStatus::Processing,
        "the send failed, the order waits"
    );
    let sink = SmtpSink::start_on(addr).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn smtp_down_past_the_receive_limit_fails_the_order_and_dead_letters_the_message() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(2).await;
    let addr = SmtpSink::start().await.stop();
    let consumer = env.consumer(queue.clone(), smtp_mailer(addr));
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Failed);
    let dead = drain_bodies(&queue.dead_letter_queue().unwrap()).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains(&event.id.to_hex()));
    assert!(!env.store.inbox_contains(event.id).await.unwrap());
}

#[tokio::test]
async fn poison_messages_reach_the_dead_letter_queue_and_the_consumer_keeps_going() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(2).await;
    let consumer = env.consumer(queue.clone(), env.file_mailer());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let envelope = |ty: &str, order: Id| {
        serde_json::json!({"version": 1, "eventId": Id::new(), "type": ty, "occurredAt": Utc::now(), "orderId": order, "payload": {}})
            .to_string()
    };
    let poison = [
        "this is not JSON".to_owned(),
        envelope("order.shipped", Id::new()),
        envelope("order.created", Id::new()),
    ];
    let batch: Vec<_> = poison
        .iter()
        .enumerate()
        .map(|(i, body)| OutgoingMessage {
            dedup_id: format!("p{i}"),
            group_id: "g".into(),
            body: body.clone(),
        })
        .collect();
    queue.send_batch(&batch).await.unwrap();
    let (good, _) = env.place(&user, &[(&tea, 3)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;

    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(
        env.status(good.id).await,
        OrderStatus::Processed,
        "the good order behind the poison went through"
    );
    let mut dead = drain_bodies(&queue.dead_letter_queue().unwrap()).await;
    dead.sort();
    let mut expected = poison.to_vec();
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(emails_in(&env.mail_dir).len(), 1);
}

#[tokio::test]
async fn a_cancelled_order_gets_a_cancellation_email_once() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let consumer = env.consumer(queue.clone(), smtp_mailer(sink.addr));
    let relay = env.relay(queue.clone());
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, _) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&relay).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    let cancel = orderd::domain::OutboxEvent::new(
        order.id,
        orderd::domain::EventType::OrderCancelled,
        serde_json::json!({}),
        Utc::now(),
    );
    env.store
        .cancel_order(
            order.id,
            &OrderStatus::sources_of(OrderStatus::Cancelled),
            Utc::now(),
            &cancel,
        )
        .await
        .unwrap();
    relay_until_idle(&relay).await;
    queue
        .send_batch(&[envelope_message(&cancel)])
        .await
        .unwrap();
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    let mails: Vec<_> = sink.messages().iter().map(|m| parse_email(m)).collect();
    assert_eq!(mails.len(), 2, "a confirmation and one cancellation");
    assert!(
        mails
            .iter()
            .any(|m| m.subject.contains("cancelled") && m.subject.contains(&order.id.to_hex()))
    );
    assert_eq!(env.status(order.id).await, OrderStatus::Cancelled);
}

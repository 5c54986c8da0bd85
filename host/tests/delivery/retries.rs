//! Failure semantics of the consumer: retries that back off with the receive count, an attempt
//! budget measured in time, and SMTP sends whose outcome is unknown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orderd::delivery::consumer::ConsumerSettings;
use orderd::delivery::queue::Queue;
use orderd::domain::OrderStatus;
use orderd::mail::message_id_for;

use crate::helpers::{
    Env, consume_until_empty, drain_bodies, fast_consumer, parse_email, relay_until_idle,
    smtp_mailer,
};
use crate::smtp_sink::SmtpSink;

const LIMIT: Duration = Duration::from_secs(30);

/// How long until a message of `queue` is visible again, polling every 20 ms up to `limit`.
async fn time_until_visible(queue: &Arc<dyn Queue>, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if queue.depth().await.unwrap().visible > 0 {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not visible after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_retry_delay_doubles_per_receive_up_to_its_cap() {
    let settings = ConsumerSettings {
        retry_base_ms: 1_000,
        retry_cap_ms: 8_000,
        ..ConsumerSettings::default()
    };
    let delays: Vec<u64> = (1..=6)
        .map(|n| settings.retry_delay(n).as_millis() as u64)
        .collect();
    assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
}

#[test]
fn the_default_budget_outlasts_a_thirty_minute_smtp_outage_and_sets_the_receive_limit() {
    let settings = ConsumerSettings::default();
    assert!(settings.attempt_budget_ms >= 30 * 60 * 1000);
    // The receives the schedule makes within the budget: 1+2+…+256 s, then 300 s each.
    let receives = settings.receives_for_budget();
    let mut covered = Duration::ZERO;
    for n in 1..receives - 1 {
        covered += settings.retry_delay(n);
    }
    assert!(covered < Duration::from_millis(settings.attempt_budget_ms));
    covered += settings.retry_delay(receives - 1);
    assert!(covered >= Duration::from_millis(settings.attempt_budget_ms));
    assert!(
        receives > 5,
        "the old flat limit of 5 would cut the budget short"
    );
}

#[tokio::test]
async fn a_failing_message_waits_longer_after_each_receive() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(50).await;
    let addr = SmtpSink::start().await.stop();
    let settings = ConsumerSettings {
        retry_base_ms: 400,
        retry_cap_ms: 10_000,
        ..fast_consumer()
    };
    let consumer = env.consumer_with(queue.clone(), smtp_mailer(addr), settings);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;

    consumer.try_run_once().await.unwrap();
    let first = time_until_visible(&queue, LIMIT).await;
    consumer.try_run_once().await.unwrap();
    let second = time_until_visible(&queue, LIMIT).await;
    consumer.try_run_once().await.unwrap();
    let third = time_until_visible(&queue, LIMIT).await;

    // 400 ms, 800 ms, 1.6 s (less the time the failed send itself took; more on a busy
    // machine, hence the loose upper bound).
    assert!(first < Duration::from_millis(1_000), "{first:?}");
    assert!(second > Duration::from_millis(550), "{second:?}");
    assert!(third > Duration::from_millis(1_200), "{third:?}");
    assert!(
        third > second && second > first,
        "{first:?} {second:?} {third:?}"
    );
}

#[tokio::test]
async fn an_order_whose_budget_runs_out_fails_and_nothing_is_left_in_the_queues() {
    let env = Env::new().await;
    // A receive limit far away: the budget, not the limit, ends the attempts.
    let queue: Arc<dyn Queue> = env.queue(100).await;
    let addr = SmtpSink::start().await.stop();
    let settings = ConsumerSettings {
        retry_base_ms: 100,
        retry_cap_ms: 200,
        attempt_budget_ms: 1_500,
        ..fast_consumer()
    };
    let consumer = env.consumer_with(queue.clone(), smtp_mailer(addr), settings);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    let started = Instant::now();

    consume_until_empty(&[&consumer], &queue, LIMIT).await;

    assert_eq!(env.status(order.id).await, OrderStatus::Failed);
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "gave up before the budget: {:?}",
        started.elapsed()
    );
    assert!(
        drain_bodies(&queue.dead_letter_queue().unwrap())
            .await
            .is_empty()
    );
    assert!(!env.store.inbox_contains(event.id).await.unwrap());
}

#[tokio::test]
async fn a_send_whose_final_reply_never_comes_is_not_resent_until_its_claim_expires() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(50).await;
    let sink = SmtpSink::start().await;
    let claim = Duration::from_millis(3_000);
    let settings = ConsumerSettings {
        email_claim_ms: claim.as_millis() as u64,
        retry_base_ms: 100,
        retry_cap_ms: 200,
        ..fast_consumer()
    };
    // smtp_mailer times out after 2 s; the sink answers the stalled message after 2.5 s.
    let consumer = env.consumer_with(queue.clone(), smtp_mailer(sink.addr), settings);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    // A first order leaves an idle pooled connection behind: the stalled send then runs on a
    // reused connection, the case where a blind retry on a fresh one would send a copy.
    let (warm, _) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(warm.id).await, OrderStatus::Processed);

    sink.stall_next(1, Duration::from_millis(2_500));
    let (order, event) = env.place(&user, &[(&tea, 1)]).await;
    relay_until_idle(&env.relay(queue.clone())).await;
    let attempt = Instant::now();
    consumer.try_run_once().await.unwrap();

    // The attempt ended in "unknown": one copy reached the server, none was sent again.
    assert_eq!(
        sink.count(),
        2,
        "warm-up + the stalled message, no retry copy"
    );
    assert_eq!(env.status(order.id).await, OrderStatus::Processing);
    // Until the claim expires, redeliveries do not send.
    while attempt.elapsed() + Duration::from_millis(300) < claim {
        consumer.try_run_once().await.unwrap();
        assert_eq!(sink.count(), 2, "sent again while the claim was held");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then the named window: the e-mail goes again, with the same Message-ID.
    consume_until_empty(&[&consumer], &queue, LIMIT).await;
    assert_eq!(env.status(order.id).await, OrderStatus::Processed);
    let ids: Vec<String> = sink
        .messages()
        .iter()
        .map(|raw| parse_email(raw).message_id)
        .collect();
    let this = message_id_for(event.id);
    let this = this.trim_matches(['<', '>']);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids.iter().filter(|id| id.as_str() == this).count(), 2);
}

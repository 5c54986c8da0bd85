//! Orders through the whole pipeline on the embedded queue: relay and consumer loops running
//! as they do in `orderd serve`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderd::delivery::queue::Queue;
use orderd::delivery::relay::{Relay, RelaySettings};
use orderd::domain::{OrderStatus, OutboxStatus};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, assert_confirmation_of, emails_in, parse_email, smtp_mailer};
use crate::smtp_sink::SmtpSink;

async fn wait_for(limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "not done after {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_order_is_processed_and_its_customer_gets_one_confirmation_on_the_embedded_queue() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(env.relay(queue.clone()).run(stop.clone()));
    let consumer =
        tokio::spawn(Arc::new(env.consumer(queue.clone(), env.file_mailer())).run(stop.clone()));
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let biscuits = env.product("Ginger Biscuits", 899, 100).await;
    let (order, _) = env.place(&user, &[(&tea, 2), (&biscuits, 1)]).await;

    wait_for(Duration::from_secs(10), async || {
        env.status(order.id).await == OrderStatus::Processed
    })
    .await;
    stop.cancel();
    relay.await.unwrap();
    consumer.await.unwrap();

    let mails = emails_in(&env.mail_dir);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, user.email.as_str());
    assert_confirmation_of(&mails[0], &order);
    assert_eq!(
        env.store.count_outbox(OutboxStatus::Pending).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn two_relays_of_each_kind_and_two_consumers_process_500_orders_once_each() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    let sink = SmtpSink::start().await;
    let stop = CancellationToken::new();
    let mut loops = Vec::new();
    for _ in 0..2 {
        // One relay publishes in one transaction (the outbox shares the queue's file), the
        // other through leases, as a relay with any other queue does; they share the outbox.
        loops.push(tokio::spawn(env.relay(queue.clone()).run(stop.clone())));
        let leasing = Relay::new(
            env.store.clone(),
            queue.clone(),
            RelaySettings {
                poll_interval_ms: 20,
                ..RelaySettings::default()
            },
            env.wake.clone(),
        );
        loops.push(tokio::spawn(leasing.run(stop.clone())));
        let consumer = Arc::new(env.consumer(queue.clone(), smtp_mailer(sink.addr)));
        loops.push(tokio::spawn(consumer.run(stop.clone())));
    }
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 10_000).await;
    let mut placing = tokio::task::JoinSet::new();
    let env = Arc::new(env);
    for _ in 0..500 {
        let (env, user, tea) = (env.clone(), user.clone(), tea.clone());
        placing.spawn(async move { env.place(&user, &[(&tea, 1)]).await.0.id });
    }
    let ids: Vec<_> = placing.join_all().await;

    wait_for(Duration::from_secs(60), async || {
        let counts = env.store.count_orders().await.unwrap();
        counts
            .iter()
            .find(|(s, _)| *s == OrderStatus::Processed)
            .map_or(0, |(_, n)| *n)
            == 500
    })
    .await;
    stop.cancel();
    for l in loops {
        l.await.unwrap();
    }
    let mut per_order: HashMap<String, usize> = HashMap::new();
    for raw in sink.messages() {
        let mail = parse_email(&raw);
        let id = ids
            .iter()
            .find(|id| mail.subject.contains(&id.to_hex()))
            .expect("an e-mail for one of our orders");
        *per_order.entry(id.to_hex()).or_default() += 1;
    }
    assert_eq!(per_order.len(), 500, "every order got an e-mail");
    assert!(
        per_order.values().all(|n| *n == 1),
        "some order got more than one e-mail"
    );
    assert_eq!(
        env.store.count_outbox(OutboxStatus::Pending).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a_commit_wakes_the_relay_at_once_instead_of_at_its_next_poll() {
    let env = Env::new().await;
    let queue: Arc<dyn Queue> = env.queue(5).await;
    // A poll interval far longer than the test: only the wake-up can explain fast publishing.
    let settings = RelaySettings {
        poll_interval_ms: 60_000,
        ..RelaySettings::default()
    };
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(env.store.clone(), queue.clone(), settings, env.wake.clone()).run(stop.clone()),
    );
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 1_000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut lags = Vec::new();
    for _ in 0..50 {
        let (_, event) = env.place(&user, &[(&tea, 1)]).await;
        let started = Instant::now();
        loop {
            let published = env
                .store
                .list_outbox(OutboxStatus::Published, 1000)
                .await
                .unwrap();
            if let Some(e) = published.iter().find(|e| e.id == event.id) {
                lags.push(
                    (e.published_at.unwrap() - e.occurred_at)
                        .to_std()
                        .unwrap_or_default(),
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "event not published within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    stop.cancel();
    relay.await.unwrap();
    lags.sort();
    let p50 = lags[lags.len() / 2];
    let p99 = lags[lags.len() * 99 / 100];
    eprintln!(
        "commit -> published over {} orders: p50 {p50:?}, p99 {p99:?}",
        lags.len()
    );
    assert!(
        p99 < Duration::from_millis(500),
        "p99 {p99:?}: the relay waited for its poll"
    );
}

#[tokio::test]
async fn the_delivery_roles_alone_process_orders_and_serve_the_processor_health_route() {
    let env = Env::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = orderd::configuration::Settings {
        data_dir: env.dir.path().to_owned(),
        ..Default::default()
    };
    settings.consumer.health_addr = format!("127.0.0.1:{port}");
    settings.consumer.wait_ms = 200;
    let deps = orderd::delivery::DeliveryDeps {
        settings: Arc::new(settings),
        store: env.store.clone(),
        sqlite: Some(env.db.clone()),
        renderer: env.renderer.clone(),
        order_committed: env.wake.clone(),
        health: Arc::new(orderd::delivery::DeliveryHealth::new(
            &["relay", "consumer"],
            Duration::from_secs(30),
        )),
    };
    let roles = orderd::delivery::DeliveryRoles {
        relay: true,
        consumer: true,
        api: false,
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(orderd::delivery::run(deps, roles, stop.clone()));

    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 10).await;
    let (order, _) = env.place(&user, &[(&tea, 1)]).await;
    wait_for(Duration::from_secs(10), async || {
        env.status(order.id).await == OrderStatus::Processed
    })
    .await;
    let mails = emails_in(&env.dir.path().join("mail"));
    assert_eq!(
        mails.len(),
        1,
        "the default file transport writes into <data dir>/mail"
    );
    assert_confirmation_of(&mails[0], &order);

    let health: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{port}/processor/api/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["role"], "consumer");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn with_the_outbox_in_the_queue_file_a_pass_publishes_and_enqueues_together() {
    let env = Env::new().await;
    let queue = env.queue(5).await;
    assert!(queue.shares(&env.db));
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(env.place(&user, &[(&tea, 1)]).await.1.id);
    }

    let published = queue
        .publish_outbox(chrono::Utc::now(), 2)
        .await
        .expect("pass");
    assert_eq!(published.len(), 2, "the limit holds");
    assert_eq!(
        published.iter().map(|e| e.id).collect::<Vec<_>>(),
        events[..2],
        "oldest first"
    );
    assert!(
        published
            .iter()
            .all(|e| e.status == OutboxStatus::Published)
    );
    assert_eq!(
        env.store.count_outbox(OutboxStatus::Pending).await.unwrap(),
        1
    );
    let received = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    let bodies: Vec<String> = received.iter().map(|m| m.body.clone()).collect();
    assert_eq!(received.len(), 2, "{bodies:?}");
    for (message, event) in received.iter().zip(&published) {
        assert!(
            message.body.contains(&event.id.to_hex()),
            "{}",
            message.body
        );
    }

    let rest = queue.publish_outbox(chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), events[2..]);
    assert!(
        queue
            .publish_outbox(chrono::Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

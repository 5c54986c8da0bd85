//! Supervised delivery roles, run as `orderd serve` runs them (`orderd::delivery::run`): a
//! queue unreachable at boot is retried while the roles report `restarting`, and orders placed
//! meanwhile are processed once it is reachable; a panicking e-mail renderer ends its message's
//! task only, and the message is processed on redelivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orderd::configuration::Settings;
use orderd::delivery::consumer::{EmailKind, EmailRenderer};
use orderd::delivery::queue::{QueueBackend, QueueSettings};
use orderd::delivery::role_health::{CONSUMER, RELAY, RoleReport, RoleState};
use orderd::delivery::{DeliveryDeps, DeliveryHealth, DeliveryRoles};
use orderd::domain::{Id, OrderStatus};
use rule_types::{RenderedEmail, StoredOrder};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, assert_confirmation_of, emails_in, service_env};

/// Relay and consumer; `api` so the consumer does not serve a health route of its own.
const ROLES: DeliveryRoles = DeliveryRoles {
    relay: true,
    consumer: true,
    api: true,
};

/// Settings on `env`'s data directory with short waits, visibility and restart pauses.
fn settings(env: &Env) -> Settings {
    let mut settings = Settings {
        data_dir: env.dir.path().to_owned(),
        ..Settings::default()
    };
    settings.relay.poll_interval_ms = 20;
    settings.consumer.wait_ms = 200;
    settings.consumer.visibility_ms = 1_000;
    settings.consumer.email_claim_ms = 1_500;
    settings.delivery.restart_base_ms = 100;
    settings.delivery.restart_cap_ms = 500;
    settings
}

/// Starts the delivery roles on `env` with `settings` and `renderer`; returns their health and
/// the running task.
fn start(
    env: &Env,
    settings: Settings,
    renderer: Arc<dyn EmailRenderer>,
    stop: &CancellationToken,
) -> (Arc<DeliveryHealth>, tokio::task::JoinHandle<()>) {
    let health = Arc::new(DeliveryHealth::new(
        &[RELAY, CONSUMER],
        settings.delivery.stale_after(),
    ));
    let deps = DeliveryDeps {
        settings: Arc::new(settings),
        store: env.store.clone(),
        sqlite: Some(env.db.clone()),
        renderer,
        order_committed: env.wake.clone(),
        health: health.clone(),
    };
    let running = tokio::spawn(orderd::delivery::run(deps, ROLES, stop.clone()));
    (health, running)
}

fn report(health: &DeliveryHealth, role: &str) -> RoleReport {
    health.role(role).expect("a registered role").report()
}

async fn wait_for(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < limit,
            "{what}: not done after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Forwards every connection accepted on `listener` to `target`.
async fn forward(listener: TcpListener, target: String) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Binds `port` again, retrying while the address is briefly unavailable.
async fn bind_again(port: u16) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("could not bind port {port} again");
}

#[tokio::test]
async fn orders_placed_while_the_queue_is_unreachable_at_boot_are_processed_once_it_is_reachable() {
    let test =
        "orders_placed_while_the_queue_is_unreachable_at_boot_are_processed_once_it_is_reachable";
    let Some(endpoint) = service_env("ORDERD_TEST_SQS_ENDPOINT", test) else {
        return;
    };
    let moto = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let name = format!("orderd-boot-{}", Id::new());
    let direct = QueueSettings {
        endpoint: Some(endpoint.clone()),
        region: Some("us-east-1".into()),
        ..QueueSettings::default()
    };
    let client = orderd::delivery::queue::sqs::client(&direct).await;
    orderd::delivery::queue::sqs::create_queues(&client, &name, false, 5)
        .await
        .expect("create the queue on the SQS server");
    // The roles are told to reach the queue through a port where nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let env = Env::new().await;
    let mut settings = settings(&env);
    settings.queue = QueueSettings {
        backend: QueueBackend::Sqs,
        name,
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        ..QueueSettings::default()
    };
    let stop = CancellationToken::new();
    let (health, running) = start(&env, settings, env.renderer.clone(), &stop);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(env.place(&user, &[(&tea, 1)]).await.0);
    }

    wait_for(
        Duration::from_secs(20),
        "both roles restarting",
        async || {
            [RELAY, CONSUMER]
                .iter()
                .all(|role| report(&health, role).restarts >= 2)
        },
    )
    .await;
    for role in [RELAY, CONSUMER] {
        let report = report(&health, role);
        assert_eq!(report.state, RoleState::Restarting, "{role}: {report:?}");
        let error = report.last_error.unwrap_or_default();
        assert!(
            error.contains("Failed to open SQS queue"),
            "{role}: {error}"
        );
        assert_eq!(report.last_good_pass_ago, None);
    }
    for order in &orders {
        assert_eq!(env.status(order.id).await, OrderStatus::Pending);
    }

    // The queue becomes reachable on the same address.
    let proxy = tokio::spawn(forward(bind_again(port).await, moto));
    wait_for(
        Duration::from_secs(30),
        "every order processed",
        async || {
            for order in &orders {
                if env.status(order.id).await != OrderStatus::Processed {
                    return false;
                }
            }
            true
        },
    )
    .await;
    for role in [RELAY, CONSUMER] {
        let report = report(&health, role);
        assert_eq!(report.state, RoleState::Ok, "{role}: {report:?}");
        assert_eq!(report.last_error, None);
    }
    stop.cancel();
    running.await.unwrap();
    proxy.abort();

    let mails = emails_in(&env.dir.path().join("mail"));
    assert_eq!(mails.len(), orders.len(), "one e-mail per order");
    for order in &orders {
        let mail = mails
            .iter()
            .find(|m| m.subject.contains(&order.id.to_hex()))
            .expect("the order's confirmation");
        assert_confirmation_of(mail, order);
    }
}

/// The real renderer, except that its first call panics.
struct PanicsOnce {
    inner: Arc<dyn EmailRenderer>,
    calls: AtomicU32,
}

#[async_trait]
impl EmailRenderer for PanicsOnce {
    async fn render(&self, kind: EmailKind, order: &StoredOrder) -> anyhow::Result<RenderedEmail> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the renderer fell over");
        }
        self.inner.render(kind, order).await
    }
}

/// The value of `orderd_handler_panics_total{role="consumer"}` in the process's metrics.
fn consumer_panics_metric(metrics: &orderd::http::metrics::Metrics) -> f64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("orderd_handler_panics_total{") && l.contains("role=\"consumer\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_panicking_renderer_does_not_stop_the_consumer_and_the_order_is_processed_on_redelivery()
{
    let metrics = orderd::http::metrics::Metrics::install().unwrap();
    let panics_before = consumer_panics_metric(&metrics);
    let env = Env::new().await;
    let renderer = Arc::new(PanicsOnce {
        inner: env.renderer.clone(),
        calls: AtomicU32::new(0),
    });
    let stop = CancellationToken::new();
    let (health, running) = start(&env, settings(&env), renderer.clone(), &stop);
    let user = env.customer().await;
    let tea = env.product("Masala Chai", 1250, 100).await;
    let (first, _) = env.place(&user, &[(&tea, 1)]).await;

    wait_for(
        Duration::from_secs(15),
        "the first order processed",
        async || env.status(first.id).await == OrderStatus::Processed,
    )
    .await;
    assert_eq!(
        renderer.calls.load(Ordering::SeqCst),
        2,
        "one panic, one retry"
    );
    let consumer = report(&health, CONSUMER);
    assert_eq!(consumer.handler_panics, 1);
    assert_eq!(consumer.restarts, 0, "the role itself never stopped");
    assert_eq!(consumer.state, RoleState::Ok);
    assert!(consumer_panics_metric(&metrics) >= panics_before + 1.0);

    // The same consumer goes on with the next order.
    let (second, _) = env.place(&user, &[(&tea, 2)]).await;
    wait_for(
        Duration::from_secs(10),
        "the second order processed",
        async || env.status(second.id).await == OrderStatus::Processed,
    )
    .await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(report(&health, CONSUMER).restarts, 0);
    let mails = emails_in(&env.dir.path().join("mail"));
    assert_eq!(mails.len(), 2, "one e-mail per order");
}

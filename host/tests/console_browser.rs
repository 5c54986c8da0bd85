//! The operator console in a real browser. Starts orderd (api, relay and consumer) on a free
//! port with a fresh data directory, arranges an admin, a customer, a product and one dead
//! outbox event, then runs `console_browser.py`: headless Chromium from Debian's packages,
//! driven by Selenium from PyPI through the system chromedriver. The script signs in, dry-runs
//! and uploads a tax plugin, sees an order taxed, processed and e-mailed, rolls back, runs it
//! as a shadow and sees a divergence, retries the dead event and checks that a customer gets
//! nothing; any error in the browser's console fails it. Screenshots land in
//! `target/console-screenshots/` (ignored by git).
//!
//! Needs `ORDERD_TEST_CHROMEDRIVER`, `ORDERD_TEST_CHROMIUM` and `ORDERD_TEST_PYTHON` (a Python
//! with Selenium), which the README test command sets after installing what is missing.

#[path = "api/helpers.rs"]
mod helpers;
#[path = "support/skip.rs"]
mod skip;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use orderd::domain::{EventType, Id, OrderStatus, OutboxEvent, OutboxStatus};

const TEST: &str =
    "console_browser::an_admin_steers_rules_and_delivery_from_the_console_in_chromium";
const FLAT_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/flat_tax.wasm");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_steers_rules_and_delivery_from_the_console_in_chromium() {
    let Some(driver) = skip::service_env("ORDERD_TEST_CHROMEDRIVER", TEST) else {
        return;
    };
    let Some(chromium) = skip::service_env("ORDERD_TEST_CHROMIUM", TEST) else {
        return;
    };
    let Some(python) = skip::service_env("ORDERD_TEST_PYTHON", TEST) else {
        return;
    };
    let app = helpers::spawn_app_playing("api,relay,consumer", |_| {}).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 20).await;

    let dead = dead_event(&app, &customer, &tea).await;

    let screenshots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    // Only this run's screenshots (a "failed" one would otherwise outlive its run).
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .env("CONSOLE_URL", &app.address)
        .env("ADMIN_EMAIL", &admin.email)
        .env("ADMIN_PASSWORD", &admin.password)
        .env("CUSTOMER_EMAIL", &customer.email)
        .env("CUSTOMER_PASSWORD", &customer.password)
        .env("PRODUCT_ID", tea.id.to_hex())
        .env("TAX_WASM", FLAT_TAX)
        .env("DEAD_EVENT_ID", dead.id.to_hex())
        .env("CHROMEDRIVER", driver)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOT_DIR", &screenshots);
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .unwrap()
        .expect("the browser test script starts");
    assert!(status.success(), "the browser test failed: {status}");

    // What the page did reached the store: the dead event was published after its retry.
    let started = Instant::now();
    loop {
        let dead_left = app.store.count_outbox(OutboxStatus::Dead).await.unwrap();
        let published = app
            .store
            .order_trail(dead.order_id)
            .await
            .unwrap()
            .iter()
            .any(|t| t.event.id == dead.id && t.event.status == OutboxStatus::Published);
        if dead_left == 0 && published {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the retried event was not published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An order placed and processed, then cancelled with an `order.cancelled` event the relay
/// gave up on: claimed ahead of its due time by this test and marked dead, as after the
/// relay's attempt limit against an unreachable queue.
async fn dead_event(
    app: &helpers::TestApp,
    customer: &helpers::TestUser,
    product: &orderd::domain::Product,
) -> OutboxEvent {
    let body = serde_json::json!({"items": [{"productId": product.id.to_hex(), "quantity": 1}]});
    let response = app
        .post_json("/api/orders", &body, Some(&customer.access_token))
        .await;
    assert_eq!(response.status(), 201);
    let placed: serde_json::Value = response.json().await.unwrap();
    let order_id = Id::parse(placed["id"].as_str().unwrap()).unwrap();
    let started = Instant::now();
    while app.store.order(order_id).await.unwrap().unwrap().status != OrderStatus::Processed {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "order not processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let now = orderd::http::now();
    let later = now + chrono::Duration::days(1);
    let mut event = OutboxEvent::new(
        order_id,
        EventType::OrderCancelled,
        serde_json::json!({"userId": customer.id.to_hex(), "cancelledBy": customer.id.to_hex()}),
        now,
    );
    // Not due for a day, so the running relay leaves it to this test.
    event.next_attempt_at = later;
    app.store
        .cancel_order(
            order_id,
            &OrderStatus::sources_of(OrderStatus::Cancelled),
            now,
            &event,
        )
        .await
        .unwrap();
    let claimed = app
        .store
        .claim_outbox("console-test", later, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![event.id],
        "only the arranged event was due"
    );
    app.store
        .mark_failed(
            event.id,
            "console-test",
            "queue unreachable (arranged by the test)",
            Utc::now(),
            true,
        )
        .await
        .unwrap();
    event
}

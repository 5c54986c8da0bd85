//! Per-user order limits: a script placing or cancelling orders as fast as it can, and one
//! reserving stock with pending orders that are never paid for.

use orderd::configuration::Settings;
use orderd::domain::OrderStatus;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// Limits on; the per-client login limits out of the way.
fn limits_on(s: &mut Settings) {
    s.rate_limit.enabled = true;
    s.rate_limit.burst = 1_000;
}

async fn order(app: &TestApp, token: &str, product: &str) -> reqwest::Response {
    let body = json!({"items": [{"productId": product, "quantity": 1}]});
    app.post_json("/api/orders", &body, Some(token)).await
}

#[tokio::test]
async fn order_writes_beyond_a_users_rate_are_429_with_retry_after_and_write_nothing() {
    let app = spawn_app_with(|s| {
        limits_on(s);
        s.rate_limit.order_burst = 3;
        s.rate_limit.order_replenish_ms = 600_000;
        s.rate_limit.max_open_orders = 0;
    })
    .await;
    let product = app.create_product(500, 100).await;
    let id = product.id.to_hex();
    let script = app.customer().await;
    let mut placed = Vec::new();
    for _ in 0..2 {
        let response = order(&app, &script.access_token, &id).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        placed.push(body["id"].as_str().unwrap().to_owned());
    }
    // Cancelling counts as an order write too.
    let cancel = app
        .post_json(
            &format!("/api/orders/{}/cancel", placed[0]),
            &json!({}),
            Some(&script.access_token),
        )
        .await;
    assert_eq!(cancel.status(), 200);

    let limited = order(&app, &script.access_token, &id).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    assert_problem(limited, 429, "rate-limited").await;
    let cancel = app
        .post_json(
            &format!("/api/orders/{}/cancel", placed[1]),
            &json!({}),
            Some(&script.access_token),
        )
        .await;
    assert_problem(cancel, 429, "rate-limited").await;
    assert_eq!(
        app.stock_of(product.id).await,
        99,
        "two taken, one given back"
    );

    // Another customer has their own budget.
    let other = app.customer().await;
    assert_eq!(order(&app, &other.access_token, &id).await.status(), 201);
}

#[tokio::test]
async fn a_customer_at_the_open_order_cap_gets_429_until_an_order_is_no_longer_open() {
    let app = spawn_app_with(|s| {
        limits_on(s);
        s.rate_limit.order_burst = 1_000;
        s.rate_limit.max_open_orders = 2;
    })
    .await;
    let product = app.create_product(500, 100).await;
    let id = product.id.to_hex();
    let hoarder = app.customer().await;
    let mut placed = Vec::new();
    for _ in 0..2 {
        let body: Value = order(&app, &hoarder.access_token, &id)
            .await
            .json()
            .await
            .unwrap();
        placed.push(body["id"].as_str().unwrap().to_owned());
    }
    let capped = order(&app, &hoarder.access_token, &id).await;
    let problem = assert_problem(capped, 429, "too-many-open-orders").await;
    assert_eq!(problem["errors"][0]["field"], "items", "{problem}");
    assert_eq!(
        app.stock_of(product.id).await,
        98,
        "the refused order took nothing"
    );
    let mine: Value = app
        .get("/api/orders", Some(&hoarder.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);

    // Others are not affected.
    let other = app.customer().await;
    assert_eq!(order(&app, &other.access_token, &id).await.status(), 201);

    // Once an order is cancelled (or processed), there is room again.
    let cancel = app
        .post_json(
            &format!("/api/orders/{}/cancel", placed[0]),
            &json!({}),
            Some(&hoarder.access_token),
        )
        .await;
    assert_eq!(cancel.status(), 200);
    assert_eq!(order(&app, &hoarder.access_token, &id).await.status(), 201);
    let open = app
        .store
        .orders_by_status(OrderStatus::Pending, Some(hoarder.id), None, 10)
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
}

#[tokio::test]
async fn concurrent_orders_of_one_customer_cannot_slip_past_the_open_order_cap() {
    let app = spawn_app_with(|s| {
        limits_on(s);
        s.rate_limit.order_burst = 1_000;
        s.rate_limit.max_open_orders = 3;
    })
    .await;
    let product = app.create_product(500, 100).await;
    let id = product.id.to_hex();
    let hoarder = app.customer().await;
    let attempts = (0..12).map(|_| order(&app, &hoarder.access_token, &id));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(app.stock_of(product.id).await, 97);
}

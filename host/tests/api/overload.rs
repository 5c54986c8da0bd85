//! Backpressure: offered load beyond what the service completes is refused early with 503
//! `overloaded` and `Retry-After`, the admitted requests stay fast, and everything admitted is
//! still processed.

use std::time::{Duration, Instant};

use orderd::domain::{Id, OrderStatus};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app_playing, spawn_app_with};
use crate::orders::order_body;

/// Concurrent clients, far more than the order routes admit at once.
const CLIENTS: usize = 96;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_orders_gets_201_or_503_with_retry_after_and_every_201_is_processed() {
    let app = spawn_app_playing("api,relay,consumer", |s| {
        s.http.max_in_flight_orders = 4;
        s.http.admission_wait_ms = 5;
    })
    .await;
    let customer = app.customer().await;
    let tea = app.create_product(1_000, 1_000_000).await;
    let body = order_body(&[(&tea, 1)]);
    let stop_at = Instant::now() + Duration::from_secs(3);

    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url, token, body) = (
            app.client.clone(),
            app.url("/api/orders"),
            customer.access_token.clone(),
            body.clone(),
        );
        clients.spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < stop_at {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("the server answers");
                seen.push((sent.elapsed(), response));
            }
            seen
        });
    }
    let mut created: Vec<Id> = Vec::new();
    let mut created_latency: Vec<Duration> = Vec::new();
    let mut refused = 0usize;
    while let Some(joined) = clients.join_next().await {
        for (latency, response) in joined.expect("client task") {
            match response.status() {
                StatusCode::CREATED => {
                    let order: Value = response.json().await.unwrap();
                    created.push(Id::parse(order["id"].as_str().unwrap()).unwrap());
                    created_latency.push(latency);
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    assert!(retry_after.is_some_and(|s| s >= 1), "Retry-After missing");
                    assert_problem(response, 503, "overloaded").await;
                    refused += 1;
                }
                other => panic!(
                    "every answer is 201 or 503, got {other}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
    }
    assert!(!created.is_empty(), "some orders are admitted");
    assert!(
        refused > 0,
        "{CLIENTS} clients against 4 turns are partly refused"
    );
    created_latency.sort();
    let p99 = created_latency[(created_latency.len() * 99 / 100).min(created_latency.len() - 1)];
    assert!(
        p99 < Duration::from_secs(2),
        "admitted orders stay fast under the flood: p99 {p99:?}"
    );

    // Everything admitted is processed afterwards.
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &created {
        loop {
            let order = app
                .store
                .order(*id)
                .await
                .unwrap()
                .expect("admitted order exists");
            if order.status == OrderStatus::Processed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} still {:?}",
                order.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let stock = app.stock_of(tea.id).await;
    assert_eq!(
        stock,
        1_000_000 - created.len() as i64,
        "refused orders took no stock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_beyond_the_hash_queue_is_refused_at_once_with_retry_after() {
    let app = spawn_app_with(|s| s.auth.hash_concurrency = 1).await;
    let customer = app.customer().await;
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..120 {
        let (client, url) = (app.client.clone(), app.url("/api/auth/login"));
        let body = serde_json::json!({"email": customer.email, "password": customer.password});
        logins.spawn(async move {
            let sent = Instant::now();
            let response = client.post(&url).json(&body).send().await.unwrap();
            (sent.elapsed(), response)
        });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(joined) = logins.join_next().await {
        let (latency, response) = joined.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    response
                        .headers()
                        .contains_key(reqwest::header::RETRY_AFTER)
                );
                assert_problem(response, 503, "overloaded").await;
                assert!(
                    latency < Duration::from_secs(5),
                    "refused late: {latency:?}"
                );
                refused += 1;
            }
            other => panic!("login answered {other}"),
        }
    }
    assert!(ok >= 1, "queued logins still succeed");
    assert!(refused >= 1, "logins past the queue are refused");
}

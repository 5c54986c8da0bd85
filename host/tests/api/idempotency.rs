//! `Idempotency-Key` on `POST /api/orders`: replays of the same request, reuse with another
//! request, the key's syntax, and concurrent requests racing with one key.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem, error_fields, spawn_app};
use crate::orders::{Counts, counts, order_body};

async fn place_with_key(app: &TestApp, user: &TestUser, key: &str, body: &str) -> Response {
    app.client
        .post(app.url("/api/orders"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_request_with_the_same_key_replays_the_first_response() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 10).await;
    let body = order_body(&[(&tea, 2)]).to_string();

    let first = place_with_key(&app, &customer, "order-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();

    let again = place_with_key(&app, &customer, "order-1", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.bytes().await.unwrap(), first_body);

    assert_eq!(app.stock_of(tea.id).await, 8, "stock was taken once");
    assert_eq!(
        counts(&app).await,
        Counts {
            orders: 1,
            events: 1
        }
    );
}

#[tokio::test]
async fn the_same_request_with_other_whitespace_and_member_order_is_a_replay() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 10).await;
    let compact = format!(r#"{{"items":[{{"productId":"{}","quantity":1}}]}}"#, tea.id);
    let spread = format!(
        "{{ \"items\" : [ {{ \"quantity\" : 1,\n \"productId\" : \"{}\" }} ] }}",
        tea.id
    );
    assert_eq!(
        place_with_key(&app, &customer, "k", &compact)
            .await
            .status(),
        201
    );
    let replay = place_with_key(&app, &customer, "k", &spread).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(counts(&app).await.orders, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 10).await;
    let one = order_body(&[(&tea, 1)]).to_string();
    let two = order_body(&[(&tea, 2)]).to_string();
    assert_eq!(
        place_with_key(&app, &customer, "k-1", &one).await.status(),
        201
    );
    let before = counts(&app).await;
    let problem = assert_problem(
        place_with_key(&app, &customer, "k-1", &two).await,
        422,
        "idempotency-key-reused",
    )
    .await;
    assert_eq!(error_fields(&problem), ["Idempotency-Key"]);
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.stock_of(tea.id).await, 9);
}

#[tokio::test]
async fn keys_belong_to_their_user() {
    let app = spawn_app().await;
    let (asha, ravi) = (app.customer().await, app.customer().await);
    let tea = app.create_product(500, 10).await;
    let body = order_body(&[(&tea, 1)]).to_string();
    let a: Value = place_with_key(&app, &asha, "shared", &body)
        .await
        .json()
        .await
        .unwrap();
    let response = place_with_key(&app, &ravi, "shared", &body).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let b: Value = response.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["userId"], ravi.id.to_hex());
    assert_eq!(app.stock_of(tea.id).await, 8);
}

#[tokio::test]
async fn a_key_of_255_visible_characters_is_accepted_and_longer_or_invisible_ones_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 10).await;
    let body = order_body(&[(&tea, 1)]).to_string();
    assert_eq!(
        place_with_key(&app, &customer, &"k".repeat(255), &body)
            .await
            .status(),
        201
    );
    let before = counts(&app).await;
    for bad in ["k".repeat(256), "two words".to_owned(), String::new()] {
        let problem = assert_problem(
            place_with_key(&app, &customer, &bad, &body).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(error_fields(&problem), ["Idempotency-Key"], "{bad:?}");
    }
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn a_failed_request_is_not_recorded_so_its_key_can_be_retried() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 1).await;
    let body = order_body(&[(&tea, 2)]).to_string();
    assert_problem(
        place_with_key(&app, &customer, "retry-me", &body).await,
        409,
        "insufficient-stock",
    )
    .await;
    let admin = app.admin().await;
    let restock = app
        .patch_json(
            &format!("/api/products/{}", tea.id),
            &json!({"stock": 5}),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(restock.status(), 200);
    let retried = place_with_key(&app, &customer, "retry-me", &body).await;
    assert_eq!(retried.status(), 201);
    assert!(retried.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.stock_of(tea.id).await, 3);
}

#[tokio::test]
async fn sixteen_concurrent_requests_with_one_key_create_exactly_one_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 100).await;
    let body = order_body(&[(&tea, 1)]).to_string();
    let requests = (0..16).map(|_| {
        let (app, customer, body) = (&app, &customer, &body);
        async move {
            let response = place_with_key(app, customer, "race", body).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    });
    let results = futures::future::join_all(requests).await;
    let mut order_ids: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body["id"].clone())
        .collect();
    assert!(
        results
            .iter()
            .all(|(status, _)| *status == 201 || *status == 409),
        "only creations, replays and conflicts: {results:?}"
    );
    order_ids.dedup();
    assert_eq!(
        order_ids.len(),
        1,
        "every 201 is the one order: {order_ids:?}"
    );
    assert_eq!(app.stock_of(tea.id).await, 99);
    assert_eq!(
        counts(&app).await,
        Counts {
            orders: 1,
            events: 1
        }
    );
}

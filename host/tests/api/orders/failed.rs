//! Failed orders keep nothing hostage: an admin retries one (`failed → pending`, its original
//! event published again) or lists them all (`?status=failed`); the owner or an admin cancels
//! one and its stock comes back. Orders are made `failed` through the store, as the consumer
//! does after the delivery attempt limit.

use std::time::Duration;

use orderd::domain::{EventType, Id, OrderStatus, OutboxStatus, Product};
use serde_json::{Value, json};

use super::{counts, place_ok};
use crate::helpers::{TestApp, TestUser, assert_problem, error_fields, spawn_app};

/// Places an order of `quantity` units of `product` for `user`, publishes its event as the
/// relay would, and fails it as the consumer does at the attempt limit. Returns its id.
async fn failed_order(app: &TestApp, user: &TestUser, product: &Product, quantity: i64) -> Id {
    let order = place_ok(app, user, &[(product, quantity)]).await;
    let id = Id::parse(order["id"].as_str().unwrap()).unwrap();
    let now = orderd::http::now();
    let claimed = app
        .store
        .claim_outbox("relay", now, Duration::from_secs(30), 100)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|e| e.id).collect();
    app.store.mark_published(&ids, "relay", now).await.unwrap();
    for (from, to) in [
        (OrderStatus::Pending, OrderStatus::Processing),
        (OrderStatus::Processing, OrderStatus::Failed),
    ] {
        app.store
            .transition_order(id, &[from], to, now)
            .await
            .unwrap();
    }
    id
}

async fn status_of(app: &TestApp, id: Id) -> OrderStatus {
    app.store.order(id).await.unwrap().unwrap().status
}

async fn retry(app: &TestApp, id: Id, user: &TestUser) -> reqwest::Response {
    app.post_json(
        &format!("/api/orders/{id}/retry"),
        &json!({}),
        Some(&user.access_token),
    )
    .await
}

/// The ids of a page of orders, in order.
fn page_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(app: &TestApp, query: &str, user: &TestUser) -> Value {
    let response = app
        .get(&format!("/api/orders{query}"), Some(&user.access_token))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_admin_retries_a_failed_order_and_its_original_event_is_published_again() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let id = failed_order(&app, &customer, &tea, 2).await;
    let created = app
        .store
        .list_outbox(OutboxStatus::Published, 10)
        .await
        .unwrap()
        .remove(0);
    let before = counts(&app).await;

    let response = retry(&app, id, &admin).await;

    assert_eq!(response.status(), 200);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["id"], id.to_hex());
    assert_eq!(order["status"], "pending");
    assert!(order.get("failedAt").is_none(), "{order}");
    assert_eq!(status_of(&app, id).await, OrderStatus::Pending);
    let pending = app
        .store
        .list_outbox(OutboxStatus::Pending, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0].id, pending[0].event_type, pending[0].order_id),
        (created.id, EventType::OrderCreated, id),
        "the original event, not a new one"
    );
    assert_eq!((pending[0].attempts, pending[0].republished), (0, 1));
    assert_eq!(counts(&app).await, before, "nothing new is written");
    assert_eq!(app.stock_of(tea.id).await, 8, "a retry takes no stock");
}

#[tokio::test]
async fn a_customer_may_not_retry_an_order_even_their_own() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(500, 10).await;
    let id = failed_order(&app, &customer, &tea, 1).await;

    assert_problem(retry(&app, id, &customer).await, 403, "forbidden").await;

    assert_eq!(status_of(&app, id).await, OrderStatus::Failed);
    assert_eq!(
        app.store.count_outbox(OutboxStatus::Pending).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn retrying_an_order_that_is_not_failed_is_a_conflict_naming_its_state() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let pending = place_ok(&app, &customer, &[(&tea, 1)]).await;
    let pending = Id::parse(pending["id"].as_str().unwrap()).unwrap();
    let before = counts(&app).await;

    let problem = assert_problem(retry(&app, pending, &admin).await, 409, "invalid-state").await;

    assert_eq!(error_fields(&problem), ["status"]);
    assert_eq!(problem["errors"][0]["code"], "pending", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("pending"),
        "{problem}"
    );
    assert_eq!(status_of(&app, pending).await, OrderStatus::Pending);
    assert_eq!(counts(&app).await, before);
    // A retried order is pending again, so a second retry is refused the same way.
    let failed = failed_order(&app, &customer, &tea, 1).await;
    assert_eq!(retry(&app, failed, &admin).await.status(), 200);
    assert_problem(retry(&app, failed, &admin).await, 409, "invalid-state").await;
    // Unknown and malformed ids.
    assert_problem(retry(&app, Id::new(), &admin).await, 404, "not-found").await;
    let malformed = app
        .post_json(
            "/api/orders/not-an-id/retry",
            &json!({}),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(malformed.status(), 422);
}

#[tokio::test]
async fn the_owner_cancels_a_failed_order_and_gets_the_stock_back() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let id = failed_order(&app, &customer, &tea, 3).await;
    assert_eq!(app.stock_of(tea.id).await, 7);

    let response = app
        .post_json(
            &format!("/api/orders/{id}/cancel"),
            &json!({}),
            Some(&customer.access_token),
        )
        .await;

    assert_eq!(response.status(), 200);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "cancelled");
    assert!(order["cancelledAt"].is_string());
    assert_eq!(status_of(&app, id).await, OrderStatus::Cancelled);
    assert_eq!(app.stock_of(tea.id).await, 10);
    let pending = app
        .store
        .list_outbox(OutboxStatus::Pending, 10)
        .await
        .unwrap();
    let types: Vec<_> = pending.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [EventType::OrderCancelled],
        "the cancellation e-mail"
    );
    // Cancelled is final: no retry, and no second restock.
    let problem = assert_problem(retry(&app, id, &admin).await, 409, "invalid-state").await;
    assert_eq!(problem["errors"][0]["code"], "cancelled", "{problem}");
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn an_admin_cancels_a_customers_failed_order() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let id = failed_order(&app, &customer, &tea, 4).await;

    let response = app
        .post_json(
            &format!("/api/orders/{id}/cancel"),
            &json!({}),
            Some(&admin.access_token),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(status_of(&app, id).await, OrderStatus::Cancelled);
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn an_admin_lists_every_customers_failed_orders_and_a_customer_only_their_own() {
    let app = spawn_app().await;
    let (ada, bob, admin) = (
        app.customer().await,
        app.customer().await,
        app.admin().await,
    );
    let tea = app.create_product(500, 100).await;
    let adas_failed = failed_order(&app, &ada, &tea, 1).await.to_hex();
    let bobs_failed = failed_order(&app, &bob, &tea, 1).await.to_hex();
    let adas_pending = place_ok(&app, &ada, &[(&tea, 1)]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    place_ok(&app, &bob, &[(&tea, 1)]).await;

    let all_failed = list(&app, "?status=failed", &admin).await;
    assert_eq!(
        page_ids(&all_failed),
        [bobs_failed.as_str(), adas_failed.as_str()],
        "every customer's, newest first"
    );
    assert!(all_failed["nextCursor"].is_null());
    let first = list(&app, "?status=failed&limit=1", &admin).await;
    assert_eq!(page_ids(&first), [bobs_failed.as_str()]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = list(
        &app,
        &format!("?status=failed&limit=1&cursor={cursor}"),
        &admin,
    )
    .await;
    assert_eq!(page_ids(&second), [adas_failed.as_str()]);
    assert!(second["nextCursor"].is_null());
    let all_pending = list(&app, "?status=pending", &admin).await;
    assert_eq!(page_ids(&all_pending).len(), 2);

    assert_eq!(
        page_ids(&list(&app, "?status=failed", &ada).await),
        [adas_failed.as_str()],
        "a customer sees only their own"
    );
    assert_eq!(
        page_ids(&list(&app, "?status=pending", &ada).await),
        [adas_pending.as_str()]
    );
    assert_eq!(
        page_ids(&list(&app, "", &ada).await),
        [adas_pending, adas_failed]
    );
    assert!(
        page_ids(&list(&app, "?status=cancelled", &ada).await).is_empty(),
        "any status may be asked for"
    );
    // Without a status an admin lists their own orders, as everyone does.
    assert!(page_ids(&list(&app, "", &admin).await).is_empty());
}

#[tokio::test]
async fn an_unknown_status_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    for user in [&customer, &admin] {
        for bad in ["FAILED", "stuck", ""] {
            let problem = assert_problem(
                app.get(
                    &format!("/api/orders?status={bad}"),
                    Some(&user.access_token),
                )
                .await,
                422,
                "validation",
            )
            .await;
            assert_eq!(error_fields(&problem), ["status"], "{bad:?}");
            assert_eq!(problem["errors"][0]["code"], "invalid-value", "{problem}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_retry_route_and_the_status_filter() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    let retry = &doc["paths"]["/api/orders/{id}/retry"]["post"];
    for status in ["200", "403", "404", "409"] {
        assert!(retry["responses"][status].is_object(), "{status}: {retry}");
    }
    let list = &doc["paths"]["/api/orders"]["get"]["parameters"];
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "status" && p["in"] == "query"),
        "{list}"
    );
}

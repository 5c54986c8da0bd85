//! Orders: placing (priced from the catalog, checked by the validation plugin, taxed by the
//! tax plugin, committed with its outbox event), reading, listing and cancelling. The hostile
//! inputs that must be refused without writing anything are in `hostile`; failed orders (retry,
//! cancel, listing by status) in `failed`. The helpers here are shared with the idempotency and
//! admin plugin tests.

mod failed;
mod hostile;
mod size;

use orderd::domain::{EventType, Id, OrderStatus, OutboxStatus, Product};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem, error_fields, spawn_app};

/// Tax at `bps` basis points on `amount`, rounded half-up to the minor unit, computed here
/// independently of the plugins.
pub fn tax_half_up(amount: i64, bps: i64) -> i64 {
    (amount * bps + 5_000) / 10_000
}

/// `{items: [{productId, quantity}]}` for `(product, quantity)` lines.
pub fn order_body(lines: &[(&Product, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"productId": p.id.to_hex(), "quantity": q}))
        .collect();
    json!({ "items": items })
}

/// `POST /api/orders` as `user`.
pub async fn place(app: &TestApp, user: &TestUser, body: &Value) -> Response {
    app.post_json("/api/orders", body, Some(&user.access_token))
        .await
}

/// Places an order that must succeed and returns its JSON.
pub async fn place_ok(app: &TestApp, user: &TestUser, lines: &[(&Product, i64)]) -> Value {
    let response = place(app, user, &order_body(lines)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// What the store holds: every order and every outbox event, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub orders: u64,
    pub events: u64,
}

pub async fn counts(app: &TestApp) -> Counts {
    let orders = app
        .store
        .count_orders()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    let mut events = 0;
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Published,
        OutboxStatus::Dead,
    ] {
        events += app.store.count_outbox(status).await.unwrap();
    }
    Counts { orders, events }
}

#[tokio::test]
async fn a_customer_places_an_order_priced_from_the_catalog_and_taxed_at_18_percent() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(34_925, 10).await;
    let mug = app.create_product(1_999, 5).await;

    let response = place(&app, &customer, &order_body(&[(&tea, 2), (&mug, 3)])).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = response.json().await.unwrap();

    let (tea_subtotal, mug_subtotal) = (34_925 * 2, 1_999 * 3);
    let (tea_tax, mug_tax) = (
        tax_half_up(tea_subtotal, 1800),
        tax_half_up(mug_subtotal, 1800),
    );
    assert_eq!(
        location,
        format!("/api/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["userId"], customer.id.to_hex());
    assert_eq!(order["status"], "pending");
    assert_eq!(order["currency"], "INR");
    assert_eq!(order["items"][0]["productId"], tea.id.to_hex());
    assert_eq!(order["items"][0]["sku"], tea.sku);
    assert_eq!(order["items"][0]["name"], tea.name);
    assert_eq!(order["items"][0]["category"], "general");
    assert_eq!(order["items"][0]["unitPrice"], 34_925);
    assert_eq!(order["items"][0]["quantity"], 2);
    assert_eq!(order["items"][0]["subtotal"], tea_subtotal);
    assert_eq!(order["items"][0]["tax"], tea_tax);
    assert_eq!(order["items"][1]["tax"], mug_tax);
    assert_eq!(order["subtotal"], tea_subtotal + mug_subtotal);
    assert_eq!(order["taxTotal"], tea_tax + mug_tax);
    assert_eq!(
        order["total"],
        tea_subtotal + mug_subtotal + tea_tax + mug_tax
    );
    assert_eq!(
        order["taxLines"][0],
        json!({"itemIndex": 0, "rateName": "gst", "rateBps": 1800, "taxable": tea_subtotal, "tax": tea_tax})
    );
    assert_eq!(order["taxLines"][1]["itemIndex"], 1);
    assert!(order["createdAt"].is_string() && order["updatedAt"].is_string());
    assert!(order.get("cancelledAt").is_none());

    assert_eq!(app.stock_of(tea.id).await, 8);
    assert_eq!(app.stock_of(mug.id).await, 2);
    let id = Id::parse(order["id"].as_str().unwrap()).unwrap();
    let stored = app
        .store
        .order(id)
        .await
        .unwrap()
        .expect("the order is stored");
    assert_eq!(stored.total, order["total"].as_i64().unwrap());
    let events = app
        .store
        .list_outbox(OutboxStatus::Pending, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].order_id, events[0].event_type),
        (id, EventType::OrderCreated)
    );
    assert_eq!(events[0].payload["total"], order["total"]);
}

#[tokio::test]
async fn half_a_paisa_of_tax_rounds_up_per_line() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    // 25 × 18% = 4.5 → 5 on each line, so 10 in all (not round(9.0) on the total).
    let a = app.create_product(25, 1).await;
    let b = app.create_product(25, 1).await;
    let order = place_ok(&app, &customer, &[(&a, 1), (&b, 1)]).await;
    assert_eq!(order["taxTotal"], 10);
    assert_eq!(order["total"], 60);
}

#[tokio::test]
async fn the_owner_and_admins_read_an_order_and_anyone_else_gets_404() {
    let app = spawn_app().await;
    let (owner, stranger, admin) = (
        app.customer().await,
        app.customer().await,
        app.admin().await,
    );
    let tea = app.create_product(500, 10).await;
    let order = place_ok(&app, &owner, &[(&tea, 1)]).await;
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());

    for user in [&owner, &admin] {
        let response = app.get(&path, Some(&user.access_token)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), order);
    }
    assert_problem(
        app.get(&path, Some(&stranger.access_token)).await,
        404,
        "not-found",
    )
    .await;
    let cancel = app
        .post_json(
            &format!("{path}/cancel"),
            &json!({}),
            Some(&stranger.access_token),
        )
        .await;
    assert_problem(cancel, 404, "not-found").await;
    assert_eq!(
        app.stock_of(tea.id).await,
        9,
        "a stranger's cancel returned no stock"
    );
    let unknown = format!("/api/orders/{}", Id::new());
    assert_problem(
        app.get(&unknown, Some(&owner.access_token)).await,
        404,
        "not-found",
    )
    .await;
    let malformed = assert_problem(
        app.get("/api/orders/not-an-id", Some(&owner.access_token))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(malformed["errors"][0]["code"], "invalid-id");
}

#[tokio::test]
async fn every_order_route_needs_a_valid_token() {
    let app = spawn_app().await;
    let tea = app.create_product(500, 10).await;
    let before = counts(&app).await;
    let id = Id::new();
    let responses = [
        app.post_json("/api/orders", &order_body(&[(&tea, 1)]), None)
            .await,
        app.post_json(
            "/api/orders",
            &order_body(&[(&tea, 1)]),
            Some("not.a.token"),
        )
        .await,
        app.get("/api/orders", None).await,
        app.get(&format!("/api/orders/{id}"), None).await,
        app.post_json(&format!("/api/orders/{id}/cancel"), &json!({}), None)
            .await,
    ];
    for response in responses {
        assert_problem(response, 401, "unauthorized").await;
    }
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn a_customer_lists_only_their_own_orders_newest_first_a_page_at_a_time() {
    let app = spawn_app().await;
    let (customer, other) = (app.customer().await, app.customer().await);
    let tea = app.create_product(100, 100).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(place_ok(&app, &customer, &[(&tea, 1)]).await["id"].clone());
    }
    place_ok(&app, &other, &[(&tea, 1)]).await;
    ids.reverse();

    let token = Some(customer.access_token.as_str());
    let first: Value = app
        .get("/api/orders?limit=2", token)
        .await
        .json()
        .await
        .unwrap();
    let page_ids = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(page_ids(&first), ids[..2]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second: Value = app
        .get(&format!("/api/orders?limit=2&cursor={cursor}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page_ids(&second), ids[2..4]);
    let cursor = second["nextCursor"].as_str().unwrap();
    let last: Value = app
        .get(&format!("/api/orders?limit=2&cursor={cursor}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page_ids(&last), ids[4..]);
    assert!(last["nextCursor"].is_null());

    let all: Value = app.get("/api/orders", token).await.json().await.unwrap();
    assert_eq!(
        page_ids(&all),
        ids,
        "the default page holds all five, and none of the other user's"
    );
}

#[tokio::test]
async fn a_page_size_of_1_to_100_is_accepted_and_anything_else_is_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let token = Some(customer.access_token.as_str());
    for ok in ["limit=1", "limit=100"] {
        assert_eq!(
            app.get(&format!("/api/orders?{ok}"), token).await.status(),
            200,
            "{ok}"
        );
    }
    for (bad, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=xyz", "cursor"),
        ("page=2", "page"),
    ] {
        let problem = assert_problem(
            app.get(&format!("/api/orders?{bad}"), token).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{bad}");
    }
}

#[tokio::test]
async fn cancelling_returns_the_stock_emits_an_event_and_a_second_cancel_is_a_conflict() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 3)]).await;
    let path = format!("/api/orders/{}/cancel", order["id"].as_str().unwrap());
    assert_eq!(app.stock_of(tea.id).await, 7);

    let response = app
        .post_json(&path, &json!({}), Some(&customer.access_token))
        .await;
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelledAt"].is_string());
    assert_eq!(app.stock_of(tea.id).await, 10);
    let events = app
        .store
        .list_outbox(OutboxStatus::Pending, 10)
        .await
        .unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::OrderCreated, EventType::OrderCancelled]);

    let before = counts(&app).await;
    let again = assert_problem(
        app.post_json(&path, &json!({}), Some(&admin.access_token))
            .await,
        409,
        "invalid-state",
    )
    .await;
    assert!(
        again["detail"].as_str().unwrap().contains("cancelled"),
        "{again}"
    );
    assert_eq!(
        app.stock_of(tea.id).await,
        10,
        "a second cancel returns nothing"
    );
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn an_admin_may_cancel_a_customers_order_in_processing() {
    let app = spawn_app().await;
    let (customer, admin) = (app.customer().await, app.admin().await);
    let tea = app.create_product(500, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 2)]).await;
    let id = Id::parse(order["id"].as_str().unwrap()).unwrap();
    app.store
        .transition_order(
            id,
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            orderd::http::now(),
        )
        .await
        .unwrap();
    let response = app
        .post_json(
            &format!("/api/orders/{id}/cancel"),
            &json!({}),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn an_order_beyond_the_stock_is_a_conflict_naming_the_product_and_writes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let plenty = app.create_product(100, 50).await;
    let scarce = app.create_product(100, 2).await;
    let before = counts(&app).await;
    let problem = assert_problem(
        place(&app, &customer, &order_body(&[(&plenty, 5), (&scarce, 3)])).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert!(
        problem["errors"].to_string().contains(&scarce.id.to_hex()),
        "{problem}"
    );
    assert!(
        !problem["errors"].to_string().contains(&plenty.id.to_hex()),
        "{problem}"
    );
    assert_eq!(
        (app.stock_of(plenty.id).await, app.stock_of(scarce.id).await),
        (50, 2)
    );
    assert_eq!(counts(&app).await, before);
    // Exactly the remaining stock is fine.
    place_ok(&app, &customer, &[(&scarce, 2)]).await;
    assert_eq!(app.stock_of(scarce.id).await, 0);
}

#[tokio::test]
async fn two_hundred_concurrent_orders_for_fifty_units_sell_exactly_fifty() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 50).await;
    let body = order_body(&[(&tea, 1)]);
    let requests = (0..200).map(|_| {
        let (app, customer, body) = (&app, &customer, &body);
        async move { place(app, customer, body).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (50, 150), "{statuses:?}");
    assert_eq!(app.stock_of(tea.id).await, 0);
    assert_eq!(
        counts(&app).await,
        Counts {
            orders: 50,
            events: 50
        }
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_order_routes_and_their_problems() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/orders", "post"),
        ("/api/orders", "get"),
        ("/api/orders/{id}", "get"),
        ("/api/orders/{id}/cancel", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let create = &paths["/api/orders"]["post"]["responses"];
    for status in ["409", "422", "503"] {
        assert!(
            create[status]["content"]["application/problem+json"].is_object(),
            "{status}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["OrderDto"]["properties"]["taxLines"].is_object());
    assert!(schemas["CreateOrder"].is_object());
}

#[tokio::test]
async fn a_repeated_product_is_accepted_when_the_validation_config_allows_it() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.plugins.validation.config = vec![("allow-duplicate-products".into(), "true".into())];
    })
    .await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 2), (&tea, 3)]).await;
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.stock_of(tea.id).await,
        5,
        "stock is taken for the sum of the lines"
    );
}

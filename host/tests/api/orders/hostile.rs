//! Hostile order requests: malformed and mistyped bodies, out-of-range quantities, bad and
//! unknown ids, repeated products, mixed currencies, too many lines, oversized bodies and
//! other media types. Each is refused with its problem, and nothing is written: stock, orders
//! and outbox events stay as they were.

use orderd::domain::{Currency, Id, Product};
use serde_json::{Value, json};

use super::{counts, order_body, place, place_ok};
use crate::helpers::{TestApp, TestUser, assert_problem, error_fields, spawn_app, unique};

async fn product_in(app: &TestApp, currency: &str, price: i64, stock: i64) -> Product {
    let now = orderd::http::now();
    let product = Product {
        id: Id::new(),
        name: format!("Imported {currency}"),
        sku: unique("SKU-"),
        description: None,
        category: "general".to_owned(),
        price,
        currency: Currency::parse(currency).unwrap(),
        stock,
        created_at: now,
        updated_at: now,
    };
    app.store.create_product(&product).await.unwrap();
    product
}

/// Sends `body` (raw bytes, with `content_type`) and checks the problem and that nothing
/// was written.
async fn refused(
    app: &TestApp,
    user: &TestUser,
    content_type: &str,
    body: &[u8],
    status: u16,
    code: &str,
) -> Value {
    let before = counts(app).await;
    let response = app
        .post_raw(
            "/api/orders",
            content_type,
            body.to_vec(),
            Some(&user.access_token),
        )
        .await;
    let problem = assert_problem(response, status, code).await;
    assert_eq!(
        counts(app).await,
        before,
        "nothing is written for {}",
        String::from_utf8_lossy(&body[..body.len().min(80)])
    );
    problem
}

/// [`refused`] for a JSON body answered with 422 and `code`.
async fn refused_json(app: &TestApp, user: &TestUser, body: &str, code: &str) -> Value {
    refused(app, user, "application/json", body.as_bytes(), 422, code).await
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_refused_without_writing_anything() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let id = tea.id.to_hex();
    let json = "application/json";
    refused(
        &app,
        &customer,
        json,
        b"{\"items\": [",
        400,
        "malformed-json",
    )
    .await;
    refused(
        &app,
        &customer,
        json,
        b"not json at all",
        400,
        "malformed-json",
    )
    .await;
    let cases = [
        (
            json!({"items": [{"productId": id, "quantity": "2"}]}),
            "items[0].quantity",
            "invalid-type",
        ),
        (
            json!({"items": [{"productId": id, "quantity": 1.5}]}),
            "items[0].quantity",
            "invalid-type",
        ),
        (
            json!({"items": [{"productId": id}]}),
            "items[0].quantity",
            "missing-field",
        ),
        (
            json!({"items": [{"productId": id, "quantity": 1, "price": 1}]}),
            "items[0].price",
            "unknown-field",
        ),
        (
            json!({"items": [{"productId": id, "quantity": 1}], "userId": id}),
            "userId",
            "unknown-field",
        ),
        (
            json!({"items": {"productId": id, "quantity": 1}}),
            "items",
            "invalid-type",
        ),
        (json!({}), "items", "missing-field"),
        (
            json!({"items": [{"productId": {"$gt": ""}, "quantity": 1}]}),
            "items[0].productId",
            "invalid-type",
        ),
    ];
    for (body, field, code) in cases {
        let problem = refused(
            &app,
            &customer,
            json,
            body.to_string().as_bytes(),
            422,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        assert_eq!(problem["errors"][0]["code"], code, "{body}");
    }
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn out_of_range_quantities_and_empty_orders_are_refused_without_writing_anything() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    for quantity in [json!(0), json!(-1), json!(1_000_000_000_000_i64)] {
        let body = json!({"items": [{"productId": tea.id.to_hex(), "quantity": quantity}]});
        let problem = refused_json(&app, &customer, &body.to_string(), "validation").await;
        assert_eq!(
            problem["errors"][0]["field"], "items[0].quantity",
            "{quantity}"
        );
        assert_eq!(problem["errors"][0]["code"], "out-of-range", "{quantity}");
    }
    let problem = refused(
        &app,
        &customer,
        "application/json",
        br#"{"items": []}"#,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "items");
    // 101 is a valid quantity to the API but above the validation plugin's limit of 100.
    let body = order_body(&[(&tea, 101)]).to_string();
    let problem = refused_json(&app, &customer, &body, "rule-violation").await;
    assert_eq!(problem["errors"][0]["code"], "quantity-out-of-range");
    assert_eq!(problem["errors"][0]["field"], "items[0]");
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn malformed_and_unknown_product_ids_are_listed_each_at_its_line() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let (ghost_a, ghost_b) = (Id::new().to_hex(), Id::new().to_hex());
    let body = json!({"items": [
        {"productId": ghost_a, "quantity": 1},
        {"productId": tea.id.to_hex(), "quantity": 1},
        {"productId": ghost_b, "quantity": 1},
    ]});
    let problem = refused_json(&app, &customer, &body.to_string(), "validation").await;
    assert_eq!(
        error_fields(&problem),
        ["items[0].productId", "items[2].productId"]
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&ghost_a)
    );
    assert_eq!(problem["errors"][1]["code"], "unknown-product");

    for bad in ["", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "' OR 1=1 --"] {
        let body = json!({"items": [{"productId": bad, "quantity": 1}]});
        let problem = refused_json(&app, &customer, &body.to_string(), "validation").await;
        assert_eq!(problem["errors"][0]["code"], "invalid-id", "{bad:?}");
    }
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn a_repeated_product_is_refused_by_the_validation_plugin() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let body = order_body(&[(&tea, 1), (&tea, 2)]).to_string();
    let problem = refused_json(&app, &customer, &body, "rule-violation").await;
    assert_eq!(problem["errors"][0]["code"], "duplicate-product");
    assert_eq!(problem["errors"][0]["field"], "items[1]");
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn products_priced_in_two_currencies_cannot_share_an_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let mug = product_in(&app, "USD", 900, 10).await;
    let body = order_body(&[(&tea, 1), (&mug, 1)]).to_string();
    let problem = refused_json(&app, &customer, &body, "validation").await;
    assert_eq!(
        (
            problem["errors"][0]["field"].as_str(),
            problem["errors"][0]["code"].as_str()
        ),
        (Some("items[1].productId"), Some("currency-mismatch"))
    );
    assert_eq!(
        (app.stock_of(tea.id).await, app.stock_of(mug.id).await),
        (10, 10)
    );
}

#[tokio::test]
async fn fifty_lines_are_accepted_and_fifty_one_or_a_thousand_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut products = Vec::new();
    for _ in 0..51 {
        products.push(app.create_product(10, 5).await);
    }
    let lines: Vec<_> = products.iter().map(|p| (p, 1)).collect();
    let fifty_one = order_body(&lines).to_string();
    let problem = refused_json(&app, &customer, &fifty_one, "rule-violation").await;
    assert_eq!(problem["errors"][0]["code"], "too-many-lines");

    let thousand: Vec<_> = (0..1000).map(|i| (&products[i % 51], 1)).collect();
    let thousand = order_body(&thousand).to_string();
    assert!(
        thousand.len() < 64 * 1024,
        "the body itself is within the size limit"
    );
    let problem = refused_json(&app, &customer, &thousand, "validation").await;
    assert_eq!(problem["errors"][0]["code"], "too-many-items");

    place_ok(&app, &customer, &lines[..50]).await;
    assert_eq!(app.stock_of(products[0].id).await, 4);
}

#[tokio::test]
async fn oversized_bodies_and_other_content_types_are_refused_without_writing_anything() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let mut big = order_body(&[(&tea, 1)]);
    big["shippingAddress"] = json!({"country": "IN", "region": "x".repeat(70 * 1024)});
    refused(
        &app,
        &customer,
        "application/json",
        big.to_string().as_bytes(),
        413,
        "payload-too-large",
    )
    .await;
    let body = order_body(&[(&tea, 1)]).to_string();
    refused(
        &app,
        &customer,
        "text/plain",
        body.as_bytes(),
        415,
        "unsupported-media-type",
    )
    .await;
    refused(
        &app,
        &customer,
        "application/x-www-form-urlencoded",
        b"items=1",
        415,
        "unsupported-media-type",
    )
    .await;
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn a_shipping_address_is_checked_and_kept_with_the_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let tea = app.create_product(100, 10).await;
    let mut body = order_body(&[(&tea, 1)]);
    body["shippingAddress"] =
        json!({"country": "in", "region": "Karnataka ☕", "postalCode": "560001"});
    let response = place(&app, &customer, &body).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        order["shippingAddress"],
        json!({"country": "IN", "region": "Karnataka ☕", "postalCode": "560001"})
    );

    body["shippingAddress"] = json!({"country": "India"});
    let problem = refused_json(&app, &customer, &body.to_string(), "validation").await;
    assert_eq!(error_fields(&problem), ["shippingAddress.country"]);
}

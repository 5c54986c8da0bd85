//! The catalog: public listing and reading, admin-only creation and changes.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, error_fields, spawn_app};

fn new_product(sku: &str) -> Value {
    json!({"name": "Assam tea", "sku": sku, "description": "Strong", "category": "essentials",
           "price": 34900, "currency": "INR", "stock": 100})
}

async fn product_count(app: &TestApp) -> usize {
    app.store.list_products(None, 1000).await.unwrap().len()
}

#[tokio::test]
async fn an_admin_creates_a_product_and_anyone_can_read_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let response = app
        .post_json(
            "/api/products",
            &new_product("TEA-1"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/products/{}", created["id"].as_str().unwrap())
    );
    for (field, value) in [
        ("name", json!("Assam tea")),
        ("sku", json!("TEA-1")),
        ("description", json!("Strong")),
        ("category", json!("essentials")),
        ("price", json!(34900)),
        ("currency", json!("INR")),
        ("stock", json!(100)),
    ] {
        assert_eq!(created[field], value, "{field}");
    }
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());
    let fetched: Value = app.get(&location, None).await.json().await.unwrap();
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn creating_a_product_needs_an_admin() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    assert_problem(
        app.post_json("/api/products", &new_product("TEA-2"), None)
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.post_json(
            "/api/products",
            &new_product("TEA-2"),
            Some(&customer.access_token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(product_count(&app).await, 0);
}

#[tokio::test]
async fn a_duplicate_sku_is_a_409_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    assert_eq!(
        app.post_json(
            "/api/products",
            &new_product("DUP-1"),
            Some(&admin.access_token)
        )
        .await
        .status(),
        201
    );
    let problem = assert_problem(
        app.post_json(
            "/api/products",
            &new_product("DUP-1"),
            Some(&admin.access_token),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(error_fields(&problem), ["sku"]);
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn invalid_product_fields_are_all_listed_and_nothing_is_written() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({"name": "", "sku": "has space", "category": "a/b", "price": -1, "currency": "EURO", "stock": -1});
    let problem = assert_problem(
        app.post_json("/api/products", &body, Some(&admin.access_token))
            .await,
        422,
        "validation",
    )
    .await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        ["category", "currency", "name", "price", "sku", "stock"]
    );
    let as_string = json!({"name": "x", "sku": "S-1", "category": "c", "price": "100", "currency": "INR", "stock": 1});
    let problem = assert_problem(
        app.post_json("/api/products", &as_string, Some(&admin.access_token))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(
        (
            problem["errors"][0]["field"].as_str(),
            problem["errors"][0]["code"].as_str()
        ),
        (Some("price"), Some("invalid-type"))
    );
    assert_eq!(product_count(&app).await, 0);
}

#[tokio::test]
async fn the_largest_price_is_accepted_and_one_more_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let max = orderd::domain::money::MAX_PRICE;
    let mut body = new_product("PRICE-MAX");
    body["price"] = json!(max);
    assert_eq!(
        app.post_json("/api/products", &body, Some(&admin.access_token))
            .await
            .status(),
        201
    );
    body["sku"] = json!("PRICE-OVER");
    body["price"] = json!(max + 1);
    let problem = assert_problem(
        app.post_json("/api/products", &body, Some(&admin.access_token))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(error_fields(&problem), ["price"]);
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn listing_pages_through_the_whole_catalog_in_id_order() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_product(100, 1).await.id.to_hex());
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut path = "/api/products?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, None).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/products?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let default: Value = app.get("/api/products", None).await.json().await.unwrap();
    assert_eq!(default["items"].as_array().unwrap().len(), 5);
    assert!(default["nextCursor"].is_null());
}

#[tokio::test]
async fn a_limit_of_100_is_accepted_and_101_or_0_are_refused() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/products?limit=100", None).await.status(), 200);
    assert_eq!(app.get("/api/products?limit=1", None).await.status(), 200);
    for bad in ["limit=101", "limit=0", "limit=-1", "limit=abc", "limit=1.5"] {
        let problem = assert_problem(
            app.get(&format!("/api/products?{bad}"), None).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(error_fields(&problem), ["limit"], "{bad}");
    }
    let problem = assert_problem(
        app.get("/api/products?cursor=zzz", None).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "invalid-id");
    let problem = assert_problem(
        app.get("/api/products?sort=price", None).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(error_fields(&problem), ["sort"]);
}

#[tokio::test]
async fn reading_an_unknown_product_is_404_and_a_malformed_id_is_422() {
    let app = spawn_app().await;
    let unknown = format!("/api/products/{}", orderd::domain::Id::new());
    assert_problem(app.get(&unknown, None).await, 404, "not-found").await;
    for bad in [
        "123",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "0123456789abcdef0123456789",
        "%27%20OR%201%3D1",
    ] {
        let problem = assert_problem(
            app.get(&format!("/api/products/{bad}"), None).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "id");
        assert_eq!(problem["errors"][0]["code"], "invalid-id");
    }
}

#[tokio::test]
async fn an_admin_changes_price_and_stock_and_the_change_is_stored() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let product = app.create_product(1000, 3).await;
    let path = format!("/api/products/{}", product.id);
    // Timestamps keep milliseconds: let one pass so the change is visible in updatedAt.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let response = app
        .patch_json(
            &path,
            &json!({"price": 1200, "stock": 7, "name": "Renamed ✓"}),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["price"].as_i64(),
            body["stock"].as_i64(),
            body["name"].as_str()
        ),
        (Some(1200), Some(7), Some("Renamed ✓"))
    );
    assert_eq!(body["sku"], product.sku);
    let stored = app.store.product(product.id).await.unwrap().unwrap();
    assert_eq!((stored.price, stored.stock), (1200, 7));
    assert!(stored.updated_at > product.updated_at);
}

#[tokio::test]
async fn bad_patches_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let product = app.create_product(1000, 3).await;
    let before = app.store.product(product.id).await.unwrap().unwrap();
    let path = format!("/api/products/{}", product.id);
    let token = Some(admin.access_token.as_str());
    assert_problem(
        app.patch_json(&path, &json!({}), token).await,
        422,
        "validation",
    )
    .await;
    let problem = assert_problem(
        app.patch_json(&path, &json!({"sku": "NEW"}), token).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown-field");
    assert_problem(
        app.patch_json(&path, &json!({"stock": -5}), token).await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.patch_json(&path, &json!({"price": "12"}), token).await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        app.patch_json(&path, &json!({"price": 1}), Some(&customer.access_token))
            .await,
        403,
        "forbidden",
    )
    .await;
    let unknown = format!("/api/products/{}", orderd::domain::Id::new());
    assert_problem(
        app.patch_json(&unknown, &json!({"price": 1}), token).await,
        404,
        "not-found",
    )
    .await;
    let stored = app.store.product(product.id).await.unwrap().unwrap();
    assert_eq!(stored, before);
}

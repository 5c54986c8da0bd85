//! The hostile list: malformed, oversized, mistyped and injected requests all get a problem
//! document with the right status, never a 500, and write nothing.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, error_fields, spawn_app};

const REGISTER: &str = "/api/auth/register";

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/nothing-here", None).await, 404, "not-found").await;
    let delete = app
        .client
        .delete(app.url("/api/products"))
        .send()
        .await
        .unwrap();
    assert_problem(delete, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn malformed_json_is_a_400_and_writes_nothing() {
    let app = spawn_app().await;
    for body in [
        "{\"username\": \"ada\", ",
        "{username: 'ada'}",
        "{\"username\":\"ada_x\",\"email\":\"ada_x@example.com\",\"password\":\"12345678\"} extra",
        "\u{0}",
    ] {
        let response = app
            .post_raw(REGISTER, "application/json", body.to_owned(), None)
            .await;
        assert_problem(response, 400, "malformed-json").await;
    }
    assert!(
        app.store
            .user_by_email("ada_x@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let body = "{\"username\":\"ada_y\",\"email\":\"ada_y@example.com\",\"password\":\"12345678\"}";
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let response = app
            .post_raw(REGISTER, content_type, body.to_owned(), None)
            .await;
        assert_problem(response, 415, "unsupported-media-type").await;
    }
    let no_type = app
        .client
        .post(app.url(REGISTER))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_problem(no_type, 415, "unsupported-media-type").await;
    assert!(
        app.store
            .user_by_email("ada_y@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_body_just_under_64_kib_is_read_and_one_over_it_is_a_413() {
    let app = spawn_app().await;
    let padding = |len: usize| json!({"username": "big_body", "email": "big@example.com", "password": "x".repeat(len)});
    let under = padding(60 * 1024);
    assert!(serde_json::to_vec(&under).unwrap().len() < 64 * 1024);
    // Read and parsed: the password is simply too long.
    let problem = assert_problem(
        app.post_json(REGISTER, &under, None).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(error_fields(&problem), ["password"]);
    let over = padding(65 * 1024);
    assert_problem(
        app.post_json(REGISTER, &over, None).await,
        413,
        "payload-too-large",
    )
    .await;
    assert!(
        app.store
            .user_by_email("big@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn wrong_types_missing_and_unknown_fields_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": 42, "email": "t1@example.com", "password": "12345678"}),
            "username",
            "invalid-type",
        ),
        (
            json!({"username": "t1_user", "email": "t1@example.com"}),
            "password",
            "missing-field",
        ),
        (
            json!({"username": "t1_user", "email": "t1@example.com", "password": "12345678", "role": "admin"}),
            "role",
            "unknown-field",
        ),
        (
            json!({"username": "t1_user", "email": ["t1@example.com"], "password": "12345678"}),
            "email",
            "invalid-type",
        ),
        (json!(null), "body", "invalid-type"),
        // serde reads a struct from an array positionally; the first element is the username.
        (json!([1, 2]), "[0]", "invalid-type"),
    ];
    for (body, field, code) in cases {
        let problem = assert_problem(
            app.post_json(REGISTER, &body, None).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        assert_eq!(problem["errors"][0]["code"], code, "{body}");
    }
    assert!(
        app.store
            .user_by_email("t1@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_operator_object_as_email_is_a_type_error_not_a_query() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({"email": {"$gt": ""}, "password": customer.password}),
            None,
        )
        .await;
    let problem = assert_problem(login, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "email");
    let register = app
        .post_json(
            REGISTER,
            &json!({"username": "gt_user", "email": {"$gt": ""}, "password": "12345678"}),
            None,
        )
        .await;
    assert_problem(register, 422, "validation").await;
    let as_string = app
        .post_json(
            REGISTER,
            &json!({"username": "gt_user", "email": "{\"$gt\": \"\"}", "password": "12345678"}),
            None,
        )
        .await;
    let problem = assert_problem(as_string, 422, "validation").await;
    assert_eq!(error_fields(&problem), ["email"]);
}

#[tokio::test]
async fn sql_fragments_are_refused_where_the_alphabet_is_strict_and_stored_verbatim_elsewhere() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let injected = app
        .register("x'; DROP TABLE users;--", "sql@example.com", "12345678")
        .await;
    let problem = assert_problem(injected, 422, "validation").await;
    assert_eq!(error_fields(&problem), ["username"]);
    assert!(
        app.store
            .user_by_email("sql@example.com")
            .await
            .unwrap()
            .is_none()
    );

    let name = "Robert'); DROP TABLE products;-- \" OR 1=1";
    let product = json!({"name": name, "sku": "SQL-1", "category": "general", "price": 100, "currency": "INR", "stock": 1});
    let created = app
        .post_json("/api/products", &product, Some(&admin.access_token))
        .await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    let fetched: Value = app
        .get(
            &format!("/api/products/{}", body["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["name"], name);
    let bad_sku = json!({"name": "x", "sku": "a' OR '1'='1", "category": "general", "price": 1, "currency": "INR", "stock": 1});
    let problem = assert_problem(
        app.post_json("/api/products", &bad_sku, Some(&admin.access_token))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(error_fields(&problem), ["sku"]);
    // The catalog is intact: exactly the one product.
    let list: Value = app.get("/api/products", None).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unicode_and_emoji_names_round_trip_but_usernames_stay_ascii() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let name = "Chai ☕ मसाला 🍵 çay";
    let product = json!({"name": name, "sku": "CHAI-EMOJI", "description": "香り高い 🌿", "category": "Essentials", "price": 12900, "currency": "inr", "stock": 5});
    let created = app
        .post_json("/api/products", &product, Some(&admin.access_token))
        .await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["name"], name);
    assert_eq!(body["description"], "香り高い 🌿");
    assert_eq!(
        (body["category"].as_str(), body["currency"].as_str()),
        (Some("essentials"), Some("INR"))
    );
    let problem = assert_problem(
        app.register("😀😀😀", "emoji@example.com", "12345678")
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(error_fields(&problem), ["username"]);
}

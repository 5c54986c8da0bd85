//! The admin plugin API: what each slot runs, uploading a version (checked before anything
//! changes), version history, rollback, and every instance sharing a store converging on the
//! active version.

use std::time::{Duration, Instant};

use chrono::Utc;
use orderd::domain::Id;
use orderd::storage::PluginVersion;
use reqwest::Response;
use serde_json::Value;

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app, spawn_app_with};
use crate::orders::{place_ok, tax_half_up};

const FLAT_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/flat_tax.wasm");
const GST_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/gst_tax.wasm");
const ORDER_LIMITS: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/order_limits.wasm");
const PANICKER: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/panicker.wasm");

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("test plugin {path}: {e}"))
}

/// `PUT /api/admin/plugins/{path}` with `body` as `application/wasm`.
async fn upload(app: &TestApp, admin: &TestUser, path: &str, body: Vec<u8>) -> Response {
    app.client
        .put(app.url(&format!("/api/admin/plugins/{path}")))
        .bearer_auth(&admin.access_token)
        .header("content-type", "application/wasm")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn slots(app: &TestApp, admin: &TestUser) -> Value {
    let response = app
        .get("/api/admin/plugins", Some(&admin.access_token))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn tax_slot(app: &TestApp, admin: &TestUser) -> Value {
    slots(app, admin).await["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == "tax")
        .cloned()
        .unwrap()
}

async fn versions(app: &TestApp, admin: &TestUser, slot: &str) -> Value {
    let response = app
        .get(
            &format!("/api/admin/plugins/{slot}/versions"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn rollback(app: &TestApp, admin: &TestUser, slot: &str) -> Response {
    app.post_json(
        &format!("/api/admin/plugins/{slot}/rollback"),
        &serde_json::json!({}),
        Some(&admin.access_token),
    )
    .await
}

/// The tax of a fresh order of one unit at 10,000 minor units.
async fn tax_of_an_order(app: &TestApp) -> i64 {
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    place_ok(app, &customer, &[(&tea, 1)]).await["taxTotal"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn admins_see_every_slot_serving_its_built_in_plugin() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = slots(&app, &admin).await;
    let names: Vec<_> = body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slot"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tax", "validation", "email"]);
    for slot in body["slots"].as_array().unwrap() {
        assert_eq!(slot["source"], "embedded", "{slot}");
        assert_eq!(slot["sha256"].as_str().unwrap().len(), 64, "{slot}");
        assert_eq!(slot["policy"], "fail-closed", "{slot}");
        assert!(
            slot["storedVersionId"].is_null() && slot["loadedAt"].is_string(),
            "{slot}"
        );
    }
}

#[tokio::test]
async fn customers_and_anonymous_callers_cannot_use_the_plugin_api() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    assert_problem(
        app.get("/api/admin/plugins", None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get("/api/admin/plugins", Some(&customer.access_token))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        upload(&app, &customer, "tax", wasm(FLAT_TAX)).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(rollback(&app, &customer, "tax").await, 403, "forbidden").await;
    assert_eq!(
        tax_of_an_order(&app).await,
        1_800,
        "the tax slot is unchanged"
    );
}

#[tokio::test]
async fn an_uploaded_flat_tax_plugin_taxes_the_next_order_and_rollback_restores_gst() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    assert_eq!(tax_of_an_order(&app).await, tax_half_up(10_000, 1800));

    let response = upload(&app, &admin, "tax", wasm(FLAT_TAX)).await;
    assert_eq!(response.status(), 201);
    let version: Value = response.json().await.unwrap();
    let version_id = version["version"]["id"].as_str().unwrap().to_owned();
    assert_eq!(version["version"]["slot"], "tax");
    assert_eq!(version["version"]["createdBy"], admin.id.to_hex());
    assert_eq!(tax_of_an_order(&app).await, tax_half_up(10_000, 1000));

    let slot = tax_slot(&app, &admin).await;
    assert_eq!(
        (slot["source"].as_str(), slot["versionId"].as_str()),
        (Some("upload"), Some(version_id.as_str()))
    );
    assert_eq!(slot["storedVersionId"], version_id.as_str());
    assert_eq!(slot["sha256"], version["version"]["sha256"]);
    let listed = versions(&app, &admin, "tax").await;
    assert_eq!(listed["activeVersionId"], version_id.as_str());
    assert_eq!(listed["items"][0]["id"], version_id.as_str());

    let response = rollback(&app, &admin, "tax").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.json::<Value>().await.unwrap()["version"].is_null(),
        "back to the built-in default"
    );
    assert_eq!(tax_of_an_order(&app).await, tax_half_up(10_000, 1800));
    assert_eq!(tax_slot(&app, &admin).await["source"], "embedded");
    assert_problem(
        rollback(&app, &admin, "tax").await,
        409,
        "nothing-to-roll-back",
    )
    .await;
}

#[tokio::test]
async fn rollback_goes_to_the_version_uploaded_before_the_active_one() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let first: Value = upload(&app, &admin, "tax", wasm(FLAT_TAX))
        .await
        .json()
        .await
        .unwrap();
    let second = upload(
        &app,
        &admin,
        "tax?config=rate.default%3D1200",
        wasm(GST_TAX),
    )
    .await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        tax_of_an_order(&app).await,
        1_200,
        "the config given with the upload applies"
    );

    let response: Value = rollback(&app, &admin, "tax").await.json().await.unwrap();
    assert_eq!(response["version"]["id"], first["version"]["id"]);
    assert_eq!(tax_of_an_order(&app).await, 1_000);
    assert_eq!(
        versions(&app, &admin, "tax").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_component_that_is_not_a_plugin_for_the_slot_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let before = tax_slot(&app, &admin).await;
    let cases = [
        (b"definitely not wasm".to_vec(), "component"),
        (wasm(FLAT_TAX)[..1_000].to_vec(), ""),
        (wasm(ORDER_LIMITS), "shop:rules/tax@0.1.0"),
        (wasm(PANICKER), "smoke test"),
        // Above the 64 KiB default body limit: the upload route takes larger bodies.
        (vec![0u8; 100 * 1024], ""),
    ];
    for (bytes, reason) in cases {
        let problem = assert_problem(
            upload(&app, &admin, "tax", bytes).await,
            422,
            "plugin-rejected",
        )
        .await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{detail}");
        assert!(detail.contains("nothing was changed"), "{detail}");
    }
    assert!(
        versions(&app, &admin, "tax").await["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no version was stored"
    );
    let after = tax_slot(&app, &admin).await;
    assert_eq!(
        (&after["sha256"], &after["generation"]),
        (&before["sha256"], &before["generation"])
    );
    assert_eq!(tax_of_an_order(&app).await, 1_800);
}

#[tokio::test]
async fn uploads_need_a_known_slot_the_wasm_media_type_a_valid_policy_and_at_most_32_mib() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    assert_problem(
        upload(&app, &admin, "shipping", wasm(FLAT_TAX)).await,
        404,
        "not-found",
    )
    .await;
    let as_json = app
        .client
        .put(app.url("/api/admin/plugins/tax"))
        .bearer_auth(&admin.access_token)
        .header("content-type", "application/json")
        .body(wasm(FLAT_TAX))
        .send()
        .await
        .unwrap();
    assert_problem(as_json, 415, "unsupported-media-type").await;
    let problem = assert_problem(
        upload(&app, &admin, "tax?policy=sometimes", wasm(FLAT_TAX)).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "policy");
    let problem = assert_problem(
        upload(&app, &admin, "tax?config=novalue", wasm(FLAT_TAX)).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "config");
    assert_problem(
        upload(&app, &admin, "tax", vec![0u8; (32 << 20) + 1]).await,
        413,
        "payload-too-large",
    )
    .await;
    assert!(
        versions(&app, &admin, "tax").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_problem(
        app.get(
            "/api/admin/plugins/shipping/versions",
            Some(&admin.access_token),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_failing_tax_plugin_that_fails_closed_answers_503_naming_the_slot_and_writes_nothing() {
    // Without the smoke test a plugin that traps on every call can be activated.
    let app = spawn_app_with(|s| s.plugins.smoke_test = false).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    assert_eq!(
        upload(&app, &admin, "tax", wasm(PANICKER)).await.status(),
        201
    );

    let before = crate::orders::counts(&app).await;
    let response =
        crate::orders::place(&app, &customer, &crate::orders::order_body(&[(&tea, 1)])).await;
    let problem = assert_problem(response, 503, "plugin-unavailable").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("tax"),
        "{problem}"
    );
    assert_eq!(crate::orders::counts(&app).await, before);
    assert_eq!(app.stock_of(tea.id).await, 10);
}

#[tokio::test]
async fn a_failing_tax_plugin_uploaded_with_the_fallback_policy_falls_back_to_the_previous_version()
{
    let app = spawn_app_with(|s| s.plugins.smoke_test = false).await;
    let admin = app.admin().await;
    let response = upload(&app, &admin, "tax?policy=fallback", wasm(PANICKER)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<Value>().await.unwrap()["version"]["policy"],
        "fallback"
    );
    assert_eq!(
        tax_of_an_order(&app).await,
        1_800,
        "the built-in plugin served the call"
    );
    assert!(tax_slot(&app, &admin).await["fallbacks"].as_u64().unwrap() >= 1);
}

/// Waits until the tax slot of `app` serves `version_id`, or fails after 5 s.
async fn wait_for_tax_version(app: &TestApp, admin: &TestUser, version_id: &str) -> Duration {
    let started = Instant::now();
    loop {
        if tax_slot(app, admin).await["versionId"] == version_id {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot did not converge on {version_id}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_version_activated_in_the_store_is_picked_up_within_seconds() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let bytes = wasm(FLAT_TAX);
    let version = PluginVersion {
        id: Id::new(),
        slot: "tax".into(),
        sha256: orderd::plugins::sha256_hex(&bytes),
        wasm: bytes,
        config: vec![],
        policy: None,
        created_at: Utc::now(),
        created_by: None,
    };
    app.store.put_plugin_version(&version).await.unwrap();
    app.store
        .set_active_plugin("tax", Some(version.id), Utc::now())
        .await
        .unwrap();
    wait_for_tax_version(&app, &admin, &version.id.to_hex()).await;
    assert_eq!(tax_of_an_order(&app).await, 1_000);

    app.store
        .set_active_plugin("tax", None, Utc::now())
        .await
        .unwrap();
    let started = Instant::now();
    while tax_slot(&app, &admin).await["source"] != "embedded" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot did not return to the built-in plugin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tax_of_an_order(&app).await, 1_800);
}

#[tokio::test]
async fn two_instances_sharing_a_store_converge_on_an_upload_to_either() {
    let first = spawn_app().await;
    let shared = first.data_dir.path().to_path_buf();
    let second = spawn_app_with(move |s| s.data_dir = shared).await;
    let admin = first.admin().await;
    let admin_on_second = TestUser {
        access_token: second
            .state
            .tokens
            .issue_access(admin.id, orderd::domain::Role::Admin)
            .unwrap()
            .token,
        ..admin.clone()
    };

    let response = upload(&first, &admin, "tax", wasm(FLAT_TAX)).await;
    assert_eq!(response.status(), 201);
    let version: Value = response.json().await.unwrap();
    let waited = wait_for_tax_version(
        &second,
        &admin_on_second,
        version["version"]["id"].as_str().unwrap(),
    )
    .await;
    assert!(
        waited < Duration::from_secs(3),
        "converged after {waited:?}"
    );
    assert_eq!(tax_of_an_order(&second).await, 1_000);

    assert_eq!(
        rollback(&second, &admin_on_second, "tax").await.status(),
        200
    );
    let started = Instant::now();
    while tax_slot(&first, &admin).await["source"] != "embedded" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the first instance did not follow the rollback"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_version_uploaded_without_config_runs_with_the_instances_configured_config() {
    let app =
        spawn_app_with(|s| s.plugins.tax.config = vec![("rate.default".into(), "1500".into())])
            .await;
    let admin = app.admin().await;
    let response = upload(&app, &admin, "tax", wasm(GST_TAX)).await;
    assert_eq!(response.status(), 201);
    let version: Value = response.json().await.unwrap();
    assert_eq!(
        version["version"]["config"],
        serde_json::json!([]),
        "stored as given"
    );
    assert_eq!(tax_of_an_order(&app).await, 1_500);
    assert_eq!(tax_slot(&app, &admin).await["config"][0]["value"], "1500");
}

#[tokio::test]
async fn the_openapi_document_describes_the_admin_plugin_routes() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    for (path, method) in [
        ("/api/admin/plugins", "get"),
        ("/api/admin/plugins/{slot}", "put"),
        ("/api/admin/plugins/{slot}/versions", "get"),
        ("/api/admin/plugins/{slot}/rollback", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let upload = &doc["paths"]["/api/admin/plugins/{slot}"]["put"];
    assert!(
        upload["requestBody"]["content"]["application/wasm"].is_object(),
        "{upload}"
    );
}

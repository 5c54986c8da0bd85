//! Who may use recordings, dry runs and shadows, hostile requests to them, and their OpenAPI
//! description.

use serde_json::Value;

use super::*;
use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn customers_and_anonymous_callers_cannot_use_recordings_dry_runs_or_shadows() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    for path in ["recorded", "shadow"] {
        let path = format!("/api/admin/plugins/tax/{path}");
        assert_problem(app.get(&path, Some(token)).await, 403, "forbidden").await;
        assert_problem(app.get(&path, None).await, 401, "unauthorized").await;
    }
    let post = reqwest::Method::POST;
    let responses = [
        send_wasm(&app, token, post.clone(), "tax/dry-run", wasm(FLAT_TAX)).await,
        send_wasm(
            &app,
            token,
            reqwest::Method::PUT,
            "tax?mode=shadow",
            wasm(FLAT_TAX),
        )
        .await,
        send_wasm(&app, token, post, "tax/promote", vec![]).await,
        app.client
            .delete(app.url("/api/admin/plugins/tax/shadow"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        assert_problem(response, 403, "forbidden").await;
    }
    let admin = app.admin().await;
    assert!(
        shadow(&app, &admin).await.is_null(),
        "no shadow was started"
    );
}

#[tokio::test]
async fn hostile_dry_run_and_shadow_requests_are_refused_with_problems_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let garbage = b"\0asm but not really a component".to_vec();
    let problem = assert_problem(
        dry_run(&app, &admin, "", garbage.clone()).await,
        422,
        "plugin-rejected",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{problem}"
    );
    assert_problem(
        shadow_upload(&app, &admin, "", garbage).await,
        422,
        "plugin-rejected",
    )
    .await;
    // A component that panics on every call fails the smoke test and never becomes a shadow.
    assert_problem(
        shadow_upload(&app, &admin, "", wasm(PANICKER)).await,
        422,
        "plugin-rejected",
    )
    .await;
    let wrong_type = app
        .client
        .post(app.url("/api/admin/plugins/tax/dry-run"))
        .bearer_auth(&admin.access_token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415, "unsupported-media-type").await;
    let too_big = vec![0u8; orderd::plugins::MAX_COMPONENT_BYTES + 1];
    assert_problem(
        dry_run(&app, &admin, "", too_big).await,
        413,
        "payload-too-large",
    )
    .await;
    let post = reqwest::Method::POST;
    let no_slot = send_wasm(
        &app,
        &admin.access_token,
        post.clone(),
        "shipping/dry-run",
        wasm(FLAT_TAX),
    )
    .await;
    assert_problem(no_slot, 404, "not-found").await;
    let problem = assert_problem(
        shadow_upload(&app, &admin, "&mode=shadow", wasm(FLAT_TAX)).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "mode", "{problem}");
    let bad_mode = send_wasm(
        &app,
        &admin.access_token,
        reqwest::Method::PUT,
        "tax?mode=sideways",
        wasm(FLAT_TAX),
    )
    .await;
    assert_problem(bad_mode, 422, "validation").await;
    let problem = assert_problem(
        dry_run(&app, &admin, "?mode=shadow", wasm(FLAT_TAX)).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown-field", "{problem}");
    let promote = send_wasm(&app, &admin.access_token, post, "tax/promote", vec![]).await;
    assert_problem(promote, 409, "no-shadow").await;

    assert!(shadow(&app, &admin).await.is_null());
    assert_eq!(stored_versions(&app, &admin).await, 0);
    assert_eq!(tax_source(&app, &admin).await, "embedded");
}

#[tokio::test]
async fn the_openapi_document_describes_recordings_dry_runs_shadows_and_promotion() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    for (path, method) in [
        ("/api/admin/plugins/{slot}/recorded", "get"),
        ("/api/admin/plugins/{slot}/dry-run", "post"),
        ("/api/admin/plugins/{slot}/shadow", "get"),
        ("/api/admin/plugins/{slot}/shadow", "delete"),
        ("/api/admin/plugins/{slot}/promote", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let dry_run = &doc["paths"]["/api/admin/plugins/{slot}/dry-run"]["post"];
    assert!(
        dry_run["requestBody"]["content"]["application/wasm"].is_object(),
        "{dry_run}"
    );
    let upload = &doc["paths"]["/api/admin/plugins/{slot}"]["put"];
    let params: Vec<&Value> = upload["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert!(params.contains(&&Value::from("mode")), "{upload}");
    assert!(upload["responses"]["202"].is_object(), "{upload}");
}

#[tokio::test]
async fn the_documented_outputs_admit_the_array_a_validation_rule_answers() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("RecordedCallDto", "output"),
        ("RunResultDto", "output"),
        ("DivergenceDto", "active"),
        ("DivergenceDto", "candidate"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert!(property.is_object(), "{schema}.{field} missing");
        assert_ne!(property["type"], "object", "{schema}.{field}: {property}");
    }
}

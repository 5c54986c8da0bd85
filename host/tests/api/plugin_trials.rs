//! Trying a new plugin version safely through the admin API: recorded recent calls (personal
//! data redacted), dry runs on them, a shadow beside the active version and its promotion,
//! admins only, hostile requests refused.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::Value;

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app, spawn_app_with};
use crate::orders::{place_ok, tax_half_up};

const FLAT_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/flat_tax.wasm");
const GST_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/gst_tax.wasm");
const PANICKER: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/panicker.wasm");

/// The candidate of the shadow tests: the built-in GST rule with electronics at 28% instead of
/// the default 18%, so it differs from the active version only on electronics lines.
const ELECTRONICS_AT_28: &str = "config=rate.electronics%3D2800";

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("test plugin {path}: {e}"))
}

/// `method /api/admin/plugins/{path}` with `body` as `application/wasm`.
async fn send_wasm(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> Response {
    app.client
        .request(method, app.url(&format!("/api/admin/plugins/{path}")))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn dry_run(app: &TestApp, admin: &TestUser, query: &str, body: Vec<u8>) -> Response {
    let path = format!("tax/dry-run{query}");
    send_wasm(app, &admin.access_token, reqwest::Method::POST, &path, body).await
}

async fn shadow_upload(app: &TestApp, admin: &TestUser, query: &str, body: Vec<u8>) -> Response {
    let path = format!("tax?mode=shadow{query}");
    send_wasm(app, &admin.access_token, reqwest::Method::PUT, &path, body).await
}

async fn get_json(app: &TestApp, admin: &TestUser, path: &str) -> Value {
    let response = app.get(path, Some(&admin.access_token)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn shadow(app: &TestApp, admin: &TestUser) -> Value {
    get_json(app, admin, "/api/admin/plugins/tax/shadow").await["shadow"].clone()
}

/// Waits until the tax shadow has seen `calls` live calls (shadow calls run off the request
/// path, so they finish a little after the orders' responses).
async fn shadow_after(app: &TestApp, admin: &TestUser, calls: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = shadow(app, admin).await;
        let seen = ["agreements", "divergences", "failures", "dropped"]
            .iter()
            .map(|k| s[k].as_u64().unwrap())
            .sum::<u64>();
        if seen >= calls || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stored_versions(app: &TestApp, admin: &TestUser) -> usize {
    get_json(app, admin, "/api/admin/plugins/tax/versions").await["items"]
        .as_array()
        .unwrap()
        .len()
}

async fn tax_source(app: &TestApp, admin: &TestUser) -> Value {
    let slots = get_json(app, admin, "/api/admin/plugins").await;
    slots["slots"][0]["source"].clone()
}

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
    let too_big = vec![0u8; 11 << 20];
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
async fn orders_are_recorded_per_slot_with_the_customers_personal_data_redacted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 2)]).await;

    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    assert_eq!(recorded["personalData"], "redact");
    assert_eq!(recorded["maxCalls"], 100);
    let calls = recorded["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{recorded}");
    let call = &calls[0];
    assert_eq!(call["function"], "calculate");
    assert_eq!(call["input"]["items"][0]["quantity"], 2);
    assert_eq!(call["output"]["totalTax"]["amount"], order["taxTotal"]);
    assert_eq!(
        call["input"]["customer"]["email"],
        orderd::plugins::REDACTED_EMAIL
    );
    assert_eq!(
        call["input"]["customer"]["name"],
        orderd::plugins::REDACTED_NAME
    );
    let text = recorded.to_string();
    assert!(
        !text.contains(&customer.email) && !text.contains(&customer.username),
        "{text}"
    );
    assert!(recorded["bytes"].as_u64().unwrap() > 0);

    let validation = get_json(&app, &admin, "/api/admin/plugins/validation/recorded").await;
    assert_eq!(
        validation["calls"][0]["function"], "validate",
        "{validation}"
    );
    assert_eq!(validation["calls"][0]["output"], serde_json::json!([]));
}

#[tokio::test]
async fn the_recording_keeps_the_newest_calls_up_to_its_configured_count_and_may_keep_personal_data()
 {
    let app = spawn_app_with(|s| {
        s.plugins.recording.inputs_per_slot = 2;
        s.plugins.recording.personal_data = orderd::plugins::PersonalData::Keep;
    })
    .await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    for quantity in 1..=3 {
        place_ok(&app, &customer, &[(&tea, quantity)]).await;
    }
    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    let quantities: Vec<&Value> = recorded["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["input"]["items"][0]["quantity"])
        .collect();
    assert_eq!(
        quantities,
        [2, 3],
        "the oldest call was dropped: {recorded}"
    );
    assert_eq!(recorded["personalData"], "keep");
    assert_eq!(
        recorded["calls"][0]["input"]["customer"]["email"],
        customer.email.to_lowercase()
    );
}

#[tokio::test]
async fn a_dry_run_answers_per_input_where_a_candidate_differs_without_activating_or_storing_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product_in("groceries", 10_000, 10).await;
    let phone = app.create_product_in("electronics", 20_000, 10).await;
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    place_ok(&app, &customer, &[(&phone, 1)]).await;

    // The same rule with electronics at 28%: only the electronics order differs (the
    // fixture has an electronics line too).
    let response = dry_run(
        &app,
        &admin,
        &format!("?{ELECTRONICS_AT_28}"),
        wasm(GST_TAX),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["summary"]["inputs"], 3, "{report}");
    assert_eq!(report["summary"]["recorded"], 2);
    assert_eq!(report["summary"]["differing"], 2);
    assert_eq!(report["summary"]["candidateFailures"], 0);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items[0]["source"], "fixture");
    let (groceries, electronics) = (&items[1], &items[2]);
    assert_eq!(
        (groceries["source"].as_str(), groceries["differs"].as_bool()),
        (Some("recorded"), Some(false))
    );
    assert_eq!(groceries["active"], groceries["candidate"]);
    assert_eq!(electronics["differs"], true);
    assert_eq!(
        electronics["active"]["output"]["totalTax"]["amount"],
        tax_half_up(20_000, 1800)
    );
    assert_eq!(
        electronics["candidate"]["output"]["totalTax"]["amount"],
        tax_half_up(20_000, 2800)
    );

    // Another rule altogether differs everywhere.
    let report: Value = dry_run(&app, &admin, "", wasm(FLAT_TAX))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["summary"]["differing"], 3, "{report}");

    // Nothing changed: no version stored, the built-in rule still taxes, no shadow, and the
    // dry runs were not recorded as live calls.
    assert_eq!(stored_versions(&app, &admin).await, 0);
    assert_eq!(tax_source(&app, &admin).await, "embedded");
    assert!(shadow(&app, &admin).await.is_null());
    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    assert_eq!(recorded["calls"].as_array().unwrap().len(), 2);
    let order = place_ok(&app, &customer, &[(&phone, 1)]).await;
    assert_eq!(order["taxTotal"], tax_half_up(20_000, 1800));
}

#[tokio::test]
async fn a_shadow_that_differs_for_one_category_diverges_on_exactly_those_orders_and_promotes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product_in("groceries", 10_000, 100).await;
    let phone = app.create_product_in("electronics", 20_000, 100).await;

    let response = shadow_upload(
        &app,
        &admin,
        &format!("&{ELECTRONICS_AT_28}"),
        wasm(GST_TAX),
    )
    .await;
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["config"][0]["key"], "rate.electronics", "{started}");
    assert_eq!(started["divergences"], 0);

    // Four electronics orders among five others, interleaved.
    let plan = [
        20_000, 10_000, 20_000, 10_000, 10_000, 20_000, 10_000, 20_000, 10_000,
    ];
    let (electronics_orders, other_orders) = (4, 5);
    for price in plan {
        let product = if price == 20_000 { &phone } else { &tea };
        let order = place_ok(&app, &customer, &[(product, 1)]).await;
        // Every order is taxed by the active version (18%), never by the shadow.
        assert_eq!(order["taxTotal"], tax_half_up(price, 1800), "{order}");
    }
    let total = (electronics_orders + other_orders) as u64;
    let s = shadow_after(&app, &admin, total).await;
    assert_eq!(s["dropped"], 0, "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    assert_eq!(s["divergences"], electronics_orders as u64, "{s}");
    assert_eq!(s["agreements"], other_orders as u64, "{s}");
    let examples = s["divergenceExamples"].as_array().unwrap();
    assert_eq!(examples.len(), 4, "{s}");
    for example in examples {
        assert_eq!(example["function"], "calculate");
        assert_eq!(example["input"]["items"][0]["category"], "electronics");
        assert_eq!(
            example["active"]["totalTax"]["amount"],
            tax_half_up(20_000, 1800)
        );
        assert_eq!(
            example["candidate"]["totalTax"]["amount"],
            tax_half_up(20_000, 2800)
        );
        assert_eq!(
            example["input"]["customer"]["email"],
            orderd::plugins::REDACTED_EMAIL
        );
    }
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let diverged = metrics
        .lines()
        .find(|l| {
            l.starts_with("plugin_shadow_calls_total")
                && l.contains("outcome=\"diverge\"")
                && l.contains("slot=\"tax\"")
        })
        .unwrap_or_else(|| panic!("no shadow divergence metric in\n{metrics}"));
    let count: f64 = diverged.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= electronics_orders as f64, "{diverged}");
    assert_eq!(
        stored_versions(&app, &admin).await,
        0,
        "a shadow stores nothing"
    );

    let response = send_wasm(
        &app,
        &admin.access_token,
        reqwest::Method::POST,
        "tax/promote",
        vec![],
    )
    .await;
    assert_eq!(response.status(), 200);
    let promoted: Value = response.json().await.unwrap();
    assert_eq!(
        promoted["shadow"]["divergences"], electronics_orders as u64,
        "{promoted}"
    );
    let versions = get_json(&app, &admin, "/api/admin/plugins/tax/versions").await;
    assert_eq!(
        versions["activeVersionId"], promoted["version"]["id"],
        "{versions}"
    );
    assert_eq!(versions["items"][0]["config"][0]["value"], "2800");
    assert!(
        shadow(&app, &admin).await.is_null(),
        "promotion ends the shadow"
    );
    let order = place_ok(&app, &customer, &[(&phone, 1)]).await;
    assert_eq!(order["taxTotal"], tax_half_up(20_000, 2800));
}

#[tokio::test]
async fn a_stopped_shadow_reports_its_counts_and_no_longer_runs() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    assert_eq!(
        shadow_upload(&app, &admin, "", wasm(FLAT_TAX))
            .await
            .status(),
        202
    );
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    shadow_after(&app, &admin, 1).await;
    let stopped = app
        .client
        .delete(app.url("/api/admin/plugins/tax/shadow"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    let stopped: Value = stopped.json().await.unwrap();
    assert_eq!(
        stopped["shadow"]["divergences"], 1,
        "flat 10% differs from GST: {stopped}"
    );
    assert!(shadow(&app, &admin).await.is_null());
    let promote = send_wasm(
        &app,
        &admin.access_token,
        reqwest::Method::POST,
        "tax/promote",
        vec![],
    )
    .await;
    assert_problem(promote, 409, "no-shadow").await;
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

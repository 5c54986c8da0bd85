//! The operator console: the page and its files under a Content-Security-Policy, every JSON
//! endpoint it reads or acts through refused without a token (401) and to a customer (403),
//! and what the console's own endpoints answer — plugin calls per version, the delivery
//! overview, order search and an order's timeline from commit to e-mail.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_playing};
use crate::orders::place_ok;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, Some(token)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn the_console_page_and_its_files_are_served_under_a_policy_forbidding_inline_script_and_other_origins()
 {
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/rules.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{path}");
    }
    let unknown = app.get("/console/secrets.js", None).await;
    assert_problem(unknown, 404, "not-found").await;
    let html = app.get("/console", None).await.text().await.unwrap();
    assert!(html.contains(r#"src="/console/app.js""#), "{html}");
    assert!(!CSP.contains("unsafe"), "no unsafe-inline or unsafe-eval");

    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    for path in [
        "/console",
        "/api/admin/plugins/stats",
        "/api/admin/delivery",
        "/api/admin/orders",
        "/api/admin/orders/{id}/timeline",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn every_endpoint_the_console_uses_refuses_no_token_with_401_and_a_customer_with_403() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let event = app
        .store
        .list_outbox(orderd::domain::OutboxStatus::Pending, 1)
        .await
        .unwrap();
    let event_id = event[0].id.to_hex();

    let reads = [
        "/api/admin/plugins".to_owned(),
        "/api/admin/plugins/stats".to_owned(),
        "/api/admin/plugins/tax/versions".to_owned(),
        "/api/admin/plugins/tax/shadow".to_owned(),
        "/api/admin/plugins/tax/recorded".to_owned(),
        "/api/admin/delivery".to_owned(),
        "/api/admin/outbox?status=dead".to_owned(),
        "/api/admin/orders?status=failed".to_owned(),
        format!("/api/admin/orders?q={}", customer.email),
        format!("/api/admin/orders?q={order_id}"),
        format!("/api/admin/orders/{order_id}/timeline"),
    ];
    let actions = [
        (Method::PUT, "/api/admin/plugins/tax".to_owned()),
        (Method::POST, "/api/admin/plugins/tax/dry-run".to_owned()),
        (Method::POST, "/api/admin/plugins/tax/rollback".to_owned()),
        (Method::POST, "/api/admin/plugins/tax/promote".to_owned()),
        (Method::DELETE, "/api/admin/plugins/tax/shadow".to_owned()),
        (Method::POST, format!("/api/admin/outbox/{event_id}/retry")),
        (Method::POST, format!("/api/orders/{order_id}/retry")),
    ];
    let every = reads
        .iter()
        .map(|path| (Method::GET, path.clone()))
        .chain(actions.iter().cloned());
    for (method, path) in every {
        let anonymous = send(&app, method.clone(), &path, None).await;
        assert_eq!(anonymous.status(), 401, "{method} {path} without a token");
        let refused = send(&app, method.clone(), &path, Some(&customer.access_token)).await;
        assert_problem(refused, 403, "forbidden").await;
    }
    // The admin reads every one of them.
    for path in &reads {
        get_json(&app, path, &admin.access_token).await;
    }
}

#[tokio::test]
async fn an_orders_timeline_runs_from_commit_to_the_confirmation_with_its_message_id() {
    let app = spawn_app_playing("api,relay,consumer", |_| {}).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 1)]).await;
    let id = order["id"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let timeline = loop {
        let timeline = get_json(
            &app,
            &format!("/api/admin/orders/{id}/timeline"),
            &admin.access_token,
        )
        .await;
        let kinds: Vec<&str> = timeline["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kind"].as_str().unwrap())
            .collect();
        if kinds.contains(&"email-sent") && timeline["order"]["status"] == "processed" {
            break timeline;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not processed: {timeline}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let steps = timeline["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    for kind in [
        "created",
        "published",
        "processing",
        "processed",
        "email-sent",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds[0], "created");
    let sent = steps.iter().find(|s| s["kind"] == "email-sent").unwrap();
    let message_id = sent["messageId"].as_str().unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with('>'),
        "{message_id}"
    );
    assert_eq!(timeline["customerEmail"], customer.email.as_str());
    assert_eq!(timeline["order"]["taxTotal"], order["taxTotal"]);
    assert_eq!(timeline["events"][0]["status"], "published");

    // Search by id, by the customer's address and by status all find it; others do not.
    for query in [
        format!("q={id}"),
        format!("q={}", customer.email.to_uppercase()),
        "status=processed".to_owned(),
        format!("q={}&status=processed", customer.email),
    ] {
        let found = get_json(
            &app,
            &format!("/api/admin/orders?{query}"),
            &admin.access_token,
        )
        .await;
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{query}: {found}");
        assert_eq!(items[0]["id"], id.as_str());
        assert_eq!(items[0]["customerEmail"], customer.email.as_str());
        assert_eq!(items[0]["taxTotal"], order["taxTotal"]);
    }
    for query in [
        format!("q={id}&status=failed"),
        "q=nobody@example.com".to_owned(),
    ] {
        let found = get_json(
            &app,
            &format!("/api/admin/orders?{query}"),
            &admin.access_token,
        )
        .await;
        assert_eq!(found["items"], serde_json::json!([]), "{query}");
    }
    let unknown = app
        .get(
            "/api/admin/orders/0123456789abcdef01234567/timeline",
            Some(&admin.access_token),
        )
        .await;
    assert_problem(unknown, 404, "not-found").await;
}

#[tokio::test]
async fn an_order_search_names_the_field_at_fault() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for (query, field) in [
        ("", "q"),
        ("q=chai", "q"),
        ("status=lost", "status"),
        ("status=failed&limit=0", "limit"),
        ("q=not-an-address@", "q"),
    ] {
        let response = app
            .get(
                &format!("/api/admin/orders?{query}"),
                Some(&admin.access_token),
            )
            .await;
        let problem = assert_problem(response, 422, "validation").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
}

#[tokio::test]
async fn live_plugin_calls_are_counted_per_version_and_carried_on_metrics() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    for _ in 0..3 {
        place_ok(&app, &customer, &[(&tea, 1)]).await;
    }
    let stats = get_json(&app, "/api/admin/plugins/stats", &admin.access_token).await;
    assert_eq!(stats["windowMinutes"], 5);
    let tax = stats["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == "tax")
        .unwrap();
    assert_eq!(tax["upload"], Value::Null, "the built-in default serves");
    let versions = tax["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{tax}");
    let version = &versions[0];
    assert_eq!(version["active"], true);
    assert_eq!(version["calls"], 3);
    assert_eq!(version["failures"], 0);
    let (p50, p99) = (
        version["p50Ms"].as_f64().unwrap(),
        version["p99Ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{version}");

    let label = version["version"].as_str().unwrap();
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let line = format!("plugin_window_calls{{slot=\"tax\",version=\"{label}\"}} 3");
    assert!(metrics.contains(&line), "{line} in metrics");
}

#[tokio::test]
async fn the_delivery_overview_counts_what_needs_an_operator_and_keeps_samples() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    // The api role samples at start and then every few seconds.
    let started = Instant::now();
    let overview = loop {
        let overview = get_json(&app, "/api/admin/delivery", &admin.access_token).await;
        if overview["samples"].as_array().unwrap().len() >= 2 {
            break overview;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{overview}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Only the api role runs here: nothing publishes, no consumer samples a queue.
    assert_eq!(overview["outboxPending"], 1);
    assert_eq!(overview["outboxDead"], 0);
    assert_eq!(overview["failedOrders"], 0);
    assert_eq!(overview["queueBacklog"], Value::Null);
    assert_eq!(overview["deadLettered"], Value::Null);
    let last = overview["samples"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["outboxPending"], 1);
    assert!(last["acceptedPerSec"].as_f64().unwrap() >= 0.0);
}

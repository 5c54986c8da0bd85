//! Liveness, readiness (store, plugin slots, and the delivery roles a process runs), metrics,
//! the OpenAPI document and request ids.

use std::time::{Duration, Instant};

use orderd::configuration::Settings;
use orderd::delivery::queue::{QueueBackend, QueueSettings};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_playing};

#[tokio::test]
async fn liveness_answers_ok_on_the_api_and_processor_paths() {
    let app = spawn_app().await;
    for path in ["/api/health", "/processor/api/health"] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn readiness_reports_the_store_and_every_plugin_slot() {
    let app = spawn_app().await;
    let response = app.get("/api/ready", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], "ok");
    for slot in ["tax", "validation", "email"] {
        assert_eq!(body["plugins"][slot], true, "{slot}: {body}");
    }
    assert_eq!(
        body["roles"],
        json!({}),
        "an api-only process runs no delivery role"
    );
}

/// `GET /api/ready` until `done` holds for its status and body; returns them.
async fn ready_until(app: &TestApp, mut done: impl FnMut(u16, &Value) -> bool) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let response = app.get("/api/ready", None).await;
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        let expected = if status == 200 {
            "application/json"
        } else {
            "application/problem+json"
        };
        assert_eq!(content_type, expected, "{status}: {body}");
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "readiness never got there; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An SQS queue on a local port where nothing listens, restarts retried quickly, and
/// `stale_after_ms` as given.
fn unreachable_queue(stale_after_ms: u64) -> impl FnOnce(&mut Settings) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    move |settings| {
        settings.queue = QueueSettings {
            backend: QueueBackend::Sqs,
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            region: Some("us-east-1".into()),
            ..QueueSettings::default()
        };
        settings.delivery.restart_base_ms = 50;
        settings.delivery.restart_cap_ms = 200;
        settings.delivery.stale_after_ms = stale_after_ms;
    }
}

#[tokio::test]
async fn readiness_reports_each_delivery_role_the_process_runs_and_is_200_when_all_pass() {
    let app = spawn_app_playing("api,relay,consumer", |s| s.consumer.wait_ms = 100).await;
    let (status, body) = ready_until(&app, |_, body| {
        body["roles"]["relay"]["state"] == "ok" && body["roles"]["consumer"]["state"] == "ok"
    })
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["roles"].as_object().unwrap().len(), 2, "{body}");
    for role in ["relay", "consumer"] {
        let role = &body["roles"][role];
        assert!(
            role["lastGoodPassAgoMs"].as_u64().unwrap() < 5_000,
            "{role}"
        );
        assert_eq!(role["restarts"], 0);
        assert_eq!(role["handlerPanics"], 0);
        assert_eq!(role["stale"], false);
        assert!(role.get("lastError").is_none(), "{role}");
    }

    let relay_only = spawn_app_playing("api,relay", |_| {}).await;
    let (_, body) = ready_until(&relay_only, |_, body| {
        body["roles"]["relay"]["state"] == "ok"
    })
    .await;
    let roles: Vec<_> = body["roles"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(roles, ["relay"], "only the roles the process runs");
}

#[tokio::test]
async fn a_role_restarting_within_the_stale_window_keeps_the_process_ready() {
    let app = spawn_app_playing("api,relay,consumer", unreachable_queue(60_000)).await;
    let (status, body) = ready_until(&app, |_, body| {
        body["roles"]["consumer"]["state"] == "restarting"
    })
    .await;
    assert_eq!(status, 200, "{body}");
    let consumer = &body["roles"]["consumer"];
    assert!(
        consumer["lastError"]
            .as_str()
            .unwrap()
            .contains("Failed to open SQS queue"),
        "{consumer}"
    );
    assert!(consumer["restarts"].as_u64().unwrap() >= 1);
    assert_eq!(consumer["lastGoodPassAgoMs"], Value::Null);
    assert_eq!(consumer["stale"], false);
}

#[tokio::test]
async fn a_role_without_a_good_pass_past_the_threshold_makes_ready_a_503_problem() {
    let app = spawn_app_playing("api,relay,consumer", unreachable_queue(300)).await;
    let (status, body) = ready_until(&app, |status, body| {
        status == 503 && body["roles"]["relay"]["state"] == "restarting"
    })
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:orderd:problem:not-ready");
    assert_eq!(body["status"], 503);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("the relay has had no good pass"),
        "{detail}"
    );
    assert_eq!(body["store"], "ok", "the other checks are still reported");
    let relay = &body["roles"]["relay"];
    assert_eq!(relay["stale"], true);
    assert!(
        relay["lastError"]
            .as_str()
            .unwrap()
            .contains("Failed to open SQS queue")
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_client_id_is_echoed() {
    let app = spawn_app().await;
    let generated = app.get("/api/health", None).await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = app
        .client
        .get(app.url("/api/products/not-an-id"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 422);
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_with_latency_histograms() {
    let app = spawn_app().await;
    // One write through the store's writer, so its commit is timed.
    app.create_product(100, 1).await;
    let missing = format!("/api/products/{}", orderd::domain::Id::new());
    assert_eq!(app.get(&missing, None).await.status(), 404);
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/api/products/{id}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no request counter for the 404 in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency histogram missing"
    );
    assert!(
        text.contains("orderd_sqlite_commit_seconds_bucket{"),
        "commit time histogram missing in:\n{text}"
    );
    let log_pages: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("orderd_sqlite_log_pages_total "))
        .unwrap_or_else(|| panic!("no log page counter in:\n{text}"))
        .parse()
        .unwrap();
    // The product written above took at least its table page and its two index pages.
    assert!(log_pages >= 3.0, "log pages {log_pages}");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_error_schema() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/me", "get"),
        ("/api/products", "get"),
        ("/api/products", "post"),
        ("/api/products/{id}", "get"),
        ("/api/products/{id}", "patch"),
        ("/api/health", "get"),
        ("/api/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Problem",
        "FieldError",
        "ProductDto",
        "TokenResponse",
        "UserDto",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let create =
        &paths["/api/products"]["post"]["responses"]["422"]["content"]["application/problem+json"];
    assert!(
        create.is_object(),
        "422 of POST /api/products documents its problem body"
    );
    let not_ready =
        &paths["/api/ready"]["get"]["responses"]["503"]["content"]["application/problem+json"];
    assert!(
        not_ready.is_object(),
        "503 of GET /api/ready documents its problem body"
    );
    assert!(
        schemas.contains_key("RoleReadiness"),
        "schema RoleReadiness missing"
    );
}

/// Environment variable that makes the test below measure in a process of its own.
const UPKEEP_CHILD: &str = "ORDERD_TEST_METRICS_UPKEEP_CHILD";

#[test]
fn histogram_samples_do_not_pile_up_when_nothing_scrapes() {
    if std::env::var_os(UPKEEP_CHILD).is_some() {
        return record_without_scrapes();
    }
    // Resident memory is per process, and the other tests of this binary allocate
    // concurrently: run this one alone in a child process.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "health::histogram_samples_do_not_pile_up_when_nothing_scrapes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UPKEEP_CHILD, "1")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && printed.contains("1 passed"),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Records 8 million histogram samples with no render (about 128 MiB in the recorder's blocks
/// when nothing folds them in), while the upkeep thread folds them in every 50 ms: the process
/// grows by a fraction of that.
fn record_without_scrapes() {
    use metrics_exporter_prometheus::PrometheusBuilder;
    let rss_kib = || -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let recorder = PrometheusBuilder::new().build_recorder();
    orderd::http::metrics::spawn_upkeep(recorder.handle(), Duration::from_millis(50)).unwrap();
    let before = rss_kib();
    let mut largest = before;
    metrics::with_local_recorder(&recorder, || {
        let histogram = metrics::histogram!("orderd_test_samples");
        for round in 0..80 {
            for i in 0..100_000 {
                histogram.record(f64::from(i));
            }
            largest = largest.max(rss_kib());
            if round % 10 == 0 {
                std::thread::sleep(Duration::from_millis(60));
            }
        }
    });
    let grown_mib = (largest - before) / 1024;
    println!("grew by {grown_mib} MiB while recording 8 million samples");
    assert!(grown_mib < 48, "grew by {grown_mib} MiB");
}

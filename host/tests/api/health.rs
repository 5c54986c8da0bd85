//! Liveness, readiness, metrics, the OpenAPI document and request ids.

use serde_json::Value;

use crate::helpers::spawn_app;

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
}

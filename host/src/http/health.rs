//! Operational routes: liveness (`/api/health`, and `/processor/api/health` for the processor's
//! probes), readiness (`/api/ready`: the store answers and every plugin slot has a version),
//! Prometheus metrics (`/metrics`) and the OpenAPI document (`/openapi.json`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always "ok" when the process answers.
    pub status: &'static str,
}

/// Readiness answer: what was checked and how it went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// "ready" or "not-ready".
    pub status: &'static str,
    /// "ok" or "unreachable".
    pub store: &'static str,
    /// Per slot: whether a version is loaded.
    pub plugins: BTreeMap<String, bool>,
}

/// The operational routes, for merging into the API router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/processor/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
}

/// Only the operational routes, with state, for a process that does not play the `api` role.
pub fn operational_router(state: AppState) -> Router {
    router()
        .fallback(|| async { super::ApiError::NotFound })
        .with_state(state)
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/api/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the store is reachable and every plugin slot has a loaded version.
#[utoipa::path(get, path = "/api/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A dependency is not ready", body = Readiness),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let store_ok = match state.store.ping().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = ?err, "readiness: store ping failed");
            false
        }
    };
    let plugins: BTreeMap<String, bool> = state
        .plugins
        .status()
        .into_iter()
        .map(|s| (s.slot.as_str().to_owned(), s.sha256.is_some()))
        .collect();
    let is_ready = store_ok && plugins.values().all(|loaded| *loaded);
    let body = Readiness {
        status: if is_ready { "ready" } else { "not-ready" },
        store: if store_ok { "ok" } else { "unreachable" },
        plugins,
    };
    let status = if is_ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition of every metric of this process.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document_json(),
    )
        .into_response()
}

/// The operational routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(health, ready, metrics, openapi_json))]
pub struct HealthApi;

//! Operational routes: liveness (`/api/health`, and `/processor/api/health` for the processor's
//! probes), readiness (`/api/ready`, see [`super::readiness`]) and Prometheus metrics
//! (`/metrics`). The OpenAPI document's route is in `openapi.rs`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::readiness::ready;
use super::state::AppState;
use crate::domain::OutboxStatus;

/// Outbox events by `status` (the relay sets the same gauge as it works).
pub const OUTBOX_EVENTS: &str = "orderd_outbox_events";
/// Seconds since the oldest pending outbox event was committed (0 when none is pending).
pub const OUTBOX_OLDEST_PENDING_AGE: &str = "orderd_outbox_oldest_pending_age_seconds";

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always "ok" when the process answers.
    pub status: &'static str,
}

/// The operational routes. `processor_route`: also answer the processor's probe path here;
/// off in a consumer process without the api role, whose own health server
/// (`delivery::consumer::health`) answers it with the queue's state, so the path has one
/// meaning per process.
pub fn router(processor_route: bool) -> Router<AppState> {
    let routes = Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/metrics", get(metrics));
    if processor_route {
        routes.route("/processor/api/health", get(health))
    } else {
        routes
    }
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/api/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Prometheus text exposition of every metric of this process. The outbox backlog is read
/// from the store at scrape time, so every instance reports it, relay or not.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    record_outbox_backlog(&state).await;
    state.plugins.publish_call_window();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Sets the outbox gauges: events by status and the age of the oldest pending one.
async fn record_outbox_backlog(state: &AppState) {
    for status in [OutboxStatus::Pending, OutboxStatus::Dead] {
        match state.store.count_outbox(status).await {
            Ok(n) => metrics::gauge!(OUTBOX_EVENTS, "status" => status.as_str()).set(n as f64),
            Err(err) => tracing::warn!(error = ?err, "metrics: failed to count outbox events"),
        }
    }
    if let Ok(oldest) = state.store.oldest_pending().await {
        let age = oldest.map_or(0.0, |at| {
            (chrono::Utc::now() - at).as_seconds_f64().max(0.0)
        });
        metrics::gauge!(OUTBOX_OLDEST_PENDING_AGE).set(age);
    }
}

/// The operational routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(health, super::readiness::ready, metrics))]
pub struct HealthApi;

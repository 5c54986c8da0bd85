//! The consumer's own health endpoint, `GET /processor/api/health` (the path the previous
//! system's processor served), for deployments that run the consumer without the api role.
//! The queue depth is reported once the consumer has opened its queue (`null` before).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::delivery::roles::SharedQueue;
use crate::storage::Store;

#[derive(Clone)]
struct HealthState {
    store: Arc<dyn Store>,
    queue: SharedQueue,
}

/// The health router: 200 with the queue depth when the store answers, 503 otherwise.
pub fn router(store: Arc<dyn Store>, queue: SharedQueue) -> Router {
    Router::new()
        .route("/processor/api/health", get(health))
        .with_state(HealthState { store, queue })
}

async fn health(State(state): State<HealthState>) -> (http::StatusCode, Json<Value>) {
    let store_ok = state.store.ping().await.is_ok();
    let queue = state.queue.opened();
    let depth = match &queue {
        Some(queue) => queue.depth().await.ok(),
        None => None,
    };
    let status = if store_ok {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if store_ok { "ok" } else { "unavailable" },
        "role": "consumer",
        "queue": queue.as_ref().map(|q| q.backend_name()),
        "queueVisible": depth.map(|d| d.visible),
        "queueInFlight": depth.map(|d| d.in_flight),
    });
    (status, Json(body))
}

/// Serves the health router on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    queue: SharedQueue,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context;
    axum::serve(listener, router(store, queue))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("The consumer health server failed")
}

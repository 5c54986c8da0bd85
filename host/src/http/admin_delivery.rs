//! `GET /api/admin/delivery`: the order pipeline for the operator console — the last minutes
//! of accepted and processed orders per second and the outbox and queue backlog (sampled by
//! the host, `service::pipeline_history`), and the counts an operator acts on now: dead outbox
//! events, dead-lettered messages, failed orders.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, Problem};
use super::extract::AdminUser;
use super::state::AppState;
use crate::domain::{OrderStatus, OutboxStatus};
use crate::service::pipeline_history::{PipelineSample, SAMPLE_EVERY};

/// The pipeline at one moment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSampleDto {
    pub at: DateTime<Utc>,
    /// Orders committed per second since the previous sample.
    pub accepted_per_sec: f64,
    /// Orders processed per second since the previous sample.
    pub processed_per_sec: f64,
    /// Outbox events waiting to be published.
    pub outbox_pending: u64,
    /// Messages in the queue (visible and in flight); `null` when no consumer runs in this
    /// process.
    pub queue_backlog: Option<u64>,
}

impl From<&PipelineSample> for PipelineSampleDto {
    fn from(s: &PipelineSample) -> Self {
        Self {
            at: s.at,
            accepted_per_sec: s.accepted_per_sec,
            processed_per_sec: s.processed_per_sec,
            outbox_pending: s.outbox_pending,
            queue_backlog: s.queue_backlog,
        }
    }
}

/// The delivery overview.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    /// Seconds between two samples.
    pub sample_every_secs: u64,
    /// The last minutes, oldest first.
    pub samples: Vec<PipelineSampleDto>,
    /// Outbox events waiting to be published, now.
    pub outbox_pending: u64,
    /// Outbox events the relay gave up on, now (`GET /api/admin/outbox` lists them).
    pub outbox_dead: u64,
    /// Messages in the dead-letter queue, as this process's consumer last sampled them;
    /// `null` when no consumer runs here or its queue has no dead-letter queue.
    pub dead_lettered: Option<u64>,
    /// Messages in the queue, as this process's consumer last sampled them.
    pub queue_backlog: Option<u64>,
    /// Orders `failed`, now (`GET /api/admin/orders?status=failed` lists them).
    pub failed_orders: u64,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/delivery", get(delivery_overview))
}

#[derive(OpenApi)]
#[openapi(
    paths(delivery_overview),
    components(schemas(DeliveryDto, PipelineSampleDto))
)]
pub struct AdminDeliveryApi;

/// The order pipeline over the last minutes and what needs an operator (admin).
#[utoipa::path(get, path = "/api/admin/delivery", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The pipeline", body = DeliveryDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delivery_overview(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<DeliveryDto>, ApiError> {
    let store = &state.store;
    let (pending, dead, counts) = futures::try_join!(
        store.count_outbox(OutboxStatus::Pending),
        store.count_outbox(OutboxStatus::Dead),
        store.count_orders(),
    )?;
    let failed_orders = counts
        .iter()
        .find(|(status, _)| *status == OrderStatus::Failed)
        .map_or(0, |(_, n)| *n);
    Ok(Json(DeliveryDto {
        sample_every_secs: SAMPLE_EVERY.as_secs(),
        samples: state
            .pipeline
            .samples()
            .iter()
            .map(PipelineSampleDto::from)
            .collect(),
        outbox_pending: pending,
        outbox_dead: dead,
        dead_lettered: state.delivery.dead_lettered(),
        queue_backlog: state.delivery.backlog(),
        failed_orders,
    }))
}

//! Admin view of the transactional outbox: list events by status (above all the `dead` ones
//! the relay gave up on) and put a dead event back to pending so the relay publishes it again.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, Problem};
use super::extract::{AdminUser, IdPath, QueryParams};
use super::state::AppState;
use crate::domain::{OutboxEvent, OutboxStatus, PageLimit};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// An outbox event as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEventDto {
    /// 24-hex event id (also the queue deduplication id and the consumer's inbox key).
    pub id: String,
    pub order_id: String,
    /// `order.created` or `order.cancelled`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `published` or `dead`.
    pub status: String,
    /// Publish attempts so far.
    pub attempts: u32,
    pub occurred_at: DateTime<Utc>,
    /// Not published before this time (backoff).
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
}

impl From<&OutboxEvent> for OutboxEventDto {
    fn from(e: &OutboxEvent) -> Self {
        Self {
            id: e.id.to_hex(),
            order_id: e.order_id.to_hex(),
            event_type: e.event_type.as_str().to_owned(),
            status: e.status.as_str().to_owned(),
            attempts: e.attempts,
            occurred_at: e.occurred_at,
            next_attempt_at: e.next_attempt_at,
            last_error: e.last_error.clone(),
            published_at: e.published_at,
        }
    }
}

/// Events of one status, oldest first, with the total count of that status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxPage {
    pub status: String,
    /// How many events have this status in all.
    pub total: u64,
    pub items: Vec<OutboxEventDto>,
}

/// `GET /api/admin/outbox` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `dead` (default), `pending` or `published`.
    pub status: Option<String>,
    /// 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// The result of a retry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryResult {
    pub id: String,
    /// Always `pending`: the relay publishes it on its next pass.
    pub status: String,
}

/// Routes under `/api/admin/outbox`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/outbox", get(list_outbox))
        .route("/api/admin/outbox/{id}/retry", post(retry_event))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_outbox, retry_event),
    components(schemas(OutboxEventDto, OutboxPage, RetryResult))
)]
pub struct AdminOutboxApi;

/// Lists outbox events of one status (admin).
#[utoipa::path(get, path = "/api/admin/outbox", tag = "admin", security(("bearer" = [])), params(OutboxQuery),
    responses(
        (status = 200, description = "Events of the status, oldest first", body = OutboxPage),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status or bad limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_outbox(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    QueryParams(query): QueryParams<OutboxQuery>,
) -> Result<Json<OutboxPage>, ApiError> {
    let status = match query.status.as_deref() {
        None => OutboxStatus::Dead,
        Some(s) => OutboxStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "invalid-value",
                "must be dead, pending or published",
            )
        })?,
    };
    let limit = PageLimit::parse(query.limit, DEFAULT_LIMIT, MAX_LIMIT)
        .map_err(|e| ApiError::from_parse("limit", e))?;
    let events = state.store.list_outbox(status, limit.get()).await?;
    let total = state.store.count_outbox(status).await?;
    Ok(Json(OutboxPage {
        status: status.as_str().to_owned(),
        total,
        items: events.iter().map(OutboxEventDto::from).collect(),
    }))
}

/// Puts a dead event back to pending with its attempts reset (admin).
#[utoipa::path(post, path = "/api/admin/outbox/{id}/retry", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex event id")),
    responses(
        (status = 200, description = "Pending again", body = RetryResult),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is not dead", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_event(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(id): IdPath,
) -> Result<Json<RetryResult>, ApiError> {
    state.store.retry_outbox(id, Utc::now()).await?;
    tracing::info!(event_id = %id, admin = %admin.id, "Dead outbox event put back to pending");
    state.order_committed.notify_waiters();
    Ok(Json(RetryResult {
        id: id.to_hex(),
        status: OutboxStatus::Pending.as_str().to_owned(),
    }))
}

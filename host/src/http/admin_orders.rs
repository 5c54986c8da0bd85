//! The operator console's order views: search every customer's orders by order id, customer
//! e-mail address or status (`GET /api/admin/orders`), and one order's timeline from commit to
//! e-mail (`GET /api/admin/orders/{id}/timeline`): created, published, processing,
//! processed / failed / cancelled, and each e-mail sent with its Message-ID.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::admin_outbox::OutboxEventDto;
use super::error::{ApiError, Problem};
use super::extract::{AdminUser, IdPath, QueryParams};
use super::orders::OrderDto;
use super::state::AppState;
use crate::domain::{Email, EventType, Id, Order, OrderStatus, OutboxStatus};

/// Results when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most results of one search.
pub const MAX_LIMIT: i64 = 200;

/// `GET /api/admin/orders` parameters: `q`, `status` or both.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderSearch {
    /// A 24-hex order id, or a customer's e-mail address.
    pub q: Option<String>,
    /// Only orders in this status: `pending`, `processing`, `processed`, `cancelled`, `failed`.
    pub status: Option<String>,
    /// 1–200 (default 50).
    pub limit: Option<i64>,
}

/// One order found, with its customer's address.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderHitDto {
    pub id: String,
    pub status: String,
    /// The customer's e-mail address (`null` when the account is gone).
    pub customer_email: Option<String>,
    pub currency: String,
    /// Minor units.
    pub subtotal: i64,
    pub tax_total: i64,
    pub total: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Search results, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderHitsDto {
    pub items: Vec<OrderHitDto>,
}

/// One step in an order's life.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntryDto {
    pub at: DateTime<Utc>,
    /// `created`, `published`, `processing`, `processed`, `failed`, `cancelled`,
    /// `email-sent` or `event-dead`.
    pub kind: String,
    /// What happened, in words (the event type, the relay's last error).
    pub detail: String,
    /// The Message-ID of an `email-sent` step.
    pub message_id: Option<String>,
}

/// An order, its customer and its timeline (oldest step first).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTimelineDto {
    pub order: OrderDto,
    pub customer_email: Option<String>,
    pub timeline: Vec<TimelineEntryDto>,
    /// The order's outbox events still kept (published ones are pruned after
    /// `store.outbox_retention_secs`).
    pub events: Vec<OutboxEventDto>,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/orders", get(search_orders))
        .route("/api/admin/orders/{id}/timeline", get(order_timeline))
}

#[derive(OpenApi)]
#[openapi(
    paths(search_orders, order_timeline),
    components(schemas(OrderHitDto, OrderHitsDto, TimelineEntryDto, OrderTimelineDto))
)]
pub struct AdminOrdersApi;

/// Finds orders of every customer by id, customer e-mail address or status (admin).
#[utoipa::path(get, path = "/api/admin/orders", tag = "admin", security(("bearer" = [])), params(OrderSearch),
    responses(
        (status = 200, description = "Matching orders, newest first", body = OrderHitsDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither q nor status, a q that is neither an id nor an address, an unknown status or a bad limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search_orders(
    State(state): State<AppState>,
    _admin: AdminUser,
    QueryParams(search): QueryParams<OrderSearch>,
) -> Result<Json<OrderHitsDto>, ApiError> {
    let limit = search.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "out-of-range",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let limit = limit as u32;
    let status = search
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "invalid-value",
                    "must be pending, processing, processed, cancelled or failed",
                )
            })
        })
        .transpose()?;
    let q = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let store = &state.store;
    let orders: Vec<Order> = match (q, status) {
        (None, None) => {
            return Err(ApiError::invalid(
                "q",
                "required",
                "give an order id or an e-mail address in q, or a status",
            ));
        }
        (None, Some(status)) => store.orders_by_status(status, None, None, limit).await?,
        (Some(q), status) if q.contains('@') => {
            let email =
                Email::parse_known(q).map_err(|e| ApiError::invalid("q", e.code, e.message))?;
            match store.user_by_email(email.as_str()).await? {
                None => Vec::new(),
                Some(user) => match status {
                    Some(status) => {
                        store
                            .orders_by_status(status, Some(user.id), None, limit)
                            .await?
                    }
                    None => store.orders_of_user(user.id, None, limit).await?,
                },
            }
        }
        (Some(q), status) => {
            let id = Id::parse(q).map_err(|_| {
                ApiError::invalid(
                    "q",
                    "invalid-format",
                    "must be a 24-hex order id or an e-mail address",
                )
            })?;
            store
                .order(id)
                .await?
                .filter(|o| status.is_none_or(|s| o.status == s))
                .into_iter()
                .collect()
        }
    };
    let mut emails: HashMap<Id, Option<String>> = HashMap::new();
    for order in &orders {
        if let std::collections::hash_map::Entry::Vacant(slot) = emails.entry(order.user_id) {
            let user = store.user_by_id(order.user_id).await?;
            slot.insert(user.map(|u| u.email.as_str().to_owned()));
        }
    }
    let items = orders
        .iter()
        .map(|o| OrderHitDto {
            id: o.id.to_hex(),
            status: o.status.as_str().to_owned(),
            customer_email: emails.get(&o.user_id).cloned().flatten(),
            currency: o.currency.as_str().to_owned(),
            subtotal: o.subtotal,
            tax_total: o.tax_total,
            total: o.total,
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
        .collect();
    Ok(Json(OrderHitsDto { items }))
}

/// One order with its customer and its timeline from commit to e-mail (admin).
#[utoipa::path(get, path = "/api/admin/orders/{id}/timeline", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex order id")),
    responses(
        (status = 200, description = "The order and its timeline", body = OrderTimelineDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn order_timeline(
    State(state): State<AppState>,
    _admin: AdminUser,
    IdPath(id): IdPath,
) -> Result<Json<OrderTimelineDto>, ApiError> {
    let store = &state.store;
    let order = store.order(id).await?.ok_or(ApiError::NotFound)?;
    let (customer, trail) =
        futures::try_join!(store.user_by_id(order.user_id), store.order_trail(id))?;
    let mut timeline = vec![entry(
        order.created_at,
        "created",
        "committed with its order.created event",
    )];
    let stamps = [
        (order.processing_at, "processing", "claimed by a consumer"),
        (
            order.processed_at,
            "processed",
            "confirmation handed to the mail server",
        ),
        (
            order.failed_at,
            "failed",
            "the delivery attempt budget was spent",
        ),
        (
            order.cancelled_at,
            "cancelled",
            "stock returned, order.cancelled emitted",
        ),
    ];
    for (at, kind, detail) in stamps {
        if let Some(at) = at {
            timeline.push(entry(at, kind, detail));
        }
    }
    for step in &trail {
        let event = &step.event;
        let what = event.event_type.as_str();
        if let Some(at) = event.published_at {
            timeline.push(entry(
                at,
                "published",
                &format!("{what} accepted by the queue"),
            ));
        }
        if event.status == OutboxStatus::Dead {
            let error = event.last_error.as_deref().unwrap_or("no error recorded");
            timeline.push(entry(
                event.next_attempt_at,
                "event-dead",
                &format!("{what} given up after {} attempts: {error}", event.attempts),
            ));
        }
        if let Some(email) = &step.email {
            let which = match event.event_type {
                EventType::OrderCreated => "confirmation",
                EventType::OrderCancelled => "cancellation",
            };
            timeline.push(TimelineEntryDto {
                at: email.sent_at,
                kind: "email-sent".to_owned(),
                detail: format!("{which} e-mail sent"),
                message_id: Some(email.message_id.clone()),
            });
        }
    }
    // Steps at the same millisecond keep the order they were listed in (the life cycle's).
    timeline.sort_by_key(|e| e.at);
    Ok(Json(OrderTimelineDto {
        order: OrderDto::from(&order),
        customer_email: customer.map(|u| u.email.as_str().to_owned()),
        timeline,
        events: trail
            .iter()
            .map(|t| OutboxEventDto::from(&t.event))
            .collect(),
    }))
}

fn entry(at: DateTime<Utc>, kind: &str, detail: &str) -> TimelineEntryDto {
    TimelineEntryDto {
        at,
        kind: kind.to_owned(),
        detail: detail.to_owned(),
        message_id: None,
    }
}

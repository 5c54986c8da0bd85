//! Order routes under `/api/orders`: place an order (with an optional `Idempotency-Key`),
//! read one, list one's own (or, for admins, everyone's in one status), cancel, and retry a
//! failed order (admins). The work happens in `service::orders`; this module translates
//! between JSON and the service and maps its errors to problems.
//!
//! A product named on several lines is passed to the validation plugin as it is; the default
//! plugin refuses it (422 `rule-violation`, code `duplicate-product`), and an operator may
//! allow it with the validation config `allow-duplicate-products=true`.
//!
//! `Idempotency-Key`: 1–255 visible ASCII characters. A repeat of a successful request with the
//! same key and the same body (compared as canonical JSON, so whitespace and member order do
//! not matter) by the same user within 24 hours gets the first response again, with
//! `Idempotent-Replayed: true`; the same key with another body is a 422
//! `idempotency-key-reused`. Failed requests are not recorded, so they may be retried with
//! the same key.

mod dto;
pub use dto::*;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, FieldError, Problem};
use super::extract::{AdminUser, AuthUser, IdPath, JsonBody, QueryParams};
use super::state::AppState;
use crate::domain::{Order, OrderStatus};
use crate::service::idempotency::{IdempotencyKey, request_fingerprint};
use crate::service::orders::{
    self, Actor, AddressRequest, IdempotencyRequest, LineRequest, OrderError, OrderRequest, Placed,
};

/// The request header carrying the idempotency key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking a replayed response.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Orders created through the API (a Prometheus counter).
pub const ORDERS_CREATED_TOTAL: &str = "orders_created_total";

/// Routes under `/api/orders`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders", post(create_order).get(list_orders))
        .route("/api/orders/{id}", get(get_order))
        .route("/api/orders/{id}/cancel", post(cancel_order))
        .route("/api/orders/{id}/retry", post(retry_order))
}

fn actor(user: AuthUser) -> Actor {
    Actor {
        id: user.id,
        role: user.role,
    }
}

/// The JSON body of an order; serialization of these plain types cannot fail.
fn order_json(order: &Order) -> Vec<u8> {
    serde_json::to_vec(&OrderDto::from(order)).unwrap_or_default()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Places an order for the caller: priced from the catalog, checked by the validation plugin,
/// taxed by the tax plugin, and committed with its stock decrements and `order.created` event
/// in one transaction.
#[utoipa::path(post, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; a repeat with the same body within 24 h replays the first response")),
    responses(
        (status = 201, description = "The order (or, with `Idempotent-Replayed: true`, the first response to this key)", body = OrderDto),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient-stock` (nothing was ordered) or `idempotency-key-taken`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation` (fields), `rule-violation` (the validation plugin's codes) or `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited` (with `Retry-After`): too many order writes by this user; or `too-many-open-orders`: the user's pending and processing orders are at the cap. Nothing was ordered", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`plugin-unavailable`: a rule plugin failed and its slot fails closed; or `overloaded` (with `Retry-After`): too many order writes in flight, nothing was done", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateOrder>,
) -> Result<Response, ApiError> {
    state.limits.check_order_write(user.id)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()
        .map_err(|e| ApiError::from_parse("Idempotency-Key", e))?;
    let request = OrderRequest::from(&body);
    let fingerprint = match &key {
        Some(_) => Some(request_fingerprint(
            &serde_json::to_vec(&body).map_err(ApiError::internal)?,
        )),
        None => None,
    };
    let idempotency = key
        .as_ref()
        .zip(fingerprint)
        .map(|(key, fingerprint)| IdempotencyRequest {
            key,
            fingerprint,
            render: &order_json,
        });
    let placed = orders::place_order_capped(
        state.store.as_ref(),
        &state.plugins,
        actor(user),
        &request,
        idempotency,
        state.limits.max_open_orders,
    )
    .await
    .map_err(order_error)?;
    match placed {
        Placed::Created(order) => {
            state.order_committed.notify_one();
            metrics::counter!(ORDERS_CREATED_TOTAL).increment(1);
            tracing::info!(order_id = %order.id, user_id = %order.user_id, total = order.total, "order placed");
            let mut response = json_response(StatusCode::CREATED, order_json(&order));
            if let Ok(location) = HeaderValue::from_str(&format!("/api/orders/{}", order.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Placed::Replayed { status, body } => {
            let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
            let mut response = json_response(status, body);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// One order; the owner's or, for admins, anyone's. Anyone else gets 404.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex order id")),
    responses(
        (status = 200, description = "The order", body = OrderDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(id): IdPath,
) -> Result<Json<OrderDto>, ApiError> {
    let order = orders::get_order(state.store.as_ref(), actor(user), id)
        .await
        .map_err(order_error)?;
    Ok(Json(OrderDto::from(&order)))
}

/// The caller's own orders, newest first, a page at a time; with `status`, only those in that
/// status, and for an admin every customer's (e.g. `?status=failed`).
#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    params(ListOrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderPageDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit, cursor or status", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<ListOrdersQuery>,
) -> Result<Json<OrderPageDto>, ApiError> {
    let page = orders::list_orders(
        state.store.as_ref(),
        actor(user),
        query.limit,
        query.cursor.as_deref(),
        query.status.as_deref(),
    )
    .await
    .map_err(order_error)?;
    Ok(Json(OrderPageDto {
        items: page.items.iter().map(OrderDto::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.to_hex()),
    }))
}

/// Cancels an order (owner or admin): its stock is returned and `order.cancelled` is emitted.
/// Allowed while `pending`, `processing`, `processed` or `failed`.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: already cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited` (with `Retry-After`): too many order writes by this user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(id): IdPath,
) -> Result<Json<OrderDto>, ApiError> {
    state.limits.check_order_write(user.id)?;
    let order = orders::cancel_order(state.store.as_ref(), actor(user), id)
        .await
        .map_err(order_error)?;
    state.order_committed.notify_one();
    tracing::info!(order_id = %order.id, by = %user.id, "order cancelled");
    Ok(Json(OrderDto::from(&order)))
}

/// Retries a failed order (admin): it is `pending` again and its original `order.created`
/// event is published again, so it is processed like a new order — and a confirmation e-mail
/// already sent for it is not sent a second time.
#[utoipa::path(post, path = "/api/orders/{id}/retry", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex order id")),
    responses(
        (status = 200, description = "The order, pending again", body = OrderDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: the order is not failed (its status is named)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(id): IdPath,
) -> Result<Json<OrderDto>, ApiError> {
    let order = orders::retry_order(state.store.as_ref(), id)
        .await
        .map_err(order_error)?;
    state.order_committed.notify_one();
    tracing::info!(order_id = %order.id, by = %admin.id, "failed order retried");
    Ok(Json(OrderDto::from(&order)))
}

/// The problem an order use case failure is answered with.
fn order_error(err: OrderError) -> ApiError {
    match err {
        OrderError::Invalid(errors) => ApiError::Validation(errors),
        OrderError::Rejected(errors) => ApiError::Unprocessable {
            code: "rule-violation",
            detail: "the order breaks business rules; see errors".to_owned(),
            errors,
        },
        OrderError::InsufficientStock(ids) => ApiError::insufficient_stock(&ids),
        OrderError::IdempotencyKeyReused => ApiError::Unprocessable {
            code: "idempotency-key-reused",
            detail: "this Idempotency-Key was already used with a different request".to_owned(),
            errors: vec![FieldError::new(
                "Idempotency-Key",
                "reused",
                "was used with a different request body",
            )],
        },
        OrderError::IdempotencyKeyTaken => ApiError::Conflict {
            code: "idempotency-key-taken",
            detail: "this Idempotency-Key is taken; use a new key".to_owned(),
            errors: vec![FieldError::new("Idempotency-Key", "taken", "is taken")],
        },
        OrderError::RulesUnavailable { slot, cause } => {
            tracing::error!(slot = %slot, error = ?cause, "an order failed because a rule plugin failed");
            ApiError::Unavailable {
                code: "plugin-unavailable",
                detail: format!("the {slot} rules are unavailable; try again later"),
            }
        }
        OrderError::NotFound => ApiError::NotFound,
        OrderError::InvalidTransition { current } => ApiError::Conflict {
            code: "invalid-state",
            detail: format!("not allowed while the order is {}", current.as_str()),
            errors: vec![FieldError::new(
                "status",
                current.as_str(),
                format!("the order is {}", current.as_str()),
            )],
        },
        OrderError::TooManyOpenOrders { max } => ApiError::LimitReached {
            code: "too-many-open-orders",
            detail: format!(
                "you already have {max} orders pending or processing; wait until they are processed or cancel one"
            ),
            errors: vec![FieldError::new(
                "items",
                "too-many-open-orders",
                format!("at most {max} orders may be open at once"),
            )],
        },
        OrderError::UnknownUser => ApiError::Unauthorized(super::extract::INVALID_TOKEN),
        OrderError::Store(err) => ApiError::Internal(err),
    }
}

/// The order routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(create_order, get_order, list_orders, cancel_order, retry_order),
    components(schemas(
        CreateOrder,
        CreateOrderLine,
        AddressDto,
        OrderDto,
        OrderItemDto,
        TaxLineDto,
        OrderPageDto
    ))
)]
pub struct OrdersApi;

//! The order use cases behind the HTTP routes: place (the hot path, in `place`), read, list
//! (one's own, or by status), cancel, and retry a failed order. No HTTP type appears here;
//! callers map [`OrderError`] to their own responses.
//!
//! Repeated products: a request naming one product on several lines is passed to the
//! validation slot as it is. The default validation plugin refuses it with the
//! `duplicate-product` violation; an operator who wants to allow it sets the validation config
//! `allow-duplicate-products=true`, and such a product's stock is then taken for the sum of
//! its lines.

mod place;
pub mod pricing;
pub mod request;
mod size;

use chrono::{SubsecRound, Utc};

use crate::domain::{EventType, Id, Order, OrderStatus, OutboxEvent, PageLimit, Role};
use crate::plugins::Slot;
use crate::storage::{Conflict, Store, StoreError};

pub use place::{IdempotencyRequest, Placed, place_order, place_order_capped};
pub use request::{AddressRequest, LineRequest, OrderRequest};
pub use size::ORDER_TOO_LARGE;

/// Who is asking: the authenticated user's id and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user's id (the token's subject).
    pub id: Id,
    /// Admins may read, list by status and cancel every order; customers only their own.
    pub role: Role,
}

impl Actor {
    /// Whether this actor may see and cancel `order`.
    fn may_access(&self, order: &Order) -> bool {
        self.role == Role::Admin || order.user_id == self.id
    }
}

pub use crate::domain::FieldError;

/// Why an order use case failed. Each variant's doc names the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// 422: fields of the request are malformed, name unknown products, or add up to amounts
    /// too large to represent.
    #[error("the order request is invalid")]
    Invalid(Vec<FieldError>),
    /// 422: the validation slot refused the order; the codes are the plugin's.
    #[error("the order breaks {} business rule(s)", .0.len())]
    Rejected(Vec<FieldError>),
    /// 409: these products do not have enough stock; nothing was written.
    #[error("insufficient stock")]
    InsufficientStock(Vec<Id>),
    /// 422: the `Idempotency-Key` was already used by this user with a different request.
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// 409: the `Idempotency-Key` is taken by a request whose response cannot be replayed
    /// (older than the replay window); the client should pick a new key.
    #[error("the idempotency key is taken")]
    IdempotencyKeyTaken,
    /// 503: a rule slot failed and its policy is fail-closed.
    #[error("the {slot} rules are unavailable")]
    RulesUnavailable {
        /// The slot that failed.
        slot: Slot,
        /// Why, for the logs (never shown to clients).
        #[source]
        cause: anyhow::Error,
    },
    /// 404: no such order, or it belongs to someone else.
    #[error("order not found")]
    NotFound,
    /// 409: the order's status does not allow the transition.
    #[error("the order is {}", .current.as_str())]
    InvalidTransition {
        /// The status the order is in.
        current: OrderStatus,
    },
    /// 429: the customer already has `max` orders pending or processing; nothing was written.
    #[error("the customer has {max} open orders")]
    TooManyOpenOrders {
        /// The configured cap.
        max: u32,
    },
    /// 401: the authenticated user no longer exists.
    #[error("the user no longer exists")]
    UnknownUser,
    /// 500: the store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Wraps a store failure with what was being done.
fn store_failed(what: &'static str) -> impl FnOnce(StoreError) -> OrderError {
    move |err| OrderError::Store(anyhow::Error::new(err).context(what))
}

/// The order `id` if `actor` may see it.
pub async fn get_order(store: &dyn Store, actor: Actor, id: Id) -> Result<Order, OrderError> {
    let order = store
        .order(id)
        .await
        .map_err(store_failed("Failed to load an order"))?;
    match order {
        Some(order) if actor.may_access(&order) => Ok(order),
        _ => Err(OrderError::NotFound),
    }
}

/// Default and largest page size of [`list_orders`].
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

/// One page of orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<Order>,
    /// Pass as `cursor` to get the next (older) page; `None` on the last page.
    pub next_cursor: Option<Id>,
}

/// Orders newest first, older than `cursor`, at most `limit` (1..=100, default 20). `cursor`
/// is the `next_cursor` of the previous page. Without `status`, the actor's own orders; with
/// it, an admin gets every customer's orders in that status and a customer their own.
pub async fn list_orders(
    store: &dyn Store,
    actor: Actor,
    limit: Option<i64>,
    cursor: Option<&str>,
    status: Option<&str>,
) -> Result<OrderPage, OrderError> {
    let mut errors = Vec::new();
    let limit = PageLimit::parse(limit, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
        errors.push(FieldError::from_parse("limit", e));
        PageLimit::default_of(DEFAULT_PAGE)
    });
    let before = match cursor.map(Id::parse).transpose() {
        Ok(before) => before,
        Err(e) => {
            errors.push(FieldError::from_parse("cursor", e));
            None
        }
    };
    let parsed = status.map(OrderStatus::parse);
    if parsed == Some(None) {
        let names: Vec<_> = OrderStatus::ALL.iter().map(OrderStatus::as_str).collect();
        errors.push(FieldError::new(
            "status",
            "invalid-value",
            format!("must be one of {}", names.join(", ")),
        ));
    }
    let status = parsed.flatten();
    if !errors.is_empty() {
        return Err(OrderError::Invalid(errors));
    }
    let mut items = match status {
        None => store.orders_of_user(actor.id, before, limit.probe()).await,
        Some(status) => {
            let owner = (actor.role != Role::Admin).then_some(actor.id);
            store
                .orders_by_status(status, owner, before, limit.probe())
                .await
        }
    }
    .map_err(store_failed("Failed to list orders"))?;
    let limit = limit.get() as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|o| o.id)
    } else {
        None
    };
    Ok(OrderPage { items, next_cursor })
}

/// Cancels the order `id` for its owner or an admin: restocks it and emits `order.cancelled`
/// in one transaction. Allowed while `pending`, `processing`, `processed` or `failed`; any
/// other status is an [`OrderError::InvalidTransition`].
pub async fn cancel_order(store: &dyn Store, actor: Actor, id: Id) -> Result<Order, OrderError> {
    let order = get_order(store, actor, id).await?;
    if !order.status.can_become(OrderStatus::Cancelled) {
        return Err(OrderError::InvalidTransition {
            current: order.status,
        });
    }
    let now = Utc::now().trunc_subsecs(3);
    let event = OutboxEvent::new(
        id,
        EventType::OrderCancelled,
        serde_json::json!({ "userId": order.user_id, "cancelledBy": actor.id }),
        now,
    );
    let sources = OrderStatus::sources_of(OrderStatus::Cancelled);
    store
        .cancel_order(id, &sources, now, &event)
        .await
        .map_err(transition_failed("Failed to cancel an order"))
}

/// Retries the failed order `id` — admins only, which the caller checks: `failed → pending`
/// and its original `order.created` event re-published, in one transaction. Re-publishing the
/// original event rather than a new one keeps "one confirmation e-mail per order": the
/// consumer's send record is keyed by the event id, so an e-mail already sent is not sent
/// again. Any status other than `failed` is an [`OrderError::InvalidTransition`].
pub async fn retry_order(store: &dyn Store, id: Id) -> Result<Order, OrderError> {
    let now = Utc::now().trunc_subsecs(3);
    store
        .retry_failed_order(id, now)
        .await
        .map_err(transition_failed("Failed to retry an order"))
}

/// Maps the errors of a conditional transition: `NotFound`, a status conflict naming the
/// current status, or a store failure described by `what`.
fn transition_failed(what: &'static str) -> impl FnOnce(StoreError) -> OrderError {
    move |err| match err {
        StoreError::NotFound => OrderError::NotFound,
        StoreError::Conflict(Conflict::OrderStatus(current)) => {
            OrderError::InvalidTransition { current }
        }
        err => store_failed(what)(err),
    }
}

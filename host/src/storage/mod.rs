//! Storage ports: the traits every backend implements (embedded SQLite by default, MongoDB in
//! production) and their one error type. Callers hold an `Arc<dyn Store>` and never see a
//! backend type. The contract test suite (`contract`) runs the same checks against every
//! backend.

pub mod conflict;
pub mod console;
pub mod delivery;
pub mod import;
pub mod mongo;
pub mod retention;
pub mod sqlite;
pub mod windows;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Id, Order, OrderStatus, OutboxEvent, OutboxStatus, Product, ProductPatch, Role, User,
};

pub use conflict::{Conflict, UniqueField};
pub use console::{ConsoleStore, EmailSent, EventTrail, OrderCounts};
pub use delivery::{DeliveryFinish, DeliveryStart, DeliveryStore, Finish, Started};
pub use import::ImportStore;
pub use retention::{Pruned, Retention, RetentionStore};

/// What went wrong in a storage call. HTTP maps `NotFound` → 404, `Conflict` → 409,
/// `InsufficientStock` → 409, `Backend` → 500 (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state condition failed; says which.
    #[error("conflict: {0}")]
    Conflict(#[from] Conflict),
    /// Some products did not have enough stock; nothing was written.
    #[error("insufficient stock for {0:?}")]
    InsufficientStock(Vec<Id>),
    /// The backend failed (I/O, lost connection, corrupt data).
    #[error("storage backend failed")]
    Backend(#[source] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn backend(err: impl Into<anyhow::Error>) -> Self {
        StoreError::Backend(err.into())
    }
}

/// Registered users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user. `Conflict::Taken(Email | Username)` when taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_id(&self, id: Id) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Changes a user's role (`orderd admin create --promote-existing`, `orderd admin
    /// demote`) and increments its token version, so access tokens issued before the change
    /// are refused wherever the version is checked. `NotFound` if absent.
    async fn set_role(&self, id: Id, role: Role) -> StoreResult<()>;
    /// Replaces a user's password hash with `new_hash` if it is still `old_hash` (a login
    /// upgrading a legacy hash; a concurrent password change wins). Whether it replaced it.
    async fn replace_password_hash(
        &self,
        id: Id,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool>;
    /// The user's current role and token version, for checking an access token against them.
    /// `None` when the user does not exist (deleted).
    async fn session_state(&self, id: Id) -> StoreResult<Option<SessionState>>;
    /// "Log out everywhere": increments the user's token version (access tokens issued before
    /// are refused wherever the version is checked) and revokes every refresh-token family of
    /// the user. Returns the new version; `NotFound` if absent.
    async fn end_sessions(&self, id: Id, at: DateTime<Utc>) -> StoreResult<u64>;
}

/// What an access token is checked against: the user's role and token version now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub role: Role,
    /// Starts at 0; incremented by a role change and by [`UserStore::end_sessions`].
    pub token_version: u64,
}

/// A new refresh token: only the SHA-256 of the opaque token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub family_id: Id,
    pub user_id: Id,
    pub token_hash: [u8; 32],
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was the family's current one; it is now replaced by the new hash.
    Rotated { user_id: Id, family_id: Id },
    /// The token had already been rotated away: the whole family is now revoked.
    Reused { family_id: Id },
    /// Unknown, expired, or its family was revoked.
    Invalid,
}

/// Refresh-token families (one per login), rotated on every refresh.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Starts a family with its first token.
    async fn create_family(&self, grant: &RefreshGrant) -> StoreResult<()>;
    /// [`TokenStore::rotate_refresh_with_grace`] without a grace window: concurrent rotations
    /// of one token give exactly one `Rotated`.
    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        next_hash: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.rotate_refresh_with_grace(presented, next_hash, now, expires_at, Duration::ZERO)
            .await
    }
    /// Atomically: if `presented` is the current token of a live, unexpired family, replace it
    /// with `next_hash` (new expiry `expires_at`) and remember `presented` as the previous
    /// token with the time. If `presented` is that previous token, was rotated less than
    /// `grace` before `now`, and the family's current token is `next_hash` (the caller derives
    /// the successor from the presented token, so a concurrent or retried refresh asks for the
    /// same one), `Rotated` again without a change. Any other earlier token of a family
    /// revokes that family (`Reused`).
    async fn rotate_refresh_with_grace(
        &self,
        presented: [u8; 32],
        next_hash: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<RotateOutcome>;
    /// Revokes the family `presented` belongs to (current or earlier token). No error if unknown.
    async fn revoke_family_of(&self, presented: [u8; 32]) -> StoreResult<()>;
}

/// The catalog.
#[async_trait]
pub trait ProductStore: Send + Sync {
    /// `Conflict::Taken(Sku)` when the SKU is taken.
    async fn create_product(&self, product: &Product) -> StoreResult<()>;
    async fn product(&self, id: Id) -> StoreResult<Option<Product>>;
    /// The products among `ids` that exist, in any order.
    async fn products_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<Product>>;
    /// Products in ascending id order, starting after `after`.
    async fn list_products(&self, after: Option<Id>, limit: u32) -> StoreResult<Vec<Product>>;
    /// Applies `patch` and returns the new product. `NotFound` if absent.
    async fn update_product(
        &self,
        id: Id,
        patch: &ProductPatch,
        at: DateTime<Utc>,
    ) -> StoreResult<Product>;
}

/// A stored response for an `Idempotency-Key`, replayed for the same user, key and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub user_id: Id,
    pub key: String,
    /// SHA-256 of the canonical request body.
    pub request_hash: [u8; 32],
    pub status: u16,
    pub response_body: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// One stock decrement of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockTake {
    pub product_id: Id,
    pub quantity: u32,
}

/// Orders, written in one transaction with their outbox events.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// In one transaction: decrement every product's stock if it is at least the quantity
    /// (any short → `InsufficientStock(ids)`, nothing written), insert `order`, insert `event`,
    /// and insert `idempotency` when given (key taken → `Conflict::IdempotencyKeyTaken`, nothing
    /// written).
    async fn place_order(
        &self,
        order: &Order,
        takes: &[StockTake],
        event: &OutboxEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        self.place_order_capped(order, takes, event, idempotency, None)
            .await
    }
    /// [`OrderStore::place_order`], refused with `Conflict::OpenOrders` (nothing written)
    /// when `max_open` is given and the customer already has that many orders `pending` or
    /// `processing`, counted inside the same transaction.
    async fn place_order_capped(
        &self,
        order: &Order,
        takes: &[StockTake],
        event: &OutboxEvent,
        idempotency: Option<&IdempotencyRecord>,
        max_open: Option<u32>,
    ) -> StoreResult<()>;
    async fn order(&self, id: Id) -> StoreResult<Option<Order>>;
    /// A user's orders, newest first (descending id), starting before `before`.
    async fn orders_of_user(
        &self,
        user_id: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>>;
    /// Conditional transition: only if the current status is in `from`. Returns the updated
    /// order; `NotFound`, or `Conflict::OrderStatus(current)` when the status did not match.
    async fn transition_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        to: OrderStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<Order>;
    /// In one transaction: transition to `cancelled` if the status is in `from`, give every
    /// item's quantity back to its product's stock, insert `event`. Same errors as
    /// `transition_order`.
    async fn cancel_order(
        &self,
        id: Id,
        from: &[OrderStatus],
        at: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> StoreResult<Order>;
    /// The stored response for (user, key) younger than `max_age`.
    async fn idempotency_record(
        &self,
        user_id: Id,
        key: &str,
        max_age: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    /// Counts of orders by status (metrics, tests).
    async fn count_orders(&self) -> StoreResult<Vec<(OrderStatus, u64)>>;
    /// Orders with `status` — every customer's, or only `user_id`'s when given — newest first
    /// (descending id), starting before `before`.
    async fn orders_by_status(
        &self,
        status: OrderStatus,
        user_id: Option<Id>,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Order>>;
    /// Retries a failed order, in one transaction: `failed → pending` (clearing `failed_at`),
    /// and its original `order.created` event back to `pending` — attempts 0, due at `at`,
    /// lease released, `republished` + 1 — with the event's inbox entry removed, so the
    /// consumer handles the event again while its e-mail send record still keeps an e-mail
    /// already sent from going out twice. Returns the updated order; `NotFound`, or
    /// `Conflict::OrderStatus(current)` when the order is not `failed`.
    async fn retry_failed_order(&self, id: Id, at: DateTime<Utc>) -> StoreResult<Order>;
}

/// The transactional outbox, drained by relays.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` pending events that are due (`next_attempt_at <= now`) and not
    /// leased by someone else, oldest first, to `owner` until `now + lease`. Never leases an
    /// event while an earlier unpublished event of the same order is pending, so the events of
    /// one order are published in the order they were written.
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Marks events published (only those still leased by `owner`).
    async fn mark_published(&self, ids: &[Id], owner: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Records a failed attempt: attempts += 1, `last_error`, lease released, retried at
    /// `next_attempt_at`, or status `dead` when `dead`.
    async fn mark_failed(
        &self,
        id: Id,
        owner: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> StoreResult<()>;
    /// Events with `status`, oldest first.
    async fn list_outbox(&self, status: OutboxStatus, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    /// Puts a dead event back to pending with attempts reset. `NotFound`, or `Conflict` if not dead.
    async fn retry_outbox(&self, id: Id, now: DateTime<Utc>) -> StoreResult<()>;
    /// Number of events with `status`.
    async fn count_outbox(&self, status: OutboxStatus) -> StoreResult<u64>;
    /// The oldest `occurred_at` among pending events, for wake-up scheduling and metrics.
    async fn oldest_pending(&self) -> StoreResult<Option<DateTime<Utc>>>;
}

/// Whether this consumer may send the e-mail of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailClaim {
    /// Claimed: send it, then call `finish_email`.
    Claimed,
    /// Another delivery holds an unexpired claim: do not send now; retry later.
    InProgress,
    /// Already sent: do not send again.
    AlreadySent,
}

/// The consumer's duplicate filters: processed-message inbox and e-mail send records.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Whether `event_id` was fully processed.
    async fn inbox_contains(&self, event_id: Id) -> StoreResult<bool>;
    /// Records `event_id` as processed; `false` if it already was.
    async fn inbox_record(&self, event_id: Id, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Conditionally claims the e-mail send for `event_id` until `until` (an expired claim of a
    /// crashed consumer may be taken over).
    async fn claim_email(
        &self,
        event_id: Id,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<EmailClaim>;
    /// Records the e-mail of `event_id` as sent with its Message-ID.
    async fn finish_email(
        &self,
        event_id: Id,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Releases an unsent claim after a failed send, so a redelivery may try again.
    async fn release_email(&self, event_id: Id, owner: &str) -> StoreResult<()>;
}

/// A rule-plugin version uploaded by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion {
    pub id: Id,
    /// "tax", "validation" or "email".
    pub slot: String,
    /// Hex SHA-256 of `wasm`.
    pub sha256: String,
    pub wasm: Vec<u8>,
    /// Operator settings as key/value pairs.
    pub config: Vec<(String, String)>,
    /// "fail-closed" or "fallback", if set with the upload.
    pub policy: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<Id>,
}

/// The active version of a slot; `generation` increases on every change, so instances
/// polling it can tell that something changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePlugin {
    pub slot: String,
    /// `None` means the embedded default.
    pub version_id: Option<Id>,
    pub generation: u64,
    pub updated_at: DateTime<Utc>,
}

/// Plugin versions and the active pointer per slot, shared by every instance.
#[async_trait]
pub trait PluginStore: Send + Sync {
    async fn put_plugin_version(&self, version: &PluginVersion) -> StoreResult<()>;
    async fn plugin_version(&self, id: Id) -> StoreResult<Option<PluginVersion>>;
    /// Versions of a slot, newest first, without their wasm bytes (`wasm` is empty).
    async fn plugin_versions(&self, slot: &str) -> StoreResult<Vec<PluginVersion>>;
    /// Points `slot` at `version_id` (None = embedded default) and bumps its generation.
    async fn set_active_plugin(
        &self,
        slot: &str,
        version_id: Option<Id>,
        at: DateTime<Utc>,
    ) -> StoreResult<ActivePlugin>;
    async fn active_plugins(&self) -> StoreResult<Vec<ActivePlugin>>;
}

/// Every port together: what `AppState` holds as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    UserStore
    + TokenStore
    + ProductStore
    + OrderStore
    + OutboxStore
    + InboxStore
    + DeliveryStore
    + PluginStore
    + RetentionStore
    + ImportStore
    + ConsoleStore
{
    /// Cheap round trip proving the backend is reachable (readiness probe).
    async fn ping(&self) -> StoreResult<()>;
    /// Backend name for logs and metrics ("sqlite", "mongodb").
    fn backend_name(&self) -> &'static str;

    /// The customer and the products an order names (unknown ids are left out), read together:
    /// the order path's reads in one round trip where the backend can. By default the two
    /// reads run concurrently.
    async fn order_inputs(
        &self,
        user_id: Id,
        product_ids: &[Id],
    ) -> StoreResult<(Option<User>, Vec<Product>)> {
        futures::try_join!(self.user_by_id(user_id), self.products_by_ids(product_ids))
    }
}

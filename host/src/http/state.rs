//! [`AppState`]: the one cloneable bundle every handler receives. It holds `Arc`s of the
//! long-lived services (store, plugin runtime, token signer, password hasher, metrics) and the
//! settings. To add a service, add a field here and set it where the state is built
//! (`startup::build_state`).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::auth::{PasswordHasher, TokenService};
use crate::configuration::Settings;
use crate::delivery::DeliveryHealth;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::Limits;
use crate::plugins::PluginRuntime;
use crate::service::pipeline_history::PipelineHistory;
use crate::storage::Store;

/// Shared state of the HTTP layer. Cloning is cheap (a handful of `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// Every storage port of the configured backend.
    pub store: Arc<dyn Store>,
    /// The tax, validation and e-mail rule plugins.
    pub plugins: PluginRuntime,
    /// The settings the service was started with.
    pub settings: Arc<Settings>,
    /// Signs and verifies access tokens, mints refresh tokens.
    pub tokens: Arc<TokenService>,
    /// argon2id hashing on the blocking pool, bounded.
    pub passwords: Arc<PasswordHasher>,
    /// The Prometheus recorder's handle, rendered by `GET /metrics`.
    pub metrics: Metrics,
    /// Notified after an order or cancellation commits, so the outbox relay wakes at once
    /// instead of waiting for its next poll.
    pub order_committed: Arc<Notify>,
    /// The health of the delivery roles this process runs (none for an api-only process),
    /// reported by `/api/ready`.
    pub delivery: Arc<DeliveryHealth>,
    /// Abuse limits kept in memory: client addresses, failed logins, order writes per user.
    pub limits: Arc<Limits>,
    /// The last minutes of the order pipeline, sampled by the api role for the console.
    pub pipeline: Arc<PipelineHistory>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend_name())
            .finish_non_exhaustive()
    }
}

//! Wiring: from [`Settings`] to a running process. [`Application::build`] opens the store,
//! loads the plugin runtime, builds the [`AppState`] and binds the listener (port 0 picks a
//! free port, see [`Application::port`]); [`Application::run_until_stopped`] serves until the
//! shutdown future completes, then drains in two steps with a budget each: first the HTTP
//! server stops accepting and finishes in-flight requests (`http.shutdown_grace_ms`) while the
//! delivery roles keep working, then the background work stops — the consumer stops fetching
//! and lets in-flight messages, e-mail sends included, finish (`consumer.drain_ms`) — and it
//! returns.
//!
//! A process plays one or more roles (`--roles api,relay,consumer`): `api` serves the whole
//! HTTP API; without it only the operational routes (health, metrics) are served. The delivery
//! roles are started in [`Application::spawn_delivery_roles`].

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{PasswordHasher, TokenService};
use crate::configuration::Settings;
use crate::configuration::StoreBackend;
use crate::delivery::{DeliveryHealth, DeliveryRoles};
use crate::http::{self, AppState, metrics::Metrics};
use crate::plugins::PluginRuntime;
use crate::storage::Store;
use crate::storage::mongo::{MongoStore, WatchTarget};
use crate::storage::sqlite::SqliteStore;

/// A part of the system a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessRole {
    /// The HTTP API.
    Api,
    /// Moves committed outbox events to the queue.
    Relay,
    /// Processes queued events (order processing, e-mail).
    Consumer,
}

impl ProcessRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::Api => "api",
            ProcessRole::Relay => "relay",
            ProcessRole::Consumer => "consumer",
        }
    }
}

/// The set of roles this process plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(BTreeSet<ProcessRole>);

impl Roles {
    /// Parses a comma-separated list such as `api,relay`; at least one role, no unknown ones.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut roles = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let role = match name.to_ascii_lowercase().as_str() {
                "api" => ProcessRole::Api,
                "relay" => ProcessRole::Relay,
                "consumer" => ProcessRole::Consumer,
                other => bail!("unknown role {other:?}: expected api, relay or consumer"),
            };
            roles.insert(role);
        }
        if roles.is_empty() {
            bail!("at least one role is needed: api, relay or consumer");
        }
        Ok(Self(roles))
    }

    pub fn contains(&self, role: ProcessRole) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = ProcessRole> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(ProcessRole::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// The opened storage backend: the one store every port goes through, plus what only that
/// backend offers the process.
#[derive(Clone)]
pub enum Backend {
    /// The embedded SQLite file: the embedded queue keeps its table in the same file, and the
    /// process sweeps expired idempotency records and inbox entries itself.
    Sqlite(SqliteStore),
    /// MongoDB: its change streams wake the relay.
    Mongo(MongoStore),
}

impl Backend {
    /// Opens the configured backend: the embedded SQLite database in the data directory, or
    /// MongoDB.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        match settings.store.backend {
            StoreBackend::Sqlite => {
                let path = settings.database_path();
                let store = SqliteStore::open(&path).with_context(|| {
                    format!("Failed to open the database at {}", path.display())
                })?;
                Ok(Backend::Sqlite(store))
            }
            StoreBackend::Mongodb => Ok(Backend::Mongo(open_mongo(settings).await?)),
        }
    }

    /// The storage ports.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(store) => Arc::new(store.clone()),
            Backend::Mongo(store) => Arc::new(store.clone()),
        }
    }
}

/// Opens the configured store (see [`Backend::open`]), for commands that need only its ports.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Backend::open(settings).await?.store())
}

/// Connects to the MongoDB deployment the settings name (production backend).
async fn open_mongo(settings: &Settings) -> anyhow::Result<MongoStore> {
    let uri = settings.store.mongodb_uri.as_ref().context(
        "store.backend is mongodb but no connection string is set (ORDERD_STORE__MONGODB_URI)",
    )?;
    let options = settings.store.mongo_options();
    if settings.queue.backend == crate::delivery::queue::QueueBackend::Embedded {
        tracing::warn!(
            "the embedded queue is local to this instance's data directory; \
             with several instances on one MongoDB use SQS (ORDERD_QUEUE__BACKEND=sqs)"
        );
    }
    MongoStore::connect(uri.expose(), &settings.store.mongodb_database, options)
        .await
        .context("Failed to open the MongoDB store")
}

/// Time the background work gets on shutdown beyond the consumer's drain: a relay pass in
/// progress finishes and the roles' supervisors return.
const STOP_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// The delivery roles among `roles`.
fn delivery_roles(roles: &Roles) -> DeliveryRoles {
    DeliveryRoles {
        relay: roles.contains(ProcessRole::Relay),
        consumer: roles.contains(ProcessRole::Consumer),
        api: roles.contains(ProcessRole::Api),
    }
}

/// Builds the shared state from the settings and an opened store, for a process playing
/// `roles`.
pub async fn build_state(
    settings: Settings,
    store: Arc<dyn Store>,
    roles: &Roles,
) -> anyhow::Result<AppState> {
    let delivery = delivery_roles(roles);
    let stale_after = settings.delivery.stale_after();
    if delivery.consumer && settings.consumer.wait_ms >= settings.delivery.stale_after_ms {
        tracing::warn!(
            wait_ms = settings.consumer.wait_ms,
            stale_after_ms = settings.delivery.stale_after_ms,
            "consumer.wait_ms is not below delivery.stale_after_ms: an idle consumer will make /api/ready answer 503"
        );
    }
    let secret = settings.resolve_jwt_secret()?;
    let tokens = TokenService::new(&secret, &settings.auth);
    let limits = Arc::new(crate::http::rate_limit::Limits::from_settings(&settings)?);
    limits.spawn_housekeeping();
    let hash_concurrency = settings.auth.hash_concurrency;
    let passwords = tokio::task::spawn_blocking(move || PasswordHasher::new(hash_concurrency))
        .await
        .context("Failed to join the password-hasher setup")??;
    let plugins = PluginRuntime::with_embedded_defaults(settings.plugins.clone())
        .await
        .context("Failed to start the plugin runtime")?;
    Ok(AppState {
        store,
        plugins,
        settings: Arc::new(settings),
        tokens: Arc::new(tokens),
        passwords: Arc::new(passwords),
        metrics: Metrics::install()?,
        order_committed: Arc::new(Notify::new()),
        delivery: Arc::new(DeliveryHealth::new(&delivery.names(), stale_after)),
        limits,
        pipeline: Default::default(),
    })
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    /// The bound port (the chosen one when the settings asked for port 0).
    port: u16,
    state: AppState,
    roles: Roles,
    /// The backend behind `state.store`, for what only it offers (the embedded queue's file,
    /// the sweeper, change-stream wake-ups).
    backend: Backend,
}

impl Application {
    /// Opens the configured store (embedded SQLite, or MongoDB) and builds the application on it.
    pub async fn build(settings: Settings, roles: Roles) -> anyhow::Result<Self> {
        let backend = Backend::open(&settings).await?;
        Self::build_on(settings, roles, backend).await
    }

    /// Builds the application on an already opened backend.
    pub async fn build_on(
        settings: Settings,
        roles: Roles,
        backend: Backend,
    ) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let state = build_state(settings, backend.store(), &roles).await?;
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("Failed to bind {address}"))?;
        let port = listener
            .local_addr()
            .context("Failed to read the bound address")?
            .port();
        Ok(Self {
            listener,
            port,
            state,
            roles,
            backend,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests reach the store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The roles this process plays.
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// Starts the delivery roles this process plays (outbox relay, queue consumer), each
    /// supervised, reporting to the state's delivery health; the task returns once `shutdown`
    /// is cancelled and the roles have drained.
    fn spawn_delivery_roles(&self, shutdown: &CancellationToken) -> Option<JoinHandle<()>> {
        let roles = delivery_roles(&self.roles);
        if !roles.relay && !roles.consumer {
            return None;
        }
        let deps = crate::delivery::DeliveryDeps {
            settings: self.state.settings.clone(),
            store: self.state.store.clone(),
            sqlite: match &self.backend {
                Backend::Sqlite(store) => Some(store.db()),
                Backend::Mongo(_) => None,
            },
            renderer: Arc::new(self.state.plugins.clone()),
            order_committed: self.state.order_committed.clone(),
            health: self.state.delivery.clone(),
        };
        Some(tokio::spawn(crate::delivery::run(
            deps,
            roles,
            shutdown.clone(),
        )))
    }

    /// Serves until `shutdown` completes, then drains in two steps (see the module doc):
    /// in-flight requests up to `http.shutdown_grace_ms`, then the background work — the
    /// consumer's in-flight messages up to `consumer.drain_ms` — and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Two stops, in order: the HTTP server first, the background work after it.
        let http_stop = CancellationToken::new();
        let token = CancellationToken::new();
        let settings = self.state.settings.clone();

        // Serve the operator's stored plugin versions from the first order on: one convergence
        // pass before any role starts (from the artifact cache a load takes milliseconds; a
        // store that does not answer yet is retried by the loop below).
        let mut plugin_sync = crate::service::plugin_sync::PluginSync::new(
            self.state.store.clone(),
            self.state.plugins.clone(),
        );
        if let Err(err) = plugin_sync.try_run_once().await {
            tracing::warn!(error = ?err, "could not apply the stored plugin versions before serving; retrying in the background");
        }

        let watcher = match &settings.plugin_dir {
            Some(dir) => Some(
                self.state
                    .plugins
                    .spawn_watcher(dir.clone(), token.clone().cancelled_owned())
                    .context("Failed to start the plugin watcher")?,
            ),
            None => None,
        };
        let delivery = self.spawn_delivery_roles(&token);
        let mut tasks = Vec::new();
        // On a replica set, new outbox events wake the relay at once even when another
        // instance wrote them; elsewhere the relay's polling covers it (logged once).
        let wakeups = match (&self.backend, self.roles.contains(ProcessRole::Relay)) {
            (Backend::Mongo(mongo), true) => Some(mongo.spawn_wakeups(
                WatchTarget::Outbox,
                self.state.order_committed.clone(),
                token.clone(),
            )),
            _ => None,
        };
        // The embedded store expires old idempotency records and inbox entries itself.
        if let Backend::Sqlite(sqlite) = &self.backend {
            tasks.push(sqlite.clone().spawn_sweeper(
                std::time::Duration::from_secs(settings.store.inbox_retention_secs),
                token.clone(),
            ));
        }
        // Both backends delete what is past its retention (storage::retention).
        tasks.push(crate::storage::retention::spawn_pruner(
            self.state.store.clone(),
            settings.store.retention(),
            token.clone(),
        ));
        // The operator console's pipeline chart (service::pipeline_history).
        if self.roles.contains(ProcessRole::Api) {
            tasks.push(crate::service::pipeline_history::spawn_sampler(
                self.state.pipeline.clone(),
                self.state.store.clone(),
                self.state.delivery.clone(),
                token.clone(),
            ));
        }
        // Plugin convergence (service::plugin_sync): follow the store's active plugin versions,
        // woken on a replica set as soon as any instance changes an active pointer.
        let plugins_changed = Arc::new(Notify::new());
        let plugin_wakeups = match &self.backend {
            Backend::Mongo(mongo) => Some(mongo.spawn_wakeups(
                WatchTarget::ActivePlugins,
                plugins_changed.clone(),
                token.clone(),
            )),
            Backend::Sqlite(_) => None,
        };
        tasks.push(tokio::spawn(crate::service::plugin_sync::run(
            plugin_sync,
            crate::service::plugin_sync::DEFAULT_INTERVAL,
            plugins_changed,
            token.clone(),
        )));

        let app = if self.roles.contains(ProcessRole::Api) {
            http::router(self.state.clone())
        } else {
            // A consumer without the api role answers the processor's probe on its own
            // health address (`consumer.health_addr`), with the queue's state.
            http::operational_router(
                self.state.clone(),
                !self.roles.contains(ProcessRole::Consumer),
            )
        };
        tracing::info!(port = self.port, roles = %self.roles, store = self.state.store.backend_name(), "orderd is serving");
        let server = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(http_stop.clone().cancelled_owned());
        let mut server =
            tokio::spawn(async move { server.await.context("The HTTP server failed") });

        tokio::pin!(shutdown);
        let early = tokio::select! {
            () = &mut shutdown => None,
            result = &mut server => Some(result),
        };

        // 1. The HTTP drain; the delivery roles keep publishing and processing meanwhile.
        tracing::info!("shutting down: finishing in-flight requests");
        http_stop.cancel();
        let grace = settings.http.shutdown_grace();
        let served = match early {
            Some(result) => result,
            None => match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        grace_ms = grace.as_millis() as u64,
                        "HTTP drain budget over; dropping unfinished requests"
                    );
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        let outcome = served
            .context("Failed to join the HTTP server")
            .and_then(|r| r);

        // 2. The background drain: the consumer finishes its in-flight messages.
        tracing::info!("shutting down: draining the delivery roles and background tasks");
        token.cancel();
        let drain = async {
            let mut outcome = Ok(());
            if let Some(delivery) = delivery
                && let Err(err) = delivery.await
            {
                tracing::error!(error = %err, "the delivery roles ended abnormally");
            }
            for task in tasks {
                let result = task
                    .await
                    .context("Failed to join a background task")
                    .and_then(|r| r);
                if let Err(err) = result {
                    tracing::error!(error = ?err, "a background task failed");
                    outcome = outcome.and(Err(err));
                }
            }
            if let Some(watcher) = watcher {
                watcher.stopped().await;
            }
            // They end on the cancelled token; a panic in one is not worth failing the stop.
            for wakeups in [wakeups, plugin_wakeups].into_iter().flatten() {
                let _ = wakeups.await;
            }
            outcome
        };
        let budget = std::time::Duration::from_millis(settings.consumer.drain_ms) + STOP_SLACK;
        match tokio::time::timeout(budget, drain).await {
            Ok(drained) => outcome.and(drained),
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "background drain budget over; dropping unfinished work"
                );
                outcome
            }
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "failed to listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_a_comma_separated_list() {
        let roles = Roles::parse("relay, api").unwrap();
        assert!(roles.contains(ProcessRole::Api) && roles.contains(ProcessRole::Relay));
        assert!(!roles.contains(ProcessRole::Consumer));
        assert_eq!(roles.to_string(), "api,relay");
        assert!(Roles::parse("api,web").is_err());
        assert!(Roles::parse(" , ").is_err());
    }
}

//! Wiring of the delivery roles: runs the outbox relay and the consumer, each under a
//! [supervisor](super::supervisor) that starts it again when it fails, and the consumer's own
//! health endpoint when the process does not serve the API, until shutdown; each role drains
//! what it holds before returning.
//!
//! Opening the queue is part of starting a role, so a queue that is unreachable at boot is
//! retried like any other failure while the role shows `restarting` on `/api/ready`. Both
//! roles share one queue handle, opened by whichever role gets there first (the embedded
//! queue's in-process wake-ups need one handle for sender and receiver).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use super::consumer::{Consumer, EmailRenderer};
use super::queue::embedded::EmbeddedQueue;
use super::queue::sqs::SqsQueue;
use super::queue::{Queue, QueueBackend, QueueSettings};
use super::relay::Relay;
use super::role_health::{CONSUMER, DeliveryHealth, RELAY, RoleHealth};
use super::supervisor::supervise;
use crate::configuration::Settings;
use crate::mail::Mailer;
use crate::storage::Store;
use crate::storage::sqlite::SqliteDb;

/// Which delivery roles to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRoles {
    pub relay: bool,
    pub consumer: bool,
    /// Whether the process serves the API (if not, the consumer serves its own health route).
    pub api: bool,
}

impl DeliveryRoles {
    /// The names of the delivery roles chosen, for a [`DeliveryHealth`] registry.
    pub fn names(&self) -> Vec<&'static str> {
        [(self.relay, RELAY), (self.consumer, CONSUMER)]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

/// What the delivery roles need from the rest of the process.
pub struct DeliveryDeps {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    /// The store's SQLite handle, so the embedded queue shares its file and writer; `None`
    /// opens a second handle on the settings' database path.
    pub sqlite: Option<SqliteDb>,
    pub renderer: Arc<dyn EmailRenderer>,
    /// Notified after every order commit in this process.
    pub order_committed: Arc<Notify>,
    /// Where the roles report their health; a role missing from it runs unreported.
    pub health: Arc<DeliveryHealth>,
}

/// The queue settings to open the queue with: the configured ones, with the receive limit
/// (dead-letter redrive) raised to what the consumer's attempt budget needs, so the budget —
/// not a second count — decides when a failing event is given up.
pub fn queue_settings(settings: &Settings) -> QueueSettings {
    let mut queue = settings.queue.clone();
    queue.max_receives = queue
        .max_receives
        .max(settings.consumer.receives_for_budget());
    queue
}

/// Opens the queue `settings` name: embedded (in `db`) or SQS.
pub async fn open_queue(
    settings: &QueueSettings,
    db: Option<SqliteDb>,
    db_path: &std::path::Path,
) -> anyhow::Result<Arc<dyn Queue>> {
    match settings.backend {
        QueueBackend::Embedded => {
            let db = match db {
                Some(db) => db,
                None => SqliteDb::open(db_path)
                    .context("Failed to open the database for the embedded queue")?,
            };
            let queue = EmbeddedQueue::open(db, &settings.name, settings.max_receives).await?;
            Ok(queue)
        }
        QueueBackend::Sqs => {
            let queue = SqsQueue::connect(settings)
                .await
                .with_context(|| format!("Failed to open SQS queue {}", settings.name))?;
            Ok(Arc::new(queue))
        }
    }
}

/// The queue both roles use, opened on first successful use; a failed open is not kept, so
/// the next start of a role tries again.
#[derive(Clone)]
pub struct SharedQueue {
    cell: Arc<OnceCell<Arc<dyn Queue>>>,
    settings: QueueSettings,
    sqlite: Option<SqliteDb>,
    db_path: PathBuf,
}

impl SharedQueue {
    fn new(settings: &Settings, sqlite: Option<SqliteDb>) -> Self {
        Self {
            cell: Arc::new(OnceCell::new()),
            settings: queue_settings(settings),
            sqlite,
            db_path: settings.database_path(),
        }
    }

    /// The queue, opening it if no role has yet; `None` when `shutdown` came first.
    async fn get(&self, shutdown: &CancellationToken) -> anyhow::Result<Option<Arc<dyn Queue>>> {
        let open = self
            .cell
            .get_or_try_init(|| open_queue(&self.settings, self.sqlite.clone(), &self.db_path));
        tokio::select! {
            queue = open => queue.map(|q| Some(q.clone())),
            _ = shutdown.cancelled() => Ok(None),
        }
    }

    /// The queue if a role has opened it.
    pub fn opened(&self) -> Option<Arc<dyn Queue>> {
        self.cell.get().cloned()
    }
}

/// Runs the chosen roles until `shutdown`, then waits for them to drain. Roles never end the
/// call by failing: they are restarted. Only the consumer's health endpoint failing to bind
/// is an error, and the roles run regardless.
pub async fn run(deps: DeliveryDeps, roles: DeliveryRoles, shutdown: CancellationToken) {
    if !roles.relay && !roles.consumer {
        return;
    }
    let settings = deps.settings.clone();
    let queue = SharedQueue::new(&settings, deps.sqlite.clone());
    let health_of = |name| {
        deps.health
            .role(name)
            .unwrap_or_else(|| Arc::new(RoleHealth::new(name)))
    };
    let mut tasks = tokio::task::JoinSet::new();
    if roles.relay {
        let role_health = health_of(RELAY);
        let (health, queue, token) = (role_health.clone(), queue.clone(), shutdown.clone());
        let (store, wake) = (deps.store.clone(), deps.order_committed.clone());
        let relay_settings = settings.relay.clone();
        let outbox_db = deps.sqlite.clone();
        let start = move || {
            let (health, queue, token) = (health.clone(), queue.clone(), token.clone());
            let (store, wake, relay_settings) =
                (store.clone(), wake.clone(), relay_settings.clone());
            let outbox_db = outbox_db.clone();
            async move {
                let Some(queue) = queue.get(&token).await? else {
                    return Ok(());
                };
                let relay = Relay::new(store, queue, relay_settings, wake)
                    .with_health(health)
                    .with_outbox_db(outbox_db);
                relay.run(token).await;
                Ok(())
            }
        };
        tasks.spawn(supervise(
            role_health,
            settings.delivery.clone(),
            shutdown.clone(),
            start,
        ));
    }
    if roles.consumer {
        let role_health = health_of(CONSUMER);
        let (health, shared, token) = (role_health.clone(), queue.clone(), shutdown.clone());
        let (store, renderer, all) = (deps.store.clone(), deps.renderer.clone(), settings.clone());
        let start = move || {
            let (health, queue, token) = (health.clone(), shared.clone(), token.clone());
            let (store, renderer, settings) = (store.clone(), renderer.clone(), all.clone());
            async move {
                let Some(queue) = queue.get(&token).await? else {
                    return Ok(());
                };
                let mailer = Mailer::from_settings(&settings.mail, &settings.data_dir)
                    .context("Failed to set up the mailer")?;
                tracing::info!(transport = mailer.transport_name(), "Mailer ready");
                let consumer = Consumer::new(
                    store,
                    queue,
                    Arc::new(mailer),
                    renderer,
                    settings.consumer.clone(),
                );
                Arc::new(consumer.with_health(health)).run(token).await;
                Ok(())
            }
        };
        tasks.spawn(supervise(
            role_health,
            settings.delivery.clone(),
            shutdown.clone(),
            start,
        ));
        tasks.spawn(sample_backlog(
            queue.clone(),
            deps.health.clone(),
            shutdown.clone(),
        ));
        if !roles.api {
            serve_consumer_health(&settings, &deps.store, &queue, &shutdown, &mut tasks).await;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            tracing::error!(error = %err, "A delivery task ended abnormally");
        }
    }
}

/// How often the consumer's queue backlog is sampled for the api role's pacing.
const BACKLOG_SAMPLE: Duration = Duration::from_millis(50);

/// Samples the queue's depth (visible and in flight) into `health` until `shutdown`, so the
/// api role of this process can pace order intake to what delivery completes.
async fn sample_backlog(
    queue: SharedQueue,
    health: Arc<DeliveryHealth>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(BACKLOG_SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        ticks += 1;
        let Some(queue) = queue.opened() else {
            continue;
        };
        // A remote queue's depth is an API call: ask it once a second, not twenty times.
        if queue.backend_name() != "embedded" && !ticks.is_multiple_of(20) {
            continue;
        }
        if let Ok(depth) = queue.depth().await {
            health.set_backlog(depth.visible + depth.in_flight);
        }
        // The dead-letter count is for people (the operator console): once a second.
        if ticks.is_multiple_of(20)
            && let Some(dlq) = queue.dead_letter_queue()
            && let Ok(depth) = dlq.depth().await
        {
            health.set_dead_lettered(depth.visible + depth.in_flight);
        }
    }
}

/// Serves `/processor/api/health` on `consumer.health_addr` as a task of `tasks`.
async fn serve_consumer_health(
    settings: &Settings,
    store: &Arc<dyn Store>,
    queue: &SharedQueue,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let addr = &settings.consumer.health_addr;
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(%addr, error = %err, "Failed to bind the consumer health address; the consumer runs without it");
            return;
        }
    };
    tracing::info!(%addr, "Serving /processor/api/health");
    let (store, queue, token) = (store.clone(), queue.clone(), shutdown.clone());
    tasks.spawn(async move {
        if let Err(err) = super::consumer::health::serve(listener, store, queue, token).await {
            tracing::error!(
                error = format!("{err:#}"),
                "The consumer health server failed"
            );
        }
    });
}

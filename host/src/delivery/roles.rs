//! Wiring of the delivery roles: opens the configured queue and mailer, then runs the outbox
//! relay and the consumer (and the consumer's own health endpoint when the process does not
//! serve the API) until shutdown, each draining what it holds before returning.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::consumer::{Consumer, EmailRenderer};
use super::queue::embedded::EmbeddedQueue;
use super::queue::sqs::SqsQueue;
use super::queue::{Queue, QueueBackend, QueueSettings};
use super::relay::Relay;
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

/// Runs the chosen roles until `shutdown`, then waits for them to drain.
pub async fn run(
    deps: DeliveryDeps,
    roles: DeliveryRoles,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let result = run_inner(deps, roles, shutdown).await;
    if let Err(err) = &result {
        tracing::error!(error = format!("{err:#}"), "The delivery roles failed");
    }
    result
}

async fn run_inner(
    deps: DeliveryDeps,
    roles: DeliveryRoles,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !roles.relay && !roles.consumer {
        return Ok(());
    }
    let settings = &deps.settings;
    let queue = open_queue(
        &settings.queue,
        deps.sqlite.clone(),
        &settings.database_path(),
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    if roles.relay {
        let relay = Relay::new(
            deps.store.clone(),
            queue.clone(),
            settings.relay.clone(),
            deps.order_committed.clone(),
        );
        tasks.spawn(relay.run(shutdown.clone()));
    }
    if roles.consumer {
        let mailer = Arc::new(
            Mailer::from_settings(&settings.mail, &settings.data_dir)
                .context("Failed to set up the mailer")?,
        );
        tracing::info!(transport = mailer.transport_name(), "Mailer ready");
        let consumer = Arc::new(Consumer::new(
            deps.store.clone(),
            queue.clone(),
            mailer,
            deps.renderer.clone(),
            settings.consumer.clone(),
        ));
        tasks.spawn(consumer.run(shutdown.clone()));
        if !roles.api {
            let addr = &settings.consumer.health_addr;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("Failed to bind the consumer health address {addr}"))?;
            tracing::info!(%addr, "Serving /processor/api/health");
            let (store, queue, token) = (deps.store.clone(), queue.clone(), shutdown.clone());
            tasks.spawn(async move {
                if let Err(err) =
                    super::consumer::health::serve(listener, store, queue, token).await
                {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "The consumer health server failed"
                    );
                }
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("A delivery task panicked")?;
    }
    Ok(())
}

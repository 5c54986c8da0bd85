//! The production storage backend: every storage port on MongoDB through the official driver.
//!
//! It needs a replica set (a single node is enough): the order and cancel transactions are
//! multi-document transactions (snapshot read concern, majority write concern, retried as the
//! drivers specify), which a standalone server cannot run, so [`MongoStore::connect`] refuses
//! one unless [`MongoOptions::allow_standalone`] is set (tests against a wire-protocol emulator
//! only). At start it creates the collections and their indexes idempotently (`setup.rs`).
//!
//! Conventions: ids are ObjectIds, money is Int64 minor units, times are BSON dates
//! (milliseconds), token hashes are lower-case hex. Each port lives in its own file; change
//! stream wake-ups for the relay and the plugin sync are in `watch.rs`.

mod clock;
mod codec;
mod console;
mod delivery;
mod error;
mod import;
mod inbox;
mod order_docs;
mod orders;
mod outbox;
mod plugins;
mod products;
mod retention;
mod setup;
mod users;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use mongodb::options::{ClientOptions, WriteConcern};
use mongodb::{Client, Collection, Database};

pub use setup::Topology;
pub use watch::{Wakeups, WatchError, WatchTarget};

use super::windows::DEFAULT_INBOX_RETENTION;
use super::{Store, StoreResult};
use error::MongoContext;

/// Environment variable the settings loader reads as `store.mongodb_allow_standalone`: accept a
/// standalone server. Test-only: transactions are then not isolated.
pub const ALLOW_STANDALONE_ENV: &str = "ORDERD_TEST_MONGODB_ALLOW_STANDALONE";

/// Choices made when connecting.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// Accept a standalone server instead of refusing it. Test-only: a standalone MongoDB
    /// rejects transactions, and the wire-protocol emulator used in tests runs them without
    /// isolation, so concurrent orders may oversell. Never set it in production.
    pub allow_standalone: bool,
    /// How long the inbox remembers a processed event id (TTL index). Redeliveries older than
    /// this are no longer recognised as duplicates by the inbox; the order's state machine and
    /// the e-mail send records still stop them.
    pub inbox_retention: Duration,
    /// This instance's clock, which lease and claim times are moved from onto the server's
    /// (`clock.rs`). `Utc::now`; tests give one that runs ahead.
    pub local_clock: fn() -> chrono::DateTime<chrono::Utc>,
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            allow_standalone: false,
            inbox_retention: DEFAULT_INBOX_RETENTION,
            local_clock: chrono::Utc::now,
        }
    }
}

/// Collection names, in one place for the setup code and operators reading the docs.
pub(crate) mod names {
    pub const USERS: &str = "users";
    pub const REFRESH_FAMILIES: &str = "refresh_families";
    pub const REFRESH_TOKENS: &str = "refresh_tokens";
    pub const PRODUCTS: &str = "products";
    pub const ORDERS: &str = "orders";
    pub const OUTBOX: &str = "outbox";
    pub const IDEMPOTENCY_KEYS: &str = "idempotency_keys";
    pub const INBOX: &str = "inbox";
    pub const EMAIL_SENDS: &str = "email_sends";
    pub const PLUGIN_VERSIONS: &str = "plugin_versions";
    pub const PLUGIN_WASM_PARTS: &str = "plugin_wasm_parts";
    pub const ACTIVE_PLUGINS: &str = "active_plugins";
    pub const RESUME_TOKENS: &str = "change_stream_resume_tokens";

    /// Every collection the store uses.
    pub const ALL: &[&str] = &[
        USERS,
        REFRESH_FAMILIES,
        REFRESH_TOKENS,
        PRODUCTS,
        ORDERS,
        OUTBOX,
        IDEMPOTENCY_KEYS,
        INBOX,
        EMAIL_SENDS,
        PLUGIN_VERSIONS,
        PLUGIN_WASM_PARTS,
        ACTIVE_PLUGINS,
        RESUME_TOKENS,
    ];
}

/// Handles of every collection, typed as raw documents: the codec converts explicitly so the
/// stored types (Int64 money, ObjectId ids, BSON dates) are exactly the documented ones.
#[derive(Clone)]
struct Collections {
    users: Collection<Document>,
    refresh_families: Collection<Document>,
    refresh_tokens: Collection<Document>,
    products: Collection<Document>,
    orders: Collection<Document>,
    outbox: Collection<Document>,
    idempotency_keys: Collection<Document>,
    inbox: Collection<Document>,
    email_sends: Collection<Document>,
    plugin_versions: Collection<Document>,
    plugin_wasm_parts: Collection<Document>,
    active_plugins: Collection<Document>,
    resume_tokens: Collection<Document>,
}

impl Collections {
    fn new(db: &Database) -> Self {
        let c = |name: &str| db.collection::<Document>(name);
        Self {
            users: c(names::USERS),
            refresh_families: c(names::REFRESH_FAMILIES),
            refresh_tokens: c(names::REFRESH_TOKENS),
            products: c(names::PRODUCTS),
            orders: c(names::ORDERS),
            outbox: c(names::OUTBOX),
            idempotency_keys: c(names::IDEMPOTENCY_KEYS),
            inbox: c(names::INBOX),
            email_sends: c(names::EMAIL_SENDS),
            plugin_versions: c(names::PLUGIN_VERSIONS),
            plugin_wasm_parts: c(names::PLUGIN_WASM_PARTS),
            active_plugins: c(names::ACTIVE_PLUGINS),
            resume_tokens: c(names::RESUME_TOKENS),
        }
    }
}

/// The order store on MongoDB. Cheap to clone; clones share one driver connection pool.
#[derive(Clone)]
pub struct MongoStore {
    /// The driver client, for sessions (transactions) and the connection pool.
    client: Client,
    /// The database every collection lives in.
    db: Database,
    /// Collection handles.
    c: Arc<Collections>,
    /// What kind of deployment answered at connect time (decides whether change streams and
    /// isolated transactions are available).
    topology: Topology,
    /// The options given at connect time.
    options: MongoOptions,
    /// The server's clock offset last measured, and when (`clock.rs`).
    skew: Arc<std::sync::Mutex<Option<clock::Measured>>>,
}

impl MongoStore {
    /// Connects to `uri`, checks that the deployment can run transactions (see
    /// [`MongoOptions::allow_standalone`]), and creates the collections and indexes of
    /// database `db_name` if they are missing.
    pub async fn connect(
        uri: &str,
        db_name: &str,
        options: MongoOptions,
    ) -> anyhow::Result<MongoStore> {
        let mut client_options = ClientOptions::parse(uri)
            .await
            .context("Failed to parse the MongoDB connection string")?;
        client_options
            .app_name
            .get_or_insert_with(|| "orderd".to_owned());
        // Fail a start against an unreachable server within seconds rather than the driver's
        // default 30 s, unless the connection string says otherwise.
        client_options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(10));
        // Acknowledged writes survive a primary failover. (Inside transactions the driver
        // ignores this and uses the transaction's own majority write concern.)
        client_options
            .write_concern
            .get_or_insert_with(WriteConcern::majority);
        let client =
            Client::with_options(client_options).context("Failed to create the MongoDB client")?;
        let db = client.database(db_name);
        let topology = setup::detect_topology(&client).await?;
        setup::check_topology(&topology, &options)?;
        setup::create_collections(&db).await?;
        setup::create_indexes(&db, &options).await?;
        tracing::info!(database = db_name, topology = %topology, "connected to MongoDB");
        Ok(MongoStore {
            c: Arc::new(Collections::new(&db)),
            client,
            db,
            topology,
            options,
            skew: Arc::default(),
        })
    }

    /// The kind of deployment this store talks to.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The database this store uses (administrative tools and tests).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &MongoOptions {
        &self.options
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .ctx("Failed to ping MongoDB")?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "mongodb"
    }
}

//! What happens once at connect time: finding out what kind of deployment answered (a
//! standalone server cannot run transactions and is refused), creating the collections, and
//! creating every index idempotently (a TTL whose length changed is adjusted in place).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Database, IndexModel};

use super::names;
use super::{ALLOW_STANDALONE_ENV, MongoOptions};
use crate::storage::windows::IDEMPOTENCY_WINDOW;

/// The kind of deployment, from the server's `hello` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// A replica-set member (one node is enough): transactions and change streams work.
    ReplicaSet { name: String },
    /// A sharded cluster's router: transactions and change streams work.
    Sharded,
    /// A single server without a replica set: no transactions, no change streams.
    Standalone,
}

impl Topology {
    /// Whether multi-document transactions are isolated on this deployment.
    pub fn supports_transactions(&self) -> bool {
        !matches!(self, Topology::Standalone)
    }

    /// Whether change streams can be opened on this deployment.
    pub fn supports_change_streams(&self) -> bool {
        !matches!(self, Topology::Standalone)
    }

    /// Reads a `hello` reply: a replica-set member names its set, a router says `isdbgrid`.
    pub fn from_hello(hello: &Document) -> Self {
        if let Ok(name) = hello.get_str("setName") {
            return Topology::ReplicaSet {
                name: name.to_owned(),
            };
        }
        if hello.get_str("msg") == Ok("isdbgrid") {
            return Topology::Sharded;
        }
        Topology::Standalone
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::ReplicaSet { name } => write!(f, "replica set {name}"),
            Topology::Sharded => f.write_str("sharded cluster"),
            Topology::Standalone => f.write_str("standalone server"),
        }
    }
}

/// Asks the server what it is.
pub async fn detect_topology(client: &Client) -> anyhow::Result<Topology> {
    let admin = client.database("admin");
    let hello = match admin.run_command(doc! { "hello": 1 }).await {
        Ok(reply) => reply,
        // Servers before 4.4.2 know the same command as `isMaster`.
        Err(err) if super::error::code(&err) == Some(COMMAND_NOT_FOUND) => admin
            .run_command(doc! { "isMaster": 1 })
            .await
            .context("Failed to reach MongoDB (the isMaster command failed)")?,
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context("Failed to reach MongoDB (the hello command failed)"));
        }
    };
    Ok(Topology::from_hello(&hello))
}

/// Refuses a standalone server unless the options allow it (tests against an emulator).
pub fn check_topology(topology: &Topology, options: &MongoOptions) -> anyhow::Result<()> {
    if topology.supports_transactions() {
        return Ok(());
    }
    if options.allow_standalone {
        tracing::warn!(
            "MongoDB is a standalone server: accepted because standalone servers are allowed \
             (test-only: transactions are not isolated and change streams are unavailable)"
        );
        return Ok(());
    }
    bail!(
        "MongoDB answered as a standalone server, but orderd needs a replica set: orders are \
         written in multi-document transactions, which a standalone server cannot run. Run \
         MongoDB as a replica set (one node is enough: start mongod with --replSet rs0 and run \
         rs.initiate() once; `docker compose up` in the repository starts one) and add \
         ?replicaSet=rs0 to the connection string. ({ALLOW_STANDALONE_ENV}=1 skips this check \
         for tests only.)"
    )
}

/// Creates every collection that does not exist yet (transactions on older servers cannot
/// create collections implicitly).
pub async fn create_collections(db: &Database) -> anyhow::Result<()> {
    let existing = db
        .list_collection_names()
        .await
        .context("Failed to list the MongoDB collections")?;
    for name in names::ALL {
        if existing.iter().any(|e| e == name) {
            continue;
        }
        if let Err(err) = db.create_collection(*name).await {
            // Another instance starting at the same moment may have created it.
            const NAMESPACE_EXISTS: i32 = 48;
            if super::error::code(&err) != Some(NAMESPACE_EXISTS) {
                return Err(anyhow::Error::new(err)
                    .context(format!("Failed to create the collection {name}")));
            }
        }
    }
    Ok(())
}

/// One index: collection, name, keys, unique, TTL.
struct IndexSpec {
    collection: &'static str,
    name: &'static str,
    keys: Document,
    unique: bool,
    ttl: Option<Duration>,
}

/// Every index the store's queries rely on.
fn index_specs(options: &MongoOptions) -> Vec<IndexSpec> {
    let index = |collection, name, keys| IndexSpec {
        collection,
        name,
        keys,
        unique: false,
        ttl: None,
    };
    let unique = |collection, name, keys| IndexSpec {
        collection,
        name,
        keys,
        unique: true,
        ttl: None,
    };
    let ttl = |collection, name, keys, after| IndexSpec {
        collection,
        name,
        keys,
        unique: false,
        ttl: Some(after),
    };
    vec![
        unique(names::USERS, "users_email_unique", doc! { "email": 1 }),
        unique(
            names::USERS,
            "users_username_unique",
            doc! { "username": 1 },
        ),
        index(
            names::REFRESH_FAMILIES,
            "refresh_families_by_user",
            doc! { "userId": 1 },
        ),
        index(
            names::REFRESH_TOKENS,
            "refresh_tokens_by_family",
            doc! { "familyId": 1 },
        ),
        unique(names::PRODUCTS, "products_sku_unique", doc! { "sku": 1 }),
        // Ids are ObjectIds, which start with their creation time: a user's orders newest first
        // is this index read backwards, and the page cursor is the last id seen.
        index(
            names::ORDERS,
            "orders_by_user_created",
            doc! { "userId": 1, "_id": -1 },
        ),
        // Every customer's orders in one status, newest first (an admin's list of failed
        // orders), with the same cursor.
        index(
            names::ORDERS,
            "orders_by_status_created",
            doc! { "status": 1, "_id": -1 },
        ),
        // Orders processed in a time window, counted for the operator console's chart.
        index(
            names::ORDERS,
            "orders_by_processed_at",
            doc! { "processedAt": 1 },
        ),
        // A customer's open (pending, processing) orders, counted for the open-order cap.
        index(
            names::ORDERS,
            "orders_open_by_user",
            doc! { "userId": 1, "status": 1 },
        ),
        index(
            names::OUTBOX,
            "outbox_by_status_due",
            doc! { "status": 1, "nextAttemptAt": 1 },
        ),
        index(
            names::OUTBOX,
            "outbox_by_order",
            doc! { "orderId": 1, "orderSeq": 1 },
        ),
        ttl(
            names::IDEMPOTENCY_KEYS,
            "idempotency_keys_ttl",
            doc! { "createdAt": 1 },
            IDEMPOTENCY_WINDOW,
        ),
        ttl(
            names::INBOX,
            "inbox_ttl",
            doc! { "processedAt": 1 },
            options.inbox_retention,
        ),
        // The retention sweeps (retention.rs) select by these times.
        index(
            names::REFRESH_FAMILIES,
            "refresh_families_by_expiry",
            doc! { "expiresAt": 1 },
        ),
        index(
            names::OUTBOX,
            "outbox_by_status_published",
            doc! { "status": 1, "publishedAt": 1 },
        ),
        index(
            names::EMAIL_SENDS,
            "email_sends_by_sent_at",
            doc! { "sentAt": 1 },
        ),
        index(
            names::PLUGIN_VERSIONS,
            "plugin_versions_by_slot",
            doc! { "slot": 1, "_id": -1 },
        ),
    ]
}

/// Creates the indexes; an existing TTL index whose length changed (the inbox retention is
/// configurable) is adjusted with `collMod` instead of failing the start.
pub async fn create_indexes(db: &Database, options: &MongoOptions) -> anyhow::Result<()> {
    for spec in index_specs(options) {
        let opts = IndexOptions::builder()
            .name(spec.name.to_owned())
            .unique(spec.unique.then_some(true))
            .expire_after(spec.ttl)
            .build();
        let model = IndexModel::builder()
            .keys(spec.keys.clone())
            .options(opts)
            .build();
        let created = db
            .collection::<Document>(spec.collection)
            .create_index(model)
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if spec.ttl.is_some()
                    && super::error::code(&err) == Some(INDEX_OPTIONS_CONFLICT) =>
            {
                let seconds = spec.ttl.map(|t| t.as_secs() as i64).unwrap_or_default();
                db.run_command(doc! {
                    "collMod": spec.collection,
                    "index": { "name": spec.name, "expireAfterSeconds": seconds },
                })
                .await
                .with_context(|| format!("Failed to change the TTL of index {}", spec.name))?;
                tracing::info!(
                    index = spec.name,
                    seconds,
                    "changed the TTL of a MongoDB index"
                );
            }
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!(
                    "Failed to create the index {} on {}",
                    spec.name, spec.collection
                )));
            }
        }
    }
    Ok(())
}

/// Server code for an unknown command.
const COMMAND_NOT_FOUND: i32 = 59;

/// Server code for "an index with this name exists with other options".
const INDEX_OPTIONS_CONFLICT: i32 = 85;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_reply_tells_replica_sets_routers_and_standalone_servers_apart() {
        let rs = Topology::from_hello(&doc! { "isWritablePrimary": true, "setName": "rs0" });
        assert_eq!(rs, Topology::ReplicaSet { name: "rs0".into() });
        assert_eq!(
            Topology::from_hello(&doc! { "msg": "isdbgrid" }),
            Topology::Sharded
        );
        assert_eq!(
            Topology::from_hello(&doc! { "isWritablePrimary": true }),
            Topology::Standalone
        );
    }

    #[test]
    fn a_standalone_server_is_refused_with_the_fix_unless_explicitly_allowed() {
        let err = check_topology(&Topology::Standalone, &MongoOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("replica set") && text.contains("docker compose"),
            "{text}"
        );
        let allowed = MongoOptions {
            allow_standalone: true,
            ..MongoOptions::default()
        };
        assert!(check_topology(&Topology::Standalone, &allowed).is_ok());
        let rs = Topology::ReplicaSet { name: "rs0".into() };
        assert!(check_topology(&rs, &MongoOptions::default()).is_ok());
    }

    #[test]
    fn ttl_indexes_follow_the_idempotency_window_and_the_configured_inbox_retention() {
        let options = MongoOptions {
            inbox_retention: Duration::from_secs(3600),
            ..MongoOptions::default()
        };
        let specs = index_specs(&options);
        let ttl_of = |name: &str| specs.iter().find(|s| s.name == name).and_then(|s| s.ttl);
        assert_eq!(
            ttl_of("idempotency_keys_ttl"),
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(ttl_of("inbox_ttl"), Some(Duration::from_secs(3600)));
        assert_eq!(ttl_of("users_email_unique"), None);
    }
}

//! The embedded storage backend: every storage port on one SQLite file in the data directory
//! (WAL, one writer thread, a few readers; see [`SqliteDb`]). Each port lives in its own file
//! here; the schema is in `schema.rs`.

mod checkpoint;
mod console;
mod db;
mod delivery;
mod error;
mod import;
mod inbox;
mod migrations;
mod orders;
mod outbox;
mod plugins;
mod products;
mod retention;
pub mod schema;
mod sweep;
mod users;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

pub use checkpoint::RESTART_PAGES;
pub use db::SqliteDb;
pub use error::{SqlContext, map_sql_error};
pub(crate) use outbox::publish_due_in;
pub use sweep::{SWEEP_INTERVAL, Swept};

use super::{Store, StoreResult};
use crate::domain::{Id, Product, User};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "orderd.sqlite3";

/// The order store on SQLite. Cheap to clone; all clones share one [`SqliteDb`].
#[derive(Clone)]
pub struct SqliteStore {
    /// The shared database handle (writer thread + readers).
    db: SqliteDb,
    /// Keeps a temporary directory alive for stores made by [`SqliteStore::temporary`].
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent directory) the database file at `path` and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = SqliteDb::open_with(path, &[(schema::COMPONENT, schema::STEPS)])?;
        Ok(Self { db, _temp: None })
    }

    /// A store on a fresh file in a new temporary directory, removed when the last clone of
    /// the store is dropped (tests, benchmarks).
    pub fn temporary() -> anyhow::Result<Self> {
        use anyhow::Context;
        let dir = tempfile::tempdir().context("Failed to create a temporary directory")?;
        let mut store = Self::open(&dir.path().join(DATABASE_FILE))?;
        store._temp = Some(Arc::new(dir));
        Ok(store)
    }

    /// The database handle, for other embedded components that keep their tables in the same
    /// file (the embedded queue).
    pub fn db(&self) -> SqliteDb {
        self.db.clone()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read(|conn| {
                conn.query_row("SELECT 1", [], |_| Ok(()))
                    .ctx("Failed to ping the database")
            })
            .await
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    /// Both reads on one connection, as a point read on the calling thread (see
    /// [`SqliteDb::read_point`]): the lookups cost less than a hand-off to the blocking pool.
    async fn order_inputs(
        &self,
        user_id: Id,
        product_ids: &[Id],
    ) -> StoreResult<(Option<User>, Vec<Product>)> {
        let ids = (!product_ids.is_empty())
            .then(|| products::ids_json(product_ids))
            .transpose()?;
        self.db
            .read_point(move |conn| {
                let user = users::user_by_id(conn, user_id)?;
                let products = match ids {
                    Some(ids) => products::products_in(conn, ids)?,
                    None => Vec::new(),
                };
                Ok((user, products))
            })
            .await
    }
}

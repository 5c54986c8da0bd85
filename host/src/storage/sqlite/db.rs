//! The shared handle to the embedded SQLite file: one writer connection owned by a dedicated
//! thread (every write in the process goes through it, so writers never meet `SQLITE_BUSY`),
//! a small pool of read-only connections used on tokio's blocking threads, and per-component
//! schema migrations. The order store and the embedded queue both keep their tables in the
//! same file through this handle.
//!
//! Why rusqlite rather than sqlx: our writes are short synchronous transactions that we drive
//! from one writer thread anyway, so an async driver would only add a second thread hop per
//! statement; rusqlite needs no database at compile time and is the thinnest path to SQLite
//! (prepared-statement cache, direct `sqlite3_step` calls).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{Semaphore, oneshot};

use super::error::SqlContext;
use crate::storage::{StoreError, StoreResult};

/// How long a connection waits for a lock held by another process (a second `orderd` or the
/// `sqlite3` shell on the same file) before failing. Inside one process writes never wait.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections kept open for concurrent reads (WAL lets them run beside the writer).
const READERS: usize = 4;

/// Prepared statements cached per connection; the store uses a few dozen distinct ones.
const STATEMENT_CACHE: usize = 128;

/// A unit of work for the writer thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A cloneable handle to the embedded database file.
///
/// * [`SqliteDb::write`] runs a closure inside an `IMMEDIATE` transaction on the single writer
///   connection, on the writer thread: committed when it returns `Ok`, rolled back when it
///   returns `Err` (or panics). Writes are therefore serialized in submission order and never
///   see `SQLITE_BUSY` from one another.
/// * [`SqliteDb::read`] runs a closure on one of a few read-only connections on a blocking
///   thread. With WAL, reads see the last committed state and never block the writer.
/// * [`SqliteDb::apply_migrations`] lets any component that lives in the file keep its own,
///   independently versioned schema.
///
/// Keep closures short and free of I/O other than SQLite: every write in the process waits for
/// the one before it. Use `prepare_cached` for statements run often.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    /// Feeds the writer thread; the thread ends when the last handle is dropped.
    writer: mpsc::Sender<Job>,
    /// Idle read-only connections; at most `READERS` exist (see `read_permits`).
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent reads to the number of reader connections.
    read_permits: Semaphore,
    /// The database file, for opening reader connections and for logs.
    path: PathBuf,
}

impl SqliteDb {
    /// Opens (creating if needed, with its parent directory) the database file at `path`,
    /// switches it to WAL and starts the writer thread.
    ///
    /// Durability: `synchronous=NORMAL` in WAL mode does not fsync on every commit, only at
    /// checkpoints. A crash of the process loses nothing that was committed (the WAL is in the
    /// OS page cache); a power loss or kernel crash may lose the last transactions before the
    /// most recent checkpoint, but never corrupts the file.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, &[])
    }

    /// [`SqliteDb::open`], then applies `migrations` (component, steps) on the writer
    /// connection before any other work can reach it (see [`SqliteDb::apply_migrations`]).
    pub fn open_with(path: &Path, migrations: &[(&str, &[&str])]) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("Failed to create the data directory {}", parent.display())
            })?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("Failed to open the database {}", path.display()))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .context("Failed to switch the database to WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(anyhow!(
                "The database {} refused WAL mode (got {mode})",
                path.display()
            ));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .context("Failed to set the database pragmas")?;
        configure(&conn)?;
        migrations::ensure_table(&conn)?;
        for (component, steps) in migrations {
            migrations::apply(&mut conn, component, steps)?;
        }

        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .context("Failed to start the database writer thread")?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Mutex::new(Vec::with_capacity(READERS)),
                read_permits: Semaphore::new(READERS),
                path: path.to_owned(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one write transaction on the writer thread: `Ok` commits, `Err` rolls back
    /// and is returned as is, a panic rolls back and becomes `StoreError::Backend`.
    ///
    /// Once submitted, the write runs to its end even if the caller stops waiting (a dropped
    /// request still commits): make writes complete units, never halves of a protocol.
    pub async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<R> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let _ = done.send(run_write(conn, f));
        });
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::backend(anyhow!("The database writer thread has stopped")))?;
        result.await.map_err(|_| {
            StoreError::backend(anyhow!("The database writer thread dropped a write"))
        })?
    }

    /// Runs `f` on a read-only connection on a blocking thread. Statements run in autocommit
    /// mode; a closure needing one snapshot across several statements can open a transaction
    /// with `conn.unchecked_transaction()`.
    pub async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permit =
            self.inner.read_permits.acquire().await.map_err(|e| {
                StoreError::backend(anyhow!(e).context("The reader pool is closed"))
            })?;
        let outcome = tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .map(|mut idle| idle.pop())
                .unwrap_or(None);
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path).map_err(StoreError::Backend)?,
            };
            let result = catch_unwind(AssertUnwindSafe(|| f(&conn)))
                .unwrap_or_else(|_| Err(StoreError::backend(anyhow!("A database read panicked"))));
            if let Ok(mut idle) = inner.readers.lock() {
                idle.push(conn);
            }
            result
        })
        .await;
        drop(permit);
        outcome
            .map_err(|e| StoreError::backend(anyhow!(e).context("A database read task failed")))?
    }

    /// Brings the schema of `component` (e.g. "store", "queue") up to date: `steps[i]` is the
    /// SQL of version `i + 1`; each step not yet recorded in `schema_migrations` runs in its
    /// own transaction together with its record. Steps are append-only: never edit a released
    /// one, add a new step instead. A file whose recorded version is newer than `steps` knows
    /// (written by a newer binary) is refused.
    pub async fn apply_migrations(&self, component: &str, steps: &[&str]) -> StoreResult<()> {
        let component = component.to_owned();
        let steps: Vec<String> = steps.iter().map(|s| (*s).to_owned()).collect();
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
            let _ =
                done.send(migrations::apply(conn, &component, &refs).map_err(StoreError::Backend));
        });
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::backend(anyhow!("The database writer thread has stopped")))?;
        result.await.map_err(|_| {
            StoreError::backend(anyhow!("The database writer thread dropped a migration"))
        })?
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .context("Failed to set the database busy timeout")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("Failed to open a reader on {}", path.display()))?;
    configure(&conn)?;
    Ok(conn)
}

fn run_write<R>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> StoreResult<R>,
) -> StoreResult<R> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("Failed to begin a write transaction")?;
    match catch_unwind(AssertUnwindSafe(|| f(&tx))) {
        Ok(Ok(value)) => {
            tx.commit().ctx("Failed to commit a write transaction")?;
            Ok(value)
        }
        // Dropping the transaction rolls it back.
        Ok(Err(err)) => Err(err),
        Err(_) => Err(StoreError::backend(anyhow!(
            "A database write panicked and was rolled back"
        ))),
    }
}

fn writer_loop(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        job(&mut conn);
    }
    // Every handle is gone: closing the last connection checkpoints the WAL.
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "Failed to close the database writer connection");
    }
}

/// Per-component schema versions in the `schema_migrations` table.
///
/// `rusqlite_migration` tracks one schema in `PRAGMA user_version`; several components share
/// this file and evolve independently, so each gets its own row set here instead.
pub(crate) mod migrations {
    use anyhow::{Context, anyhow};
    use rusqlite::{Connection, OptionalExtension, params};

    pub fn ensure_table(conn: &Connection) -> anyhow::Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                component  TEXT    NOT NULL,
                version    INTEGER NOT NULL,
                applied_at INTEGER NOT NULL,
                PRIMARY KEY (component, version)
            ) STRICT;",
        )
        .context("Failed to create the schema_migrations table")
    }

    /// The highest version of `component` recorded in the file (0 when none).
    pub fn current_version(conn: &Connection, component: &str) -> anyhow::Result<i64> {
        conn.query_row(
            "SELECT MAX(version) FROM schema_migrations WHERE component = ?1",
            [component],
            |row| row.get::<_, Option<i64>>(0),
        )
        .optional()
        .map(|v| v.flatten().unwrap_or(0))
        .with_context(|| format!("Failed to read the schema version of {component}"))
    }

    pub fn apply(conn: &mut Connection, component: &str, steps: &[&str]) -> anyhow::Result<()> {
        let known = i64::try_from(steps.len()).context("Too many migration steps")?;
        let current = current_version(conn, component)?;
        if current > known {
            return Err(anyhow!(
                "The database schema of {component} is at version {current}, newer than the \
                 {known} this binary knows; run a newer orderd on this data"
            ));
        }
        for (index, sql) in steps.iter().enumerate().skip(usize::try_from(current)?) {
            let version = index as i64 + 1;
            let tx = conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("Failed to migrate {component} to version {version}"))?;
            tx.execute(
                "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?1, ?2, ?3)",
                params![component, version, chrono::Utc::now().timestamp_micros()],
            )
            .with_context(|| format!("Failed to record version {version} of {component}"))?;
            tx.commit()
                .with_context(|| format!("Failed to commit version {version} of {component}"))?;
            tracing::info!(component, version, "Applied database migration");
        }
        Ok(())
    }
}

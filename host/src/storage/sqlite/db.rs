//! The shared handle to the embedded SQLite file: one writer connection owned by a dedicated
//! thread (every write in the process goes through it, so writers never meet `SQLITE_BUSY`),
//! a small pool of read-only connections used on tokio's blocking threads (or on the calling
//! thread for point reads), a checkpoint thread (see `checkpoint`), and per-component schema
//! migrations. The order store and the embedded queue both keep their tables in the
//! same file through this handle.
//!
//! **Group commit.** The writer drains every write waiting in its (bounded) queue, up to
//! [`MAX_GROUP`], and runs them in one transaction, each inside its own `SAVEPOINT`: a write
//! that fails or panics rolls back to its savepoint and only itself; the others commit
//! together. No caller hears its result before the whole transaction has committed, and if the
//! commit fails every write of the group hears that failure. Under load this turns thousands
//! of small transactions per second into a few hundred larger ones; with one write waiting it
//! is an ordinary transaction.
//!
//! Why rusqlite rather than sqlx: our writes are short synchronous transactions that we drive
//! from one writer thread anyway, so an async driver would only add a second thread hop per
//! statement; rusqlite needs no database at compile time and is the thinnest path to SQLite
//! (prepared-statement cache, direct `sqlite3_step` calls).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::checkpoint::{Checkpointer, WRITER_BACKSTOP_PAGES};
use super::error::SqlContext;
use super::migrations;
use crate::storage::{StoreError, StoreResult};

/// How long a connection waits for a lock held by another process (a second `orderd` or the
/// `sqlite3` shell on the same file) before failing. Inside one process writes never wait.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections kept open for concurrent reads (WAL lets them run beside the writer).
const READERS: usize = 4;

/// Prepared statements cached per connection; the store uses a few dozen distinct ones.
const STATEMENT_CACHE: usize = 128;

/// Most writes committed in one group transaction.
pub const MAX_GROUP: usize = 256;

/// Writes that may wait for the writer thread; a caller past this waits for room (async), so
/// a flood of writes shows up as latency upstream, where it can be shed, not as memory here.
const WRITE_QUEUE: usize = 1024;

/// A write for the writer thread: runs inside the group's transaction under its own savepoint
/// and returns how to report its result once the group's commit outcome is known.
type WriteJob = Box<dyn FnOnce(&Transaction<'_>) -> Report + Send>;

/// Delivers one write's result: `Ok` when the group committed, else the commit's error text.
type Report = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A unit of work for the writer thread.
enum Job {
    /// A write, grouped with its neighbours into one transaction.
    Write(WriteJob),
    /// Work that needs the bare connection (schema migrations); never grouped.
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
}

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
            crate::private_files::create_dir_all(parent).with_context(|| {
                format!("Failed to create the data directory {}", parent.display())
            })?;
        }
        secure_database_file(path)?;
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

        // Checkpoints run on their own thread (see `checkpoint`); the writer's own is a backstop.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_BACKSTOP_PAGES)
            .context("Failed to set the writer's checkpoint threshold")?;
        let checkpointer = Checkpointer::start(path)?;

        let (tx, rx) = mpsc::channel::<Job>(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, checkpointer))
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

    /// Whether `other` is a clone of this handle (the same writer thread and file).
    pub fn same_handle(&self, other: &SqliteDb) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
        let job: WriteJob = Box::new(move |tx: &Transaction<'_>| {
            let outcome = run_in_savepoint(tx, f);
            Box::new(move |committed: Result<(), &str>| {
                let outcome = match (outcome, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(err), _) => Err(err),
                    (Ok(_), Err(reason)) => Err(StoreError::backend(anyhow!(
                        "Failed to commit a write transaction: {reason}"
                    ))),
                };
                let _ = done.send(outcome);
            }) as Report
        });
        self.submit(Job::Write(job)).await?;
        result.await.map_err(|_| {
            StoreError::backend(anyhow!("The database writer thread dropped a write"))
        })?
    }

    /// Queues `job` for the writer thread, waiting for room when its queue is full.
    async fn submit(&self, job: Job) -> StoreResult<()> {
        self.inner
            .writer
            .send(job)
            .await
            .map_err(|_| StoreError::backend(anyhow!("The database writer thread has stopped")))
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
        let outcome = tokio::task::spawn_blocking(move || inner.with_reader(f)).await;
        drop(permit);
        outcome
            .map_err(|e| StoreError::backend(anyhow!(e).context("A database read task failed")))?
    }

    /// Runs a point read — a few lookups by key, such as a user and the products of one order
    /// — on a read-only connection on the calling thread. [`SqliteDb::read`] hands every read
    /// to tokio's blocking pool; on the order path that hand-off (a futex wake, a context switch
    /// and the pool's lock, both ways) cost more than the lookups themselves (BENCHMARKS.md,
    /// Pipeline). Keep `f` to indexed lookups of a bounded number of rows, the same budget as
    /// any other code between two awaits; scans, listings and anything else go through
    /// [`SqliteDb::read`].
    pub async fn read_point<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> StoreResult<R>,
    {
        let _permit =
            self.inner.read_permits.acquire().await.map_err(|e| {
                StoreError::backend(anyhow!(e).context("The reader pool is closed"))
            })?;
        self.inner.with_reader(f)
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
        let job = Job::Exclusive(Box::new(move |conn: &mut Connection| {
            let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
            let _ =
                done.send(migrations::apply(conn, &component, &refs).map_err(StoreError::Backend));
        }));
        self.submit(job).await?;
        result.await.map_err(|_| {
            StoreError::backend(anyhow!("The database writer thread dropped a migration"))
        })?
    }
}

impl Inner {
    /// Runs `f` on an idle reader connection (opening one if none is idle) and returns the
    /// connection to the pool; the caller holds a read permit, so at most `READERS` exist.
    fn with_reader<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let pooled = self
            .readers
            .lock()
            .map(|mut idle| idle.pop())
            .unwrap_or(None);
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(StoreError::Backend)?,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&conn)))
            .unwrap_or_else(|_| Err(StoreError::backend(anyhow!("A database read panicked"))));
        if let Ok(mut idle) = self.readers.lock() {
            idle.push(conn);
        }
        result
    }
}

/// Settings every connection gets.
///
/// `temp_store = MEMORY` keeps SQLite's temporary data in memory, the per-write savepoint
/// journal of a group commit above all: with the default it spills to an unlinked temporary
/// file past 64 KiB, so under load the writer created and deleted files many times a second
/// (BENCHMARKS.md, Pipeline). What it holds is bounded by the pages one group transaction
/// changes.
///
/// The query planner stability guarantee (QPSG) is on: without it SQLite plans a statement
/// with `LIMIT ?` for the value bound to that parameter, so every bind expires the cached
/// statement and the next step parses and plans it again. That was a sixth of the writer's
/// time under load (the relay's pass and the queue's receive both take `LIMIT ?`); with it a
/// cached statement keeps one plan. No statement here depends on a bound value for its plan.
pub(super) fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .context("Failed to set the database busy timeout")?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .context("Failed to keep the database's temporary data in memory")?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .context("Failed to keep the database's query plans stable")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Creates the database file owner-only (0600) before SQLite opens it, so the WAL and shared
/// memory files SQLite derives from it get the same mode; an existing file that others may
/// read (password hashes, orders, addresses) is narrowed to 0600 with a warning.
fn secure_database_file(path: &Path) -> anyhow::Result<()> {
    use crate::private_files::{restrict_file, touch};
    touch(path).with_context(|| format!("Failed to create the database {}", path.display()))?;
    match restrict_file(path) {
        Ok(true) => {
            tracing::warn!(path = %path.display(), "the database was open to other users; its mode is now 0600")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the database is open to other users and its mode could not be narrowed to 0600")
        }
    }
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

/// Runs one write inside its own savepoint of the group's transaction: `Ok` releases the
/// savepoint (its changes commit with the group), `Err` or a panic rolls back to it, so a
/// failed write leaves nothing behind and does not disturb the other writes of the group.
fn run_in_savepoint<R>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> StoreResult<R>,
) -> StoreResult<R> {
    // Cached like every other statement: they run for every write of every group.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut stmt| stmt.execute([]));
    run("SAVEPOINT w").ctx("Failed to open a write savepoint")?;
    let outcome = match catch_unwind(AssertUnwindSafe(|| f(tx))) {
        Ok(outcome) => outcome,
        Err(_) => Err(StoreError::backend(anyhow!(
            "A database write panicked and was rolled back"
        ))),
    };
    if tx.is_autocommit() {
        // SQLite rolled the whole transaction back (I/O error, disk full): the writer sees
        // this and fails the group; the error to report is this write's own.
        return outcome.and(Err(StoreError::backend(anyhow!(
            "The write transaction was rolled back by the database"
        ))));
    }
    let closed = match &outcome {
        Ok(_) => run("RELEASE w"),
        Err(_) => run("ROLLBACK TO w").and_then(|_| run("RELEASE w")),
    };
    closed.ctx("Failed to close a write savepoint")?;
    outcome
}

/// Runs a group of writes in one `IMMEDIATE` transaction and reports to each once the commit
/// outcome is known. If SQLite abandons the transaction midway (the connection is back in
/// autocommit mode), the writes already run are failed and the rest start a new transaction.
fn run_group(conn: &mut Connection, jobs: Vec<WriteJob>) {
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(err) => {
                // Dropping the unrun writes drops their reply channels: each caller hears a
                // backend error.
                tracing::error!(error = %err, writes = jobs.count(), "Failed to begin a write transaction");
                return;
            }
        };
        let started = Instant::now();
        let mut reports: Vec<Report> = Vec::new();
        let mut abandoned = false;
        for job in jobs.by_ref() {
            reports.push(job(&tx));
            if tx.is_autocommit() {
                abandoned = true;
                break;
            }
        }
        if abandoned {
            drop(tx);
            for report in reports {
                report(Err("the database rolled the transaction back"));
            }
            continue;
        }
        let committing = Instant::now();
        let committed = tx.commit();
        record_group_times(reports.len(), started, committing);
        metrics::counter!("orderd_sqlite_log_pages_total").increment(take_log_pages(conn));
        match committed {
            Ok(()) => reports.into_iter().for_each(|report| report(Ok(()))),
            Err(err) => {
                let reason = err.to_string();
                reports.into_iter().for_each(|report| report(Err(&reason)));
            }
        }
    }
}

/// A group slower than this is logged (at debug level) with where its time went.
const SLOW_GROUP: Duration = Duration::from_millis(50);

/// Records how long a group's writes and its commit took (`orderd_sqlite_commit_seconds` is
/// the commit alone: the log write); a slow group is logged with both.
fn record_group_times(writes: usize, started: Instant, committing: Instant) {
    let commit = committing.elapsed();
    metrics::histogram!("orderd_sqlite_commit_seconds").record(commit.as_secs_f64());
    let total = started.elapsed();
    if total >= SLOW_GROUP {
        tracing::debug!(writes, ?total, ?commit, "slow write group");
    }
}

/// Pages `conn` has written to the write-ahead log since the last call (SQLite's
/// `SQLITE_DBSTATUS_CACHE_WRITE`, reset on read): the log traffic that checkpoints copy and
/// `fsync`, counted on `/metrics` as `orderd_sqlite_log_pages_total`. rusqlite has no safe
/// wrapper for `sqlite3_db_status`, hence the one FFI call.
fn take_log_pages(conn: &Connection) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `conn` is borrowed for the whole call, so its handle is open and not used
    // elsewhere meanwhile; the two out-pointers are live locals.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
            &mut current,
            &mut highwater,
            1,
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        u64::try_from(current).unwrap_or(0)
    } else {
        0
    }
}

fn writer_loop(mut conn: Connection, mut jobs: mpsc::Receiver<Job>, checkpointer: Checkpointer) {
    let mut group: Vec<WriteJob> = Vec::with_capacity(MAX_GROUP);
    while let Some(job) = jobs.blocking_recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Write(write) => {
                    group.push(write);
                    if group.len() < MAX_GROUP {
                        next = jobs.try_recv().ok();
                    }
                }
                Job::Exclusive(work) => {
                    if !group.is_empty() {
                        run_group(&mut conn, std::mem::take(&mut group));
                    }
                    work(&mut conn);
                    checkpointer.poke();
                    next = jobs.try_recv().ok();
                }
            }
        }
        if !group.is_empty() {
            metrics::histogram!("orderd_sqlite_group_writes").record(group.len() as f64);
            run_group(&mut conn, std::mem::take(&mut group));
        }
        checkpointer.poke();
        if checkpointer.restart_wanted() {
            super::checkpoint::restart_log(&conn, BUSY_TIMEOUT);
        }
    }
    // Ends the checkpoint thread (after one last pass).
    drop(checkpointer);
    // Every handle is gone: closing the last connection checkpoints the WAL.
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "Failed to close the database writer connection");
    }
}

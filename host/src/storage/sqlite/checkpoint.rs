//! Checkpoints of the write-ahead log on a thread of their own.
//!
//! By default SQLite checkpoints on the committing connection: once the log passes 1,000
//! pages, the commit that crossed it also copies the log into the database file and syncs
//! both. On the single writer thread that stalled every write queued behind it for the copy
//! and the two `fsync`s (a sixth of the writer's time under load; BENCHMARKS.md, Pipeline).
//! Here the writer only pokes this thread after each commit; the thread runs a `PASSIVE`
//! checkpoint on a connection of its own — which never blocks the writer or readers — then
//! rests [`REST`] before it looks at the next poke, so under load it checkpoints a few times a
//! second and an idle database costs nothing.
//!
//! Only the writer can start the log over: a checkpoint on another connection never catches
//! up with a log that is appended to meanwhile, and readers always hold some of it. Left
//! alone, the log grows under steady load until the writer's own automatic checkpoint
//! ([`WRITER_BACKSTOP_PAGES`]); that one is `PASSIVE` too, so it fails to finish while readers
//! hold the last frames and is retried — copy and two `fsync`s — on every commit until one
//! happens to finish, a pause of a second or more that every queued write waited through
//! (BENCHMARKS.md, Pipeline). So once this thread sees the log past [`RESTART_PAGES`], it asks
//! the writer ([`Checkpointer::restart_wanted`]) to run one `RESTART` checkpoint between two
//! groups: it copies what this thread has not copied yet, waits for the readers of older
//! frames (reads are short), and the next write starts the log over. The writer's automatic
//! checkpoint stays as a backstop, should this thread ever fall behind.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;

/// Pause after each checkpoint before the next one may start.
const REST: Duration = Duration::from_millis(250);

/// The writer connection's own automatic checkpoint threshold, in pages (4 KiB each).
pub(super) const WRITER_BACKSTOP_PAGES: u32 = 65_536;

/// Log size, in pages (4 KiB each), past which the writer is asked to start the log over.
pub const RESTART_PAGES: i64 = 16_384;

/// The writer's handle on the checkpoint thread; the thread ends when this is dropped.
pub(super) struct Checkpointer {
    poke: SyncSender<()>,
    restart: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` (already in WAL mode) and starts the thread.
    pub(super) fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("Failed to open {} for checkpoints", path.display()))?;
        super::db::configure(&conn)?;
        // This connection never writes, so it would never checkpoint by itself anyway; and it
        // reads no tables, so it needs next to no page cache (KiB when negative).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| conn.pragma_update(None, "cache_size", -64))
            .context("Failed to configure the checkpoint connection")?;
        let (poke, pokes) = sync_channel(1);
        let restart = Arc::new(AtomicBool::new(false));
        let wanted = Arc::clone(&restart);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, pokes, &wanted))
            .context("Failed to start the checkpoint thread")?;
        Ok(Self { poke, restart })
    }

    /// Says a transaction committed; costs nothing when a poke is already waiting.
    pub(super) fn poke(&self) {
        let _ = self.poke.try_send(());
    }

    /// Whether the log has grown past [`RESTART_PAGES`] since the writer last started it
    /// over; reading it clears it.
    pub(super) fn restart_wanted(&self) -> bool {
        self.restart.swap(false, Ordering::Relaxed)
    }
}

/// How long the writer's `RESTART` waits for readers of older frames before it gives up
/// (and the checkpoint thread asks again after its next pass).
const RESTART_WAIT: Duration = Duration::from_millis(100);

/// Starts the log over from the writer's connection, between two groups: a `RESTART`
/// checkpoint (see the module docs), waiting at most [`RESTART_WAIT`] for readers.
pub(super) fn restart_log(conn: &Connection, busy_timeout: Duration) {
    let started = Instant::now();
    let outcome = conn.busy_timeout(RESTART_WAIT).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(2)?))
        })
    });
    if let Err(err) = conn.busy_timeout(busy_timeout) {
        tracing::warn!(error = %err, "Failed to reset the writer's busy timeout");
    }
    let took = started.elapsed();
    metrics::histogram!("orderd_sqlite_log_restart_seconds").record(took.as_secs_f64());
    match outcome {
        Ok((0, copied)) => tracing::debug!(copied, ?took, "started the write-ahead log over"),
        Ok((_, copied)) => tracing::debug!(
            copied,
            ?took,
            "readers held the write-ahead log; its restart waits"
        ),
        Err(err) => tracing::warn!(error = %err, "Failed to start the write-ahead log over"),
    }
}

fn run(conn: Connection, pokes: Receiver<()>, restart: &AtomicBool) {
    // Commits during a rest leave (at most) one poke waiting: the next `recv` returns at once.
    while pokes.recv().is_ok() {
        if checkpoint(&conn).is_some_and(|log| log >= RESTART_PAGES) {
            restart.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(REST);
    }
    // The writer is gone: one last pass so a clean shutdown leaves little in the log.
    checkpoint(&conn);
}

/// One `PASSIVE` checkpoint; returns the log's size in pages.
fn checkpoint(conn: &Connection) -> Option<i64> {
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((log, copied)) => {
            metrics::histogram!("orderd_sqlite_checkpoint_pages").record(copied.max(0) as f64);
            tracing::trace!(log, copied, "checkpointed the write-ahead log");
            Some(log)
        }
        Err(err) => {
            tracing::warn!(error = %err, "A write-ahead log checkpoint failed");
            None
        }
    }
}

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
//! The writer keeps an automatic checkpoint of its own at a much higher threshold
//! ([`WRITER_BACKSTOP_PAGES`]), because only it can start the log over: a checkpoint on
//! another connection never catches up with a log that is appended to meanwhile, so under
//! steady load the log grows to that threshold (64 MiB) and the writer then copies what is
//! left and starts it over, a pause every write waits for. A lower threshold (4,096 pages)
//! bounded the log at 16 MiB but cost throughput in runs interleaved with this one
//! (BENCHMARKS.md, Pipeline).

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// Pause after each checkpoint before the next one may start.
const REST: Duration = Duration::from_millis(250);

/// The writer connection's own automatic checkpoint threshold, in pages (4 KiB each).
pub(super) const WRITER_BACKSTOP_PAGES: u32 = 16_384;

/// The writer's handle on the checkpoint thread; the thread ends when this is dropped.
pub(super) struct Checkpointer {
    poke: SyncSender<()>,
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
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, pokes))
            .context("Failed to start the checkpoint thread")?;
        Ok(Self { poke })
    }

    /// Says a transaction committed; costs nothing when a poke is already waiting.
    pub(super) fn poke(&self) {
        let _ = self.poke.try_send(());
    }
}

fn run(conn: Connection, pokes: Receiver<()>) {
    // Commits during a rest leave (at most) one poke waiting: the next `recv` returns at once.
    while pokes.recv().is_ok() {
        checkpoint(&conn);
        std::thread::sleep(REST);
    }
    // The writer is gone: one last pass so a clean shutdown leaves little in the log.
    checkpoint(&conn);
}

fn checkpoint(conn: &Connection) {
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((log, copied)) => {
            metrics::histogram!("orderd_sqlite_checkpoint_pages").record(copied.max(0) as f64);
            tracing::trace!(log, copied, "checkpointed the write-ahead log");
        }
        Err(err) => tracing::warn!(error = %err, "A write-ahead log checkpoint failed"),
    }
}

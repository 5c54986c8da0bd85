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
//! frames (reads are short), and the next write starts the log over. Because that copy and
//! its two `fsync`s stall every queued write, this thread first catches up (a few passes back
//! to back, until at most [`CATCH_UP_PAGES`] are left uncopied) and only then asks. The
//! writer's automatic checkpoint stays as a backstop, should this thread ever fall behind.

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
        if checkpoint(&conn).is_some_and(|pass| pass.log >= RESTART_PAGES) {
            catch_up(&conn);
            restart.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(REST);
    }
    // The writer is gone: one last pass so a clean shutdown leaves little in the log.
    checkpoint(&conn);
}

/// Most uncopied pages the writer's `RESTART` should find: it copies them and `fsync`s the
/// log and the database file with every write waiting, so the less it has to flush the
/// shorter that pause.
const CATCH_UP_PAGES: i64 = 512;

/// Most extra `PASSIVE` passes run back to back before a restart is asked for.
const CATCH_UP_PASSES: usize = 4;

/// Before the writer is asked to restart the log: copies, pass after pass, what the writer
/// appended during the previous pass (each pass is shorter than the one before while
/// checkpoints copy faster than the writer appends), until at most [`CATCH_UP_PAGES`] are
/// left or [`CATCH_UP_PASSES`] have run.
fn catch_up(conn: &Connection) {
    for _ in 0..CATCH_UP_PASSES {
        match checkpoint(conn) {
            Some(pass) if pass.log - pass.copied > CATCH_UP_PAGES => continue,
            _ => break,
        }
    }
}

/// What one checkpoint pass saw, in pages.
struct Pass {
    /// The log's size.
    log: i64,
    /// How much of it the database file now holds.
    copied: i64,
}

/// One `PASSIVE` checkpoint.
fn checkpoint(conn: &Connection) -> Option<Pass> {
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Pass {
            log: row.get(1)?,
            copied: row.get(2)?,
        })
    });
    match outcome {
        Ok(pass) => {
            metrics::histogram!("orderd_sqlite_checkpoint_pages").record(pass.copied.max(0) as f64);
            tracing::trace!(
                log = pass.log,
                copied = pass.copied,
                "checkpointed the write-ahead log"
            );
            Some(pass)
        }
        Err(err) => {
            tracing::warn!(error = %err, "A write-ahead log checkpoint failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in WAL mode with a writer that never checkpoints by itself, and a checkpoint
    /// connection configured as [`Checkpointer::start`] configures its own.
    fn pair(dir: &Path) -> (Connection, Connection) {
        let path = dir.join("db.sqlite3");
        let writer = Connection::open(&path).unwrap();
        super::super::db::configure(&writer).unwrap();
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
            .unwrap();
        let checkpoints = Connection::open(&path).unwrap();
        super::super::db::configure(&checkpoints).unwrap();
        (writer, checkpoints)
    }

    fn append(conn: &Connection, pages: usize) {
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..pages {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn catching_up_copies_what_was_appended_since_the_last_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, checkpoints) = pair(dir.path());
        append(&writer, 1_000);
        let first = checkpoint(&checkpoints).unwrap();
        assert_eq!(first.copied, first.log);
        // Appended after the pass that saw the log: what a restart would have to copy.
        append(&writer, 2_000);
        let file = dir.path().join("db.sqlite3");
        let before = std::fs::metadata(&file).unwrap().len();
        catch_up(&checkpoints);
        let after = std::fs::metadata(&file).unwrap().len();
        assert!(
            after >= before + 1_900 * 4096,
            "the database file grew from {before} to {after} bytes"
        );
        let last = checkpoint(&checkpoints).unwrap();
        assert_eq!(last.copied, last.log, "nothing is left for the restart");
    }
}

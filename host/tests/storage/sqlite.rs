//! The contract suite on SQLite (a fresh temporary file per test), plus what only the embedded
//! backend has: the file itself, the shared `SqliteDb` handle, migrations of other components,
//! and many concurrent order transactions on the one writer.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use orderd::domain::Id;
use orderd::storage::sqlite::{DATABASE_FILE, SqliteStore};
use orderd::storage::{Conflict, ProductStore, Store, StoreError};

use crate::contract::{Harness, order_of, order_total, outbox_total, stock_of, stocked};

/// A store on a database file in its own temporary directory.
pub struct SqliteHarness {
    /// Removed when the test ends.
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl SqliteHarness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&Self::file(&dir)).expect("open store");
        Self {
            dir,
            store: Arc::new(store),
        }
    }

    fn file(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("data").join(DATABASE_FILE)
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    async fn reopen(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&Self::file(&self.dir)).expect("reopen store"))
    }
}

contract_tests!(contract, SqliteHarness::new());

#[tokio::test]
async fn opening_creates_the_data_directory_and_a_wal_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data").join(DATABASE_FILE);

    let store = SqliteStore::open(&path).unwrap();

    assert!(path.exists());
    let mode: String = store
        .db()
        .read(|conn| {
            Ok(conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap())
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store.ping().await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
}

#[tokio::test]
async fn another_component_keeps_its_own_tables_in_the_same_file() {
    let store = SqliteStore::temporary().unwrap();
    let db = store.db();
    const STEPS: &[&str] = &[
        "CREATE TABLE queue_messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT;",
        "ALTER TABLE queue_messages ADD COLUMN receive_count INTEGER NOT NULL DEFAULT 0;",
    ];

    db.apply_migrations("queue", &STEPS[..1]).await.unwrap();
    db.apply_migrations("queue", STEPS).await.unwrap();
    db.apply_migrations("queue", STEPS).await.unwrap();

    db.write(|tx| {
        tx.execute("INSERT INTO queue_messages (body) VALUES ('hello')", [])
            .unwrap();
        Ok(())
    })
    .await
    .unwrap();
    let (body, count): (String, i64) = db
        .read(|conn| {
            Ok(conn
                .query_row("SELECT body, receive_count FROM queue_messages", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap())
        })
        .await
        .unwrap();
    assert_eq!((body.as_str(), count), ("hello", 0));
    // The store's own schema is untouched by the queue's versions.
    store.ping().await.unwrap();
    assert!(store.product(Id::new()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let store = SqliteStore::temporary().unwrap();
    let db = store.db();
    db.apply_migrations(
        "queue",
        &["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (x INTEGER);"],
    )
    .await
    .unwrap();

    let err = db
        .apply_migrations("queue", &["CREATE TABLE a (x INTEGER);"])
        .await
        .unwrap_err();

    assert!(format!("{:#}", anyhow::Error::from(err)).contains("newer"));
}

#[tokio::test]
async fn a_failed_migration_step_leaves_no_trace() {
    let store = SqliteStore::temporary().unwrap();
    let db = store.db();

    let err = db
        .apply_migrations(
            "queue",
            &["CREATE TABLE ok (x INTEGER); CREATE TABLE broken (;"],
        )
        .await;

    assert!(matches!(err, Err(StoreError::Backend(_))), "{err:?}");
    let tables: i64 = db
        .read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'ok'",
                    [],
                    |r| r.get(0),
                )
                .unwrap())
        })
        .await
        .unwrap();
    assert_eq!(tables, 0);
    db.apply_migrations("queue", &["CREATE TABLE ok (x INTEGER);"])
        .await
        .unwrap();
}

/// A temporary store whose database has one extra table, `t (x INTEGER)`; the store is
/// returned so its file outlives the test's use of the handle.
async fn store_with_table_t() -> (SqliteStore, orderd::storage::sqlite::SqliteDb) {
    let store = SqliteStore::temporary().unwrap();
    let db = store.db();
    db.apply_migrations("test", &["CREATE TABLE t (x INTEGER);"])
        .await
        .unwrap();
    (store, db)
}

#[tokio::test]
async fn a_write_that_fails_or_panics_is_rolled_back_and_the_writer_keeps_serving() {
    let (_store, db) = store_with_table_t().await;

    let failed = db
        .write(|tx| {
            tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
            Err::<(), _>(StoreError::Conflict(Conflict::OpenOrders))
        })
        .await;
    let panicked = db
        .write(|tx| -> Result<(), StoreError> {
            tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
            panic!("a bug in a write closure")
        })
        .await;
    db.write(|tx| Ok(tx.execute("INSERT INTO t VALUES (3)", []).unwrap()))
        .await
        .unwrap();

    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    assert!(matches!(panicked, Err(StoreError::Backend(_))));
    let rows: Vec<i64> = db
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
            Ok(stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect())
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![3]);
}

#[tokio::test]
async fn temporary_data_stays_in_memory_and_point_reads_see_commits_and_contain_panics() {
    let (_store, db) = store_with_table_t().await;
    // 2 = MEMORY: a group commit's savepoint journal never spills to a temporary file.
    let pragma = |conn: &rusqlite::Connection| {
        Ok(conn
            .query_row("PRAGMA temp_store", [], |r| r.get::<_, i64>(0))
            .unwrap())
    };
    assert_eq!(db.write(move |tx| pragma(tx)).await.unwrap(), 2);
    assert_eq!(db.read(pragma).await.unwrap(), 2);
    assert_eq!(db.read_point(pragma).await.unwrap(), 2);

    db.write(|tx| Ok(tx.execute("INSERT INTO t VALUES (7)", []).unwrap()))
        .await
        .unwrap();
    let seen: i64 = db
        .read_point(|conn| Ok(conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap()))
        .await
        .unwrap();
    assert_eq!(seen, 7);
    let panicked = db
        .read_point(|_| -> Result<(), StoreError> { panic!("a bug in a read") })
        .await;
    assert!(matches!(panicked, Err(StoreError::Backend(_))));
    // The connection went back to the pool and still serves.
    assert_eq!(db.read_point(pragma).await.unwrap(), 2);
}

#[tokio::test]
async fn a_cached_statement_with_a_bound_limit_keeps_its_plan_across_binds() {
    use rusqlite::StatementStatus;
    let (_store, db) = store_with_table_t().await;
    // Without the planner's stability guarantee SQLite plans `LIMIT ?` for the bound value,
    // so each new bind would parse and plan the statement again (RePrepare counts that).
    const SQL: &str = "SELECT x FROM t WHERE x > ?1 ORDER BY x LIMIT ?2";
    let reprepares = |conn: &rusqlite::Connection| {
        for limit in 1..=5_i64 {
            let mut stmt = conn.prepare_cached(SQL).unwrap();
            let rows: Vec<i64> = stmt
                .query_map([0, limit], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(rows.len() as i64 <= limit);
        }
        let stmt = conn.prepare_cached(SQL).unwrap();
        Ok(stmt.get_status(StatementStatus::RePrepare))
    };
    db.write(|tx| {
        for x in 1..=10 {
            tx.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(db.write(move |tx| reprepares(tx)).await.unwrap(), 0);
    assert_eq!(db.read(reprepares).await.unwrap(), 0);
    assert_eq!(db.read_point(reprepares).await.unwrap(), 0);
}

/// A database file of its own in a temporary directory (returned to keep it), with one extra
/// table, `t (x BLOB)`: for tests that look at the file and its log.
async fn file_with_blob_table() -> (
    tempfile::TempDir,
    PathBuf,
    orderd::storage::sqlite::SqliteDb,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let db = orderd::storage::sqlite::SqliteDb::open(&path).unwrap();
    db.apply_migrations("test", &["CREATE TABLE t (x BLOB);"])
        .await
        .unwrap();
    (dir, path, db)
}

#[tokio::test]
async fn the_log_is_checkpointed_by_its_own_thread_soon_after_a_commit() {
    let (_dir, path, db) = file_with_blob_table().await;
    // The writer's own threshold is only a backstop, far above what is written here.
    let backstop: i64 = db
        .write(|tx| {
            Ok(tx
                .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                .unwrap())
        })
        .await
        .unwrap();
    assert!(backstop > 4_000, "{backstop}");
    let before = std::fs::metadata(&path).unwrap().len();
    // About 2 MiB: under the 4 MiB at which a writer checkpoints by default.
    db.write(|tx| {
        for _ in 0..512 {
            tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        Ok(())
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    while std::fs::metadata(&path).unwrap().len() < before + 2_000_000 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the database file did not receive the log's pages"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_starts_a_long_log_over_while_readers_keep_reading() {
    use orderd::storage::sqlite::RESTART_PAGES;
    let (dir, _path, db) = file_with_blob_table().await;
    // Readers that never stop: without a restart by the writer, a log appended to back to
    // back only starts over at the writer's backstop (256 MiB).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    db.read_point(|conn| {
                        Ok(conn
                            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                            .unwrap())
                    })
                    .await
                    .unwrap();
                    // A point read runs on this thread without waiting: let the writes in.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let page = 4096_u64;
    let restart_bytes = RESTART_PAGES as u64 * page;
    // Three times the restart threshold, 1 MiB per write, one after the other.
    let writes = 3 * restart_bytes / (1 << 20);
    let mut largest = 0;
    for _ in 0..writes {
        db.write(|tx| {
            for _ in 0..256 {
                tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
            tx.execute("DELETE FROM t WHERE rowid % 2 = 0", []).unwrap();
            Ok(())
        })
        .await
        .unwrap();
        let wal = std::fs::metadata(dir.path().join("db.sqlite3-wal")).unwrap();
        largest = largest.max(wal.len());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    // The log is asked to start over within one checkpoint pass (a quarter of a second of
    // writes, plus the pass itself) of crossing the threshold.
    assert!(
        largest < 2 * restart_bytes,
        "the log grew to {} MiB",
        largest >> 20
    );
}

#[tokio::test]
async fn corrupt_rows_are_reported_as_backend_errors() {
    let store = SqliteStore::temporary().unwrap();
    let store_dyn: Arc<dyn Store> = Arc::new(store.clone());
    let tea = stocked(&store_dyn, 1, 5).await.remove(0);
    let id = tea.id.to_hex();
    store
        .db()
        .write(move |tx| {
            Ok(tx
                .execute(
                    "UPDATE products SET currency = 'not money' WHERE id = ?1",
                    [id],
                )
                .unwrap())
        })
        .await
        .unwrap();

    let err = store_dyn.product(tea.id).await.unwrap_err();

    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

/// The single writer serializes every write: thousands of order transactions from 64 tasks
/// at once all commit (no `SQLITE_BUSY`), and stock, orders and outbox events add up. Its rate
/// is measured by `cargo bench -p orderd --bench orders_http` (BENCHMARKS.md), not here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_order_transactions_all_commit_and_add_up() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::temporary().unwrap());
    const STOCK: i64 = 1_000_000;
    let products = Arc::new(stocked(&store, 4, STOCK).await);
    const ORDERS: usize = 4_096; // a multiple of CLIENTS
    const CLIENTS: usize = 64;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (store, products) = (Arc::clone(&store), Arc::clone(&products));
            tokio::spawn(async move {
                for n in 0..ORDERS / CLIENTS {
                    let p = &products[(c + n) % products.len()];
                    let q = &products[(c + n + 1) % products.len()];
                    let (order, takes, event) = order_of(Id::new(), &[(p, 1), (q, 2)]);
                    store
                        .place_order(&order, &takes, &event, None)
                        .await
                        .expect("every order commits");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }

    // Each order takes 1 unit of one product and 2 of the next: 3 units per order.
    let mut taken = 0;
    for p in products.iter() {
        taken += STOCK - stock_of(&store, p.id).await;
    }
    assert_eq!(taken, 3 * ORDERS as i64);
    assert_eq!(order_total(&store).await, ORDERS as u64);
    assert_eq!(outbox_total(&store).await, ORDERS as u64);
}

/// The periodic sweep deletes idempotency records past their 24 h window and inbox entries
/// past the retention, and nothing younger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_expired_idempotency_records_and_inbox_entries_only() {
    use chrono::{Duration, Utc};
    use orderd::storage::IdempotencyRecord;
    use orderd::storage::sqlite::Swept;

    let store = SqliteStore::temporary().unwrap();
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    let tea = stocked(&dyn_store, 1, 10).await.remove(0);
    let buyer = Id::new();
    let now = Utc::now();
    for (key, age) in [("old", Duration::hours(25)), ("young", Duration::hours(1))] {
        let (order, takes, event) = order_of(buyer, &[(&tea, 1)]);
        let record = IdempotencyRecord {
            user_id: buyer,
            key: key.into(),
            request_hash: [7; 32],
            status: 201,
            response_body: b"{}".to_vec(),
            created_at: now - age,
        };
        dyn_store
            .place_order(&order, &takes, &event, Some(&record))
            .await
            .unwrap();
    }
    let (old_event, young_event) = (Id::new(), Id::new());
    assert!(
        dyn_store
            .inbox_record(old_event, now - Duration::days(8))
            .await
            .unwrap()
    );
    assert!(
        dyn_store
            .inbox_record(young_event, now - Duration::days(1))
            .await
            .unwrap()
    );

    let swept = store
        .sweep_expired(now, std::time::Duration::from_secs(7 * 24 * 3600))
        .await
        .unwrap();

    assert_eq!(
        swept,
        Swept {
            idempotency_keys: 1,
            inbox: 1
        }
    );
    let forever = std::time::Duration::from_secs(365 * 24 * 3600);
    let record = |key: &'static str| dyn_store.idempotency_record(buyer, key, forever);
    assert!(record("old").await.unwrap().is_none());
    assert!(record("young").await.unwrap().is_some());
    // A deleted inbox entry can be recorded again; a kept one is still there.
    assert!(dyn_store.inbox_record(old_event, now).await.unwrap());
    assert!(!dyn_store.inbox_record(young_event, now).await.unwrap());
    // Orders and stock are untouched.
    assert_eq!(order_total(&dyn_store).await, 2);
    assert_eq!(stock_of(&dyn_store, tea.id).await, 8);
}

#[tokio::test]
async fn migration_3_keeps_existing_users_and_sessions_working() {
    use orderd::storage::sqlite::{SqliteDb, schema};
    use orderd::storage::{RotateOutcome, TokenStore, UserStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    // A database written by the release before version 3: a user with a live session.
    let old = SqliteDb::open_with(&path, &[(schema::COMPONENT, &schema::STEPS[..2])]).unwrap();
    let (user, family) = (Id::new(), Id::new());
    let token = [7u8; 32];
    let far = chrono::Utc::now().timestamp_micros() + 3_600_000_000;
    old.write(move |tx| {
        tx.execute(
            "INSERT INTO users (id, username, email, password_hash, role, created_at)
             VALUES (?1, 'old_user', 'old@example.com', 'x', 'admin', 0)",
            [user.to_hex()],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO refresh_families (id, user_id, current_hash, revoked, expires_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, 0, 0)",
            rusqlite::params![family.to_hex(), user.to_hex(), &token[..], far],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO refresh_tokens (hash, family_id, issued_at) VALUES (?1, ?2, 0)",
            rusqlite::params![&token[..], family.to_hex()],
        )
        .unwrap();
        Ok(())
    })
    .await
    .unwrap();

    let store = SqliteStore::open(&path).unwrap();
    let session = store.session_state(user).await.unwrap().unwrap();
    assert_eq!(
        session.token_version, 0,
        "tokens issued before the upgrade stay valid"
    );
    let now = chrono::Utc::now();
    let rotated = store
        .rotate_refresh_with_grace(
            token,
            [8u8; 32],
            now,
            now + chrono::Duration::hours(1),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(
        matches!(rotated, RotateOutcome::Rotated { .. }),
        "{rotated:?}"
    );
    assert_eq!(store.end_sessions(user, now).await.unwrap(), 1);
}

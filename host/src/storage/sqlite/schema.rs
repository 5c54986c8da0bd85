//! The order store's tables, as append-only migration steps of the `store` component (see
//! `SqliteDb::apply_migrations`). Never edit a released step; add a new one.
//!
//! Conventions: ids are 24-hex lower-case ObjectId TEXT, so ordering by id is creation order:
//! an ObjectId starts with its creation second, and within a second one process's ids grow
//! with its counter (which wraps only after 2^24 ids; ids of different processes made in the
//! same second are ordered arbitrarily among themselves); times are INTEGER
//! microseconds since the Unix epoch (UTC); money is INTEGER minor units; line items, tax
//! lines and addresses are JSON TEXT. Tables are STRICT so a wrong type is refused at write.

/// The component name under which these steps are recorded.
pub const COMPONENT: &str = "store";

/// Migration steps; step `i` is schema version `i + 1`.
pub const STEPS: &[&str] = &[
    V1,
    V2,
    V3_SESSIONS_AND_LIMITS,
    V4_RETENTION,
    V5_PROCESSED_AT,
    V6_OPEN_ORDERS_ONLY,
];

const V1: &str = r#"
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- One family per login; `current_hash` is the only token that may be rotated.
CREATE TABLE refresh_families (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    current_hash BLOB    NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_families_by_user ON refresh_families (user_id);

-- Every token hash ever issued, so presenting a rotated-away token is recognised as reuse.
CREATE TABLE refresh_tokens (
    hash      BLOB    PRIMARY KEY,
    family_id TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    issued_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    sku         TEXT    NOT NULL UNIQUE,
    description TEXT,
    category    TEXT    NOT NULL,
    price       INTEGER NOT NULL,
    currency    TEXT    NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE orders (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    currency         TEXT    NOT NULL,
    subtotal         INTEGER NOT NULL,
    tax_total        INTEGER NOT NULL,
    total            INTEGER NOT NULL,
    items            TEXT    NOT NULL,
    tax_lines        TEXT    NOT NULL,
    shipping_address TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    processing_at    INTEGER,
    processed_at     INTEGER,
    cancelled_at     INTEGER,
    failed_at        INTEGER
) STRICT;
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status ON orders (status);

-- `seq` is the write order: events of one order are published in it.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    order_id        TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    published_at    INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_order ON outbox (order_id, seq);

CREATE TABLE idempotency_keys (
    user_id       TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  BLOB    NOT NULL,
    status        INTEGER NOT NULL,
    response_body BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;

-- Events the consumer fully processed.
CREATE TABLE inbox (
    event_id     TEXT    PRIMARY KEY,
    processed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- E-mail send records: a claim (owner, claimed_until) while sending, sent_at once sent.
CREATE TABLE email_sends (
    event_id      TEXT PRIMARY KEY,
    owner         TEXT,
    claimed_until INTEGER,
    sent_at       INTEGER,
    message_id    TEXT
) STRICT, WITHOUT ROWID;

CREATE TABLE plugin_versions (
    id         TEXT    PRIMARY KEY,
    slot       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    wasm       BLOB    NOT NULL,
    config     TEXT    NOT NULL,
    policy     TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT
) STRICT;
CREATE INDEX plugin_versions_by_slot ON plugin_versions (slot, id);

-- The active version per slot; NULL = the embedded default. `generation` grows on every change.
CREATE TABLE active_plugins (
    slot       TEXT    PRIMARY KEY,
    version_id TEXT,
    generation INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
"#;

/// Failed orders can be retried: an admin lists orders by status (newest first, so the index
/// holds the id after the status, and serves the counts by status as well), and a retry
/// re-publishes the order's original event, counting its re-publications for the queue
/// deduplication id.
const V2: &str = r#"
DROP INDEX orders_by_status;
CREATE INDEX orders_by_status ON orders (status, id);
ALTER TABLE outbox ADD COLUMN republished INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 3, sessions and abuse limits: a per-user token version (bumped by a role change and
/// "log out everywhere", checked against the `ver` claim of access tokens); the previous
/// token of each refresh family and when it was rotated (a short grace window in which it
/// yields the same successor); and an index counting a customer's open orders for the
/// open-order cap.
const V3_SESSIONS_AND_LIMITS: &str = r#"
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN previous_hash BLOB;
ALTER TABLE refresh_families ADD COLUMN rotated_at INTEGER;
CREATE INDEX orders_open_by_user ON orders (user_id, status);
"#;

/// Version 4, retention (`storage::retention`): the pruning deletes find expired refresh families,
/// published events and sent e-mail records by time.
const V4_RETENTION: &str = r#"
CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);
CREATE INDEX outbox_published ON outbox (published_at) WHERE status = 'published';
CREATE INDEX email_sends_by_sent_at ON email_sends (sent_at);
"#;

/// Version 5, the operator console's chart (`storage::console`): orders processed in a time
/// window are a range of this index (orders placed in one are a range of ids).
const V5_PROCESSED_AT: &str = r#"
CREATE INDEX orders_by_processed_at ON orders (processed_at) WHERE processed_at IS NOT NULL;
"#;

/// Version 6: the open-order index holds open orders only. Keyed on every order, each status
/// change moved an entry inside the customer's ever-growing range of finished orders, so
/// every write group rewrote one index page per customer in it. Partial, it holds the
/// orders in flight and stays a few pages. The open-order count reads it as before: its
/// `status IN` term is the index's own condition, so the plan is unchanged, a covering
/// search of this index.
const V6_OPEN_ORDERS_ONLY: &str = r#"
DROP INDEX orders_open_by_user;
CREATE INDEX orders_open_by_user ON orders (user_id, status)
    WHERE status IN ('pending', 'processing');
"#;

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::STEPS;
    use crate::storage::sqlite::orders::OPEN_ORDERS_SQL;

    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for step in STEPS {
            conn.execute_batch(step).unwrap();
        }
        conn
    }

    #[test]
    fn the_open_order_count_is_a_covering_search_of_the_open_orders_index() {
        let conn = migrated();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OPEN_ORDERS_SQL}"))
            .unwrap()
            .query_map(["0123456789abcdef01234567"], |row| row.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            plan,
            ["SEARCH orders USING COVERING INDEX orders_open_by_user (user_id=? AND status=?)"]
        );
    }

    #[test]
    fn the_open_order_count_follows_an_order_through_its_statuses() {
        let conn = migrated();
        let user = "0123456789abcdef01234567";
        conn.execute(
            "INSERT INTO orders (id, user_id, status, currency, subtotal, tax_total, total,
                                 items, tax_lines, created_at, updated_at)
             VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', ?1, 'pending', 'EUR', 1, 0, 1, '[]', '[]', 0, 0)",
            [user],
        )
        .unwrap();
        let open = |conn: &Connection| -> i64 {
            conn.query_row(OPEN_ORDERS_SQL, [user], |row| row.get(0))
                .unwrap()
        };
        let mut seen = vec![open(&conn)];
        for status in ["processing", "processed", "pending", "failed"] {
            conn.execute("UPDATE orders SET status = ?1", [status])
                .unwrap();
            seen.push(open(&conn));
        }
        assert_eq!(seen, [1, 1, 0, 1, 0]);
    }
}

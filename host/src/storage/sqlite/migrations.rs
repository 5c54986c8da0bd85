//! Per-component schema versions in the `schema_migrations` table.
//!
//! `rusqlite_migration` tracks one schema in `PRAGMA user_version`; several components share
//! one database file and evolve independently, so each gets its own row set here instead.

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

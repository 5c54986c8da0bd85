//! Turning SQLite errors and stored column values into the storage error type: uniqueness
//! violations become a `Conflict` naming the field, everything else `Backend` with context; columns
//! that do not decode (a corrupt id, time or JSON) become `Backend`, never a panic.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use rusqlite::{ErrorCode, Row};
use serde::de::DeserializeOwned;

use crate::domain::{Currency, Id};
use crate::storage::{Conflict, StoreError, StoreResult, UniqueField};

/// Unique columns and the `Conflict` a violation of each reports.
const UNIQUE_FIELDS: &[(&str, Conflict)] = &[
    ("users.email", Conflict::Taken(UniqueField::Email)),
    ("users.username", Conflict::Taken(UniqueField::Username)),
    ("products.sku", Conflict::Taken(UniqueField::Sku)),
    (
        "idempotency_keys.user_id, idempotency_keys.key",
        Conflict::IdempotencyKeyTaken,
    ),
];

/// Maps a rusqlite error: a UNIQUE or PRIMARY KEY violation → the column's `Conflict`
/// (`Taken(Id)` for a repeated primary key or a column not listed); anything else →
/// `Backend` with `context`.
pub fn map_sql_error(err: rusqlite::Error, context: &'static str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &err
        && failure.code == ErrorCode::ConstraintViolation
    {
        const UNIQUE: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE;
        const PRIMARY_KEY: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY;
        if failure.extended_code == UNIQUE || failure.extended_code == PRIMARY_KEY {
            let columns = message
                .strip_prefix("UNIQUE constraint failed: ")
                .unwrap_or(message);
            let conflict = UNIQUE_FIELDS
                .iter()
                .find(|(cols, _)| *cols == columns)
                .map(|(_, conflict)| conflict.clone())
                .unwrap_or(Conflict::Taken(UniqueField::Id));
            return StoreError::Conflict(conflict);
        }
    }
    StoreError::Backend(anyhow::Error::new(err).context(context))
}

/// `.ctx("Failed to …")` on rusqlite results.
pub trait SqlContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| map_sql_error(e, context))
    }
}

/// A corrupt stored value.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::backend(anyhow!("Corrupt {what} in the database: {detail}"))
}

/// Times are stored as INTEGER microseconds since the Unix epoch (UTC): compact, ordered, and
/// compared directly in SQL (`next_attempt_at <= ?`).
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn time_from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt("timestamp", us))
}

/// Column readers: each reports a missing or malformed value as `Backend`.
pub fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, idx: &str) -> StoreResult<T> {
    row.get(idx).ctx("Failed to read a column")
}

pub fn get_id(row: &Row<'_>, idx: &str) -> StoreResult<Id> {
    let s: String = get(row, idx)?;
    Id::parse(&s).map_err(|_| corrupt("id", s))
}

pub fn get_opt_id(row: &Row<'_>, idx: &str) -> StoreResult<Option<Id>> {
    get::<Option<String>>(row, idx)?
        .map(|s| Id::parse(&s).map_err(|_| corrupt("id", s)))
        .transpose()
}

pub fn get_time(row: &Row<'_>, idx: &str) -> StoreResult<DateTime<Utc>> {
    time_from_micros(get(row, idx)?)
}

pub fn get_opt_time(row: &Row<'_>, idx: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, idx)?
        .map(time_from_micros)
        .transpose()
}

pub fn get_currency(row: &Row<'_>, idx: &str) -> StoreResult<Currency> {
    let s: String = get(row, idx)?;
    Currency::parse(&s).map_err(|_| corrupt("currency", s))
}

pub fn get_json<T: DeserializeOwned>(row: &Row<'_>, idx: &str) -> StoreResult<T> {
    let s: String = get(row, idx)?;
    serde_json::from_str(&s).map_err(|e| corrupt(idx, e))
}

pub fn get_u32(row: &Row<'_>, idx: &str) -> StoreResult<u32> {
    let n: i64 = get(row, idx)?;
    u32::try_from(n).map_err(|_| corrupt(idx, n))
}

pub fn get_hash(row: &Row<'_>, idx: &str) -> StoreResult<[u8; 32]> {
    let bytes: Vec<u8> = get(row, idx)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| corrupt(idx, format!("{} bytes", b.len())))
}

/// Parses a stored enum value with its domain parser.
pub fn parse_enum<T>(s: &str, what: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
    parse(s).ok_or_else(|| corrupt(what, s))
}

/// Serializes a value for a JSON column.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::backend(anyhow::Error::new(e).context("Failed to encode a JSON column"))
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn violation(sql: &str) -> StoreError {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT UNIQUE, username TEXT UNIQUE);
             INSERT INTO users VALUES ('a', 'e', 'u');",
        )
        .unwrap();
        conn.execute_batch(sql).ctx("test").unwrap_err()
    }

    #[test]
    fn unique_violations_name_the_field() {
        let err = violation("INSERT INTO users VALUES ('b', 'e', 'v')");
        assert!(
            matches!(
                err,
                StoreError::Conflict(Conflict::Taken(UniqueField::Email))
            ),
            "{err:?}"
        );
        let err = violation("INSERT INTO users VALUES ('b', 'f', 'u')");
        assert!(
            matches!(
                err,
                StoreError::Conflict(Conflict::Taken(UniqueField::Username))
            ),
            "{err:?}"
        );
        let err = violation("INSERT INTO users VALUES ('a', 'f', 'v')");
        assert!(
            matches!(err, StoreError::Conflict(Conflict::Taken(UniqueField::Id))),
            "{err:?}"
        );
    }

    #[test]
    fn other_errors_become_backend_errors() {
        let err = violation("INSERT INTO nowhere VALUES (1)");
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    }

    #[test]
    fn out_of_range_times_are_reported_not_panicked_on() {
        assert!(time_from_micros(i64::MAX).is_err());
        let now = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(time_from_micros(micros(now)).unwrap(), now);
    }
}

//! Users, their token versions and refresh-token families on SQLite. Rotation runs on the
//! single writer, so two concurrent rotations of one token are ordered: the first rotates, the
//! second finds it rotated and, within the grace window and asking for the same successor,
//! gets that successor; otherwise it is reuse.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::error::{SqlContext, get, get_id, get_time, micros, parse_enum};
use crate::domain::{Email, Id, Role, User, Username};
use crate::storage::{
    RefreshGrant, RotateOutcome, SessionState, StoreError, StoreResult, TokenStore, UserStore,
};

const USER_BY_ID: &str =
    "SELECT id, username, email, password_hash, role, created_at FROM users WHERE id = ?1";
const USER_BY_EMAIL: &str =
    "SELECT id, username, email, password_hash, role, created_at FROM users WHERE email = ?1";

fn user_from_row(row: &Row<'_>) -> StoreResult<User> {
    let username: String = get(row, "username")?;
    let email: String = get(row, "email")?;
    let role: String = get(row, "role")?;
    Ok(User {
        id: get_id(row, "id")?,
        username: Username::parse(&username).map_err(|e| {
            StoreError::backend(anyhow::anyhow!("Corrupt username {username:?}: {e}"))
        })?,
        email: Email::parse_known(&email)
            .map_err(|e| StoreError::backend(anyhow::anyhow!("Corrupt e-mail {email:?}: {e}")))?,
        password_hash: get(row, "password_hash")?,
        role: parse_enum(&role, "role", Role::parse)?,
        created_at: get_time(row, "created_at")?,
    })
}

impl SqliteStore {
    /// Whether `hash` was ever issued as a refresh token (a read, no write transaction).
    async fn token_known(&self, hash: [u8; 32]) -> StoreResult<bool> {
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT 1 FROM refresh_tokens WHERE hash = ?1")
                    .ctx("Failed to prepare the token check")?
                    .query_row([&hash[..]], |_| Ok(()))
                    .optional()
                    .ctx("Failed to check a refresh token")
                    .map(|found| found.is_some())
            })
            .await
    }

    async fn user_where(&self, sql: &'static str, key: String) -> StoreResult<Option<User>> {
        self.db.read(move |conn| user_where(conn, sql, key)).await
    }
}

/// The user `sql` finds by `key`, if any.
fn user_where(conn: &Connection, sql: &str, key: String) -> StoreResult<Option<User>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .ctx("Failed to prepare a user query")?;
    let mut rows = stmt.query([key]).ctx("Failed to query a user")?;
    match rows.next().ctx("Failed to read a user")? {
        Some(row) => user_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// The user with `id`, if any.
pub(super) fn user_by_id(conn: &Connection, id: Id) -> StoreResult<Option<User>> {
    user_where(conn, USER_BY_ID, id.to_hex())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO users (id, username, email, password_hash, role, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .ctx("Failed to prepare the user insert")?
                .execute(params![
                    u.id.to_hex(),
                    u.username.as_str(),
                    u.email.as_str(),
                    u.password_hash,
                    u.role.as_str(),
                    micros(u.created_at),
                ])
                .ctx("Failed to insert a user")?;
                Ok(())
            })
            .await
    }

    async fn user_by_id(&self, id: Id) -> StoreResult<Option<User>> {
        self.user_where(USER_BY_ID, id.to_hex()).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_where(USER_BY_EMAIL, email.to_owned()).await
    }

    async fn set_role(&self, id: Id, role: Role) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE users SET role = ?2, token_version = token_version + 1 WHERE id = ?1",
                    )
                    .ctx("Failed to prepare the role update")?
                    .execute(params![id.to_hex(), role.as_str()])
                    .ctx("Failed to update a role")?;
                if changed == 0 {
                    Err(StoreError::NotFound)
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn replace_password_hash(
        &self,
        id: Id,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let (old_hash, new_hash) = (old_hash.to_owned(), new_hash.to_owned());
        self.db
            .write(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                    )
                    .ctx("Failed to prepare the password hash update")?
                    .execute(params![id.to_hex(), old_hash, new_hash])
                    .ctx("Failed to update a password hash")?;
                Ok(changed == 1)
            })
            .await
    }

    async fn session_state(&self, id: Id) -> StoreResult<Option<SessionState>> {
        // One lookup by primary key on every admin request: not worth a blocking-pool hop.
        self.db
            .read_point(move |conn| {
                conn.prepare_cached("SELECT role, token_version FROM users WHERE id = ?1")
                    .ctx("Failed to prepare the session query")?
                    .query_row([id.to_hex()], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()
                    .ctx("Failed to read a user's session state")?
                    .map(|(role, version)| {
                        Ok(SessionState {
                            role: parse_enum(&role, "role", Role::parse)?,
                            token_version: u64::try_from(version).unwrap_or(0),
                        })
                    })
                    .transpose()
            })
            .await
    }

    async fn end_sessions(&self, id: Id, at: DateTime<Utc>) -> StoreResult<u64> {
        self.db
            .write(move |tx| {
                let version = tx
                    .prepare_cached(
                        "UPDATE users SET token_version = token_version + 1 WHERE id = ?1
                         RETURNING token_version",
                    )
                    .ctx("Failed to prepare the token-version bump")?
                    .query_row([id.to_hex()], |row| row.get::<_, i64>(0))
                    .optional()
                    .ctx("Failed to bump a token version")?
                    .ok_or(StoreError::NotFound)?;
                tx.prepare_cached(
                    "UPDATE refresh_families SET revoked = 1, updated_at = ?2
                     WHERE user_id = ?1 AND revoked = 0",
                )
                .ctx("Failed to prepare the session revocation")?
                .execute(params![id.to_hex(), micros(at)])
                .ctx("Failed to revoke a user's refresh-token families")?;
                Ok(u64::try_from(version).unwrap_or(0))
            })
            .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_family(&self, grant: &RefreshGrant) -> StoreResult<()> {
        let g = grant.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO refresh_families
                         (id, user_id, current_hash, revoked, expires_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5)",
                )
                .ctx("Failed to prepare the family insert")?
                .execute(params![
                    g.family_id.to_hex(),
                    g.user_id.to_hex(),
                    &g.token_hash[..],
                    micros(g.expires_at),
                    micros(g.issued_at),
                ])
                .ctx("Failed to insert a refresh-token family")?;
                insert_token(tx, &g.token_hash, g.family_id, g.issued_at)
            })
            .await
    }

    async fn rotate_refresh_with_grace(
        &self,
        presented: [u8; 32],
        next_hash: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<RotateOutcome> {
        let grace_micros = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        // A token never issued is answered from a reader: a flood of made-up tokens does not
        // queue on the single writer.
        if !self.token_known(presented).await? {
            return Ok(RotateOutcome::Invalid);
        }
        self.db
            .write(move |tx| {
                let family = tx
                    .prepare_cached(
                        "SELECT f.id, f.user_id, f.current_hash, f.revoked, f.expires_at,
                                f.previous_hash, f.rotated_at
                         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
                         WHERE t.hash = ?1",
                    )
                    .ctx("Failed to prepare the token lookup")?
                    .query_row([&presented[..]], |row| {
                        Ok(Family {
                            id: row.get(0)?,
                            user_id: row.get(1)?,
                            current: row.get(2)?,
                            revoked: row.get(3)?,
                            expires_at: row.get(4)?,
                            previous: row.get(5)?,
                            rotated_at: row.get(6)?,
                        })
                    })
                    .optional()
                    .ctx("Failed to look up a refresh token")?;
                let Some(family) = family else {
                    return Ok(RotateOutcome::Invalid);
                };
                let family_id = parse_id(&family.id)?;
                if family.revoked {
                    return Ok(RotateOutcome::Invalid);
                }
                if family.current.as_slice() != presented.as_slice() {
                    let within_grace = family.previous.as_deref() == Some(&presented[..])
                        && family.current.as_slice() == next_hash.as_slice()
                        && grace_micros > 0
                        && family
                            .rotated_at
                            .is_some_and(|at| micros(now).saturating_sub(at) < grace_micros)
                        && family.expires_at > micros(now);
                    if within_grace {
                        return Ok(RotateOutcome::Rotated {
                            user_id: parse_id(&family.user_id)?,
                            family_id,
                        });
                    }
                    revoke(tx, family_id, now)?;
                    return Ok(RotateOutcome::Reused { family_id });
                }
                if family.expires_at <= micros(now) {
                    return Ok(RotateOutcome::Invalid);
                }
                tx.prepare_cached(
                    "UPDATE refresh_families SET current_hash = ?2, expires_at = ?3, updated_at = ?4,
                         previous_hash = ?5, rotated_at = ?4
                     WHERE id = ?1",
                )
                .ctx("Failed to prepare the rotation")?
                .execute(params![
                    family.id,
                    &next_hash[..],
                    micros(expires_at),
                    micros(now),
                    &presented[..]
                ])
                .ctx("Failed to rotate a refresh token")?;
                insert_token(tx, &next_hash, family_id, now)?;
                Ok(RotateOutcome::Rotated {
                    user_id: parse_id(&family.user_id)?,
                    family_id,
                })
            })
            .await
    }

    async fn revoke_family_of(&self, presented: [u8; 32]) -> StoreResult<()> {
        if !self.token_known(presented).await? {
            return Ok(());
        }
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE refresh_families SET revoked = 1
                     WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = ?1)",
                )
                .ctx("Failed to prepare the family revocation")?
                .execute([&presented[..]])
                .ctx("Failed to revoke a refresh-token family")?;
                Ok(())
            })
            .await
    }
}

/// A refresh-token family as the rotation reads it.
struct Family {
    id: String,
    user_id: String,
    current: Vec<u8>,
    revoked: bool,
    expires_at: i64,
    previous: Option<Vec<u8>>,
    rotated_at: Option<i64>,
}

fn parse_id(hex: &str) -> StoreResult<Id> {
    Id::parse(hex)
        .map_err(|_| StoreError::backend(anyhow::anyhow!("Corrupt id {hex:?} in the database")))
}

fn insert_token(
    tx: &rusqlite::Transaction<'_>,
    hash: &[u8; 32],
    family: Id,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (hash, family_id, issued_at) VALUES (?1, ?2, ?3)",
    )
    .ctx("Failed to prepare the token insert")?
    .execute(params![&hash[..], family.to_hex(), micros(at)])
    .ctx("Failed to record a refresh token")?;
    Ok(())
}

fn revoke(tx: &rusqlite::Transaction<'_>, family: Id, at: DateTime<Utc>) -> StoreResult<()> {
    tx.prepare_cached("UPDATE refresh_families SET revoked = 1, updated_at = ?2 WHERE id = ?1")
        .ctx("Failed to prepare the family revocation")?
        .execute(params![family.to_hex(), micros(at)])
        .ctx("Failed to revoke a refresh-token family")?;
    Ok(())
}

//! Users and refresh-token families on SQLite. Rotation runs on the single writer, so two
//! concurrent rotations of one token are ordered: the first rotates, the second is reuse.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::error::{SqlContext, get, get_id, get_time, micros, parse_enum};
use crate::domain::{Email, Id, Role, User, Username};
use crate::storage::{RefreshGrant, RotateOutcome, StoreError, StoreResult, TokenStore, UserStore};

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
                    .prepare_cached("UPDATE users SET role = ?2 WHERE id = ?1")
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

    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        next_hash: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.db
            .write(move |tx| {
                let family = tx
                    .prepare_cached(
                        "SELECT f.id, f.user_id, f.current_hash, f.revoked, f.expires_at
                         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
                         WHERE t.hash = ?1",
                    )
                    .ctx("Failed to prepare the token lookup")?
                    .query_row([&presented[..]], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, bool>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                    .ctx("Failed to look up a refresh token")?;
                let Some((family_hex, user_hex, current, revoked, family_expiry)) = family else {
                    return Ok(RotateOutcome::Invalid);
                };
                let family_id = parse_id(&family_hex)?;
                if revoked {
                    return Ok(RotateOutcome::Invalid);
                }
                if current.as_slice() != presented.as_slice() {
                    revoke(tx, family_id, now)?;
                    return Ok(RotateOutcome::Reused { family_id });
                }
                if family_expiry <= micros(now) {
                    return Ok(RotateOutcome::Invalid);
                }
                tx.prepare_cached(
                    "UPDATE refresh_families SET current_hash = ?2, expires_at = ?3, updated_at = ?4
                     WHERE id = ?1",
                )
                .ctx("Failed to prepare the rotation")?
                .execute(params![family_hex, &next_hash[..], micros(expires_at), micros(now)])
                .ctx("Failed to rotate a refresh token")?;
                insert_token(tx, &next_hash, family_id, now)?;
                Ok(RotateOutcome::Rotated {
                    user_id: parse_id(&user_hex)?,
                    family_id,
                })
            })
            .await
    }

    async fn revoke_family_of(&self, presented: [u8; 32]) -> StoreResult<()> {
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

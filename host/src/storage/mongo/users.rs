//! Users and refresh-token families on MongoDB.
//!
//! A family document holds the hash of its one current token; `refresh_tokens` records every
//! hash ever issued (by hex, as `_id`) with its family, so presenting a rotated-away token is
//! recognised as reuse. Creating a family (with its first token) and rotating (recording the
//! successor, moving the family) are each one transaction. Rotation is one conditional update
//! of the family document
//! (`currentHash == presented`, not revoked, not expired), which MongoDB applies atomically:
//! of two concurrent rotations of one token exactly one matches, and the other then finds the
//! family moved on: if it moved on to the successor the second caller asks for (the successor
//! is derived from the presented token), less than the grace window ago, it gets that
//! successor too; otherwise it is reuse. A user document's `tokenVersion` (absent = 0) is
//! bumped by a role change and by "log out everywhere".

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::MongoStore;
use super::codec::{
    date, get_bool, get_enum, get_id, get_opt_str, get_opt_time, get_str, get_time, hash_hex, oid,
};
use super::error::{MongoContext, Refusal, unique_violation};
use crate::domain::{Email, Id, Role, User, Username};
use crate::storage::{
    Conflict, RefreshGrant, RotateOutcome, SessionState, StoreError, StoreResult, TokenStore,
    UniqueField, UserStore,
};

/// Unique user fields and the index-name fragment that identifies each.
const USER_UNIQUE: &[(&str, Conflict)] = &[
    ("username", Conflict::Taken(UniqueField::Username)),
    ("email", Conflict::Taken(UniqueField::Email)),
];

fn user_doc(u: &User) -> Document {
    doc! {
        "_id": oid(u.id),
        "username": u.username.as_str(),
        "email": u.email.as_str(),
        "passwordHash": &u.password_hash,
        "role": u.role.as_str(),
        "createdAt": date(u.created_at),
    }
}

pub(super) fn user_from_doc(d: &Document) -> StoreResult<User> {
    let username = get_str(d, "username")?;
    let email = get_str(d, "email")?;
    Ok(User {
        id: get_id(d, "_id")?,
        username: Username::parse(&username).map_err(|e| super::codec::corrupt("username", e))?,
        email: Email::parse_known(&email).map_err(|e| super::codec::corrupt("email", e))?,
        password_hash: get_str(d, "passwordHash")?,
        role: get_enum(d, "role", Role::parse)?,
        created_at: get_time(d, "createdAt")?,
    })
}

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.c
            .users
            .insert_one(user_doc(user))
            .await
            .map_err(|e| unique_violation(e, USER_UNIQUE, "Failed to insert a user"))?;
        Ok(())
    }

    async fn user_by_id(&self, id: Id) -> StoreResult<Option<User>> {
        let found = self
            .c
            .users
            .find_one(doc! { "_id": oid(id) })
            .await
            .ctx("Failed to look up a user")?;
        found.as_ref().map(user_from_doc).transpose()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let found = self
            .c
            .users
            .find_one(doc! { "email": email })
            .await
            .ctx("Failed to look up a user")?;
        found.as_ref().map(user_from_doc).transpose()
    }

    async fn set_role(&self, id: Id, role: Role) -> StoreResult<()> {
        let result = self
            .c
            .users
            .update_one(
                doc! { "_id": oid(id) },
                doc! { "$set": { "role": role.as_str() }, "$inc": { "tokenVersion": 1_i64 } },
            )
            .await
            .ctx("Failed to update a role")?;
        if result.matched_count == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn replace_password_hash(
        &self,
        id: Id,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let result = self
            .c
            .users
            .update_one(
                doc! { "_id": oid(id), "passwordHash": old_hash },
                doc! { "$set": { "passwordHash": new_hash } },
            )
            .await
            .ctx("Failed to update a password hash")?;
        Ok(result.modified_count == 1)
    }

    async fn session_state(&self, id: Id) -> StoreResult<Option<SessionState>> {
        let found = self
            .c
            .users
            .find_one(doc! { "_id": oid(id) })
            .projection(doc! { "role": 1, "tokenVersion": 1 })
            .await
            .ctx("Failed to read a user's session state")?;
        found
            .map(|d| {
                Ok(SessionState {
                    role: get_enum(&d, "role", Role::parse)?,
                    token_version: token_version(&d),
                })
            })
            .transpose()
    }

    async fn end_sessions(&self, id: Id, at: DateTime<Utc>) -> StoreResult<u64> {
        let updated = self
            .c
            .users
            .find_one_and_update(
                doc! { "_id": oid(id) },
                doc! { "$inc": { "tokenVersion": 1_i64 } },
            )
            .return_document(ReturnDocument::After)
            .await
            .ctx("Failed to bump a token version")?
            .ok_or(StoreError::NotFound)?;
        self.c
            .refresh_families
            .update_many(
                doc! { "userId": oid(id), "revoked": false },
                doc! { "$set": { "revoked": true, "updatedAt": date(at) } },
            )
            .await
            .ctx("Failed to revoke a user's refresh-token families")?;
        Ok(token_version(&updated))
    }
}

/// A user document's token version: absent (written before versions existed) is 0; any
/// integer width is accepted, since some servers return Int64 as Int32.
fn token_version(d: &Document) -> u64 {
    match d.get("tokenVersion") {
        Some(mongodb::bson::Bson::Int64(v)) => u64::try_from(*v).unwrap_or(0),
        Some(mongodb::bson::Bson::Int32(v)) => u64::try_from(*v).unwrap_or(0),
        _ => 0,
    }
}

impl MongoStore {
    /// The family a token hash was issued to, if it is known.
    async fn family_of(&self, hash: &[u8; 32]) -> StoreResult<Option<Id>> {
        let found = self
            .c
            .refresh_tokens
            .find_one(doc! { "_id": hash_hex(hash) })
            .await
            .ctx("Failed to look up a refresh token")?;
        found.map(|d| get_id(&d, "familyId")).transpose()
    }

    async fn revoke_family(&self, family: Id, at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let mut set = doc! { "revoked": true };
        if let Some(at) = at {
            set.insert("updatedAt", date(at));
        }
        self.c
            .refresh_families
            .update_one(doc! { "_id": oid(family) }, doc! { "$set": set })
            .await
            .ctx("Failed to revoke a refresh-token family")?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for MongoStore {
    async fn create_family(&self, grant: &RefreshGrant) -> StoreResult<()> {
        let family = doc! {
            "_id": oid(grant.family_id),
            "userId": oid(grant.user_id),
            "currentHash": hash_hex(&grant.token_hash),
            "revoked": false,
            "expiresAt": date(grant.expires_at),
            "createdAt": date(grant.issued_at),
            "updatedAt": date(grant.issued_at),
        };
        let first = (grant.token_hash, grant.family_id, grant.issued_at);
        // The family and its first token together, as the embedded store writes them.
        self.transaction(
            "Failed to insert a refresh-token family",
            (self.c.clone(), family, first),
            |s, (c, family, (hash, family_id, at))| {
                Box::pin(async move {
                    c.refresh_families
                        .insert_one(family.clone())
                        .session(&mut *s)
                        .await?;
                    record_token_in(s, c, hash, *family_id, *at).await
                })
            },
        )
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
        let rotation = Rotation {
            c: self.c.clone(),
            presented,
            next_hash,
            now,
            expires_at,
            grace,
        };
        // One transaction, as the embedded store does: the successor's record and the family's
        // move commit together or not at all, and the driver retries a commit whose outcome it
        // did not learn (with the same transaction), instead of the caller presenting the
        // rotated-away token again and being taken for a reuse.
        self.transaction("Failed to rotate a refresh token", rotation, |s, r| {
            Box::pin(rotate_in(s, r))
        })
        .await
    }

    async fn revoke_family_of(&self, presented: [u8; 32]) -> StoreResult<()> {
        match self.family_of(&presented).await? {
            Some(family) => self.revoke_family(family, None).await,
            None => Ok(()),
        }
    }
}

/// Records that `hash` was issued to `family` at `at` (kept as first recorded).
async fn record_token_in(
    s: &mut ClientSession,
    c: &super::Collections,
    hash: &[u8; 32],
    family: Id,
    at: DateTime<Utc>,
) -> mongodb::error::Result<()> {
    c.refresh_tokens
        .update_one(
            doc! { "_id": hash_hex(hash) },
            doc! { "$setOnInsert": { "familyId": oid(family), "issuedAt": date(at) } },
        )
        .upsert(true)
        .session(&mut *s)
        .await?;
    Ok(())
}

/// What a rotation transaction needs.
struct Rotation {
    c: std::sync::Arc<super::Collections>,
    presented: [u8; 32],
    next_hash: [u8; 32],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    grace: Duration,
}

/// The rotation of `r.presented` (see the module doc), inside a transaction.
async fn rotate_in(
    s: &mut ClientSession,
    r: &mut Rotation,
) -> mongodb::error::Result<RotateOutcome> {
    let (c, presented, next_hash, now) = (&r.c, r.presented, r.next_hash, r.now);
    let known = c
        .refresh_tokens
        .find_one(doc! { "_id": hash_hex(&presented) })
        .session(&mut *s)
        .await?;
    let Some(family_id) = known
        .map(|d| get_id(&d, "familyId"))
        .transpose()
        .map_err(Refusal::corrupt)?
    else {
        return Ok(RotateOutcome::Invalid);
    };
    // Known before it becomes current, so a later reuse of it is always recognised.
    record_token_in(s, c, &next_hash, family_id, now).await?;
    let rotated = c
        .refresh_families
        .find_one_and_update(
            doc! {
                "_id": oid(family_id),
                "currentHash": hash_hex(&presented),
                "revoked": false,
                "expiresAt": { "$gt": date(now) },
            },
            doc! { "$set": {
                "currentHash": hash_hex(&next_hash),
                "previousHash": hash_hex(&presented),
                "rotatedAt": date(now),
                "expiresAt": date(r.expires_at),
                "updatedAt": date(now),
            } },
        )
        .return_document(ReturnDocument::After)
        .session(&mut *s)
        .await?;
    if let Some(family) = rotated {
        let user_id = get_id(&family, "userId").map_err(Refusal::corrupt)?;
        return Ok(RotateOutcome::Rotated { user_id, family_id });
    }
    let family = c
        .refresh_families
        .find_one(doc! { "_id": oid(family_id) })
        .session(&mut *s)
        .await?;
    let Some(family) = family else {
        return Ok(RotateOutcome::Invalid);
    };
    let outcome = after_lost_race(&family, family_id, presented, next_hash, now, r.grace)
        .map_err(Refusal::corrupt)?;
    if let RotateOutcome::Reused { .. } = outcome {
        c.refresh_families
            .update_one(
                doc! { "_id": oid(family_id) },
                doc! { "$set": { "revoked": true, "updatedAt": date(now) } },
            )
            .session(&mut *s)
            .await?;
    }
    Ok(outcome)
}

/// What a rotation that did not match its family makes of the family as it is: a revoked or
/// expired family is `Invalid`; one that moved on to the successor this caller asks for, less
/// than `grace` ago, gives that successor too; any other move is a reuse.
fn after_lost_race(
    family: &Document,
    family_id: Id,
    presented: [u8; 32],
    next_hash: [u8; 32],
    now: DateTime<Utc>,
    grace: Duration,
) -> StoreResult<RotateOutcome> {
    if get_bool(family, "revoked")? {
        return Ok(RotateOutcome::Invalid);
    }
    let current = get_str(family, "currentHash")?;
    if current == hash_hex(&presented) {
        // Current, not revoked, yet not rotated: expired.
        return Ok(RotateOutcome::Invalid);
    }
    let rotated_at = get_opt_time(family, "rotatedAt")?;
    let within_grace = get_opt_str(family, "previousHash")?.as_deref()
        == Some(hash_hex(&presented).as_str())
        && current == hash_hex(&next_hash)
        && !grace.is_zero()
        && rotated_at.is_some_and(|at| {
            now - at < chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX)
        })
        && get_time(family, "expiresAt")? > now;
    Ok(if within_grace {
        RotateOutcome::Rotated {
            user_id: get_id(family, "userId")?,
            family_id,
        }
    } else {
        RotateOutcome::Reused { family_id }
    })
}

//! Turning driver errors into the storage error type: duplicate keys (E11000) become
//! a `Conflict` naming the field, domain refusals raised inside a transaction come back out as
//! themselves, everything else is `Backend` with context.

use mongodb::error::{Error, ErrorKind, WriteFailure};

use crate::domain::Id;
use crate::storage::{Conflict, StoreError, StoreResult, UniqueField};

/// MongoDB's duplicate-key error code.
pub const DUPLICATE_KEY: i32 = 11000;

/// `.ctx("Failed to …")` on driver results: any error becomes `Backend` with that context.
pub trait MongoContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> MongoContext<T> for Result<T, Error> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| backend(e, context))
    }
}

/// A driver error as `Backend` with `context`, unless it carries a [`Refusal`] raised inside a
/// transaction callback, which comes back out as its storage error.
pub fn backend(err: Error, context: &'static str) -> StoreError {
    if let Some(refusal) = err.get_custom::<Refusal>() {
        return refusal.clone().into();
    }
    StoreError::Backend(anyhow::Error::new(err).context(context))
}

/// The server error code of a command or write error, if it has one.
pub fn code(err: &Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// Whether `err` is a duplicate-key error (a unique index refused the write).
pub fn is_duplicate_key(err: &Error) -> bool {
    code(err) == Some(DUPLICATE_KEY)
}

/// The server's message of a write or command error.
fn message(err: &Error) -> Option<&str> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(&e.message),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(&e.message),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.message.as_str()),
        _ => None,
    }
}

/// The name of the index a duplicate-key error names: MongoDB writes
/// `E11000 duplicate key error collection: db.users index: email_unique dup key: {…}`.
fn duplicate_index(message: &str) -> Option<&str> {
    let rest = message.split_once(" index: ")?.1;
    rest.split_whitespace().next()
}

/// Maps an insert or update error on a collection with unique indexes: a duplicate key on
/// the index whose name contains `fragment` becomes the `Conflict` of the first matching
/// `(fragment, conflict)` pair, otherwise (`_id`) `Taken(Id)`; anything else is `Backend`.
pub fn unique_violation(
    err: Error,
    fields: &[(&str, Conflict)],
    context: &'static str,
) -> StoreError {
    if !is_duplicate_key(&err) {
        return backend(err, context);
    }
    let msg = message(&err).unwrap_or_default();
    // Servers that do not follow MongoDB's message format still name the index somewhere.
    let index = duplicate_index(msg).unwrap_or(msg);
    for (fragment, conflict) in fields {
        if index.contains(fragment) {
            return StoreError::Conflict(conflict.clone());
        }
    }
    StoreError::Conflict(Conflict::Taken(UniqueField::Id))
}

/// A domain refusal raised inside a transaction callback (carried through the driver as a
/// custom error so that the transaction is aborted and nothing is written).
#[derive(Debug, Clone)]
pub enum Refusal {
    NotFound,
    Conflict(Conflict),
    InsufficientStock(Vec<Id>),
    /// A stored document did not decode (the message says which field and why).
    Corrupt(String),
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound => StoreError::NotFound,
            Refusal::Conflict(what) => StoreError::Conflict(what),
            Refusal::InsufficientStock(ids) => StoreError::InsufficientStock(ids),
            Refusal::Corrupt(message) => StoreError::backend(anyhow::anyhow!(message)),
        }
    }
}

impl Refusal {
    /// The refusal as a driver error, to return from a transaction callback.
    pub fn into_error(self) -> Error {
        Error::custom(self)
    }

    /// A decoding failure inside a transaction callback, as a driver error.
    pub fn corrupt(err: StoreError) -> Error {
        let message = match err {
            StoreError::Backend(e) => format!("{e:#}"),
            other => other.to_string(),
        };
        Refusal::Corrupt(message).into_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_name_is_read_from_mongodbs_duplicate_key_message() {
        let msg = r#"E11000 duplicate key error collection: shop.users index: users_email_unique dup key: { email: "username@example.com" }"#;
        assert_eq!(duplicate_index(msg), Some("users_email_unique"));
        assert_eq!(duplicate_index("some other message"), None);
    }

    #[test]
    fn a_refusal_survives_the_trip_through_a_driver_error() {
        let err = Refusal::Conflict(Conflict::IdempotencyKeyTaken).into_error();
        assert!(matches!(
            backend(err, "ctx"),
            StoreError::Conflict(Conflict::IdempotencyKeyTaken)
        ));
        let err = Error::custom(42u8);
        assert!(matches!(backend(err, "ctx"), StoreError::Backend(_)));
    }
}

//! What a storage write collided with: the typed payload of `StoreError::Conflict`. Backends
//! build it, services and HTTP match on it, so a new state or unique field is a compile error
//! wherever it is not handled rather than a string nobody parses.

use crate::domain::{OrderStatus, OutboxStatus};

/// A condition a write required did not hold; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A unique field already holds this value.
    #[error("{0} is taken")]
    Taken(UniqueField),
    /// The user already used this idempotency key.
    #[error("the idempotency key is taken")]
    IdempotencyKeyTaken,
    /// The order is in a status the change is not allowed from.
    #[error("not allowed while the order is {}", .0.as_str())]
    OrderStatus(OrderStatus),
    /// The outbox event is in a status the change is not allowed from.
    #[error("not allowed while the event is {}", .0.as_str())]
    OutboxStatus(OutboxStatus),
    /// The user has as many open orders as the cap allows.
    #[error("too many open orders")]
    OpenOrders,
    /// A document a transaction decided on changed before the transaction wrote (only a server
    /// that does not isolate transactions lets this through).
    #[error("{0} changed during the transaction")]
    Changed(&'static str),
}

/// A field whose values are unique across its collection or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// A repeated primary key.
    Id,
    Email,
    Username,
    Sku,
}

impl UniqueField {
    /// The field's name as clients see it in request bodies and problem details.
    pub fn as_str(self) -> &'static str {
        match self {
            UniqueField::Id => "id",
            UniqueField::Email => "email",
            UniqueField::Username => "username",
            UniqueField::Sku => "sku",
        }
    }
}

impl std::fmt::Display for UniqueField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Conflict {
    /// The status the resource is in, for a status conflict.
    pub fn current_status(&self) -> Option<&'static str> {
        match self {
            Conflict::OrderStatus(s) => Some(s.as_str()),
            Conflict::OutboxStatus(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

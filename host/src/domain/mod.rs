//! Domain values and rules: identifiers, money, users, products, orders and their state
//! machine, outbox events. Everything here parses at the edge and does no I/O; it knows no
//! HTTP or database type.

pub mod field;
pub mod id;
pub mod money;
pub mod order;
pub mod outbox;
pub mod product;
pub mod user;

pub use field::{FieldError, PageLimit};
pub use id::Id;
pub use money::{Currency, Money};
pub use order::{Order, OrderItem, OrderStatus, ShippingAddress, TaxLineRecord};
pub use outbox::{EventType, OutboxEvent, OutboxStatus};
pub use product::{Product, ProductPatch};
pub use user::{Email, Password, Role, User, Username};

/// Why a value from the outside world was refused: a stable code plus a human message.
/// The HTTP layer turns it into one `errors[]` entry of a 422 problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Stable, kebab-case reason clients can branch on ("too-short", "invalid-format").
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ParseError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

//! The import port: writing records carried over from another system (`orderd migrate node`)
//! as they are — kept ids, statuses and timestamps — where the normal paths would take stock,
//! stamp the current time or refuse a status.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{Order, OutboxEvent};

/// Writes imported records; every call is idempotent by the record's id.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// In one transaction: inserts `order` as given (status, totals and timestamps kept; no
    /// stock is taken, the source system already took it) and `event` when given. When an
    /// order with that id already exists nothing is written and the result is `false`.
    async fn import_order(&self, order: &Order, event: Option<&OutboxEvent>) -> StoreResult<bool>;
}

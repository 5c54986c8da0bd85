//! The order size bound that keeps placement and delivery consistent: an order is accepted
//! only if every plugin input it will ever be part of fits the plugin input cap — the draft
//! the validation and tax slots see now, and the stored order the e-mail slot renders later
//! (larger: every line gains its subtotal and tax, the order its totals and timestamps). An
//! order that would not fit is refused at placement with 422 `order-too-large` on `items`,
//! never accepted and then failed by the consumer on every retry.

use rule_types::OrderDraft;
use serde::Serialize;

use crate::delivery::consumer::email::stored_order;
use crate::domain::{Order, OrderStatus, User};
use crate::plugins::Slot;
use crate::plugins::native::RuleProvider;

use super::{FieldError, OrderError};

/// Stable code of the refusal.
pub const ORDER_TOO_LARGE: &str = "order-too-large";

/// Refuses `draft` when it is larger than the validation or tax slot accepts.
pub fn check_draft(rules: &dyn RuleProvider, draft: &OrderDraft) -> Result<(), OrderError> {
    for slot in [Slot::Validation, Slot::Tax] {
        if let Some(cap) = rules.input_cap_bytes(slot) {
            fits(json_len(draft), cap, "the order")?;
        }
    }
    Ok(())
}

/// Refuses `order` (priced and taxed, not yet stored) when the e-mail slot could not render
/// it: its stored form is measured in the largest shape it takes, with the longest status and
/// a cancellation time.
pub fn check_stored(
    rules: &dyn RuleProvider,
    order: &Order,
    customer: &User,
) -> Result<(), OrderError> {
    let Some(cap) = rules.input_cap_bytes(Slot::Email) else {
        return Ok(());
    };
    let mut largest = order.clone();
    largest.status = OrderStatus::Processing;
    largest.cancelled_at = Some(order.created_at);
    fits(
        json_len(&stored_order(&largest, customer)),
        cap,
        "the order's e-mail input",
    )
}

/// Refuses `what` when its `size` exceeds `cap`.
fn fits(size: usize, cap: usize, what: &str) -> Result<(), OrderError> {
    if size <= cap {
        return Ok(());
    }
    Err(OrderError::Invalid(vec![FieldError::new(
        "items",
        ORDER_TOO_LARGE,
        format!(
            "{what} would be {size} bytes where the rules accept {cap}; split the order into smaller ones"
        ),
    )]))
}

/// Length of `value` as JSON, without building the text.
fn json_len(value: &impl Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing these plain structs cannot fail; count a failure as too large.
    serde_json::to_writer(&mut counter, value).map_or(usize::MAX, |()| counter.0)
}

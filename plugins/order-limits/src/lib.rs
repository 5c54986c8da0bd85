//! `order-limits`, the default validation rule: quantity range per line, line count,
//! repeated products, currency and an order total cap, all configurable.
//!
//! # Config
//!
//! | key | value | default |
//! |---|---|---|
//! | `min-quantity` | smallest quantity per line, ≥ 0 | `1` |
//! | `max-quantity` | largest quantity per line, ≥ 1 and ≥ `min-quantity` | `100` |
//! | `max-lines` | most lines per order, ≥ 1 | `50` |
//! | `allow-duplicate-products` | `true` or `false`: may two lines order one product | `false` |
//! | `max-total` | largest total before tax, minor units, ≥ 0 | `100000000` (1,000,000.00) |
//!
//! Any other key or an invalid value fails the call with `bad-config` naming the key.
//!
//! # Violations
//!
//! Every breach is reported, not only the first; order-level ones come first, then each line
//! in order; at most [`MAX_VIOLATIONS`]. The codes (see [`codes`]) are stable: API clients
//! branch on them.
//!
//! The logic ([`validate`]) is plain Rust; [`OrderLimits`] implements the SDK's
//! `ValidationRule` with it and `orderd_rules::export_validation_rule!` makes it a
//! `shop:rules/validation` component when built for `wasm32-wasip2`.

mod config;
mod logic;

pub use config::LimitsConfig;
pub use logic::{MAX_VIOLATIONS, validate};

use orderd_rules::{OrderDraft, PluginError, ValidationRule, Violation};

/// The rule as the SDK exports it.
pub struct OrderLimits;

impl ValidationRule for OrderLimits {
    fn validate(
        draft: &OrderDraft,
        config: &[(String, String)],
    ) -> Result<Vec<Violation>, PluginError> {
        validate(draft, config)
    }
}

orderd_rules::export_validation_rule!(OrderLimits);

/// The stable violation codes of this rule.
pub mod codes {
    /// The order has no lines (reported alone).
    pub const EMPTY_ORDER: &str = "empty-order";
    /// More lines than `max-lines`.
    pub const TOO_MANY_LINES: &str = "too-many-lines";
    /// A line's quantity is outside `min-quantity..=max-quantity`; `item-index` names it.
    pub const QUANTITY_OUT_OF_RANGE: &str = "quantity-out-of-range";
    /// A product already ordered on an earlier line; `item-index` names the repeat.
    pub const DUPLICATE_PRODUCT: &str = "duplicate-product";
    /// A line priced in another currency than the order; `item-index` names it.
    pub const CURRENCY_MISMATCH: &str = "currency-mismatch";
    /// The sum of unit price × quantity is above `max-total`.
    pub const TOTAL_OVER_LIMIT: &str = "total-over-limit";
}

/// At most `max` characters of `s`, so a message stays short whatever the input.
fn clip(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end])
}

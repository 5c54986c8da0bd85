//! `gst-tax`, the default tax rule: Indian GST at 18% on every line unless the operator sets
//! other rates.
//!
//! # Config
//!
//! | key | value | default |
//! |---|---|---|
//! | `rate.default` | rate of lines without a category rate, basis points 0..=10000 | `1800` (18%) |
//! | `rate.<category>` | rate of lines of that catalog category (e.g. `rate.essentials=500`) | — |
//! | `rate-name` | name reported for the default rate; category rates are `<rate-name>-<category>` | `gst` |
//!
//! Any other key, a rate outside 0..=10000 or an empty name fails the call with `bad-config`.
//!
//! # Rounding
//!
//! Each line is taxed on its own: `taxable = unit price × quantity` (exact, in minor units),
//! `tax = (taxable × bps + 5000) / 10000` in integer arithmetic — the tax rounded half-up
//! to the minor unit (0.5 paise becomes 1 paisa, 0.4999 becomes 0). The order's total tax is
//! the sum of the rounded line taxes, never a rounding of the summed exact taxes. A line at
//! a 0% rate still gets a tax line, with tax 0. `by-rate` holds one entry per distinct
//! (rate name, rate) in the order the rates first appear.
//!
//! # Errors
//!
//! `bad-config`; `currency-mismatch` (a line not priced in the order's currency);
//! `negative-amount`; `amount-overflow` (an amount beyond 64-bit minor units).
//!
//! The logic ([`calculate`]) is plain Rust; [`GstTax`] implements the SDK's `TaxRule` with it
//! and `orderd_rules::export_tax_rule!` makes it a `shop:rules/tax` component when built for
//! `wasm32-wasip2`.

mod config;
mod logic;

pub use config::{DEFAULT_RATE_BPS, DEFAULT_RATE_NAME, MAX_RATE_BPS, Rate, TaxConfig};
pub use logic::{calculate, line_taxable, tax_half_up};

use orderd_rules::{OrderDraft, PluginError, TaxBreakdown, TaxRule};

/// The rule as the SDK exports it.
pub struct GstTax;

impl TaxRule for GstTax {
    fn calculate(
        draft: &OrderDraft,
        config: &[(String, String)],
    ) -> Result<TaxBreakdown, PluginError> {
        calculate(draft, config)
    }
}

orderd_rules::export_tax_rule!(GstTax);

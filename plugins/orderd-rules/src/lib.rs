//! `orderd-rules`: the guest SDK for orderd rule plugins.
//!
//! A rule is plain Rust on the contract types (re-exported here from `rule-types`): implement
//! one trait — [`TaxRule`], [`ValidationRule`] or [`EmailRenderer`] — and export it with one
//! macro — [`export_tax_rule!`], [`export_validation_rule!`] or [`export_email_renderer!`]:
//!
//! ```
//! use orderd_rules::{Money, OrderDraft, PluginError, TaxBreakdown, TaxRule};
//!
//! struct NoTax;
//!
//! impl TaxRule for NoTax {
//!     fn calculate(draft: &OrderDraft, _config: &[(String, String)]) -> Result<TaxBreakdown, PluginError> {
//!         let zero = Money::new(0, draft.currency.as_str());
//!         Ok(TaxBreakdown { lines: vec![], by_rate: vec![], total_tax: zero })
//!     }
//! }
//!
//! orderd_rules::export_tax_rule!(NoTax);
//! ```
//!
//! Built for `wasm32` the macro exports the rule as a component of the slot's world
//! (`shop:rules@0.1.0`): the SDK runs `wit_bindgen::generate!` for the three worlds and
//! converts the generated types to and from the plain ones ([`wit`], wasm32 only). Built
//! natively the macro expands to nothing, so the same crate is unit-tested with `cargo test`,
//! and [`testing`] runs a directory of JSON fixtures against the rule.

pub use rule_types::fixture;
pub use rule_types::{
    Address, Config, Customer, LineItem, Money, OrderDraft, OrderLine, PluginError, RateTotal,
    RenderedEmail, StoredOrder, TaxBreakdown, TaxLine, Violation, config_get,
};

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
pub mod wit;

/// A rule for the `tax` slot (world `tax-rules`).
pub trait TaxRule {
    /// The tax on every line of `draft`, under the operator's `config` (key/value pairs in
    /// the order given; the last value of a key wins).
    fn calculate(
        draft: &OrderDraft,
        config: &[(String, String)],
    ) -> Result<TaxBreakdown, PluginError>;
}

/// A rule for the `validation` slot (world `order-validation`).
pub trait ValidationRule {
    /// Every reason `draft` may not be placed; an empty list accepts it.
    fn validate(
        draft: &OrderDraft,
        config: &[(String, String)],
    ) -> Result<Vec<Violation>, PluginError>;
}

/// A renderer for the `email` slot (world `email-render`).
pub trait EmailRenderer {
    /// The confirmation of a placed order.
    fn render_confirmation(
        order: &StoredOrder,
        config: &[(String, String)],
    ) -> Result<RenderedEmail, PluginError>;

    /// The notice that an order was cancelled.
    fn render_cancellation(
        order: &StoredOrder,
        config: &[(String, String)],
    ) -> Result<RenderedEmail, PluginError>;
}

/// Exports a [`TaxRule`] as the component's `shop:rules/tax` interface (wasm32 only; natively
/// it expands to nothing). Use it once per crate.
#[macro_export]
macro_rules! export_tax_rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type OrderdTaxExport = $crate::wit::TaxExport<$rule>;
    $crate::__export_tax_rules_impl!(OrderdTaxExport with_types_in $crate::wit::tax);
        };
    };
}

/// Exports a [`ValidationRule`] as the component's `shop:rules/validation` interface (wasm32
/// only; natively it expands to nothing). Use it once per crate.
#[macro_export]
macro_rules! export_validation_rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type OrderdValidationExport = $crate::wit::ValidationExport<$rule>;
            $crate::__export_order_validation_impl!(
                OrderdValidationExport with_types_in $crate::wit::validation
            );
        };
    };
}

/// Exports an [`EmailRenderer`] as the component's `shop:rules/email` interface (wasm32 only;
/// natively it expands to nothing). Use it once per crate.
#[macro_export]
macro_rules! export_email_renderer {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type OrderdEmailExport = $crate::wit::EmailExport<$rule>;
    $crate::__export_email_render_impl!(OrderdEmailExport with_types_in $crate::wit::email);
        };
    };
}

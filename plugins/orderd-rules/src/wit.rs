//! The component face of the SDK (wasm32 only): `wit_bindgen::generate!` for the three
//! worlds of `shop:rules@0.1.0`, sharing one generated `types` module, and the conversions
//! between those generated types and the plain `rule-types` ones. The `export_*!` macros
//! wrap a rule in one of the `*Export` adapters below and hand it to the generated exporter.

use core::marker::PhantomData;

use crate::{EmailRenderer, TaxRule, ValidationRule};

/// Bindings of the `tax-rules` world; their `types` module is the one every world uses.
pub mod tax {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tax-rules",
        pub_export_macro: true,
        export_macro_name: "__export_tax_rules",
        default_bindings_module: "orderd_rules::wit::tax",
    });
}

/// Bindings of the `order-validation` world.
pub mod validation {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "order-validation",
        pub_export_macro: true,
        export_macro_name: "__export_order_validation",
        default_bindings_module: "orderd_rules::wit::validation",
        with: { "shop:rules/types@0.1.0": crate::wit::tax::shop::rules::types },
    });
}

/// Bindings of the `email-render` world.
pub mod email {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "email-render",
        pub_export_macro: true,
        export_macro_name: "__export_email_render",
        default_bindings_module: "orderd_rules::wit::email",
        with: { "shop:rules/types@0.1.0": crate::wit::tax::shop::rules::types },
    });
}

use tax::shop::rules::types as w;

/// Exports a [`TaxRule`] `R` (see [`crate::export_tax_rule!`]).
pub struct TaxExport<R>(PhantomData<R>);

impl<R: TaxRule> tax::exports::shop::rules::tax::Guest for TaxExport<R> {
    fn calculate(
        draft: w::OrderDraft,
        config: w::Config,
    ) -> Result<w::TaxBreakdown, w::PluginError> {
        R::calculate(&draft_from_wit(draft), &config)
            .map(breakdown_to_wit)
            .map_err(error_to_wit)
    }
}

/// Exports a [`ValidationRule`] `R` (see [`crate::export_validation_rule!`]).
pub struct ValidationExport<R>(PhantomData<R>);

impl<R: ValidationRule> validation::exports::shop::rules::validation::Guest
    for ValidationExport<R>
{
    fn validate(
        draft: w::OrderDraft,
        config: w::Config,
    ) -> Result<Vec<w::Violation>, w::PluginError> {
        R::validate(&draft_from_wit(draft), &config)
            .map(|list| list.into_iter().map(violation_to_wit).collect())
            .map_err(error_to_wit)
    }
}

/// Exports an [`EmailRenderer`] `R` (see [`crate::export_email_renderer!`]).
pub struct EmailExport<R>(PhantomData<R>);

impl<R: EmailRenderer> email::exports::shop::rules::email::Guest for EmailExport<R> {
    fn render_confirmation(
        order: w::StoredOrder,
        config: w::Config,
    ) -> Result<w::RenderedEmail, w::PluginError> {
        R::render_confirmation(&order_from_wit(order), &config)
            .map(email_to_wit)
            .map_err(error_to_wit)
    }

    fn render_cancellation(
        order: w::StoredOrder,
        config: w::Config,
    ) -> Result<w::RenderedEmail, w::PluginError> {
        R::render_cancellation(&order_from_wit(order), &config)
            .map(email_to_wit)
            .map_err(error_to_wit)
    }
}

fn money_from_wit(m: w::Money) -> crate::Money {
    crate::Money {
        amount: m.amount,
        currency: m.currency,
    }
}

fn money_to_wit(m: crate::Money) -> w::Money {
    w::Money {
        amount: m.amount,
        currency: m.currency,
    }
}

fn customer_from_wit(c: w::Customer) -> crate::Customer {
    crate::Customer {
        id: c.id,
        email: c.email,
        name: c.name,
    }
}

fn address_from_wit(a: w::Address) -> crate::Address {
    crate::Address {
        country: a.country,
        region: a.region,
        postal_code: a.postal_code,
    }
}

fn draft_from_wit(d: w::OrderDraft) -> crate::OrderDraft {
    crate::OrderDraft {
        order_id: d.order_id,
        customer: customer_from_wit(d.customer),
        items: d
            .items
            .into_iter()
            .map(|i| crate::LineItem {
                product_id: i.product_id,
                sku: i.sku,
                name: i.name,
                category: i.category,
                unit_price: money_from_wit(i.unit_price),
                quantity: i.quantity,
            })
            .collect(),
        currency: d.currency,
        shipping_address: d.shipping_address.map(address_from_wit),
    }
}

fn order_from_wit(o: w::StoredOrder) -> crate::StoredOrder {
    crate::StoredOrder {
        order_id: o.order_id,
        status: o.status,
        customer: customer_from_wit(o.customer),
        items: o
            .items
            .into_iter()
            .map(|l| crate::OrderLine {
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                category: l.category,
                unit_price: money_from_wit(l.unit_price),
                quantity: l.quantity,
                subtotal: money_from_wit(l.subtotal),
                tax: money_from_wit(l.tax),
            })
            .collect(),
        currency: o.currency,
        subtotal: money_from_wit(o.subtotal),
        tax_total: money_from_wit(o.tax_total),
        total: money_from_wit(o.total),
        shipping_address: o.shipping_address.map(address_from_wit),
        created_at: o.created_at,
        cancelled_at: o.cancelled_at,
    }
}

fn breakdown_to_wit(b: crate::TaxBreakdown) -> w::TaxBreakdown {
    w::TaxBreakdown {
        lines: b
            .lines
            .into_iter()
            .map(|l| w::TaxLine {
                item_index: l.item_index,
                rate_name: l.rate_name,
                rate_bps: l.rate_bps,
                taxable: money_to_wit(l.taxable),
                tax: money_to_wit(l.tax),
            })
            .collect(),
        by_rate: b
            .by_rate
            .into_iter()
            .map(|r| w::RateTotal {
                rate_name: r.rate_name,
                rate_bps: r.rate_bps,
                taxable: money_to_wit(r.taxable),
                tax: money_to_wit(r.tax),
            })
            .collect(),
        total_tax: money_to_wit(b.total_tax),
    }
}

fn violation_to_wit(v: crate::Violation) -> w::Violation {
    w::Violation {
        code: v.code,
        message: v.message,
        item_index: v.item_index,
    }
}

fn email_to_wit(e: crate::RenderedEmail) -> w::RenderedEmail {
    w::RenderedEmail {
        subject: e.subject,
        html: e.html,
        text: e.text,
    }
}

fn error_to_wit(e: crate::PluginError) -> w::PluginError {
    w::PluginError {
        code: e.code,
        message: e.message,
    }
}

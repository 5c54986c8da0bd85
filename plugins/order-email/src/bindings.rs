//! The component face of the e-mail rule: converts the wit-bindgen types of the
//! `email-render` world to and from `rule_types` and calls the renderers. Built only for
//! wasm32.

wit_bindgen::generate!({ path: "../../wit", world: "email-render" });

use exports::shop::rules::email::Guest;
use shop::rules::types as wit;

/// The exported component.
struct OrderEmail;

impl Guest for OrderEmail {
    fn render_confirmation(
        order: wit::StoredOrder,
        config: wit::Config,
    ) -> Result<wit::RenderedEmail, wit::PluginError> {
        to_wit(crate::render_confirmation(&order_from_wit(order), &config))
    }

    fn render_cancellation(
        order: wit::StoredOrder,
        config: wit::Config,
    ) -> Result<wit::RenderedEmail, wit::PluginError> {
        to_wit(crate::render_cancellation(&order_from_wit(order), &config))
    }
}

export!(OrderEmail);

fn to_wit(
    result: Result<rule_types::RenderedEmail, rule_types::PluginError>,
) -> Result<wit::RenderedEmail, wit::PluginError> {
    match result {
        Ok(e) => Ok(wit::RenderedEmail {
            subject: e.subject,
            html: e.html,
            text: e.text,
        }),
        Err(e) => Err(wit::PluginError {
            code: e.code,
            message: e.message,
        }),
    }
}

fn money(m: wit::Money) -> rule_types::Money {
    rule_types::Money {
        amount: m.amount,
        currency: m.currency,
    }
}

fn order_from_wit(o: wit::StoredOrder) -> rule_types::StoredOrder {
    rule_types::StoredOrder {
        order_id: o.order_id,
        status: o.status,
        customer: rule_types::Customer {
            id: o.customer.id,
            email: o.customer.email,
            name: o.customer.name,
        },
        items: o
            .items
            .into_iter()
            .map(|l| rule_types::OrderLine {
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                category: l.category,
                unit_price: money(l.unit_price),
                quantity: l.quantity,
                subtotal: money(l.subtotal),
                tax: money(l.tax),
            })
            .collect(),
        currency: o.currency,
        subtotal: money(o.subtotal),
        tax_total: money(o.tax_total),
        total: money(o.total),
        shipping_address: o.shipping_address.map(|a| rule_types::Address {
            country: a.country,
            region: a.region,
            postal_code: a.postal_code,
        }),
        created_at: o.created_at,
        cancelled_at: o.cancelled_at,
    }
}

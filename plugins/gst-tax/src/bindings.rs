//! The component face of the tax rule: converts the wit-bindgen types of the `tax-rules`
//! world to and from `rule_types` and calls [`crate::calculate`]. Built only for wasm32.

wit_bindgen::generate!({ path: "../../wit", world: "tax-rules" });

use exports::shop::rules::tax::Guest;
use shop::rules::types as wit;

/// The exported component.
struct GstTax;

impl Guest for GstTax {
    fn calculate(
        draft: wit::OrderDraft,
        config: wit::Config,
    ) -> Result<wit::TaxBreakdown, wit::PluginError> {
        crate::calculate(&draft_from_wit(draft), &config)
            .map(breakdown_to_wit)
            .map_err(|e| wit::PluginError {
                code: e.code,
                message: e.message,
            })
    }
}

export!(GstTax);

fn draft_from_wit(d: wit::OrderDraft) -> rule_types::OrderDraft {
    rule_types::OrderDraft {
        order_id: d.order_id,
        customer: rule_types::Customer {
            id: d.customer.id,
            email: d.customer.email,
            name: d.customer.name,
        },
        items: d
            .items
            .into_iter()
            .map(|i| rule_types::LineItem {
                product_id: i.product_id,
                sku: i.sku,
                name: i.name,
                category: i.category,
                unit_price: money_from_wit(i.unit_price),
                quantity: i.quantity,
            })
            .collect(),
        currency: d.currency,
        shipping_address: d.shipping_address.map(|a| rule_types::Address {
            country: a.country,
            region: a.region,
            postal_code: a.postal_code,
        }),
    }
}

fn money_from_wit(m: wit::Money) -> rule_types::Money {
    rule_types::Money {
        amount: m.amount,
        currency: m.currency,
    }
}

fn money_to_wit(m: rule_types::Money) -> wit::Money {
    wit::Money {
        amount: m.amount,
        currency: m.currency,
    }
}

fn breakdown_to_wit(b: rule_types::TaxBreakdown) -> wit::TaxBreakdown {
    wit::TaxBreakdown {
        lines: b
            .lines
            .into_iter()
            .map(|l| wit::TaxLine {
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
            .map(|r| wit::RateTotal {
                rate_name: r.rate_name,
                rate_bps: r.rate_bps,
                taxable: money_to_wit(r.taxable),
                tax: money_to_wit(r.tax),
            })
            .collect(),
        total_tax: money_to_wit(b.total_tax),
    }
}

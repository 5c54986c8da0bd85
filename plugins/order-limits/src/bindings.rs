//! The component face of the validation rule: converts the wit-bindgen types of the
//! `order-validation` world to and from `rule_types` and calls [`crate::validate`]. Built
//! only for wasm32.

wit_bindgen::generate!({ path: "../../wit", world: "order-validation" });

use exports::shop::rules::validation::Guest;
use shop::rules::types as wit;

/// The exported component.
struct OrderLimits;

impl Guest for OrderLimits {
    fn validate(
        draft: wit::OrderDraft,
        config: wit::Config,
    ) -> Result<Vec<wit::Violation>, wit::PluginError> {
        match crate::validate(&draft_from_wit(draft), &config) {
            Ok(violations) => Ok(violations
                .into_iter()
                .map(|v| wit::Violation {
                    code: v.code,
                    message: v.message,
                    item_index: v.item_index,
                })
                .collect()),
            Err(e) => Err(wit::PluginError {
                code: e.code,
                message: e.message,
            }),
        }
    }
}

export!(OrderLimits);

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
                unit_price: rule_types::Money {
                    amount: i.unit_price.amount,
                    currency: i.unit_price.currency,
                },
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

//! The built-in fixtures every candidate plugin is smoke-tested on before it is swapped in: a
//! small, ordinary order a sane plugin of any slot must handle without failing, and which
//! `orderd plugin new` copies into a fresh crate as its example input.

use rule_types::{Address, Customer, LineItem, Money, OrderDraft, OrderLine, StoredOrder};

/// A three-line INR draft across two categories, shipping to India.
pub fn draft() -> OrderDraft {
    let item = |n: u32, name: &str, category: &str, price: i64, quantity: u32| LineItem {
        product_id: format!("65f0c0ffee00000000000{n:03}"),
        sku: format!("SKU-{n:03}"),
        name: name.into(),
        category: category.into(),
        unit_price: Money::new(price, "INR"),
        quantity,
    };
    OrderDraft {
        order_id: None,
        customer: Customer {
            id: "65f0c0ffee0000000000c001".into(),
            email: "asha@example.com".into(),
            name: "asha".into(),
        },
        items: vec![
            item(1, "Basmati rice 5 kg", "essentials", 64_900, 2),
            item(2, "USB-C cable", "electronics", 49_950, 1),
            item(3, "Notebook <A5>", "stationery", 12_000, 3),
        ],
        currency: "INR".into(),
        shipping_address: Some(Address {
            country: "IN".into(),
            region: Some("Karnataka".into()),
            postal_code: Some("560001".into()),
        }),
    }
}

/// The fixture draft as a stored, processed order with 18% tax on every line.
pub fn stored_order() -> StoredOrder {
    let draft = draft();
    let items: Vec<OrderLine> = draft
        .items
        .iter()
        .map(|item| {
            let subtotal = item.unit_price.amount * i64::from(item.quantity);
            OrderLine {
                product_id: item.product_id.clone(),
                sku: item.sku.clone(),
                name: item.name.clone(),
                category: item.category.clone(),
                unit_price: item.unit_price.clone(),
                quantity: item.quantity,
                subtotal: Money::new(subtotal, "INR"),
                tax: Money::new((subtotal * 18 + 50) / 100, "INR"),
            }
        })
        .collect();
    let subtotal: i64 = items.iter().map(|l| l.subtotal.amount).sum();
    let tax: i64 = items.iter().map(|l| l.tax.amount).sum();
    StoredOrder {
        order_id: "65f0c0ffee0000000000a001".into(),
        status: "processed".into(),
        customer: draft.customer,
        items,
        currency: "INR".into(),
        subtotal: Money::new(subtotal, "INR"),
        tax_total: Money::new(tax, "INR"),
        total: Money::new(subtotal + tax, "INR"),
        shipping_address: draft.shipping_address,
        created_at: "2025-01-15T10:30:00Z".into(),
        cancelled_at: None,
    }
}

/// The fixture order after cancellation.
pub fn cancelled_order() -> StoredOrder {
    StoredOrder {
        status: "cancelled".into(),
        cancelled_at: Some("2025-01-15T11:00:00Z".into()),
        ..stored_order()
    }
}

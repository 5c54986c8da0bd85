//! The order the tax benchmarks price: five lines over four categories, so every rate path
//! of the GST rule runs. Shared by `tax_slot.rs` and `python_tax.rs`.

use rule_types::{Customer, LineItem, Money, OrderDraft};

pub fn five_line_order() -> OrderDraft {
    let line = |n: u32, price: i64, quantity: u32, category: &str| LineItem {
        product_id: format!("65f0c0ffee00000000000{n:03}"),
        sku: format!("SKU-{n}"),
        name: format!("Product {n}"),
        category: category.into(),
        unit_price: Money::new(price, "INR"),
        quantity,
    };
    OrderDraft {
        order_id: None,
        customer: Customer {
            id: "65f0c0ffee0000000000c0de".into(),
            email: "bench@example.com".into(),
            name: "bench".into(),
        },
        items: vec![
            line(1, 64_900, 2, "essentials"),
            line(2, 49_950, 1, "electronics"),
            line(3, 12_000, 3, "stationery"),
            line(4, 1_999, 5, "general"),
            line(5, 2_025, 1, "general"),
        ],
        currency: "INR".into(),
        shipping_address: None,
    }
}

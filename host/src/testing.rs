//! Building blocks for the tests (`host/tests`), the benches (`host/benches`) and the load tool
//! (`bench/`), which all write orders straight through the store: one way to spell the pending
//! order a placement writes, its stock takes and its `order.created` event. Not used by the
//! service itself.

use chrono::{DateTime, Utc};

use crate::domain::{Currency, Id, Order, OrderItem, OutboxEvent, Product, TaxLineRecord};
use crate::storage::StockTake;

/// What one order placement writes in its transaction.
pub struct Placement {
    pub order: Order,
    pub takes: Vec<StockTake>,
    pub event: OutboxEvent,
}

/// A pending order by `user_id` of `lines` (product, quantity) at `at`, each line taxed at
/// `tax_bps` basis points (rounded half up, recorded as a `gst` tax line when not zero), with
/// one stock take per line and its `order.created` event.
pub fn placement(
    user_id: Id,
    lines: &[(&Product, u32)],
    tax_bps: i64,
    at: DateTime<Utc>,
) -> Placement {
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|(p, quantity)| {
            let subtotal = p.price * i64::from(*quantity);
            OrderItem {
                product_id: p.id,
                sku: p.sku.clone(),
                name: p.name.clone(),
                category: p.category.clone(),
                unit_price: p.price,
                quantity: *quantity,
                subtotal,
                tax: (subtotal * tax_bps + 5_000) / 10_000,
            }
        })
        .collect();
    let tax_lines = if tax_bps == 0 {
        Vec::new()
    } else {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| TaxLineRecord {
                item_index: i as u32,
                rate_name: "gst".into(),
                rate_bps: tax_bps as u32,
                taxable: item.subtotal,
                tax: item.tax,
            })
            .collect()
    };
    let currency = lines
        .first()
        .map_or_else(|| Currency::parse("INR").expect("INR"), |(p, _)| p.currency);
    let order = Order::pending(user_id, currency, items, tax_lines, None, at);
    let takes = lines
        .iter()
        .map(|(p, quantity)| StockTake {
            product_id: p.id,
            quantity: *quantity,
        })
        .collect();
    let event = OutboxEvent::order_created(&order, at);
    Placement {
        order,
        takes,
        event,
    }
}

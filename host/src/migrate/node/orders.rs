//! The Node system's orders as orderd's: lines priced from their snapshot with 18% GST, the
//! status carried over, and whether the order is to be published.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document};

use super::fields::{object_id, object_id_of_any, present, rupees, string, type_name, whole};
use super::mapping::{
    DEFAULT_CATEGORY, GST_BPS, GST_RATE_NAME, Mapped, Note, Problems, Refused, created_at, finish,
    inr, updated_at,
};
use crate::domain::{Id, Order, OrderItem, OrderStatus, Product, TaxLineRecord};

/// What an order line takes from its product: the catalog values of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProduct {
    pub sku: String,
    pub name: String,
    pub category: String,
}

impl From<&Product> for LineProduct {
    fn from(p: &Product) -> Self {
        Self {
            sku: p.sku.clone(),
            name: p.name.clone(),
            category: p.category.clone(),
        }
    }
}

/// A mapped order and whether it is to be published (an `order.created` event written with it).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPlan {
    pub order: Order,
    pub publish: bool,
}

/// 18% of `taxable`, rounded half-up to the paisa, as the default tax plugin computes it.
fn gst(taxable: i64) -> i64 {
    (taxable * i64::from(GST_BPS) + 5_000) / 10_000
}

/// An order: `user` (or `userId`), `items[]` of `productId` (or `product`), `quantity` and
/// `price` (the snapshot, rupees), `status`, `emailSent`, `tax` and `totalAmount` (compared,
/// not kept), `createdAt`, `updatedAt`. Line names come from `products` (the migrated
/// catalog); a line whose product is gone keeps a placeholder and a note.
pub fn order(
    doc: &Document,
    products: &HashMap<Id, LineProduct>,
) -> Result<Mapped<OrderPlan>, Refused> {
    let mut p = Problems::default();
    let mut notes = Vec::new();
    let id = p.check(object_id(doc, "_id", "_id"));
    let user_id = p.check(object_id_of_any(doc, &["user", "userId"], "{key}"));
    let items = lines(doc, products, &mut p, &mut notes);
    let status = p.check(string(doc, "status", "status")).and_then(|s| {
        let sent = matches!(present(doc, "emailSent"), Some(Bson::Boolean(true)));
        match (s, sent) {
            ("Pending", _) => Some((OrderStatus::Pending, true)),
            ("Processed", _) => Some((OrderStatus::Processed, false)),
            ("Processing", true) => {
                notes.push(Note::new(
                    "status",
                    "Processing with emailSent: true: carried over as processed, not published",
                ));
                Some((OrderStatus::Processed, false))
            }
            ("Processing", false) => {
                notes.push(Note::new(
                    "status",
                    "Processing without emailSent: carried over as pending and published once \
                     (its confirmation is sent now)",
                ));
                Some((OrderStatus::Pending, true))
            }
            (other, _) => {
                p.push(
                    "status",
                    format!("is {other:?}, expected Pending, Processing or Processed"),
                );
                None
            }
        }
    });
    let created = id.map(|id| created_at(doc, id, &mut p));
    let updated = created.map(|c| updated_at(doc, c, &mut p));
    let value = match (id, user_id, items, status, created, updated) {
        (Some(id), Some(user_id), Some(items), Some((status, publish)), Some(c), Some(u)) => {
            let tax_lines = items
                .iter()
                .enumerate()
                .map(|(n, i)| TaxLineRecord {
                    item_index: n as u32,
                    rate_name: GST_RATE_NAME.to_owned(),
                    rate_bps: GST_BPS,
                    taxable: i.subtotal,
                    tax: i.tax,
                })
                .collect();
            let mut order = Order::pending(user_id, inr(), items, tax_lines, None, c);
            order.id = id;
            order.updated_at = u;
            if status == OrderStatus::Processed {
                order.mark(OrderStatus::Processed, u);
            }
            compare_total(doc, "tax", order.tax_total, &mut notes);
            compare_total(doc, "totalAmount", order.total, &mut notes);
            Some(OrderPlan { order, publish })
        }
        _ => None,
    };
    finish(p, value, notes)
}

/// The order's lines with their 18% GST; `None` when any line is refused.
fn lines(
    doc: &Document,
    products: &HashMap<Id, LineProduct>,
    p: &mut Problems,
    notes: &mut Vec<Note>,
) -> Option<Vec<OrderItem>> {
    let raw = match present(doc, "items") {
        Some(Bson::Array(a)) if !a.is_empty() => a,
        Some(Bson::Array(_)) => {
            p.push("items", "is empty");
            return None;
        }
        Some(other) => {
            p.push(
                "items",
                format!("is {}, expected an array", type_name(other)),
            );
            return None;
        }
        None => {
            p.push("items", "is missing");
            return None;
        }
    };
    let before = p.len();
    let mut items = Vec::with_capacity(raw.len());
    for (n, entry) in raw.iter().enumerate() {
        let Bson::Document(line) = entry else {
            p.push(
                &format!("items.{n}"),
                format!("is {}, expected a document", type_name(entry)),
            );
            continue;
        };
        let product_id = p.check(object_id_of_any(
            line,
            &["productId", "product"],
            &format!("items.{n}.{{key}}"),
        ));
        let quantity = p
            .check(whole(line, "quantity", &format!("items.{n}.quantity")))
            .and_then(|q| match u32::try_from(q) {
                Ok(q) if q >= 1 => Some(q),
                _ => {
                    p.push(
                        &format!("items.{n}.quantity"),
                        format!("is {q}, expected at least 1"),
                    );
                    None
                }
            });
        let price_field = format!("items.{n}.price");
        let price = p.check(rupees(line, "price", &price_field));
        if let Some(note) = price.and_then(|x| Note::rounding(&price_field, x)) {
            notes.push(note);
        }
        if let (Some(product_id), Some(quantity), Some(price)) = (product_id, quantity, price) {
            let Some(subtotal) = price.paise.checked_mul(i64::from(quantity)) else {
                p.push(&price_field, "times the quantity is too large");
                continue;
            };
            let catalog = products.get(&product_id).cloned().unwrap_or_else(|| {
                notes.push(Note::new(
                    format!("items.{n}.productId"),
                    format!(
                        "product {} was not migrated; the line keeps a placeholder name",
                        product_id.to_hex()
                    ),
                ));
                LineProduct {
                    sku: format!("node-{}", product_id.to_hex()),
                    name: format!("Product {}", product_id.to_hex()),
                    category: DEFAULT_CATEGORY.to_owned(),
                }
            });
            items.push(OrderItem {
                product_id,
                sku: catalog.sku,
                name: catalog.name,
                category: catalog.category,
                unit_price: price.paise,
                quantity,
                subtotal,
                tax: gst(subtotal),
            });
        }
    }
    (p.len() == before).then_some(items)
}

/// Notes a stored `tax`/`totalAmount` that differs from orderd's computation (orderd keeps its
/// own, consistent with the lines).
fn compare_total(doc: &Document, field: &str, computed: i64, notes: &mut Vec<Note>) {
    if present(doc, field).is_none() {
        return;
    }
    match rupees(doc, field, field) {
        Ok(stored) if stored.paise == computed => {}
        Ok(stored) => notes.push(Note::new(
            field,
            format!(
                "stored {} paise; orderd computes {computed} paise from the lines and 18% GST, and keeps that",
                stored.paise
            ),
        )),
        Err(problem) => notes.push(Note::new(
            problem.field,
            format!("{}; not compared", problem.reason),
        )),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, oid::ObjectId};

    use super::*;

    fn node_order(status: &str, extra: Document) -> Document {
        let mut d = doc! {
            "_id": ObjectId::new(),
            "userId": ObjectId::new(),
            "items": [{ "product": ObjectId::new(), "quantity": 3, "price": 12.5 }],
            "status": status,
        };
        d.extend(extra);
        d
    }

    #[test]
    fn a_pending_order_is_published_and_its_lines_carry_18_percent_gst() {
        let plan = order(&node_order("Pending", doc! {}), &HashMap::new()).unwrap();
        assert!(plan.value.publish);
        let o = &plan.value.order;
        assert_eq!(o.status, OrderStatus::Pending);
        assert_eq!((o.subtotal, o.tax_total, o.total), (3_750, 675, 4_425));
        assert_eq!(o.tax_lines[0].rate_bps, GST_BPS);
        // The line's product was not migrated: a placeholder and a note say so.
        assert!(o.items[0].name.starts_with("Product "));
        assert!(plan.notes.iter().any(|n| n.field == "items.0.productId"));
    }

    #[test]
    fn processing_becomes_processed_only_when_the_email_was_recorded_as_sent() {
        let sent = order(
            &node_order("Processing", doc! { "emailSent": true }),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(sent.value.order.status, OrderStatus::Processed);
        assert!(!sent.value.publish);
        let unsent = order(&node_order("Processing", doc! {}), &HashMap::new()).unwrap();
        assert_eq!(unsent.value.order.status, OrderStatus::Pending);
        assert!(unsent.value.publish);
        assert!(unsent.notes.iter().any(|n| n.field == "status"));
    }

    #[test]
    fn every_problem_of_an_order_is_reported_together() {
        let d = doc! { "_id": ObjectId::new(), "items": [], "status": "Lost" };
        let fields: Vec<String> = order(&d, &HashMap::new())
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["user|userId", "items", "status"]);
    }
}

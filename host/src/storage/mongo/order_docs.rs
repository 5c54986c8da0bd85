//! The stored shape of orders and idempotency records: line items, tax lines and the
//! shipping address as sub-documents, money as Int64 minor units, ids as ObjectIds, times as
//! BSON dates, the request hash as hex and the stored response as binary.

use chrono::{DateTime, Utc};
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};

use super::codec::{
    corrupt, date, get_bytes, get_currency, get_docs, get_enum, get_i64, get_id, get_opt_doc,
    get_opt_str, get_opt_time, get_str, get_time, get_u32, oid, opt_date,
};
use crate::domain::{Id, Order, OrderItem, OrderStatus, ShippingAddress, TaxLineRecord};
use crate::storage::{IdempotencyRecord, StoreResult};

pub(super) fn item_doc(i: &OrderItem) -> Document {
    doc! {
        "productId": oid(i.product_id),
        "sku": &i.sku,
        "name": &i.name,
        "category": &i.category,
        "unitPrice": i.unit_price,
        "quantity": i64::from(i.quantity),
        "subtotal": i.subtotal,
        "tax": i.tax,
    }
}

pub(super) fn item_from_doc(d: &Document) -> StoreResult<OrderItem> {
    Ok(OrderItem {
        product_id: get_id(d, "productId")?,
        sku: get_str(d, "sku")?,
        name: get_str(d, "name")?,
        category: get_str(d, "category")?,
        unit_price: get_i64(d, "unitPrice")?,
        quantity: get_u32(d, "quantity")?,
        subtotal: get_i64(d, "subtotal")?,
        tax: get_i64(d, "tax")?,
    })
}

pub(super) fn tax_line_doc(t: &TaxLineRecord) -> Document {
    doc! {
        "itemIndex": i64::from(t.item_index),
        "rateName": &t.rate_name,
        "rateBps": i64::from(t.rate_bps),
        "taxable": t.taxable,
        "tax": t.tax,
    }
}

pub(super) fn tax_line_from_doc(d: &Document) -> StoreResult<TaxLineRecord> {
    Ok(TaxLineRecord {
        item_index: get_u32(d, "itemIndex")?,
        rate_name: get_str(d, "rateName")?,
        rate_bps: get_u32(d, "rateBps")?,
        taxable: get_i64(d, "taxable")?,
        tax: get_i64(d, "tax")?,
    })
}

pub(super) fn opt_str(s: Option<&str>) -> Bson {
    s.map(Bson::from).unwrap_or(Bson::Null)
}

pub(super) fn address_doc(a: &ShippingAddress) -> Document {
    doc! {
        "country": &a.country,
        "region": opt_str(a.region.as_deref()),
        "postalCode": opt_str(a.postal_code.as_deref()),
    }
}

pub(super) fn address_from_doc(d: &Document) -> StoreResult<ShippingAddress> {
    Ok(ShippingAddress {
        country: get_str(d, "country")?,
        region: get_opt_str(d, "region")?,
        postal_code: get_opt_str(d, "postalCode")?,
    })
}

/// The order as stored; `eventSeq` counts its outbox events (the created event is 1).
pub(super) fn order_doc(o: &Order) -> Document {
    doc! {
        "_id": oid(o.id),
        "userId": oid(o.user_id),
        "status": o.status.as_str(),
        "currency": o.currency.as_str(),
        "items": o.items.iter().map(item_doc).collect::<Vec<_>>(),
        "subtotal": o.subtotal,
        "taxTotal": o.tax_total,
        "total": o.total,
        "taxLines": o.tax_lines.iter().map(tax_line_doc).collect::<Vec<_>>(),
        "shippingAddress": o.shipping_address.as_ref().map(|a| Bson::Document(address_doc(a))).unwrap_or(Bson::Null),
        "createdAt": date(o.created_at),
        "updatedAt": date(o.updated_at),
        "processingAt": opt_date(o.processing_at),
        "processedAt": opt_date(o.processed_at),
        "cancelledAt": opt_date(o.cancelled_at),
        "failedAt": opt_date(o.failed_at),
        "eventSeq": 1_i64,
    }
}

pub(super) fn order_from_doc(d: &Document) -> StoreResult<Order> {
    Ok(Order {
        id: get_id(d, "_id")?,
        user_id: get_id(d, "userId")?,
        status: get_enum(d, "status", OrderStatus::parse)?,
        currency: get_currency(d, "currency")?,
        items: get_docs(d, "items")?
            .into_iter()
            .map(item_from_doc)
            .collect::<StoreResult<_>>()?,
        subtotal: get_i64(d, "subtotal")?,
        tax_total: get_i64(d, "taxTotal")?,
        total: get_i64(d, "total")?,
        tax_lines: get_docs(d, "taxLines")?
            .into_iter()
            .map(tax_line_from_doc)
            .collect::<StoreResult<_>>()?,
        shipping_address: get_opt_doc(d, "shippingAddress")?
            .map(address_from_doc)
            .transpose()?,
        created_at: get_time(d, "createdAt")?,
        updated_at: get_time(d, "updatedAt")?,
        processing_at: get_opt_time(d, "processingAt")?,
        processed_at: get_opt_time(d, "processedAt")?,
        cancelled_at: get_opt_time(d, "cancelledAt")?,
        failed_at: get_opt_time(d, "failedAt")?,
    })
}

/// The `$set` of a transition to `to` at `at`: status, `updatedAt` and the status's own time.
pub(super) fn transition_set(to: OrderStatus, at: DateTime<Utc>) -> Document {
    let mut set = doc! { "status": to.as_str(), "updatedAt": date(at) };
    let stamp = match to {
        OrderStatus::Pending => None,
        OrderStatus::Processing => Some("processingAt"),
        OrderStatus::Processed => Some("processedAt"),
        OrderStatus::Cancelled => Some("cancelledAt"),
        OrderStatus::Failed => Some("failedAt"),
    };
    if let Some(field) = stamp {
        set.insert(field, date(at));
    }
    if to == OrderStatus::Pending {
        // Pending again only after a retry of a failed order, which is no longer failed.
        set.insert("failedAt", Bson::Null);
    }
    set
}

pub(super) fn statuses(from: &[OrderStatus]) -> Vec<&'static str> {
    from.iter().map(OrderStatus::as_str).collect()
}

/// The `_id` of an idempotency record: one key space per user.
pub(super) fn idempotency_id(user_id: Id, key: &str) -> String {
    format!("{}:{key}", user_id.to_hex())
}

pub(super) fn idempotency_doc(r: &IdempotencyRecord) -> Document {
    doc! {
        "_id": idempotency_id(r.user_id, &r.key),
        "userId": oid(r.user_id),
        "key": &r.key,
        "requestHash": hex::encode(r.request_hash),
        "status": i64::from(r.status),
        "responseBody": Binary { subtype: BinarySubtype::Generic, bytes: r.response_body.clone() },
        "createdAt": date(r.created_at),
    }
}

pub(super) fn idempotency_from_doc(d: &Document) -> StoreResult<IdempotencyRecord> {
    let hash_hex = get_str(d, "requestHash")?;
    let mut request_hash = [0u8; 32];
    hex::decode_to_slice(&hash_hex, &mut request_hash).map_err(|e| corrupt("requestHash", e))?;
    let status = get_i64(d, "status")?;
    Ok(IdempotencyRecord {
        user_id: get_id(d, "userId")?,
        key: get_str(d, "key")?,
        request_hash,
        status: u16::try_from(status)
            .map_err(|_| corrupt("status", format!("{status} is out of range")))?,
        response_body: get_bytes(d, "responseBody")?,
        created_at: get_time(d, "createdAt")?,
    })
}

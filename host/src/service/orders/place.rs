//! Placing an order, the hot path: parse → load the customer and products → price snapshot →
//! validation slot → tax slot → one store transaction (stock, order, outbox event and the
//! idempotency record together). Nothing is written unless every step succeeded.

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use rule_types::Customer;

use crate::domain::{Id, Order, OutboxEvent};
use crate::plugins::native::RuleProvider;
use crate::plugins::{FailureKind, PluginCallError, Slot};
use crate::service::idempotency::{IdempotencyKey, REPLAY_WINDOW};
use crate::storage::{Conflict, IdempotencyRecord, StockTake, Store, StoreError};
use crate::telemetry::ORDERS_PLACED_TOTAL;

use super::pricing::{self, TaxApplyError};
use super::{Actor, FieldError, OrderError, OrderRequest, size, store_failed};

/// Status stored with, and replayed for, a created order.
const CREATED: u16 = 201;

/// An `Idempotency-Key` sent with the request.
pub struct IdempotencyRequest<'a> {
    /// The parsed key.
    pub key: &'a IdempotencyKey,
    /// SHA-256 of the canonical request body, compared on replay.
    pub fingerprint: [u8; 32],
    /// Renders the response body stored for replays (the caller's representation of the
    /// created order), so a replay is byte-for-byte the first response.
    pub render: &'a (dyn Fn(&Order) -> Vec<u8> + Send + Sync),
}

/// What placing an order led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// A new order was committed with its `order.created` event.
    Created(Box<Order>),
    /// The key was used before with the same request: its stored response, unchanged.
    Replayed {
        /// The HTTP status first answered.
        status: u16,
        /// The body first answered.
        body: Vec<u8>,
    },
}

/// Places an order for `actor` (see the module docs for the steps). With an idempotency key,
/// a repeat of an earlier successful request is answered from the stored response and a
/// reuse with another request is refused; two concurrent requests with one key never create
/// two orders, because the key is recorded in the order's own transaction.
pub async fn place_order(
    store: &dyn Store,
    rules: &dyn RuleProvider,
    actor: Actor,
    request: &OrderRequest,
    idempotency: Option<IdempotencyRequest<'_>>,
) -> Result<Placed, OrderError> {
    place_order_capped(store, rules, actor, request, idempotency, None).await
}

/// [`place_order`], refused with [`OrderError::TooManyOpenOrders`] (nothing written) when
/// `max_open` is given and the customer already has that many orders pending or processing.
/// The store counts them inside the order's own transaction, so the cap costs no extra round
/// trip and concurrent orders cannot slip past it.
pub async fn place_order_capped(
    store: &dyn Store,
    rules: &dyn RuleProvider,
    actor: Actor,
    request: &OrderRequest,
    idempotency: Option<IdempotencyRequest<'_>>,
    max_open: Option<u32>,
) -> Result<Placed, OrderError> {
    if let Some(idem) = &idempotency
        && let Some(replay) = replay(store, actor, idem).await?
    {
        return Ok(replay);
    }

    let parsed = request.parse().map_err(OrderError::Invalid)?;
    let mut ids: Vec<Id> = parsed.lines.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let (user, products) = store
        .order_inputs(actor.id, &ids)
        .await
        .map_err(store_failed(
            "Failed to load the customer and products of an order",
        ))?;
    let user = user.ok_or(OrderError::UnknownUser)?;
    let catalog: HashMap<Id, _> = products.into_iter().map(|p| (p.id, p)).collect();
    let mut priced = pricing::price_lines(&parsed.lines, &catalog).map_err(OrderError::Invalid)?;

    let customer = Customer {
        id: user.id.to_hex(),
        email: user.email.as_str().to_owned(),
        name: user.username.as_str().to_owned(),
    };
    let draft = pricing::draft(&priced, customer, parsed.shipping_address.as_ref());
    size::check_draft(rules, &draft)?;
    let violations = rules
        .validate(&draft)
        .await
        .map_err(|e| rules_failed(Slot::Validation, e))?;
    if !violations.is_empty() {
        return Err(OrderError::Rejected(
            violations
                .into_iter()
                .map(|v| {
                    let field = v
                        .item_index
                        .map_or_else(String::new, |i| format!("items[{i}]"));
                    FieldError::new(field, v.code, v.message)
                })
                .collect(),
        ));
    }
    let breakdown = rules
        .calculate_tax(&draft)
        .await
        .map_err(|e| rules_failed(Slot::Tax, e))?;
    let taxed = pricing::apply_tax(&mut priced, &breakdown).map_err(|e| match e {
        TaxApplyError::Overflow(field) => OrderError::Invalid(vec![field]),
        TaxApplyError::Inconsistent(what) => OrderError::RulesUnavailable {
            slot: Slot::Tax,
            cause: anyhow::anyhow!("the tax breakdown contradicts the draft: {what}"),
        },
    })?;

    // Milliseconds are what every backend keeps (MongoDB's dates), so the order answered now
    // equals the order read back later.
    let now = Utc::now().trunc_subsecs(3);
    let order = Order::pending(
        actor.id,
        priced.currency,
        priced.items,
        taxed.tax_lines,
        parsed.shipping_address,
        now,
    );
    // The priced totals were checked for overflow; they are the sums the order holds.
    debug_assert_eq!(
        (order.subtotal, order.tax_total, order.total),
        (priced.subtotal, taxed.tax_total, taxed.total)
    );
    size::check_stored(rules, &order, &user)?;
    let event = OutboxEvent::order_created(&order, now);
    let record = idempotency.as_ref().map(|idem| IdempotencyRecord {
        user_id: actor.id,
        key: idem.key.as_str().to_owned(),
        request_hash: idem.fingerprint,
        status: CREATED,
        response_body: (idem.render)(&order),
        created_at: now,
    });

    match store
        .place_order_capped(
            &order,
            &stock_takes(&order),
            &event,
            record.as_ref(),
            max_open,
        )
        .await
    {
        Ok(()) => {
            metrics::counter!(ORDERS_PLACED_TOTAL).increment(1);
            Ok(Placed::Created(Box::new(order)))
        }
        Err(StoreError::InsufficientStock(ids)) => Err(OrderError::InsufficientStock(ids)),
        Err(StoreError::Conflict(Conflict::OpenOrders)) => Err(OrderError::TooManyOpenOrders {
            max: max_open.unwrap_or(0),
        }),
        Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)) => {
            // A concurrent request with the same key committed first: answer as it did.
            let idem = idempotency
                .as_ref()
                .expect("only a request with a key records one");
            replay(store, actor, idem)
                .await?
                .ok_or(OrderError::IdempotencyKeyTaken)
        }
        Err(err) => Err(store_failed("Failed to commit an order")(err)),
    }
}

/// The stored response for the key, if the same request was answered within the replay
/// window; [`OrderError::IdempotencyKeyReused`] if the key came with another request.
async fn replay(
    store: &dyn Store,
    actor: Actor,
    idem: &IdempotencyRequest<'_>,
) -> Result<Option<Placed>, OrderError> {
    let record = store
        .idempotency_record(actor.id, idem.key.as_str(), REPLAY_WINDOW)
        .await
        .map_err(store_failed("Failed to look up an idempotency key"))?;
    match record {
        None => Ok(None),
        Some(record) if record.request_hash == idem.fingerprint => Ok(Some(Placed::Replayed {
            status: record.status,
            body: record.response_body,
        })),
        Some(_) => Err(OrderError::IdempotencyKeyReused),
    }
}

/// One stock decrement per product, the quantities of repeated lines added up (saturating:
/// a sum beyond `u32` exceeds any stock, so the decrement fails as it should).
fn stock_takes(order: &Order) -> Vec<StockTake> {
    let mut takes: Vec<StockTake> = Vec::with_capacity(order.items.len());
    for item in &order.items {
        match takes.iter_mut().find(|t| t.product_id == item.product_id) {
            Some(take) => take.quantity = take.quantity.saturating_add(item.quantity),
            None => takes.push(StockTake {
                product_id: item.product_id,
                quantity: item.quantity,
            }),
        }
    }
    takes
}

/// Maps a failed slot call: an input too large for the plugins is the client's order being
/// too large (422); anything else means the rules are unavailable (503).
fn rules_failed(slot: Slot, err: PluginCallError) -> OrderError {
    if err.kind() == Some(&FailureKind::InputTooLarge) {
        return OrderError::Invalid(vec![FieldError::new(
            "items",
            "order-too-large",
            "the order is too large to be checked; split it into smaller orders",
        )]);
    }
    OrderError::RulesUnavailable {
        slot,
        cause: anyhow::Error::new(err),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{Currency, OrderItem};

    fn order(lines: &[(Id, u32)]) -> Order {
        let items = lines
            .iter()
            .map(|&(product_id, quantity)| OrderItem {
                product_id,
                sku: "SKU".into(),
                name: "Tea".into(),
                category: "general".into(),
                unit_price: 1,
                quantity,
                subtotal: i64::from(quantity),
                tax: 0,
            })
            .collect();
        let inr = Currency::parse("INR").unwrap();
        Order::pending(Id::new(), inr, items, vec![], None, Utc::now())
    }

    #[test]
    fn repeated_lines_of_a_product_take_its_stock_once_for_their_sum() {
        let (tea, mug) = (Id::new(), Id::new());
        let takes = stock_takes(&order(&[(tea, 2), (mug, 1), (tea, 3)]));
        let pairs: Vec<_> = takes.iter().map(|t| (t.product_id, t.quantity)).collect();
        assert_eq!(pairs, [(tea, 5), (mug, 1)]);
    }

    #[test]
    fn a_sum_beyond_32_bits_saturates_instead_of_wrapping() {
        let tea = Id::new();
        let takes = stock_takes(&order(&[(tea, u32::MAX), (tea, 1)]));
        assert_eq!(takes[0].quantity, u32::MAX);
    }
}

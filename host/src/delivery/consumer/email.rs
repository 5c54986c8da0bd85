//! The consumer's view of the e-mail slot: which message an event calls for, the
//! [`EmailRenderer`] port (the plugin runtime in production), and the conversion of a stored
//! order and its customer into the slot's `StoredOrder` contract type.

use async_trait::async_trait;
use rule_types::{Address, Customer, Money, OrderLine, RenderedEmail, StoredOrder};

use crate::domain::{Order, User};
use crate::plugins::PluginRuntime;

/// The e-mails the consumer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// After `order.created`: the order was accepted and processed.
    Confirmation,
    /// After `order.cancelled`.
    Cancellation,
}

impl EmailKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EmailKind::Confirmation => "confirmation",
            EmailKind::Cancellation => "cancellation",
        }
    }
}

/// Renders customer e-mails from a stored order.
#[async_trait]
pub trait EmailRenderer: Send + Sync {
    async fn render(&self, kind: EmailKind, order: &StoredOrder) -> anyhow::Result<RenderedEmail>;
}

/// The production renderer: the `email` slot of the plugin runtime.
#[async_trait]
impl EmailRenderer for PluginRuntime {
    async fn render(&self, kind: EmailKind, order: &StoredOrder) -> anyhow::Result<RenderedEmail> {
        let rendered = match kind {
            EmailKind::Confirmation => self.render_confirmation(order).await,
            EmailKind::Cancellation => self.render_cancellation(order).await,
        };
        Ok(rendered?)
    }
}

/// The slot's input for `order` placed by `customer`.
pub fn stored_order(order: &Order, customer: &User) -> StoredOrder {
    let currency = order.currency.as_str().to_owned();
    let money = |amount: i64| Money::new(amount, currency.clone());
    StoredOrder {
        order_id: order.id.to_hex(),
        status: order.status.as_str().to_owned(),
        customer: Customer {
            id: customer.id.to_hex(),
            email: customer.email.as_str().to_owned(),
            name: customer.username.as_str().to_owned(),
        },
        items: order
            .items
            .iter()
            .map(|item| OrderLine {
                product_id: item.product_id.to_hex(),
                sku: item.sku.clone(),
                name: item.name.clone(),
                category: item.category.clone(),
                unit_price: money(item.unit_price),
                quantity: item.quantity,
                subtotal: money(item.subtotal),
                tax: money(item.tax),
            })
            .collect(),
        currency: currency.clone(),
        subtotal: money(order.subtotal),
        tax_total: money(order.tax_total),
        total: money(order.total),
        shipping_address: order.shipping_address.as_ref().map(|a| Address {
            country: a.country.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
        }),
        created_at: order
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        cancelled_at: order
            .cancelled_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    }
}

//! Orders: line items with a price snapshot, totals, tax lines and the status state machine
//! `pending → processing → processed`, `pending | processing | processed | failed → cancelled`,
//! `processing → failed`, and `failed → pending` (an admin's retry).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Currency, Id, ParseError};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Committed, waiting for the consumer.
    Pending,
    /// Claimed by a consumer; the confirmation is being sent.
    Processing,
    /// Confirmation sent.
    Processed,
    /// Cancelled by the owner or an admin; stock was returned.
    Cancelled,
    /// Processing gave up after the delivery attempt limit; an admin may retry it (back to
    /// `pending`) or it may be cancelled.
    Failed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Processed,
        OrderStatus::Cancelled,
        OrderStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Processed => "processed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Processing)
                | (Processing, Processed)
                | (Pending | Processing | Processed | Failed, Cancelled)
                | (Processing, Failed)
                | (Failed, Pending)
        )
    }

    /// Every status from which `to` may be reached; storage uses it for conditional updates.
    pub fn sources_of(to: OrderStatus) -> Vec<OrderStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_become(to))
            .collect()
    }
}

/// Units of one line: at least 1. Upper limits are business rules (the validation slot).
pub fn parse_quantity(n: i64) -> Result<u32, ParseError> {
    if n < 1 {
        return Err(ParseError::new("out-of-range", "must be at least 1"));
    }
    u32::try_from(n).map_err(|_| ParseError::new("out-of-range", "is too large"))
}

/// One line of a stored order, with the catalog values as they were when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: Id,
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Minor units.
    pub unit_price: i64,
    pub quantity: u32,
    /// unit_price × quantity, minor units.
    pub subtotal: i64,
    /// Tax on this line, minor units.
    pub tax: i64,
}

/// One (line, rate) tax entry as computed by the tax slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxLineRecord {
    pub item_index: u32,
    pub rate_name: String,
    pub rate_bps: u32,
    pub taxable: i64,
    pub tax: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Id,
    pub user_id: Id,
    pub status: OrderStatus,
    pub currency: Currency,
    pub items: Vec<OrderItem>,
    /// Σ item subtotals, minor units.
    pub subtotal: i64,
    /// Σ item taxes, minor units.
    pub tax_total: i64,
    /// subtotal + tax_total, minor units.
    pub total: i64,
    pub tax_lines: Vec<TaxLineRecord>,
    pub shipping_address: Option<ShippingAddress>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processing_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

impl Order {
    /// A new `pending` order of `items` by `user_id`, placed at `at`, its totals the sums of the
    /// items' subtotals and taxes. The sums saturate rather than overflow: the place use case
    /// prices through `service::orders::pricing`, which refuses amounts that do not fit first.
    pub fn pending(
        user_id: Id,
        currency: Currency,
        items: Vec<OrderItem>,
        tax_lines: Vec<TaxLineRecord>,
        shipping_address: Option<ShippingAddress>,
        at: DateTime<Utc>,
    ) -> Order {
        let sum = |amount: fn(&OrderItem) -> i64| {
            items
                .iter()
                .map(amount)
                .fold(0i64, |acc, a| acc.saturating_add(a))
        };
        let (subtotal, tax_total) = (sum(|i| i.subtotal), sum(|i| i.tax));
        Order {
            id: Id::new(),
            user_id,
            status: OrderStatus::Pending,
            currency,
            items,
            subtotal,
            tax_total,
            total: subtotal.saturating_add(tax_total),
            tax_lines,
            shipping_address,
            created_at: at,
            updated_at: at,
            processing_at: None,
            processed_at: None,
            cancelled_at: None,
            failed_at: None,
        }
    }

    /// Records `status` as reached at `at`, setting the matching timestamp.
    pub fn mark(&mut self, status: OrderStatus, at: DateTime<Utc>) {
        self.status = status;
        self.updated_at = at;
        match status {
            // Pending again only after a retry of a failed order, which is no longer failed.
            OrderStatus::Pending => self.failed_at = None,
            OrderStatus::Processing => self.processing_at = Some(at),
            OrderStatus::Processed => self.processed_at = Some(at),
            OrderStatus::Cancelled => self.cancelled_at = Some(at),
            OrderStatus::Failed => self.failed_at = Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_transitions() {
        let allowed = [
            (Pending, Processing),
            (Processing, Processed),
            (Pending, Cancelled),
            (Processing, Cancelled),
            (Processed, Cancelled),
            (Processing, Failed),
            (Failed, Pending),
            (Failed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert_eq!(
            OrderStatus::sources_of(Cancelled),
            vec![Pending, Processing, Processed, Failed]
        );
        assert_eq!(OrderStatus::sources_of(Pending), vec![Failed]);
    }

    #[test]
    fn a_retried_order_is_pending_again_and_no_longer_failed() {
        let at = Utc::now();
        let inr = Currency::parse("INR").unwrap();
        let mut order = Order::pending(Id::new(), inr, Vec::new(), Vec::new(), None, at);
        order.mark(Processing, at);
        order.mark(Failed, at);
        assert_eq!(order.failed_at, Some(at));

        order.mark(Pending, at);

        assert_eq!((order.status, order.failed_at), (Pending, None));
        assert_eq!(order.processing_at, Some(at));
    }

    #[test]
    fn quantities_must_be_positive_and_fit_32_bits() {
        assert_eq!(parse_quantity(1).unwrap(), 1);
        assert!(parse_quantity(0).is_err());
        assert!(parse_quantity(-1).is_err());
        assert!(parse_quantity(1_000_000_000_000).is_err());
    }
}

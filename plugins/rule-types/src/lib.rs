//! Plain Rust mirror of the `shop:rules@0.1.0` WIT types (`wit/types.wit`), field for field.
//!
//! Rule logic is written against these types so it runs natively (unit tests, the host's
//! native rule provider, benchmarks) and inside a component (the `orderd-rules` SDK
//! converts the wit-bindgen types to and from these). JSON uses camelCase field names; it is
//! the format of plugin fixtures and of `orderd plugin run --input`.

use serde::{Deserialize, Serialize};

pub mod fixture;

/// An amount of money: integer minor units of an ISO 4217 currency, never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Money {
    /// Integer minor units of `currency` (1999 = 19.99 USD).
    pub amount: i64,
    /// ISO 4217 alphabetic code, upper case ("INR").
    pub currency: String,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self {
            amount,
            currency: currency.into(),
        }
    }
}

/// One line of an order draft, with the catalog values snapshotted when the order is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineItem {
    /// 24-hex ObjectId of the product.
    pub product_id: String,
    /// Stock-keeping unit, unique in the catalog.
    pub sku: String,
    /// Display name from the catalog; untrusted text, escape it before rendering.
    pub name: String,
    /// Catalog category, lower case ("essentials").
    pub category: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Units ordered; at least 1.
    pub quantity: u32,
}

/// Who placed the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Customer {
    /// 24-hex ObjectId of the user.
    pub id: String,
    /// Lower-cased e-mail address.
    pub email: String,
    /// Display name (the username); untrusted text.
    pub name: String,
}

/// Where the order ships; used by region-dependent rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2 code, upper case ("IN").
    pub country: String,
    /// State or province, free text, if given.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code, free text, if given.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// An order as it is being priced; the input of the tax and validation slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderDraft {
    /// 24-hex ObjectId once the order is stored; `None` while it is priced.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Who orders.
    pub customer: Customer,
    /// The lines in the order the customer sent them; `item_index` values index this list.
    pub items: Vec<LineItem>,
    /// ISO 4217 code shared by every amount in the order.
    pub currency: String,
    /// Where the order ships, if known.
    #[serde(default)]
    pub shipping_address: Option<Address>,
}

/// Tax on one line item at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaxLine {
    /// Index into `OrderDraft::items`.
    pub item_index: u32,
    /// Name of the rate ("gst", "gst-essentials").
    pub rate_name: String,
    /// Rate in basis points (1800 = 18%).
    pub rate_bps: u32,
    /// Amount the rate applies to (usually unit price × quantity).
    pub taxable: Money,
    /// Tax on that amount, rounded to the minor unit.
    pub tax: Money,
}

/// The sum of all tax lines at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateTotal {
    /// Name of the rate.
    pub rate_name: String,
    /// Rate in basis points.
    pub rate_bps: u32,
    /// Sum of the taxable amounts at this rate.
    pub taxable: Money,
    /// Sum of the taxes at this rate.
    pub tax: Money,
}

/// Everything the tax slot returns for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaxBreakdown {
    /// One entry per (line, rate) pair.
    pub lines: Vec<TaxLine>,
    /// One entry per distinct (rate name, rate).
    pub by_rate: Vec<RateTotal>,
    /// Sum of every line's tax.
    pub total_tax: Money,
}

/// One reason an order is refused; the validation slot returns a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Violation {
    /// Stable kebab-case code ("quantity-out-of-range"); API clients branch on it.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Index into `OrderDraft::items` when one line is at fault.
    #[serde(default)]
    pub item_index: Option<u32>,
}

/// One line of a stored order, as e-mail templates see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderLine {
    /// 24-hex ObjectId of the product.
    pub product_id: String,
    /// Stock-keeping unit.
    pub sku: String,
    /// Display name; untrusted text.
    pub name: String,
    /// Catalog category, lower case.
    pub category: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Units ordered.
    pub quantity: u32,
    /// Unit price × quantity.
    pub subtotal: Money,
    /// Tax charged on this line.
    pub tax: Money,
}

/// An order as stored; the input of the e-mail slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredOrder {
    /// 24-hex ObjectId.
    pub order_id: String,
    /// "pending", "processing", "processed", "cancelled" or "failed".
    pub status: String,
    /// Who ordered.
    pub customer: Customer,
    /// The lines of the order.
    pub items: Vec<OrderLine>,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Sum of the line subtotals.
    pub subtotal: Money,
    /// Sum of the line taxes.
    pub tax_total: Money,
    /// Subtotal plus tax.
    pub total: Money,
    /// Where the order ships, if known.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// RFC 3339 UTC timestamp of creation.
    pub created_at: String,
    /// RFC 3339 UTC timestamp of cancellation, when cancelled.
    #[serde(default)]
    pub cancelled_at: Option<String>,
}

/// A rendered e-mail; the host adds sender, recipient and headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderedEmail {
    /// One line, no CR or LF.
    pub subject: String,
    /// Complete HTML document; every untrusted string escaped.
    pub html: String,
    /// Plain-text alternative with the same facts.
    pub text: String,
}

/// A failure inside a plugin that is not a business outcome (bad config, missing data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginError {
    /// Stable kebab-case code ("bad-config").
    pub code: String,
    /// What went wrong, for the operator's log.
    pub message: String,
}

impl PluginError {
    /// An error with a stable `code` and a message for the log.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Operator-set key/value settings of a slot, in the order the operator gave them.
pub type Config = Vec<(String, String)>;

/// The last value set for `key` (later entries override earlier ones).
pub fn config_get<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

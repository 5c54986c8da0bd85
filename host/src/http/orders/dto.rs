//! The JSON of the order routes: request bodies, query parameters and the order as answered,
//! with their conversions from and to the service's types.

use super::*;

/// `POST /api/orders` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOrder {
    /// 1–200 lines (the validation plugin may allow fewer, 50 by default).
    pub items: Vec<CreateOrderLine>,
    /// Where the order ships; used by region-dependent rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<AddressDto>,
}

/// One requested line.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOrderLine {
    /// 24-hex id of a catalog product.
    pub product_id: String,
    /// Units, at least 1.
    pub quantity: i64,
}

/// A shipping address.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressDto {
    /// ISO 3166-1 alpha-2 country code ("IN").
    pub country: String,
    /// State or province, at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code, at most 20 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// An order as the API shows it. Amounts are integer minor units of `currency`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDto {
    /// 24-hex id.
    pub id: String,
    /// 24-hex id of the customer.
    pub user_id: String,
    /// `pending`, `processing`, `processed`, `cancelled` or `failed`.
    #[schema(value_type = String)]
    pub status: OrderStatus,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The lines in request order, with the catalog values when the order was placed.
    pub items: Vec<OrderItemDto>,
    /// Σ item subtotals.
    pub subtotal: i64,
    /// Σ item taxes.
    pub tax_total: i64,
    /// subtotal + taxTotal.
    pub total: i64,
    /// One entry per (line, rate) as the tax plugin computed it.
    pub tax_lines: Vec<TaxLineDto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<AddressDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<DateTime<Utc>>,
}

/// One line of an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemDto {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Price of one unit when the order was placed.
    pub unit_price: i64,
    pub quantity: u32,
    /// unitPrice × quantity.
    pub subtotal: i64,
    /// Tax on this line.
    pub tax: i64,
}

/// Tax on one line at one rate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxLineDto {
    /// Index into `items`.
    pub item_index: u32,
    pub rate_name: String,
    /// Rate in basis points (1800 = 18%).
    pub rate_bps: u32,
    /// Amount the rate applies to.
    pub taxable: i64,
    pub tax: i64,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPageDto {
    pub items: Vec<OrderDto>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/orders` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only orders in this status: `pending`, `processing`, `processed`, `cancelled` or
    /// `failed`. An admin then gets every customer's orders in it, a customer their own.
    pub status: Option<String>,
}

impl From<&Order> for OrderDto {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.to_hex(),
            user_id: o.user_id.to_hex(),
            status: o.status,
            currency: o.currency.as_str().to_owned(),
            items: o
                .items
                .iter()
                .map(|i| OrderItemDto {
                    product_id: i.product_id.to_hex(),
                    sku: i.sku.clone(),
                    name: i.name.clone(),
                    category: i.category.clone(),
                    unit_price: i.unit_price,
                    quantity: i.quantity,
                    subtotal: i.subtotal,
                    tax: i.tax,
                })
                .collect(),
            subtotal: o.subtotal,
            tax_total: o.tax_total,
            total: o.total,
            tax_lines: o
                .tax_lines
                .iter()
                .map(|t| TaxLineDto {
                    item_index: t.item_index,
                    rate_name: t.rate_name.clone(),
                    rate_bps: t.rate_bps,
                    taxable: t.taxable,
                    tax: t.tax,
                })
                .collect(),
            shipping_address: o.shipping_address.as_ref().map(|a| AddressDto {
                country: a.country.clone(),
                region: a.region.clone(),
                postal_code: a.postal_code.clone(),
            }),
            created_at: o.created_at,
            updated_at: o.updated_at,
            processing_at: o.processing_at,
            processed_at: o.processed_at,
            cancelled_at: o.cancelled_at,
            failed_at: o.failed_at,
        }
    }
}

impl From<&CreateOrder> for OrderRequest {
    fn from(body: &CreateOrder) -> Self {
        Self {
            items: body
                .items
                .iter()
                .map(|l| LineRequest {
                    product_id: l.product_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            shipping_address: body.shipping_address.as_ref().map(|a| AddressRequest {
                country: a.country.clone(),
                region: a.region.clone(),
                postal_code: a.postal_code.clone(),
            }),
        }
    }
}

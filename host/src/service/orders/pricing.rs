//! Pricing an order: the catalog snapshot of every line, the draft the rule slots see, and
//! the tax breakdown folded back into per-line taxes and totals. Pure functions over domain
//! values; every sum uses checked 64-bit arithmetic, so an order too large to represent is
//! refused instead of wrapping.

use std::collections::HashMap;

use rule_types::{Customer, LineItem, Money as WireMoney, OrderDraft, TaxBreakdown};

use crate::domain::{Currency, Id, OrderItem, Product, ShippingAddress, TaxLineRecord};

use super::FieldError;

/// The lines of an order priced from the catalog, before tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLines {
    /// The one currency every product is priced in.
    pub currency: Currency,
    /// One item per requested line, in request order, with `tax` still zero.
    pub items: Vec<OrderItem>,
    /// Σ item subtotals.
    pub subtotal: i64,
}

/// Snapshots name, SKU, category and price of every line's product.
///
/// Refuses (each at its field) unknown products, products in a currency other than the first
/// line's, and amounts that do not fit in 64-bit minor units.
pub fn price_lines(
    lines: &[(Id, u32)],
    products: &HashMap<Id, Product>,
) -> Result<PricedLines, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut currency = None;
    let mut items = Vec::with_capacity(lines.len());
    let mut subtotal: Option<i64> = Some(0);
    for (i, (id, quantity)) in lines.iter().enumerate() {
        let Some(product) = products.get(id) else {
            errors.push(FieldError::new(
                format!("items[{i}].productId"),
                "unknown-product",
                format!("no product with id {id}"),
            ));
            continue;
        };
        let order_currency = *currency.get_or_insert(product.currency);
        if product.currency != order_currency {
            errors.push(FieldError::new(
                format!("items[{i}].productId"),
                "currency-mismatch",
                format!(
                    "is priced in {}, the order's first line in {order_currency}; one order has one currency",
                    product.currency
                ),
            ));
            continue;
        }
        let Some(line_subtotal) = product.price.checked_mul(i64::from(*quantity)) else {
            errors.push(overflow(format!("items[{i}].quantity")));
            continue;
        };
        subtotal = subtotal.and_then(|s| s.checked_add(line_subtotal));
        items.push(OrderItem {
            product_id: product.id,
            sku: product.sku.clone(),
            name: product.name.clone(),
            category: product.category.clone(),
            unit_price: product.price,
            quantity: *quantity,
            subtotal: line_subtotal,
            tax: 0,
        });
    }
    let Some(subtotal) = subtotal else {
        errors.push(overflow("items".to_owned()));
        return Err(errors);
    };
    match currency {
        Some(currency) if errors.is_empty() => Ok(PricedLines {
            currency,
            items,
            subtotal,
        }),
        Some(_) => Err(errors),
        None if errors.is_empty() => Err(vec![FieldError::new(
            "items",
            "empty",
            "must contain at least one line",
        )]),
        None => Err(errors),
    }
}

/// The draft the validation and tax slots are called with.
pub fn draft(
    priced: &PricedLines,
    customer: Customer,
    shipping_address: Option<&ShippingAddress>,
) -> OrderDraft {
    let currency = priced.currency.as_str();
    OrderDraft {
        order_id: None,
        customer,
        items: priced
            .items
            .iter()
            .map(|item| LineItem {
                product_id: item.product_id.to_hex(),
                sku: item.sku.clone(),
                name: item.name.clone(),
                category: item.category.clone(),
                unit_price: WireMoney::new(item.unit_price, currency),
                quantity: item.quantity,
            })
            .collect(),
        currency: currency.to_owned(),
        shipping_address: shipping_address.map(|a| rule_types::Address {
            country: a.country.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
        }),
    }
}

/// Why a tax breakdown could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaxApplyError {
    /// The breakdown contradicts the draft (a line index out of range, another currency, a
    /// negative tax, a total that does not add up): the plugin is at fault.
    Inconsistent(String),
    /// The taxes or the grand total do not fit in 64-bit minor units: the order is too large.
    Overflow(FieldError),
}

/// Totals of a taxed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxed {
    /// The tax lines as stored with the order.
    pub tax_lines: Vec<TaxLineRecord>,
    /// Σ item taxes.
    pub tax_total: i64,
    /// subtotal + tax_total.
    pub total: i64,
}

/// Adds every tax line of `breakdown` to its item and computes the totals.
pub fn apply_tax(
    priced: &mut PricedLines,
    breakdown: &TaxBreakdown,
) -> Result<Taxed, TaxApplyError> {
    let currency = priced.currency.as_str();
    let inconsistent = |what: String| Err(TaxApplyError::Inconsistent(what));
    let mut tax_lines = Vec::with_capacity(breakdown.lines.len());
    let mut tax_total: i64 = 0;
    for line in &breakdown.lines {
        let Some(item) = usize::try_from(line.item_index)
            .ok()
            .and_then(|i| priced.items.get_mut(i))
        else {
            return inconsistent(format!(
                "tax line for item {} of {}",
                line.item_index,
                priced.items.len()
            ));
        };
        if line.tax.currency != currency || line.taxable.currency != currency {
            return inconsistent(format!(
                "tax line in {} on a {currency} order",
                line.tax.currency
            ));
        }
        if line.tax.amount < 0 || line.taxable.amount < 0 {
            return inconsistent("negative tax amount".to_owned());
        }
        let overflow_at = |field: String| TaxApplyError::Overflow(overflow(field));
        item.tax = item
            .tax
            .checked_add(line.tax.amount)
            .ok_or_else(|| overflow_at(format!("items[{}]", line.item_index)))?;
        tax_total = tax_total
            .checked_add(line.tax.amount)
            .ok_or_else(|| overflow_at("items".to_owned()))?;
        tax_lines.push(TaxLineRecord {
            item_index: line.item_index,
            rate_name: line.rate_name.clone(),
            rate_bps: line.rate_bps,
            taxable: line.taxable.amount,
            tax: line.tax.amount,
        });
    }
    if breakdown.total_tax.amount != tax_total || breakdown.total_tax.currency != currency {
        return inconsistent(format!(
            "total tax {} {} is not the sum of its lines, {tax_total} {currency}",
            breakdown.total_tax.amount, breakdown.total_tax.currency
        ));
    }
    let total = priced
        .subtotal
        .checked_add(tax_total)
        .ok_or_else(|| TaxApplyError::Overflow(overflow("items".to_owned())))?;
    Ok(Taxed {
        tax_lines,
        tax_total,
        total,
    })
}

fn overflow(field: String) -> FieldError {
    FieldError::new(
        field,
        "amount-overflow",
        "the amount does not fit in 64-bit minor units",
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rule_types::{Money as M, TaxLine};

    use super::*;

    fn product(price: i64, currency: &str) -> Product {
        Product {
            id: Id::new(),
            name: "Chai".into(),
            sku: format!("SKU-{}", Id::new()),
            description: None,
            category: "essentials".into(),
            price,
            currency: Currency::parse(currency).unwrap(),
            stock: 10,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn catalog(products: &[&Product]) -> HashMap<Id, Product> {
        products.iter().map(|p| (p.id, (*p).clone())).collect()
    }

    fn tax_line(item_index: u32, taxable: i64, tax: i64) -> TaxLine {
        TaxLine {
            item_index,
            rate_name: "gst".into(),
            rate_bps: 1800,
            taxable: M::new(taxable, "INR"),
            tax: M::new(tax, "INR"),
        }
    }

    fn breakdown(lines: Vec<TaxLine>) -> TaxBreakdown {
        let total = lines.iter().map(|l| l.tax.amount).sum();
        TaxBreakdown {
            lines,
            by_rate: vec![],
            total_tax: M::new(total, "INR"),
        }
    }

    #[test]
    fn lines_are_priced_from_the_catalog_snapshot() {
        let tea = product(250, "INR");
        let priced = price_lines(&[(tea.id, 3)], &catalog(&[&tea])).unwrap();
        assert_eq!(priced.items[0].unit_price, 250);
        assert_eq!(priced.items[0].subtotal, 750);
        assert_eq!(priced.subtotal, 750);
        assert_eq!(priced.currency.as_str(), "INR");
    }

    #[test]
    fn every_unknown_product_is_reported_at_its_line() {
        let tea = product(250, "INR");
        let errors = price_lines(
            &[(Id::new(), 1), (tea.id, 1), (Id::new(), 1)],
            &catalog(&[&tea]),
        )
        .unwrap_err();
        let fields: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("items[0].productId", "unknown-product"),
                ("items[2].productId", "unknown-product")
            ]
        );
    }

    #[test]
    fn products_in_two_currencies_cannot_share_an_order() {
        let (tea, mug) = (product(250, "INR"), product(900, "USD"));
        let errors = price_lines(&[(tea.id, 1), (mug.id, 1)], &catalog(&[&tea, &mug])).unwrap_err();
        assert_eq!(errors[0].field, "items[1].productId");
        assert_eq!(errors[0].code, "currency-mismatch");
    }

    #[test]
    fn a_line_amount_that_fits_is_accepted_and_one_that_overflows_is_refused() {
        let dear = product(i64::MAX / 2, "INR");
        assert!(price_lines(&[(dear.id, 2)], &catalog(&[&dear])).is_ok());
        let errors = price_lines(&[(dear.id, 3)], &catalog(&[&dear])).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("items[0].quantity", "amount-overflow")
        );
    }

    #[test]
    fn an_order_subtotal_that_overflows_is_refused() {
        let dear = product(i64::MAX / 2 + 1, "INR");
        let errors = price_lines(&[(dear.id, 1), (dear.id, 1)], &catalog(&[&dear])).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("items", "amount-overflow")
        );
    }

    #[test]
    fn tax_lines_add_up_per_item_and_into_the_totals() {
        let (tea, mug) = (product(1000, "INR"), product(500, "INR"));
        let mut priced = price_lines(&[(tea.id, 1), (mug.id, 2)], &catalog(&[&tea, &mug])).unwrap();
        let taxed = apply_tax(
            &mut priced,
            &breakdown(vec![
                tax_line(0, 1000, 180),
                tax_line(1, 1000, 180),
                tax_line(1, 1000, 10),
            ]),
        )
        .unwrap();
        assert_eq!(priced.items[0].tax, 180);
        assert_eq!(priced.items[1].tax, 190);
        assert_eq!(taxed.tax_total, 370);
        assert_eq!(taxed.total, 2370);
        assert_eq!(taxed.tax_lines.len(), 3);
    }

    #[test]
    fn a_breakdown_that_contradicts_the_draft_is_the_plugins_fault() {
        let tea = product(1000, "INR");
        let priced = price_lines(&[(tea.id, 1)], &catalog(&[&tea])).unwrap();
        let mut wrong_total = breakdown(vec![tax_line(0, 1000, 180)]);
        wrong_total.total_tax.amount = 1;
        let mut wrong_currency = breakdown(vec![tax_line(0, 1000, 180)]);
        wrong_currency.lines[0].tax.currency = "USD".into();
        for bad in [
            breakdown(vec![tax_line(1, 1000, 180)]),
            breakdown(vec![tax_line(0, 1000, -1)]),
            wrong_total,
            wrong_currency,
        ] {
            let result = apply_tax(&mut priced.clone(), &bad);
            assert!(
                matches!(result, Err(TaxApplyError::Inconsistent(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_grand_total_that_overflows_is_refused() {
        let dear = product(i64::MAX - 10, "INR");
        let mut priced = price_lines(&[(dear.id, 1)], &catalog(&[&dear])).unwrap();
        assert!(apply_tax(&mut priced.clone(), &breakdown(vec![tax_line(0, 1, 10)])).is_ok());
        let result = apply_tax(&mut priced, &breakdown(vec![tax_line(0, 1, 11)]));
        assert!(matches!(result, Err(TaxApplyError::Overflow(_))));
    }
}

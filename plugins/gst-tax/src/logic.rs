//! The tax computation itself: one tax line per order line, per-rate totals and the order
//! total, in integer minor units with half-up rounding. Pure Rust on `orderd_rules`, so the
//! host can run it natively and the tests need no WebAssembly runtime.

use orderd_rules::{Money, OrderDraft, PluginError, RateTotal, TaxBreakdown, TaxLine};

use crate::config::TaxConfig;

/// Tax on every line of `draft` at the rates in `config` (see the crate docs for the keys
/// and the rounding rule).
///
/// Fails with `bad-config` for an invalid config, `currency-mismatch` when a line is not
/// priced in the draft's currency, `negative-amount` for a negative unit price and
/// `amount-overflow` when an amount does not fit in 64 bits.
pub fn calculate(
    draft: &OrderDraft,
    config: &[(String, String)],
) -> Result<TaxBreakdown, PluginError> {
    let rates = TaxConfig::parse(config)?;
    let money = |amount| Money::new(amount, draft.currency.as_str());
    let mut lines = Vec::with_capacity(draft.items.len());
    let mut by_rate: Vec<RateTotal> = Vec::new();
    let mut total_tax: i64 = 0;

    for (index, item) in draft.items.iter().enumerate() {
        let item_index = u32::try_from(index)
            .map_err(|_| PluginError::new("amount-overflow", "more than 2^32 lines"))?;
        if item.unit_price.currency != draft.currency {
            return Err(PluginError::new(
                "currency-mismatch",
                format!(
                    "line {index} is priced in {:?}, the order in {:?}",
                    clip(&item.unit_price.currency, 16),
                    clip(&draft.currency, 16)
                ),
            ));
        }
        if item.unit_price.amount < 0 {
            return Err(PluginError::new(
                "negative-amount",
                format!("line {index} has a negative unit price"),
            ));
        }
        let taxable = line_taxable(item.unit_price.amount, item.quantity)
            .ok_or_else(|| overflow(&format!("the amount of line {index}")))?;
        let rate = rates.rate_for(&item.category);
        let tax = tax_half_up(taxable, rate.bps);
        total_tax = total_tax
            .checked_add(tax)
            .ok_or_else(|| overflow("the total tax"))?;

        match by_rate
            .iter_mut()
            .find(|r| r.rate_bps == rate.bps && r.rate_name == rate.name)
        {
            Some(sum) => {
                sum.taxable.amount = sum
                    .taxable
                    .amount
                    .checked_add(taxable)
                    .ok_or_else(|| overflow(&format!("the taxable sum at {}", rate.name)))?;
                // Cannot overflow: the tax sum at one rate never exceeds the total tax.
                sum.tax.amount += tax;
            }
            None => by_rate.push(RateTotal {
                rate_name: rate.name.to_string(),
                rate_bps: rate.bps,
                taxable: money(taxable),
                tax: money(tax),
            }),
        }
        lines.push(TaxLine {
            item_index,
            rate_name: rate.name.to_string(),
            rate_bps: rate.bps,
            taxable: money(taxable),
            tax: money(tax),
        });
    }

    Ok(TaxBreakdown {
        lines,
        by_rate,
        total_tax: money(total_tax),
    })
}

/// `unit_price × quantity`, or `None` when it does not fit in an `i64`.
pub fn line_taxable(unit_price: i64, quantity: u32) -> Option<i64> {
    i64::try_from(i128::from(unit_price) * i128::from(quantity)).ok()
}

/// Tax on a non-negative `taxable` amount at `bps` basis points (at most 10000), rounded
/// half-up to the minor unit: `(taxable × bps + 5000) / 10000`. The result never exceeds
/// `taxable`, so it always fits.
pub fn tax_half_up(taxable: i64, bps: u32) -> i64 {
    debug_assert!(taxable >= 0 && bps <= crate::config::MAX_RATE_BPS);
    let rounded = (i128::from(taxable) * i128::from(bps) + 5_000) / 10_000;
    i64::try_from(rounded).expect("a tax of at most 100% fits where its taxable amount fits")
}

fn overflow(what: &str) -> PluginError {
    PluginError::new(
        "amount-overflow",
        format!("{what} does not fit in 64-bit minor units"),
    )
}

/// At most `max` characters of `s`, so an error message stays short whatever the input.
fn clip(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderd_rules::{Customer, LineItem};

    fn item(category: &str, unit_price: i64, quantity: u32) -> LineItem {
        LineItem {
            product_id: "65f1a2b3c4d5e6f7a8b9c0d1".into(),
            sku: format!("SKU-{category}"),
            name: format!("A {category} product"),
            category: category.into(),
            unit_price: Money::new(unit_price, "INR"),
            quantity,
        }
    }

    fn draft(items: Vec<LineItem>) -> OrderDraft {
        OrderDraft {
            order_id: None,
            customer: Customer {
                id: "65f1a2b3c4d5e6f7a8b9c0d2".into(),
                email: "asha@example.com".into(),
                name: "asha".into(),
            },
            items,
            currency: "INR".into(),
            shipping_address: None,
        }
    }

    fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_exact_half_minor_unit_rounds_up() {
        // 25 × 18% = 4.5 → 5; 5 × 10% = 0.5 → 1.
        assert_eq!(tax_half_up(25, 1800), 5);
        assert_eq!(tax_half_up(5, 1000), 1);
    }

    #[test]
    fn just_below_half_a_minor_unit_rounds_down() {
        // 1 × 49.99% = 0.4999 → 0; 24 × 18% = 4.32 → 4.
        assert_eq!(tax_half_up(1, 4999), 0);
        assert_eq!(tax_half_up(24, 1800), 4);
    }

    #[test]
    fn just_above_half_a_minor_unit_rounds_up() {
        // 1 × 50.01% = 0.5001 → 1; 3 × 18% = 0.54 → 1.
        assert_eq!(tax_half_up(1, 5001), 1);
        assert_eq!(tax_half_up(3, 1800), 1);
    }

    #[test]
    fn the_largest_amount_at_the_full_rate_is_taxed_without_overflow() {
        assert_eq!(tax_half_up(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn rounding_is_per_line_not_on_the_order_total() {
        // Two lines of 25 paise: 4.5 → 5 each, so 10 (not round(9.0) = 9).
        let breakdown =
            calculate(&draft(vec![item("toys", 25, 1), item("toys", 25, 1)]), &[]).unwrap();
        assert_eq!(breakdown.total_tax.amount, 10);
    }

    #[test]
    fn a_category_rate_applies_only_to_its_category() {
        let cfg = config(&[("rate.essentials", "500")]);
        let breakdown = calculate(
            &draft(vec![
                item("essentials", 10_000, 1),
                item("electronics", 10_000, 1),
            ]),
            &cfg,
        )
        .unwrap();
        let rates: Vec<_> = breakdown
            .lines
            .iter()
            .map(|l| (l.rate_name.as_str(), l.rate_bps, l.tax.amount))
            .collect();
        assert_eq!(rates, [("gst-essentials", 500, 500), ("gst", 1800, 1800)]);
    }

    #[test]
    fn category_keys_match_regardless_of_case() {
        let cfg = config(&[("rate.Essentials", "500")]);
        let breakdown = calculate(&draft(vec![item("essentials", 100, 1)]), &cfg).unwrap();
        assert_eq!(breakdown.lines[0].rate_bps, 500);
        assert_eq!(breakdown.lines[0].rate_name, "gst-essentials");
    }

    #[test]
    fn a_later_config_entry_overrides_an_earlier_one() {
        let cfg = config(&[("rate.default", "1200"), ("rate.default", "500")]);
        let breakdown = calculate(&draft(vec![item("toys", 100, 1)]), &cfg).unwrap();
        assert_eq!(breakdown.lines[0].rate_bps, 500);
    }

    #[test]
    fn the_rate_name_may_follow_the_category_keys() {
        let cfg = config(&[("rate.food", "500"), ("rate-name", "vat")]);
        let breakdown = calculate(&draft(vec![item("food", 100, 1)]), &cfg).unwrap();
        assert_eq!(breakdown.lines[0].rate_name, "vat-food");
    }

    #[test]
    fn a_rate_of_100_percent_is_accepted() {
        let cfg = config(&[("rate.default", "10000")]);
        let breakdown = calculate(&draft(vec![item("toys", 1234, 2)]), &cfg).unwrap();
        assert_eq!(breakdown.total_tax.amount, 2468);
    }

    #[test]
    fn a_rate_above_100_percent_is_bad_config_naming_the_key() {
        let err = calculate(&draft(vec![]), &config(&[("rate.toys", "10001")])).unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains("rate.toys"), "{}", err.message);
    }

    #[test]
    fn a_non_numeric_rate_is_bad_config_naming_the_key() {
        for value in ["18%", "-1", "", "0.18"] {
            let err = calculate(&draft(vec![]), &config(&[("rate.default", value)])).unwrap_err();
            assert_eq!(err.code, "bad-config", "value {value:?}");
            assert!(err.message.contains("rate.default"), "{}", err.message);
        }
    }

    #[test]
    fn an_unknown_key_is_bad_config_naming_the_key() {
        let err = calculate(&draft(vec![]), &config(&[("rates.food", "500")])).unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains("rates.food"), "{}", err.message);
    }

    #[test]
    fn an_empty_rate_name_is_bad_config() {
        let err = calculate(&draft(vec![]), &config(&[("rate-name", " ")])).unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains("rate-name"), "{}", err.message);
    }

    #[test]
    fn the_largest_line_amount_that_fits_is_taxed() {
        let breakdown = calculate(
            &draft(vec![item("toys", i64::MAX, 1)]),
            &config(&[("rate.default", "0")]),
        )
        .unwrap();
        assert_eq!(breakdown.lines[0].taxable.amount, i64::MAX);
    }

    #[test]
    fn a_line_amount_beyond_64_bits_is_an_overflow_error() {
        let err = calculate(&draft(vec![item("toys", i64::MAX / 2 + 1, 2)]), &[]).unwrap_err();
        assert_eq!(err.code, "amount-overflow");
    }

    #[test]
    fn taxable_sums_beyond_64_bits_are_an_overflow_error() {
        let cfg = config(&[("rate.default", "0")]);
        let err = calculate(
            &draft(vec![item("toys", i64::MAX, 1), item("toys", 1, 1)]),
            &cfg,
        )
        .unwrap_err();
        assert_eq!(err.code, "amount-overflow");
    }

    #[test]
    fn a_line_in_another_currency_is_refused() {
        let mut other = item("toys", 100, 1);
        other.unit_price.currency = "USD".into();
        let err = calculate(&draft(vec![item("toys", 100, 1), other]), &[]).unwrap_err();
        assert_eq!(err.code, "currency-mismatch");
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn a_negative_unit_price_is_refused() {
        let err = calculate(&draft(vec![item("toys", -100, 1)]), &[]).unwrap_err();
        assert_eq!(err.code, "negative-amount");
    }
}

//! The order checks themselves: every limit is checked and every breach reported, the
//! order-level ones first, then line by line. Pure Rust on `orderd_rules`.

use std::collections::HashMap;

use orderd_rules::{OrderDraft, PluginError, Violation};

use crate::clip;
use crate::codes;
use crate::config::LimitsConfig;

/// Most violations one call returns (the host refuses longer lists); the order-level ones
/// come first, so they survive the cut.
pub const MAX_VIOLATIONS: usize = 100;

/// Every violation of the configured limits in `draft`; an empty list means the order may
/// be placed. Fails only with `bad-config`.
pub fn validate(
    draft: &OrderDraft,
    config: &[(String, String)],
) -> Result<Vec<Violation>, PluginError> {
    let limits = LimitsConfig::parse(config)?;
    let mut violations = Vec::new();

    if draft.items.is_empty() {
        violations.push(violation(
            codes::EMPTY_ORDER,
            "the order has no lines".into(),
            None,
        ));
        return Ok(violations);
    }
    if draft.items.len() > limits.max_lines as usize {
        violations.push(violation(
            codes::TOO_MANY_LINES,
            format!(
                "the order has {} lines; at most {} are allowed",
                draft.items.len(),
                limits.max_lines
            ),
            None,
        ));
    }
    if let Some(total) = total_over_limit(draft, limits.max_total) {
        violations.push(violation(
            codes::TOTAL_OVER_LIMIT,
            format!(
                "the order total of {total} minor units of {} exceeds the limit of {}",
                clip(&draft.currency, 16),
                limits.max_total
            ),
            None,
        ));
    }

    let mut first_line_of: HashMap<&str, usize> = HashMap::with_capacity(draft.items.len());
    for (index, item) in draft.items.iter().enumerate() {
        // Lines past u32::MAX cannot be named; the host's input size cap keeps orders far
        // smaller than that.
        let item_index = u32::try_from(index).ok();
        if !(limits.min_quantity..=limits.max_quantity).contains(&item.quantity) {
            violations.push(violation(
                codes::QUANTITY_OUT_OF_RANGE,
                format!(
                    "line {index}: quantity {} is outside {}..={}",
                    item.quantity, limits.min_quantity, limits.max_quantity
                ),
                item_index,
            ));
        }
        match first_line_of.get(item.product_id.as_str()) {
            Some(&first) if !limits.allow_duplicate_products => violations.push(violation(
                codes::DUPLICATE_PRODUCT,
                format!(
                    "line {index}: product {} is already ordered on line {first}",
                    clip(&item.product_id, 64)
                ),
                item_index,
            )),
            Some(_) => {}
            None => {
                first_line_of.insert(&item.product_id, index);
            }
        }
        if item.unit_price.currency != draft.currency {
            violations.push(violation(
                codes::CURRENCY_MISMATCH,
                format!(
                    "line {index}: priced in {:?}, the order in {:?}",
                    clip(&item.unit_price.currency, 16),
                    clip(&draft.currency, 16)
                ),
                item_index,
            ));
        }
        if violations.len() >= MAX_VIOLATIONS {
            break;
        }
    }
    violations.truncate(MAX_VIOLATIONS);
    Ok(violations)
}

/// The order total (unit price × quantity over the lines priced in the order's currency;
/// the others are reported as `currency-mismatch`) when it is above `max_total`. Computed in
/// 128 bits; a sum beyond even that is over any limit.
fn total_over_limit(draft: &OrderDraft, max_total: i64) -> Option<i128> {
    let mut total: i128 = 0;
    for item in &draft.items {
        if item.unit_price.currency != draft.currency {
            continue;
        }
        let line = i128::from(item.unit_price.amount) * i128::from(item.quantity);
        match total.checked_add(line) {
            Some(sum) => total = sum,
            None => return Some(i128::MAX),
        }
    }
    (total > i128::from(max_total)).then_some(total)
}

fn violation(code: &str, message: String, item_index: Option<u32>) -> Violation {
    Violation {
        code: code.to_string(),
        message,
        item_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderd_rules::{Customer, LineItem, Money};

    fn item(product: u32, unit_price: i64, quantity: u32) -> LineItem {
        LineItem {
            product_id: format!("65f1a2b3c4d5e6f7{product:08x}"),
            sku: format!("SKU-{product}"),
            name: format!("Product {product}"),
            category: "misc".into(),
            unit_price: Money::new(unit_price, "INR"),
            quantity,
        }
    }

    fn distinct_items(count: u32) -> Vec<LineItem> {
        (0..count).map(|p| item(p, 100, 1)).collect()
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

    /// (code, item-index) of every violation, in order.
    fn found(draft: &OrderDraft, cfg: &[(String, String)]) -> Vec<(String, Option<u32>)> {
        validate(draft, cfg)
            .expect("valid config")
            .into_iter()
            .map(|v| (v.code, v.item_index))
            .collect()
    }

    fn v(code: &str, index: Option<u32>) -> (String, Option<u32>) {
        (code.to_string(), index)
    }

    #[test]
    fn an_order_with_a_line_is_not_empty() {
        assert_eq!(found(&draft(distinct_items(1)), &[]), []);
    }

    #[test]
    fn an_order_without_lines_is_reported_as_empty_and_nothing_else() {
        assert_eq!(found(&draft(vec![]), &[]), [v("empty-order", None)]);
    }

    #[test]
    fn an_order_with_max_lines_lines_is_accepted() {
        assert_eq!(found(&draft(distinct_items(50)), &[]), []);
    }

    #[test]
    fn an_order_with_one_line_over_max_lines_is_reported() {
        assert_eq!(
            found(&draft(distinct_items(51)), &[]),
            [v("too-many-lines", None)]
        );
        let cfg = config(&[("max-lines", "2")]);
        assert_eq!(
            found(&draft(distinct_items(3)), &cfg),
            [v("too-many-lines", None)]
        );
    }

    #[test]
    fn quantities_at_both_ends_of_the_range_are_accepted() {
        let d = draft(vec![item(1, 100, 1), item(2, 100, 100)]);
        assert_eq!(found(&d, &[]), []);
    }

    #[test]
    fn quantities_just_outside_the_range_are_reported_with_their_line() {
        let d = draft(vec![item(1, 100, 0), item(2, 100, 5), item(3, 100, 101)]);
        assert_eq!(
            found(&d, &[]),
            [
                v("quantity-out-of-range", Some(0)),
                v("quantity-out-of-range", Some(2))
            ]
        );
    }

    #[test]
    fn the_quantity_range_follows_the_config() {
        let cfg = config(&[("min-quantity", "2"), ("max-quantity", "3")]);
        let d = draft(vec![
            item(1, 100, 1),
            item(2, 100, 2),
            item(3, 100, 3),
            item(4, 100, 4),
        ]);
        assert_eq!(
            found(&d, &cfg),
            [
                v("quantity-out-of-range", Some(0)),
                v("quantity-out-of-range", Some(3))
            ]
        );
    }

    #[test]
    fn distinct_products_are_accepted() {
        assert_eq!(found(&draft(distinct_items(3)), &[]), []);
    }

    #[test]
    fn a_repeated_product_is_reported_on_the_repeat() {
        let d = draft(vec![
            item(1, 100, 1),
            item(2, 100, 1),
            item(1, 100, 1),
            item(1, 100, 1),
        ]);
        assert_eq!(
            found(&d, &[]),
            [
                v("duplicate-product", Some(2)),
                v("duplicate-product", Some(3))
            ]
        );
        let message = &validate(&d, &[]).unwrap()[0].message;
        assert!(message.contains("line 0"), "{message}");
    }

    #[test]
    fn a_repeated_product_is_accepted_when_the_config_allows_it() {
        let d = draft(vec![item(1, 100, 1), item(1, 100, 1)]);
        let cfg = config(&[("allow-duplicate-products", "true")]);
        assert_eq!(found(&d, &cfg), []);
    }

    #[test]
    fn lines_in_the_order_currency_are_accepted() {
        assert_eq!(found(&draft(vec![item(1, 100, 1)]), &[]), []);
    }

    #[test]
    fn a_line_in_another_currency_is_reported_with_its_line() {
        let mut usd = item(2, 100, 1);
        usd.unit_price.currency = "USD".into();
        let d = draft(vec![item(1, 100, 1), usd]);
        assert_eq!(found(&d, &[]), [v("currency-mismatch", Some(1))]);
    }

    #[test]
    fn a_total_equal_to_the_cap_is_accepted() {
        let d = draft(vec![item(1, 50_000_000, 1), item(2, 25_000_000, 2)]);
        assert_eq!(found(&d, &[]), []);
    }

    #[test]
    fn a_total_one_minor_unit_over_the_cap_is_reported() {
        let d = draft(vec![
            item(1, 50_000_000, 1),
            item(2, 25_000_000, 2),
            item(3, 1, 1),
        ]);
        assert_eq!(found(&d, &[]), [v("total-over-limit", None)]);
    }

    #[test]
    fn a_total_beyond_64_bits_is_over_the_cap_not_wrapped() {
        let d = draft(vec![item(1, i64::MAX, 100), item(2, i64::MAX, 100)]);
        let cfg = config(&[("max-total", &i64::MAX.to_string())]);
        assert_eq!(found(&d, &cfg), [v("total-over-limit", None)]);
    }

    #[test]
    fn every_violation_is_reported_order_level_first() {
        let mut usd = item(3, 100, 1);
        usd.unit_price.currency = "USD".into();
        let d = draft(vec![item(1, 100_000_001, 1), item(1, 100, 0), usd]);
        let cfg = config(&[("max-lines", "2")]);
        assert_eq!(
            found(&d, &cfg),
            [
                v("too-many-lines", None),
                v("total-over-limit", None),
                v("quantity-out-of-range", Some(1)),
                v("duplicate-product", Some(1)),
                v("currency-mismatch", Some(2)),
            ]
        );
    }

    #[test]
    fn up_to_the_violation_cap_every_violation_is_returned() {
        let items = (0..99).map(|p| item(p, 100, 0)).collect();
        let cfg = config(&[("max-lines", "1000")]);
        assert_eq!(validate(&draft(items), &cfg).unwrap().len(), 99);
    }

    #[test]
    fn past_the_violation_cap_the_list_is_cut_keeping_order_level_ones() {
        let items = (0..150).map(|p| item(p, 100, 0)).collect();
        let violations = validate(&draft(items), &[]).unwrap();
        assert_eq!(violations.len(), MAX_VIOLATIONS);
        assert_eq!(violations[0].code, "too-many-lines");
    }

    #[test]
    fn each_bad_config_value_is_refused_naming_its_key() {
        let cases = [
            ("min-quantity", "-1"),
            ("max-quantity", "0"),
            ("max-quantity", "ten"),
            ("max-lines", "0"),
            ("max-total", "-5"),
            ("max-total", "1e9"),
            ("allow-duplicate-products", "yes"),
            ("max-quantity-per-line", "5"),
        ];
        for (key, value) in cases {
            let err = validate(&draft(distinct_items(1)), &config(&[(key, value)])).unwrap_err();
            assert_eq!(err.code, "bad-config", "{key}={value}");
            assert!(err.message.contains(key), "{key}={value}: {}", err.message);
        }
    }

    #[test]
    fn a_minimum_above_the_maximum_quantity_is_refused() {
        let cfg = config(&[("min-quantity", "5"), ("max-quantity", "4")]);
        let err = validate(&draft(distinct_items(1)), &cfg).unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains("min-quantity"), "{}", err.message);
    }

    #[test]
    fn every_code_is_kebab_case_and_short() {
        let all = [
            codes::EMPTY_ORDER,
            codes::TOO_MANY_LINES,
            codes::QUANTITY_OUT_OF_RANGE,
            codes::DUPLICATE_PRODUCT,
            codes::CURRENCY_MISMATCH,
            codes::TOTAL_OVER_LIMIT,
        ];
        for code in all {
            assert!((1..=64).contains(&code.len()), "{code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{code}"
            );
        }
    }
}

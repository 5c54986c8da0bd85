//! The host's checks on what a plugin returns. A result that fails one is treated as a plugin
//! failure of kind `bad-output`: the host never acts on amounts or text it cannot trust.
//! Each check returns the first problem found, phrased for the operator.

use std::collections::BTreeMap;

use rule_types::{Money, OrderDraft, RenderedEmail, TaxBreakdown, Violation};

/// Most violations one validation call may return.
pub const MAX_VIOLATIONS: usize = 100;
/// Longest violation code, in characters.
pub const MAX_CODE_LEN: usize = 64;
/// Longest violation message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest e-mail subject, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Largest e-mail HTML body, in bytes.
pub const MAX_HTML_BYTES: usize = 512 << 10;
/// Largest e-mail text body, in bytes.
pub const MAX_TEXT_BYTES: usize = 256 << 10;
/// Most tax lines one item may have (a split across a few rates, not an amplifier).
pub const MAX_TAX_LINES_PER_ITEM: usize = 8;
/// Longest tax rate name, in bytes.
pub const MAX_RATE_NAME_BYTES: usize = 64;

/// Checks a tax breakdown against the draft it was computed for.
///
/// Every amount is non-negative and in the draft's currency; every line refers to an item of
/// the draft, and an item has at most [`MAX_TAX_LINES_PER_ITEM`] lines; a rate name is at
/// most [`MAX_RATE_NAME_BYTES`]; a line's taxable amount is at most the item's total and its
/// tax at most the taxable amount times `max_rate_bps`, rounded up to the minor unit; per
/// item, the lines' taxable amounts add up to at most the item's total and their taxes to at
/// most the item's total times `max_rate_bps` (so splitting an item over many lines cannot
/// charge the maximum rate many times); `total-tax` is the sum of the lines; `by-rate` has
/// exactly one entry per (rate name, rate) of the lines, with their summed taxable amounts and
/// taxes.
pub fn check_tax(draft: &OrderDraft, out: &TaxBreakdown, max_rate_bps: u32) -> Result<(), String> {
    let money = |what: &str, m: &Money| -> Result<i128, String> {
        if m.amount < 0 {
            return Err(format!("{what} is negative ({})", m.amount));
        }
        if m.currency != draft.currency {
            return Err(format!(
                "{what} is in {} but the order is in {}",
                m.currency, draft.currency
            ));
        }
        Ok(i128::from(m.amount))
    };
    let cap = |base: i128| (base * i128::from(max_rate_bps) + 9_999) / 10_000;

    let max_lines = draft.items.len().saturating_mul(MAX_TAX_LINES_PER_ITEM);
    if out.lines.len() > max_lines {
        return Err(format!(
            "{} tax lines for {} items; at most {MAX_TAX_LINES_PER_ITEM} per item are allowed",
            out.lines.len(),
            draft.items.len()
        ));
    }
    let mut sum = 0i128;
    let mut groups: BTreeMap<(&str, u32), (i128, i128)> = BTreeMap::new();
    // Per item: (lines, taxable, tax) over all its lines.
    let mut per_item = vec![(0usize, 0i128, 0i128); draft.items.len()];
    for (i, line) in out.lines.iter().enumerate() {
        let Some(item) = draft.items.get(line.item_index as usize) else {
            return Err(format!(
                "lines[{i}] refers to item {} but the order has {} items",
                line.item_index,
                draft.items.len()
            ));
        };
        if line.rate_name.len() > MAX_RATE_NAME_BYTES {
            return Err(format!(
                "lines[{i}].rate-name is {} bytes; at most {MAX_RATE_NAME_BYTES} are allowed",
                line.rate_name.len()
            ));
        }
        let taxable = money(&format!("lines[{i}].taxable"), &line.taxable)?;
        let tax = money(&format!("lines[{i}].tax"), &line.tax)?;
        let item_total = i128::from(item.unit_price.amount) * i128::from(item.quantity);
        if taxable > item_total {
            return Err(format!(
                "lines[{i}].taxable ({taxable}) exceeds the item's total ({item_total})"
            ));
        }
        if tax > cap(taxable) {
            return Err(format!(
                "lines[{i}].tax ({tax}) exceeds {max_rate_bps} bps of its taxable amount ({taxable})"
            ));
        }
        let totals = &mut per_item[line.item_index as usize];
        totals.0 += 1;
        totals.1 += taxable;
        totals.2 += tax;
        if totals.0 > MAX_TAX_LINES_PER_ITEM {
            return Err(format!(
                "item {} has more than {MAX_TAX_LINES_PER_ITEM} tax lines",
                line.item_index
            ));
        }
        if totals.1 > item_total {
            return Err(format!(
                "the lines of item {} are taxable on {} in all, more than the item's total ({item_total})",
                line.item_index, totals.1
            ));
        }
        if totals.2 > cap(item_total) {
            return Err(format!(
                "the lines of item {} charge {} in all, more than {max_rate_bps} bps of the item's total ({item_total})",
                line.item_index, totals.2
            ));
        }
        sum += tax;
        let group = groups
            .entry((line.rate_name.as_str(), line.rate_bps))
            .or_default();
        group.0 += taxable;
        group.1 += tax;
    }
    let total = money("total-tax", &out.total_tax)?;
    if total != sum {
        return Err(format!(
            "total-tax ({total}) is not the sum of the lines' tax ({sum})"
        ));
    }

    let mut reported: BTreeMap<(&str, u32), (i128, i128)> = BTreeMap::new();
    for (i, rate) in out.by_rate.iter().enumerate() {
        let taxable = money(&format!("by-rate[{i}].taxable"), &rate.taxable)?;
        let tax = money(&format!("by-rate[{i}].tax"), &rate.tax)?;
        let key = (rate.rate_name.as_str(), rate.rate_bps);
        if reported.insert(key, (taxable, tax)).is_some() {
            return Err(format!(
                "by-rate lists {} at {} bps more than once",
                rate.rate_name, rate.rate_bps
            ));
        }
    }
    if reported != groups {
        return Err(format!(
            "by-rate ({}) does not match the sums of the lines per rate ({})",
            describe(&reported),
            describe(&groups)
        ));
    }
    Ok(())
}

fn describe(groups: &BTreeMap<(&str, u32), (i128, i128)>) -> String {
    if groups.is_empty() {
        return "none".into();
    }
    groups
        .iter()
        .map(|((name, bps), (taxable, tax))| format!("{name}@{bps}: {tax} on {taxable}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a validation result: at most [`MAX_VIOLATIONS`], each with a kebab-case code of
/// 1..=64 characters (`[a-z0-9-]`), a message of at most 1 KiB and an item index in range.
pub fn check_violations(draft: &OrderDraft, out: &[Violation]) -> Result<(), String> {
    if out.len() > MAX_VIOLATIONS {
        return Err(format!(
            "{} violations returned; at most {MAX_VIOLATIONS} are allowed",
            out.len()
        ));
    }
    for (i, v) in out.iter().enumerate() {
        let code_ok = (1..=MAX_CODE_LEN).contains(&v.code.len())
            && v.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !code_ok {
            return Err(format!(
                "violations[{i}].code {:?} is not 1 to {MAX_CODE_LEN} characters of [a-z0-9-]",
                truncate(&v.code)
            ));
        }
        if v.message.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "violations[{i}].message is {} bytes; at most {MAX_MESSAGE_BYTES} are allowed",
                v.message.len()
            ));
        }
        if let Some(index) = v.item_index
            && index as usize >= draft.items.len()
        {
            return Err(format!(
                "violations[{i}] refers to item {index} but the order has {} items",
                draft.items.len()
            ));
        }
    }
    Ok(())
}

/// Checks a rendered e-mail: a one-line subject of at most 256 bytes, HTML of at most
/// 512 KiB and text of at most 256 KiB.
pub fn check_email(out: &RenderedEmail) -> Result<(), String> {
    if out.subject.len() > MAX_SUBJECT_BYTES {
        return Err(format!(
            "the subject is {} bytes; at most {MAX_SUBJECT_BYTES} are allowed",
            out.subject.len()
        ));
    }
    if out.subject.contains(['\r', '\n']) {
        return Err("the subject contains a line break".into());
    }
    if out.html.len() > MAX_HTML_BYTES {
        return Err(format!(
            "the HTML body is {} bytes; at most {MAX_HTML_BYTES} are allowed",
            out.html.len()
        ));
    }
    if out.text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "the text body is {} bytes; at most {MAX_TEXT_BYTES} are allowed",
            out.text.len()
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rule_types::{Customer, LineItem, RateTotal, TaxLine};

    fn draft(prices: &[(i64, u32)]) -> OrderDraft {
        OrderDraft {
            order_id: None,
            customer: Customer {
                id: "a".repeat(24),
                email: "c@example.com".into(),
                name: "c".into(),
            },
            items: prices
                .iter()
                .enumerate()
                .map(|(i, &(price, quantity))| LineItem {
                    product_id: format!("{i:024x}"),
                    sku: format!("SKU-{i}"),
                    name: format!("item {i}"),
                    category: "general".into(),
                    unit_price: Money::new(price, "INR"),
                    quantity,
                })
                .collect(),
            currency: "INR".into(),
            shipping_address: None,
        }
    }

    fn line(index: u32, taxable: i64, tax: i64) -> TaxLine {
        TaxLine {
            item_index: index,
            rate_name: "gst".into(),
            rate_bps: 1800,
            taxable: Money::new(taxable, "INR"),
            tax: Money::new(tax, "INR"),
        }
    }

    fn breakdown(lines: Vec<TaxLine>) -> TaxBreakdown {
        let taxable: i64 = lines.iter().map(|l| l.taxable.amount).sum();
        let tax: i64 = lines.iter().map(|l| l.tax.amount).sum();
        TaxBreakdown {
            lines,
            by_rate: vec![RateTotal {
                rate_name: "gst".into(),
                rate_bps: 1800,
                taxable: Money::new(taxable, "INR"),
                tax: Money::new(tax, "INR"),
            }],
            total_tax: Money::new(tax, "INR"),
        }
    }

    #[test]
    fn a_consistent_breakdown_passes() {
        let d = draft(&[(1000, 2), (333, 1)]);
        check_tax(
            &d,
            &breakdown(vec![line(0, 2000, 360), line(1, 333, 60)]),
            10_000,
        )
        .unwrap();
    }

    #[test]
    fn a_negative_tax_is_refused() {
        let d = draft(&[(1000, 1)]);
        let err = check_tax(&d, &breakdown(vec![line(0, 1000, -5)]), 10_000).unwrap_err();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn tax_at_the_maximum_rate_passes_and_above_it_is_refused() {
        let d = draft(&[(1000, 1)]);
        check_tax(&d, &breakdown(vec![line(0, 1000, 1000)]), 10_000).unwrap();
        let err = check_tax(&d, &breakdown(vec![line(0, 1000, 1001)]), 10_000).unwrap_err();
        assert!(err.contains("exceeds 10000 bps"), "{err}");
    }

    #[test]
    fn rounding_up_to_the_minor_unit_stays_within_the_maximum_rate() {
        // 3 × 28% = 0.84, which rounds to 1 minor unit.
        let d = draft(&[(3, 1)]);
        check_tax(&d, &breakdown(vec![line(0, 3, 1)]), 2800).unwrap();
        let err = check_tax(&d, &breakdown(vec![line(0, 3, 2)]), 2800).unwrap_err();
        assert!(err.contains("exceeds 2800 bps"), "{err}");
    }

    #[test]
    fn a_taxable_amount_above_the_item_total_is_refused() {
        let d = draft(&[(1000, 1)]);
        let err = check_tax(&d, &breakdown(vec![line(0, 1001, 10)]), 10_000).unwrap_err();
        assert!(err.contains("exceeds the item's total"), "{err}");
    }

    #[test]
    fn a_line_for_a_missing_item_is_refused() {
        let d = draft(&[(1000, 1)]);
        let err = check_tax(&d, &breakdown(vec![line(1, 0, 0)]), 10_000).unwrap_err();
        assert!(err.contains("refers to item 1"), "{err}");
    }

    #[test]
    fn a_foreign_currency_is_refused() {
        let d = draft(&[(1000, 1)]);
        let mut b = breakdown(vec![line(0, 1000, 180)]);
        b.total_tax.currency = "USD".into();
        let err = check_tax(&d, &b, 10_000).unwrap_err();
        assert!(err.contains("USD"), "{err}");
    }

    #[test]
    fn a_total_that_does_not_add_up_is_refused() {
        let d = draft(&[(1000, 1)]);
        let mut b = breakdown(vec![line(0, 1000, 180)]);
        b.total_tax.amount = 181;
        let err = check_tax(&d, &b, 10_000).unwrap_err();
        assert!(err.contains("not the sum"), "{err}");
    }

    #[test]
    fn by_rate_sums_that_differ_from_the_lines_are_refused() {
        let d = draft(&[(1000, 1)]);
        let mut b = breakdown(vec![line(0, 1000, 180)]);
        b.by_rate[0].tax.amount = 179;
        let err = check_tax(&d, &b, 10_000).unwrap_err();
        assert!(err.contains("by-rate"), "{err}");
        let mut b = breakdown(vec![line(0, 1000, 180)]);
        b.by_rate.clear();
        assert!(check_tax(&d, &b, 10_000).is_err());
    }

    fn named(index: u32, name: &str, taxable: i64, tax: i64) -> TaxLine {
        TaxLine {
            rate_name: name.into(),
            ..line(index, taxable, tax)
        }
    }

    fn breakdown_by_name(lines: Vec<TaxLine>) -> TaxBreakdown {
        let mut by_rate: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for l in &lines {
            let e = by_rate.entry(l.rate_name.clone()).or_default();
            e.0 += l.taxable.amount;
            e.1 += l.tax.amount;
        }
        TaxBreakdown {
            total_tax: Money::new(lines.iter().map(|l| l.tax.amount).sum(), "INR"),
            by_rate: by_rate
                .into_iter()
                .map(|(name, (taxable, tax))| RateTotal {
                    rate_name: name,
                    rate_bps: 1800,
                    taxable: Money::new(taxable, "INR"),
                    tax: Money::new(tax, "INR"),
                })
                .collect(),
            lines,
        }
    }

    #[test]
    fn many_lines_for_one_item_cannot_charge_the_maximum_rate_many_times() {
        // Each line alone is within 100% of the item's total; together they charge 300%.
        let d = draft(&[(1000, 1)]);
        let lines = (0..3).map(|_| line(0, 1000, 1000)).collect();
        let err = check_tax(&d, &breakdown(lines), 10_000).unwrap_err();
        assert!(err.contains("of item 0"), "{err}");
    }

    #[test]
    fn the_lines_of_an_item_may_split_its_total_across_rates() {
        let d = draft(&[(1000, 1)]);
        let b = breakdown_by_name(vec![named(0, "a", 600, 600), named(0, "b", 400, 400)]);
        check_tax(&d, &b, 10_000).unwrap();
        let over = breakdown_by_name(vec![named(0, "a", 600, 600), named(0, "b", 401, 1)]);
        let err = check_tax(&d, &over, 10_000).unwrap_err();
        assert!(err.contains("more than the item's total"), "{err}");
    }

    #[test]
    fn more_tax_lines_than_allowed_per_item_are_refused() {
        let d = draft(&[(1000, 2)]);
        let ok = (0..MAX_TAX_LINES_PER_ITEM).map(|_| line(0, 0, 0)).collect();
        check_tax(&d, &breakdown(ok), 10_000).unwrap();
        let many = (0..=MAX_TAX_LINES_PER_ITEM)
            .map(|_| line(0, 0, 0))
            .collect();
        let err = check_tax(&d, &breakdown(many), 10_000).unwrap_err();
        assert!(err.contains("tax lines"), "{err}");
        // A flood far beyond the items is refused before any line is looked at.
        let flood = (0..100_000).map(|_| line(0, 0, 0)).collect();
        assert!(check_tax(&d, &breakdown(flood), 10_000).is_err());
    }

    #[test]
    fn a_rate_name_longer_than_allowed_is_refused() {
        let d = draft(&[(1000, 1)]);
        let fits = "r".repeat(MAX_RATE_NAME_BYTES);
        check_tax(
            &d,
            &breakdown_by_name(vec![named(0, &fits, 1000, 180)]),
            10_000,
        )
        .unwrap();
        let long = "r".repeat(MAX_RATE_NAME_BYTES + 1);
        let err = check_tax(
            &d,
            &breakdown_by_name(vec![named(0, &long, 1000, 180)]),
            10_000,
        )
        .unwrap_err();
        assert!(err.contains("rate-name"), "{err}");
    }

    fn violation(code: &str, message: &str, index: Option<u32>) -> Violation {
        Violation {
            code: code.into(),
            message: message.into(),
            item_index: index,
        }
    }

    #[test]
    fn well_formed_violations_pass() {
        let d = draft(&[(1000, 1)]);
        check_violations(
            &d,
            &[violation("quantity-out-of-range", "too many", Some(0))],
        )
        .unwrap();
        check_violations(&d, &vec![violation("x", "", None); MAX_VIOLATIONS]).unwrap();
    }

    #[test]
    fn malformed_violations_are_refused() {
        let d = draft(&[(1000, 1)]);
        for bad in [
            violation("", "m", None),
            violation("Upper-Case", "m", None),
            violation(&"a".repeat(MAX_CODE_LEN + 1), "m", None),
            violation("ok", &"m".repeat(MAX_MESSAGE_BYTES + 1), None),
            violation("ok", "m", Some(1)),
        ] {
            assert!(
                check_violations(&d, std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_violations(&d, &vec![violation("x", "", None); MAX_VIOLATIONS + 1]).is_err());
    }

    fn email(subject: &str, html: usize, text: usize) -> RenderedEmail {
        RenderedEmail {
            subject: subject.into(),
            html: "h".repeat(html),
            text: "t".repeat(text),
        }
    }

    #[test]
    fn emails_within_the_bounds_pass() {
        check_email(&email(
            &"s".repeat(MAX_SUBJECT_BYTES),
            MAX_HTML_BYTES,
            MAX_TEXT_BYTES,
        ))
        .unwrap();
    }

    #[test]
    fn emails_beyond_the_bounds_are_refused() {
        assert!(check_email(&email(&"s".repeat(MAX_SUBJECT_BYTES + 1), 1, 1)).is_err());
        assert!(check_email(&email("two\r\nlines", 1, 1)).is_err());
        assert!(check_email(&email("s", MAX_HTML_BYTES + 1, 1)).is_err());
        assert!(check_email(&email("s", 1, MAX_TEXT_BYTES + 1)).is_err());
    }
}

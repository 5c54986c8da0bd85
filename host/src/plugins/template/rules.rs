//! What `orderd plugin new` writes for each slot: a small, correct rule on the SDK's plain
//! types (`src/lib.rs`) with unit tests, the fixture test that runs `fixtures/` natively, the
//! fixtures themselves (computed here from the host's built-in sample order) and an example
//! input for `orderd plugin run`.

use anyhow::Context as _;
use rule_types::fixture::{
    EmailExpectation, EmailInput, EmailKind, Expected, ExpectedError, ExpectedViolation, Fixture,
};
use rule_types::{Config, Money, OrderDraft, RateTotal, TaxBreakdown, TaxLine};
use serde::Serialize;

use crate::plugins::contract::Slot;
use crate::plugins::fixtures;

/// `src/lib.rs` for `slot`.
pub fn lib_rs(slot: Slot) -> String {
    match slot {
        Slot::Tax => TAX_LIB,
        Slot::Validation => VALIDATION_LIB,
        Slot::Email => EMAIL_LIB,
    }
    .to_owned()
}

/// `tests/fixtures.rs`: every file in `fixtures/`, run natively through the SDK.
pub fn fixtures_test(name: &str, slot: Slot) -> String {
    let runner = match slot {
        Slot::Tax => "assert_tax_fixtures",
        Slot::Validation => "assert_validation_fixtures",
        Slot::Email => "assert_email_fixtures",
    };
    format!(
        "//! Runs every fixture in `fixtures/` against the rule, natively. `orderd plugin test`\n\
         //! runs the same files against the built component.\n\n\
         #[test]\n\
         fn every_fixture_gives_its_expected_outcome() {{\n    \
         orderd_rules::testing::{runner}::<{krate}::Plugin>(concat!(\n        \
         env!(\"CARGO_MANIFEST_DIR\"),\n        \"/fixtures\"\n    ));\n}}\n",
        krate = name.replace('-', "_"),
    )
}

/// `input.json`: the host's sample draft, or the sample stored order for e-mail.
pub fn example_input(slot: Slot) -> anyhow::Result<String> {
    Ok(match slot {
        Slot::Tax | Slot::Validation => serde_json::to_string_pretty(&fixtures::draft())?,
        Slot::Email => serde_json::to_string_pretty(&fixtures::stored_order())?,
    })
}

/// `fixtures/*.json` for `slot`, as (file name, JSON).
pub fn fixtures(slot: Slot) -> anyhow::Result<Vec<(&'static str, String)>> {
    let out: Vec<(&'static str, serde_json::Result<String>)> = match slot {
        Slot::Tax => vec![
            (
                "default-rate.json",
                json(&tax_fixture("10% on every line by default", vec![], 1000)),
            ),
            (
                "configured-rate.json",
                json(&tax_fixture(
                    "`rate` sets the rate in basis points",
                    pairs(&[("rate", "1200")]),
                    1200,
                )),
            ),
            (
                "bad-rate.json",
                json(&error_fixture::<TaxBreakdown>(
                    "a rate above 100% is refused",
                    pairs(&[("rate", "10001")]),
                    "rate",
                )),
            ),
        ],
        Slot::Validation => vec![
            (
                "accepts-the-sample.json",
                json(&Fixture {
                    description: "the sample order is accepted".into(),
                    config: vec![],
                    input: fixtures::draft(),
                    expected: Expected::Ok(Vec::<ExpectedViolation>::new()),
                }),
            ),
            (
                "quantity-too-large.json",
                json(&Fixture {
                    description: "a line above `max-quantity` is refused, naming the line".into(),
                    config: pairs(&[("max-quantity", "2")]),
                    input: fixtures::draft(),
                    expected: Expected::Ok(vec![ExpectedViolation {
                        code: "quantity-too-large".into(),
                        item_index: Some(2),
                        message: None,
                    }]),
                }),
            ),
            (
                "bad-config.json",
                json(&error_fixture::<Vec<ExpectedViolation>>(
                    "a max-quantity that is not a number is refused",
                    pairs(&[("max-quantity", "many")]),
                    "max-quantity",
                )),
            ),
        ],
        Slot::Email => {
            let order = fixtures::stored_order();
            let expectation = |what: &str| EmailExpectation {
                subject: format!("Order {} {what}", order.order_id),
                html_contains: vec![
                    format!("your order {} is {what}", order.order_id),
                    "Notebook &lt;A5&gt;".into(),
                ],
                html_excludes: vec!["<A5>".into()],
                text_contains: vec!["3 x Notebook <A5>".into()],
                text_excludes: vec![],
            };
            vec![
                (
                    "confirmation.json",
                    json(&Fixture {
                        description: "a confirmation names the order and escapes catalog text"
                            .into(),
                        config: vec![],
                        input: EmailInput {
                            kind: EmailKind::Confirmation,
                            order: order.clone(),
                        },
                        expected: Expected::Ok(expectation("confirmed")),
                    }),
                ),
                (
                    "cancellation.json",
                    json(&Fixture {
                        description: "a cancellation says so".into(),
                        config: vec![],
                        input: EmailInput {
                            kind: EmailKind::Cancellation,
                            order: fixtures::cancelled_order(),
                        },
                        expected: Expected::Ok(expectation("cancelled")),
                    }),
                ),
            ]
        }
    };
    out.into_iter()
        .map(|(name, text)| {
            text.map(|t| (name, t))
                .with_context(|| format!("fixture {name}"))
        })
        .collect()
}

fn json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value)
}

fn pairs(p: &[(&str, &str)]) -> Config {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn error_fixture<O: Serialize>(
    description: &str,
    config: Config,
    key: &str,
) -> Fixture<OrderDraft, O> {
    Fixture {
        description: description.into(),
        config,
        input: fixtures::draft(),
        expected: Expected::Error(ExpectedError {
            code: "bad-config".into(),
            message_contains: key.into(),
        }),
    }
}

/// The sample draft taxed at one flat rate, half-up per line: what the template's tax rule
/// must answer.
fn tax_fixture(description: &str, config: Config, bps: u32) -> Fixture<OrderDraft, TaxBreakdown> {
    let draft = fixtures::draft();
    let money = |amount: i64| Money::new(amount, draft.currency.as_str());
    let mut lines = Vec::new();
    let (mut taxable_sum, mut tax_sum) = (0, 0);
    for (index, item) in draft.items.iter().enumerate() {
        let taxable = item.unit_price.amount * i64::from(item.quantity);
        let tax = (taxable * i64::from(bps) + 5_000) / 10_000;
        taxable_sum += taxable;
        tax_sum += tax;
        lines.push(TaxLine {
            item_index: index as u32,
            rate_name: "flat".into(),
            rate_bps: bps,
            taxable: money(taxable),
            tax: money(tax),
        });
    }
    let by_rate = vec![RateTotal {
        rate_name: "flat".into(),
        rate_bps: bps,
        taxable: money(taxable_sum),
        tax: money(tax_sum),
    }];
    Fixture {
        description: description.into(),
        config,
        input: draft.clone(),
        expected: Expected::Ok(TaxBreakdown {
            lines,
            by_rate,
            total_tax: money(tax_sum),
        }),
    }
}

const TAX_LIB: &str = r#"//! An orderd tax rule: one flat rate on every line.
//!
//! Config: `rate`, basis points 0..=10000 (1200 = 12%), default 1000 (10%). The tax of a line
//! is `unit price × quantity × rate`, rounded half-up to the minor unit.

use orderd_rules::{Money, OrderDraft, PluginError, RateTotal, TaxBreakdown, TaxLine, TaxRule};

pub struct Plugin;

impl TaxRule for Plugin {
    fn calculate(draft: &OrderDraft, config: &[(String, String)]) -> Result<TaxBreakdown, PluginError> {
        let bps: u32 = match orderd_rules::config_get(config, "rate") {
            Some(v) => v.parse().ok().filter(|b| *b <= 10_000).ok_or_else(|| {
                PluginError::new("bad-config", format!("rate must be basis points 0..=10000, got {v:?}"))
            })?,
            None => 1000,
        };
        let overflow = || PluginError::new("amount-overflow", "an amount does not fit in 64 bits");
        let money = |amount: i64| Money::new(amount, draft.currency.as_str());
        let mut lines = Vec::new();
        let (mut taxable_sum, mut tax_sum) = (0i64, 0i64);
        for (index, item) in draft.items.iter().enumerate() {
            let taxable = item.unit_price.amount.checked_mul(i64::from(item.quantity)).ok_or_else(overflow)?;
            let tax = tax_half_up(taxable, bps);
            taxable_sum = taxable_sum.checked_add(taxable).ok_or_else(overflow)?;
            tax_sum = tax_sum.checked_add(tax).ok_or_else(overflow)?;
            lines.push(TaxLine {
                item_index: index as u32,
                rate_name: "flat".into(),
                rate_bps: bps,
                taxable: money(taxable),
                tax: money(tax),
            });
        }
        let by_rate = if lines.is_empty() {
            Vec::new()
        } else {
            vec![RateTotal { rate_name: "flat".into(), rate_bps: bps, taxable: money(taxable_sum), tax: money(tax_sum) }]
        };
        Ok(TaxBreakdown { lines, by_rate, total_tax: money(tax_sum) })
    }
}

/// `taxable × bps / 10000`, rounded half-up to the minor unit.
pub fn tax_half_up(taxable: i64, bps: u32) -> i64 {
    ((i128::from(taxable) * i128::from(bps) + 5_000) / 10_000) as i64
}

orderd_rules::export_tax_rule!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_minor_unit_rounds_up() {
        assert_eq!(tax_half_up(25, 1800), 5); // 4.5 -> 5
        assert_eq!(tax_half_up(24, 1800), 4); // 4.32 -> 4
    }
}
"#;

const VALIDATION_LIB: &str = r#"//! An orderd validation rule: refuses empty orders and lines above `max-quantity` units.
//!
//! Config: `max-quantity`, a whole number, default 10.

use orderd_rules::{OrderDraft, PluginError, ValidationRule, Violation};

pub struct Plugin;

impl ValidationRule for Plugin {
    fn validate(draft: &OrderDraft, config: &[(String, String)]) -> Result<Vec<Violation>, PluginError> {
        let max: u32 = match orderd_rules::config_get(config, "max-quantity") {
            Some(v) => v.parse().map_err(|_| {
                PluginError::new("bad-config", format!("max-quantity must be a whole number, got {v:?}"))
            })?,
            None => 10,
        };
        let mut violations = Vec::new();
        if draft.items.is_empty() {
            violations.push(Violation { code: "empty-order".into(), message: "the order has no items".into(), item_index: None });
        }
        for (index, item) in draft.items.iter().enumerate() {
            if item.quantity > max {
                violations.push(Violation {
                    code: "quantity-too-large".into(),
                    message: format!("at most {max} units per line"),
                    item_index: Some(index as u32),
                });
            }
        }
        Ok(violations)
    }
}

orderd_rules::export_validation_rule!(Plugin);
"#;

const EMAIL_LIB: &str = r#"//! An orderd e-mail renderer: short confirmation and cancellation messages.

use orderd_rules::{EmailRenderer, PluginError, RenderedEmail, StoredOrder};

pub struct Plugin;

/// Escapes text for HTML: every customer- or catalog-supplied string goes through this.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// One line, no control characters (for the subject).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn render(order: &StoredOrder, what: &str) -> RenderedEmail {
    let subject = one_line(&format!("Order {} {what}", order.order_id));
    let items: Vec<String> = order.items.iter().map(|l| format!("{} x {}", l.quantity, l.name)).collect();
    let html_items: String = items.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
    RenderedEmail {
        html: format!(
            "<!doctype html><html><body><p>Hello {},</p><p>your order {} is {what}.</p><ul>{html_items}</ul></body></html>",
            escape(&order.customer.name),
            escape(&order.order_id)
        ),
        text: format!("Hello {},\n\nyour order {} is {what}.\n\n{}\n", order.customer.name, order.order_id, items.join("\n")),
        subject,
    }
}

impl EmailRenderer for Plugin {
    fn render_confirmation(order: &StoredOrder, _config: &[(String, String)]) -> Result<RenderedEmail, PluginError> {
        Ok(render(order, "confirmed"))
    }

    fn render_cancellation(order: &StoredOrder, _config: &[(String, String)]) -> Result<RenderedEmail, PluginError> {
        Ok(render(order, "cancelled"))
    }
}

orderd_rules::export_email_renderer!(Plugin);
"#;

//! Hostile guest for tests: a tax plugin whose output is well-formed and adds up but carries
//! a negative tax on every line, which the host's output check must refuse.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;
    impl Guest for Plugin {
        fn calculate(draft: OrderDraft, _config: Config) -> Result<TaxBreakdown, PluginError> {
            let money = |amount| Money {
                amount,
                currency: draft.currency.clone(),
            };
            let mut lines = Vec::new();
            let (mut taxable_sum, mut tax_sum) = (0i64, 0i64);
            for (index, item) in draft.items.iter().enumerate() {
                let taxable = item
                    .unit_price
                    .amount
                    .saturating_mul(i64::from(item.quantity));
                let tax = -(taxable / 10) - 1;
                taxable_sum = taxable_sum.saturating_add(taxable);
                tax_sum = tax_sum.saturating_add(tax);
                lines.push(TaxLine {
                    item_index: index as u32,
                    rate_name: "negative".into(),
                    rate_bps: 1000,
                    taxable: money(taxable),
                    tax: money(tax),
                });
            }
            let by_rate = if lines.is_empty() {
                Vec::new()
            } else {
                vec![RateTotal {
                    rate_name: "negative".into(),
                    rate_bps: 1000,
                    taxable: money(taxable_sum),
                    tax: money(tax_sum),
                }]
            };
            Ok(TaxBreakdown {
                lines,
                by_rate,
                total_tax: money(tax_sum),
            })
        }
    }
    export!(Plugin);
}

//! Test guest: a correct tax plugin with one flat rate, 10% (1000 bps) named "flat", on
//! every line, rounded half-up per line like `gst-tax`. The hot-swap tests use it as the
//! second version of the tax slot.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;

    const RATE_NAME: &str = "flat";
    const RATE_BPS: u32 = 1000;

    fn overflow() -> PluginError {
        PluginError {
            code: "amount-overflow".into(),
            message: "amount beyond 64 bits".into(),
        }
    }

    impl Guest for Plugin {
        fn calculate(draft: OrderDraft, _config: Config) -> Result<TaxBreakdown, PluginError> {
            let money = |amount| Money {
                amount,
                currency: draft.currency.clone(),
            };
            let mut lines = Vec::with_capacity(draft.items.len());
            let (mut taxable_sum, mut tax_sum) = (0i64, 0i64);
            for (index, item) in draft.items.iter().enumerate() {
                let taxable =
                    i64::try_from(i128::from(item.unit_price.amount) * i128::from(item.quantity))
                        .map_err(|_| overflow())?;
                let tax = ((i128::from(taxable) * i128::from(RATE_BPS) + 5_000) / 10_000) as i64;
                taxable_sum = taxable_sum.checked_add(taxable).ok_or_else(overflow)?;
                tax_sum = tax_sum.checked_add(tax).ok_or_else(overflow)?;
                lines.push(TaxLine {
                    item_index: index as u32,
                    rate_name: RATE_NAME.into(),
                    rate_bps: RATE_BPS,
                    taxable: money(taxable),
                    tax: money(tax),
                });
            }
            let by_rate = if lines.is_empty() {
                Vec::new()
            } else {
                vec![RateTotal {
                    rate_name: RATE_NAME.into(),
                    rate_bps: RATE_BPS,
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

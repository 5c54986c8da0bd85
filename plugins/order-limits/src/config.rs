//! The operator settings of the validation slot: quantity range, line count, duplicate
//! products and the order total cap, parsed once per call and rejected whole when any key
//! is bad.

use orderd_rules::PluginError;

/// The limits one call enforces, parsed from the slot config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Smallest quantity a line may order (`min-quantity`).
    pub min_quantity: u32,
    /// Largest quantity a line may order (`max-quantity`).
    pub max_quantity: u32,
    /// Most lines an order may have (`max-lines`).
    pub max_lines: u32,
    /// Whether two lines may order the same product (`allow-duplicate-products`).
    pub allow_duplicate_products: bool,
    /// Largest order total in minor units, before tax (`max-total`).
    pub max_total: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            min_quantity: 1,
            max_quantity: 100,
            max_lines: 50,
            allow_duplicate_products: false,
            max_total: 100_000_000,
        }
    }
}

impl LimitsConfig {
    /// Parses the slot config. Later entries override earlier ones; an unknown key, a value
    /// that does not parse, `max-quantity`/`max-lines` of 0, a negative `max-total` or
    /// `min-quantity` above `max-quantity` is a `bad-config` error naming the key.
    pub fn parse(config: &[(String, String)]) -> Result<Self, PluginError> {
        let mut parsed = Self::default();
        for (key, value) in config {
            match key.as_str() {
                "min-quantity" => parsed.min_quantity = parse_number(key, value, 0)?,
                "max-quantity" => parsed.max_quantity = parse_number(key, value, 1)?,
                "max-lines" => parsed.max_lines = parse_number(key, value, 1)?,
                "max-total" => parsed.max_total = parse_number(key, value, 0)?,
                "allow-duplicate-products" => {
                    parsed.allow_duplicate_products = match value.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad_config(key, value, "expected `true` or `false`")),
                    }
                }
                _ => {
                    return Err(bad_config(
                        key,
                        value,
                        "unknown key (expected min-quantity, max-quantity, max-lines, \
                         allow-duplicate-products or max-total)",
                    ));
                }
            }
        }
        if parsed.min_quantity > parsed.max_quantity {
            return Err(PluginError::new(
                "bad-config",
                format!(
                    "config key `min-quantity`: {} is above max-quantity {}",
                    parsed.min_quantity, parsed.max_quantity
                ),
            ));
        }
        Ok(parsed)
    }
}

/// Parses a whole number no smaller than `min`.
fn parse_number<T>(key: &str, value: &str, min: T) -> Result<T, PluginError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match value.trim().parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(bad_config(
            key,
            value,
            &format!("expected a whole number of at least {min}"),
        )),
    }
}

fn bad_config(key: &str, value: &str, reason: &str) -> PluginError {
    PluginError::new(
        "bad-config",
        format!(
            "config key `{}` = {:?}: {reason}",
            crate::clip(key, 64),
            crate::clip(value, 32)
        ),
    )
}

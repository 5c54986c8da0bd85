//! The operator settings of the tax slot: the default rate, per-category rates and the rate
//! name, parsed once per call from the slot config and rejected whole when any key is bad.

use orderd_rules::PluginError;

/// Rate applied to a line whose category has no rate of its own: 18% GST.
pub const DEFAULT_RATE_BPS: u32 = 1800;
/// Name of the default rate, and prefix of the per-category rate names.
pub const DEFAULT_RATE_NAME: &str = "gst";
/// Highest accepted rate: 100%.
pub const MAX_RATE_BPS: u32 = 10_000;

/// Config key of the default rate, in basis points.
const KEY_DEFAULT: &str = "rate.default";
/// Prefix of the per-category rate keys (`rate.<category>`).
const KEY_CATEGORY_PREFIX: &str = "rate.";
/// Config key of the rate name.
const KEY_NAME: &str = "rate-name";

/// The rates one call applies, parsed from the slot config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxConfig {
    /// Rate of lines whose category has no rate of its own, in basis points.
    default_bps: u32,
    /// Name reported for the default rate (`rate-name`, "gst" unless set).
    rate_name: String,
    /// Per-category rates, in config order.
    categories: Vec<CategoryRate>,
}

/// One `rate.<category>` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CategoryRate {
    /// The category, lower case.
    category: String,
    /// Reported name, `<rate name>-<category>`; filled in once the whole config is read,
    /// since `rate-name` may come after the category keys.
    name: String,
    /// Basis points from the config.
    bps: u32,
}

/// The rate that applies to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate<'a> {
    /// Reported name: the rate name, or `<rate name>-<category>` for a category rate.
    pub name: &'a str,
    /// Rate in basis points.
    pub bps: u32,
}

impl Default for TaxConfig {
    fn default() -> Self {
        Self {
            default_bps: DEFAULT_RATE_BPS,
            rate_name: DEFAULT_RATE_NAME.to_string(),
            categories: Vec::new(),
        }
    }
}

impl TaxConfig {
    /// Parses the slot config. Later entries override earlier ones with the same key; an
    /// unknown key, a rate outside 0..=10000 bps or an empty name is a `bad-config` error
    /// naming the key, so an operator's typo never silently taxes at the wrong rate.
    pub fn parse(config: &[(String, String)]) -> Result<Self, PluginError> {
        let mut parsed = Self::default();
        for (key, value) in config {
            if key == KEY_NAME {
                parsed.rate_name = parse_name(key, value)?;
            } else if key == KEY_DEFAULT {
                parsed.default_bps = parse_bps(key, value)?;
            } else if let Some(category) = key.strip_prefix(KEY_CATEGORY_PREFIX) {
                if category.trim().is_empty() {
                    return Err(bad_config(key, "the category after `rate.` is empty"));
                }
                let category = category.to_ascii_lowercase();
                let bps = parse_bps(key, value)?;
                match parsed
                    .categories
                    .iter_mut()
                    .find(|c| c.category == category)
                {
                    Some(existing) => existing.bps = bps,
                    None => parsed.categories.push(CategoryRate {
                        category,
                        name: String::new(),
                        bps,
                    }),
                }
            } else {
                return Err(bad_config(
                    key,
                    "unknown key (expected `rate.default`, `rate.<category>` or `rate-name`)",
                ));
            }
        }
        for c in &mut parsed.categories {
            c.name = format!("{}-{}", parsed.rate_name, c.category);
        }
        Ok(parsed)
    }

    /// The rate for a line of `category` (matched without regard to ASCII case).
    pub fn rate_for(&self, category: &str) -> Rate<'_> {
        match self
            .categories
            .iter()
            .find(|c| c.category.eq_ignore_ascii_case(category))
        {
            Some(c) => Rate {
                name: &c.name,
                bps: c.bps,
            },
            None => Rate {
                name: &self.rate_name,
                bps: self.default_bps,
            },
        }
    }
}

/// Parses a rate in basis points, 0..=10000.
fn parse_bps(key: &str, value: &str) -> Result<u32, PluginError> {
    match value.trim().parse::<u32>() {
        Ok(bps) if bps <= MAX_RATE_BPS => Ok(bps),
        _ => Err(bad_config(
            key,
            &format!(
                "expected basis points 0..={MAX_RATE_BPS}, got {:?}",
                clip(value, 32)
            ),
        )),
    }
}

/// Parses a rate name: 1..=64 characters, none of them a control character.
fn parse_name(key: &str, value: &str) -> Result<String, PluginError> {
    let name = value.trim();
    let valid =
        !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control);
    if valid {
        Ok(name.to_string())
    } else {
        Err(bad_config(key, "expected 1 to 64 printable characters"))
    }
}

fn bad_config(key: &str, reason: &str) -> PluginError {
    PluginError::new(
        "bad-config",
        format!("config key `{}`: {reason}", clip(key, 64)),
    )
}

/// At most `max` characters of `s`, so an error message stays short whatever the operator set.
fn clip(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end])
}

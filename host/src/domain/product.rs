//! Catalog products: names, SKUs, categories, prices in minor units and stock.

use chrono::{DateTime, Utc};

use super::{Currency, Id, ParseError};

/// A catalog entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: Id,
    /// Display name, 1–200 characters of any script.
    pub name: String,
    /// Stock-keeping unit, unique in the catalog.
    pub sku: String,
    pub description: Option<String>,
    /// Lower-case category; tax rates may depend on it.
    pub category: String,
    /// Price of one unit in minor units of `currency`.
    pub price: i64,
    pub currency: Currency,
    /// Units on hand; never negative.
    pub stock: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An admin's change to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
}

/// Largest stock count a product may carry.
pub const MAX_STOCK: i64 = 1_000_000_000;

pub fn parse_name(s: &str) -> Result<String, ParseError> {
    let t = s.trim();
    let len = t.chars().count();
    if len == 0 || len > 200 {
        return Err(ParseError::new(
            "invalid-length",
            "must be 1 to 200 characters",
        ));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(ParseError::new(
            "invalid-format",
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

pub fn parse_description(s: &str) -> Result<String, ParseError> {
    if s.chars().count() > 2000 {
        return Err(ParseError::new(
            "invalid-length",
            "must be at most 2000 characters",
        ));
    }
    Ok(s.to_owned())
}

/// 1–64 characters of `[A-Za-z0-9._-]`.
pub fn parse_sku(s: &str) -> Result<String, ParseError> {
    if s.is_empty() || s.len() > 64 {
        return Err(ParseError::new(
            "invalid-length",
            "must be 1 to 64 characters",
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ParseError::new(
            "invalid-format",
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(s.to_owned())
}

/// 1–64 characters of `[a-z0-9_-]`, lower-cased.
pub fn parse_category(s: &str) -> Result<String, ParseError> {
    let c = s.trim().to_lowercase();
    if c.is_empty() || c.len() > 64 {
        return Err(ParseError::new(
            "invalid-length",
            "must be 1 to 64 characters",
        ));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
    {
        return Err(ParseError::new(
            "invalid-format",
            "may contain only letters a-z, digits, '_' and '-'",
        ));
    }
    Ok(c)
}

pub fn parse_stock(n: i64) -> Result<i64, ParseError> {
    if !(0..=MAX_STOCK).contains(&n) {
        return Err(ParseError::new(
            "out-of-range",
            format!("must be an integer between 0 and {MAX_STOCK}"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_allow_a_safe_alphabet_only() {
        assert!(parse_sku("TEA-500g_v1.2").is_ok());
        for bad in [
            "",
            "a b",
            "x'; DROP TABLE products;--",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(parse_sku(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_accept_any_script_and_emoji_but_not_control_characters() {
        assert_eq!(parse_name("  Chai ☕ मसाला ").unwrap(), "Chai ☕ मसाला");
        assert!(parse_name("").is_err());
        assert!(parse_name("bad\u{0}name").is_err());
        assert!(parse_name(&"é".repeat(201)).is_err());
    }

    #[test]
    fn categories_are_lower_cased() {
        assert_eq!(parse_category("Essentials").unwrap(), "essentials");
        assert!(parse_category("a/b").is_err());
    }

    #[test]
    fn stock_is_bounded() {
        assert!(parse_stock(-1).is_err());
        assert!(parse_stock(MAX_STOCK + 1).is_err());
        assert_eq!(parse_stock(0).unwrap(), 0);
    }
}

//! Money: integer minor units of an ISO 4217 currency. There are no floats anywhere.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ParseError;

/// An ISO 4217 alphabetic currency code, three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a three-letter code; lower case is accepted and upper-cased.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        if b.len() != 3 || !b.iter().all(|c| c.is_ascii_alphabetic()) {
            return Err(ParseError::new(
                "invalid-currency",
                "must be a three-letter ISO 4217 code such as INR or USD",
            ));
        }
        Ok(Self([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ]))
    }

    pub fn as_str(&self) -> &str {
        // Always three ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of decimal places of the minor unit (ISO 4217).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Integer minor units (paise, cents).
    pub amount: i64,
    pub currency: Currency,
}

/// Largest price a catalog entry may carry, in minor units (10^12, e.g. 10 billion INR).
pub const MAX_PRICE: i64 = 1_000_000_000_000;

/// Parses a price in minor units: an integer in 0..=MAX_PRICE.
pub fn parse_price(amount: i64) -> Result<i64, ParseError> {
    if !(0..=MAX_PRICE).contains(&amount) {
        return Err(ParseError::new(
            "out-of-range",
            format!("must be an integer number of minor units between 0 and {MAX_PRICE}"),
        ));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_upper_cased_and_checked() {
        assert_eq!(Currency::parse("inr").unwrap().as_str(), "INR");
        for bad in ["", "IN", "INRR", "I1R", "€€€"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currency_exponents_follow_iso_4217() {
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("INR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn prices_must_be_non_negative_and_bounded() {
        assert_eq!(parse_price(0).unwrap(), 0);
        assert_eq!(parse_price(MAX_PRICE).unwrap(), MAX_PRICE);
        assert!(parse_price(-1).is_err());
        assert!(parse_price(MAX_PRICE + 1).is_err());
    }
}

//! Amounts for people: minor units shown with the currency's ISO 4217 exponent, grouped by
//! thousands, as `INR 1,234.50` (ASCII only: the code, a space, the number).

use orderd_rules::Money;

/// Currencies without minor units (ISO 4217 exponent 0).
const EXPONENT_0: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// Currencies with three decimal places (ISO 4217 exponent 3).
const EXPONENT_3: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Decimal places of `currency`: 0, 3 or, for every other code, 2.
pub fn currency_exponent(currency: &str) -> u32 {
    if EXPONENT_0.contains(&currency) {
        0
    } else if EXPONENT_3.contains(&currency) {
        3
    } else {
        2
    }
}

/// `money` as `<CODE> <amount>`, e.g. `INR 1,234.50`, `JPY 1,500`, `KWD 12.345`, `USD -0.05`.
pub fn format_money(money: &Money) -> String {
    let exponent = currency_exponent(&money.currency);
    let divisor = 10u64.pow(exponent);
    let magnitude = money.amount.unsigned_abs();
    let sign = if money.amount < 0 { "-" } else { "" };
    let whole = group_thousands(magnitude / divisor);
    if exponent == 0 {
        format!("{} {sign}{whole}", money.currency)
    } else {
        let fraction = magnitude % divisor;
        let width = exponent as usize;
        format!("{} {sign}{whole}.{fraction:0width$}", money.currency)
    }
}

/// `n` with a comma between each group of three digits.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(amount: i64, currency: &str) -> String {
        format_money(&Money::new(amount, currency))
    }

    #[test]
    fn two_decimal_currencies_show_paise_and_cents() {
        assert_eq!(fmt(123_450, "INR"), "INR 1,234.50");
        assert_eq!(fmt(5, "USD"), "USD 0.05");
        assert_eq!(fmt(0, "EUR"), "EUR 0.00");
    }

    #[test]
    fn zero_decimal_currencies_show_whole_units() {
        assert_eq!(fmt(1_500, "JPY"), "JPY 1,500");
        assert_eq!(fmt(12_345_678, "KRW"), "KRW 12,345,678");
        assert_eq!(fmt(0, "VND"), "VND 0");
    }

    #[test]
    fn three_decimal_currencies_show_three_places() {
        assert_eq!(fmt(12_345, "KWD"), "KWD 12.345");
        assert_eq!(fmt(7, "BHD"), "BHD 0.007");
        assert_eq!(fmt(1_000_000, "OMR"), "OMR 1,000.000");
    }

    #[test]
    fn an_unknown_currency_shows_two_places() {
        assert_eq!(fmt(199, "XYZ"), "XYZ 1.99");
    }

    #[test]
    fn thousands_are_grouped_only_from_four_digits() {
        assert_eq!(fmt(99_999, "INR"), "INR 999.99");
        assert_eq!(fmt(100_000, "INR"), "INR 1,000.00");
        assert_eq!(fmt(100_000_000_000, "INR"), "INR 1,000,000,000.00");
    }

    #[test]
    fn negative_and_extreme_amounts_format_without_overflow() {
        assert_eq!(fmt(-5, "USD"), "USD -0.05");
        assert_eq!(fmt(i64::MIN, "JPY"), "JPY -9,223,372,036,854,775,808");
        assert_eq!(fmt(i64::MAX, "USD"), "USD 92,233,720,368,547,758.07");
    }
}

//! Reading one field of a Node system document: ObjectIds, strings, whole numbers, dates and
//! floating-point rupees turned into integer paise. Every refusal names the field and why; a
//! value is never coerced from another BSON type (a string where a number belongs is refused,
//! not parsed), so nothing is guessed.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};

use crate::domain::Id;

/// Why a field could not be read: the field's path in the document and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type FieldResult<T> = Result<T, FieldProblem>;

/// A BSON value's type as a reader would name it.
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "a floating-point number",
        Bson::String(_) => "a string",
        Bson::Array(_) => "an array",
        Bson::Document(_) => "an embedded document",
        Bson::Boolean(_) => "a boolean",
        Bson::Null => "null",
        Bson::Int32(_) | Bson::Int64(_) => "an integer",
        Bson::ObjectId(_) => "an ObjectId",
        Bson::DateTime(_) => "a date",
        Bson::Decimal128(_) => "a Decimal128",
        _ => "an unsupported BSON type",
    }
}

/// The field, or `None` when it is missing or null.
pub fn present<'a>(doc: &'a Document, key: &str) -> Option<&'a Bson> {
    match doc.get(key) {
        None | Some(Bson::Null) => None,
        Some(v) => Some(v),
    }
}

fn required<'a>(doc: &'a Document, key: &str, path: &str) -> FieldResult<&'a Bson> {
    present(doc, key).ok_or_else(|| FieldProblem::new(path, "is missing"))
}

fn wrong_type(path: &str, expected: &str, found: &Bson) -> FieldProblem {
    FieldProblem::new(
        path,
        format!("is {}, expected {expected}", type_name(found)),
    )
}

/// An ObjectId field (Mongoose's `_id` and references).
pub fn object_id(doc: &Document, key: &str, path: &str) -> FieldResult<Id> {
    match required(doc, key, path)? {
        Bson::ObjectId(oid) => Ok(Id::from(*oid)),
        other => Err(wrong_type(path, "an ObjectId", other)),
    }
}

/// The first of `keys` that is present, as an ObjectId; `path` names them all when none is.
pub fn object_id_of_any(doc: &Document, keys: &[&str], path: &str) -> FieldResult<Id> {
    match keys.iter().find(|k| present(doc, k).is_some()) {
        Some(key) => object_id(doc, key, &path.replace("{key}", key)),
        None => Err(FieldProblem::new(
            path.replace("{key}", &keys.join("|")),
            "is missing",
        )),
    }
}

/// A string field.
pub fn string<'a>(doc: &'a Document, key: &str, path: &str) -> FieldResult<&'a str> {
    match required(doc, key, path)? {
        Bson::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", other)),
    }
}

/// An optional string field (missing or null → `None`).
pub fn opt_string<'a>(doc: &'a Document, key: &str, path: &str) -> FieldResult<Option<&'a str>> {
    match present(doc, key) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(path, "a string", other)),
    }
}

/// A whole number. JavaScript numbers reach MongoDB as Int32 or as a double, so a double
/// with no fractional part is a whole number too.
pub fn whole(doc: &Document, key: &str, path: &str) -> FieldResult<i64> {
    match required(doc, key, path)? {
        Bson::Int32(n) => Ok(i64::from(*n)),
        Bson::Int64(n) => Ok(*n),
        // 2^53: beyond it a double no longer holds every integer.
        Bson::Double(f)
            if f.is_finite() && f.fract() == 0.0 && f.abs() <= 9.007_199_254_740_992e15 =>
        {
            Ok(*f as i64)
        }
        Bson::Double(f) => Err(FieldProblem::new(
            path,
            format!("is {f:?}, expected a whole number"),
        )),
        other => Err(wrong_type(path, "a number", other)),
    }
}

/// A date; Mongoose's `timestamps` write `createdAt`/`updatedAt` as BSON dates.
pub fn opt_date(doc: &Document, key: &str, path: &str) -> FieldResult<Option<DateTime<Utc>>> {
    match present(doc, key) {
        None => Ok(None),
        Some(Bson::DateTime(d)) => Ok(Some(d.to_chrono())),
        Some(other) => Err(wrong_type(path, "a date", other)),
    }
}

/// An amount of rupees converted to paise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paise {
    pub paise: i64,
    /// `Some(source value)` when the stored value was not a whole number of paise and was
    /// rounded (half away from zero) to `paise`.
    pub rounded_from: Option<f64>,
}

/// Rupees stored as a JavaScript number (a double, or an integer) as integer paise.
///
/// The double is read through its shortest round-trip decimal form (what JavaScript shows for
/// it: `19.99`, not `19.989999999999998`), so a value written as two-decimal rupees converts
/// exactly; only a value with more decimals is rounded, and then reported.
pub fn rupees(doc: &Document, key: &str, path: &str) -> FieldResult<Paise> {
    let paise = match required(doc, key, path)? {
        Bson::Int32(n) => Paise {
            paise: i64::from(*n) * 100,
            rounded_from: None,
        },
        Bson::Int64(n) => Paise {
            paise: n
                .checked_mul(100)
                .ok_or_else(|| FieldProblem::new(path, "is too large"))?,
            rounded_from: None,
        },
        Bson::Double(f) if f.is_finite() => decimal_to_paise(*f)
            .ok_or_else(|| FieldProblem::new(path, format!("is {f:?}, too large")))?,
        Bson::Double(f) => {
            return Err(FieldProblem::new(
                path,
                format!("is {f:?}, expected a finite amount"),
            ));
        }
        other => return Err(wrong_type(path, "a number of rupees", other)),
    };
    if paise.paise < 0 {
        return Err(FieldProblem::new(path, "is negative"));
    }
    Ok(paise)
}

/// Converts through the decimal digits of `f`'s shortest representation (Rust's `Display`
/// for `f64` prints it without an exponent). Hand-written: a decimal crate would parse the
/// same digits, and this is the one conversion the migration needs.
fn decimal_to_paise(f: f64) -> Option<Paise> {
    let text = format!("{}", f.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    let whole: i128 = int_part.parse().ok()?;
    digits.resize(digits.len().max(2), 0);
    let cents = i128::from(digits[0]) * 10 + i128::from(digits[1]);
    let rest = &digits[2..];
    let round_up = rest.first().is_some_and(|d| *d >= 5);
    let exact = rest.iter().all(|d| *d == 0);
    let magnitude = whole.checked_mul(100)? + cents + i128::from(round_up);
    let signed = if f < 0.0 { -magnitude } else { magnitude };
    Some(Paise {
        paise: i64::try_from(signed).ok()?,
        rounded_from: (!exact).then_some(f),
    })
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    fn paise(v: Bson) -> FieldResult<Paise> {
        rupees(&doc! { "price": v }, "price", "price")
    }

    #[test]
    fn two_decimal_rupees_convert_exactly_despite_binary_floating_point() {
        for (rupees, expected) in [(19.99, 1999), (0.1, 10), (0.29, 29), (1234.5, 123_450)] {
            let p = paise(Bson::Double(rupees)).unwrap();
            assert_eq!(
                p,
                Paise {
                    paise: expected,
                    rounded_from: None
                },
                "{rupees}"
            );
        }
        assert_eq!(paise(Bson::Int32(250)).unwrap().paise, 25_000);
        assert_eq!(paise(Bson::Int64(3)).unwrap().paise, 300);
    }

    #[test]
    fn more_than_two_decimals_round_half_away_from_zero_and_say_so() {
        assert_eq!(
            paise(Bson::Double(10.005)).unwrap(),
            Paise {
                paise: 1001,
                rounded_from: Some(10.005)
            }
        );
        assert_eq!(
            paise(Bson::Double(10.004)).unwrap(),
            Paise {
                paise: 1000,
                rounded_from: Some(10.004)
            }
        );
        // JavaScript arithmetic drift (0.1 + 0.2) is not a whole number of paise either.
        assert_eq!(
            paise(Bson::Double(0.1 + 0.2)).unwrap(),
            Paise {
                paise: 30,
                rounded_from: Some(0.1 + 0.2)
            }
        );
    }

    #[test]
    fn strings_negatives_and_non_finite_amounts_are_refused_with_the_reason() {
        let reason = |v| paise(v).unwrap_err().reason;
        assert_eq!(
            reason(Bson::String("19.99".into())),
            "is a string, expected a number of rupees"
        );
        assert_eq!(reason(Bson::Double(-1.0)), "is negative");
        assert_eq!(
            reason(Bson::Double(f64::NAN)),
            "is NaN, expected a finite amount"
        );
        assert_eq!(reason(Bson::Null), "is missing");
        assert_eq!(reason(Bson::Double(1e300)), "is 1e300, too large");
    }

    #[test]
    fn whole_numbers_accept_integral_doubles_only() {
        let d = doc! { "a": 3.0, "b": 2.5, "c": "4", "d": Bson::Int64(-2) };
        assert_eq!(whole(&d, "a", "a"), Ok(3));
        assert_eq!(
            whole(&d, "b", "b").unwrap_err().reason,
            "is 2.5, expected a whole number"
        );
        assert_eq!(
            whole(&d, "c", "c").unwrap_err().reason,
            "is a string, expected a number"
        );
        assert_eq!(whole(&d, "d", "d"), Ok(-2));
    }

    #[test]
    fn the_first_present_reference_key_is_read_and_a_missing_one_names_them_all() {
        let id = mongodb::bson::oid::ObjectId::new();
        let d = doc! { "userId": id };
        assert_eq!(
            object_id_of_any(&d, &["user", "userId"], "{key}"),
            Ok(Id::from(id))
        );
        let problem = object_id_of_any(&doc! {}, &["user", "userId"], "{key}").unwrap_err();
        assert_eq!(problem, FieldProblem::new("user|userId", "is missing"));
    }
}

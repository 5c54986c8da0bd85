//! Refusals of outside input that name where they apply: [`FieldError`], one field at fault
//! (what every 422 lists), and [`PageLimit`], the page size of a listing parsed from a query.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ParseError;

/// One field at fault in a request: its path, a stable code and a human message. Use cases
/// collect them; the HTTP layer sends them as a problem's `errors[]` (hence the schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `email`, `items[2].quantity`, `limit` (query) or
    /// `id` (path).
    pub field: String,
    /// Stable kebab-case reason ("missing-field", "invalid-type", "too-short", "taken").
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// A field error from its parts.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The field error a domain parse failure stands for.
    pub fn from_parse(field: impl Into<String>, err: ParseError) -> Self {
        Self::new(field, err.code, err.message)
    }
}

/// How many items one page of a listing holds: 1 to the listing's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    /// `given` (a query's `limit`), or `default` when absent; `out-of-range` unless it is
    /// between 1 and `max`.
    pub fn parse(given: Option<i64>, default: u32, max: u32) -> Result<Self, ParseError> {
        match given.map(u32::try_from) {
            None => Ok(Self(default)),
            Some(Ok(n)) if (1..=max).contains(&n) => Ok(Self(n)),
            Some(_) => Err(ParseError::new(
                "out-of-range",
                format!("must be between 1 and {max}"),
            )),
        }
    }

    /// A listing's default page size, when the given one was refused and the request is
    /// answered with the refusal anyway.
    pub fn default_of(default: u32) -> Self {
        Self(default)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// One more than the limit: what to fetch to learn whether a next page exists.
    pub fn probe(self) -> u32 {
        self.0 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_limit_is_the_default_when_absent_and_refused_outside_one_to_max() {
        assert_eq!(PageLimit::parse(None, 20, 100).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some(1), 20, 100).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(100), 20, 100).unwrap().get(), 100);
        for refused in [0, 101, -1, i64::MAX] {
            let err = PageLimit::parse(Some(refused), 20, 100).unwrap_err();
            assert_eq!(
                (err.code, err.message.as_str()),
                ("out-of-range", "must be between 1 and 100")
            );
        }
    }
}

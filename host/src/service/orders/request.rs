//! The order request as a client sent it, and its parsing into line items and a shipping
//! address the rest of the pipeline can trust. Every problem is reported at once, each at the
//! JSON path of the offending field (`items[2].quantity`).

use crate::domain::order::parse_quantity;
use crate::domain::{Id, ShippingAddress};

use super::FieldError;

/// Most lines one order may carry. A technical cap that keeps the draft within the plugins'
/// input limit; the business limit (50 lines by default) is the validation slot's to set.
pub const MAX_LINES: usize = 200;

/// `POST /api/orders` as received, before any checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The lines in the order the client sent them; violations refer to their indexes.
    pub items: Vec<LineRequest>,
    /// Where to ship, for region-dependent rules.
    pub shipping_address: Option<AddressRequest>,
}

/// One requested line: a product id and a quantity, both unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    /// Should be a 24-hex ObjectId of a catalog product.
    pub product_id: String,
    /// Should be at least 1; kept wide so an out-of-range value is reported, not truncated.
    pub quantity: i64,
}

/// A shipping address, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    /// Should be an ISO 3166-1 alpha-2 code.
    pub country: String,
    /// State or province, free text.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
}

/// A request whose every field parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// `(product, quantity)` per line, in request order. Repeated products are kept: whether
    /// they are allowed is the validation slot's decision.
    pub lines: Vec<(Id, u32)>,
    /// The checked shipping address.
    pub shipping_address: Option<ShippingAddress>,
}

impl OrderRequest {
    /// Checks every field; on failure returns every problem found.
    pub fn parse(&self) -> Result<ParsedRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.items.is_empty() {
            errors.push(FieldError::new(
                "items",
                "empty",
                "must contain at least one line",
            ));
        }
        if self.items.len() > MAX_LINES {
            errors.push(FieldError::new(
                "items",
                "too-many-items",
                format!("must contain at most {MAX_LINES} lines"),
            ));
            // Per-line errors of a refused giant request would only bloat the response.
            return Err(errors);
        }
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, line) in self.items.iter().enumerate() {
            let product = Id::parse(&line.product_id)
                .map_err(|e| FieldError::new(format!("items[{i}].productId"), e.code, e.message));
            let quantity = parse_quantity(line.quantity)
                .map_err(|e| FieldError::new(format!("items[{i}].quantity"), e.code, e.message));
            match (product, quantity) {
                (Ok(p), Ok(q)) => lines.push((p, q)),
                (p, q) => errors.extend(p.err().into_iter().chain(q.err())),
            }
        }
        let shipping_address = match &self.shipping_address {
            None => None,
            Some(address) => match address.parse() {
                Ok(a) => Some(a),
                Err(e) => {
                    errors.extend(e);
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(ParsedRequest {
                lines,
                shipping_address,
            })
        } else {
            Err(errors)
        }
    }
}

impl AddressRequest {
    fn parse(&self) -> Result<ShippingAddress, Vec<FieldError>> {
        let mut errors = Vec::new();
        let country = self.country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            errors.push(FieldError::new(
                "shippingAddress.country",
                "invalid-format",
                "must be an ISO 3166-1 alpha-2 country code such as IN",
            ));
        }
        let region = free_text(&self.region, "shippingAddress.region", 100, &mut errors);
        let postal_code = free_text(
            &self.postal_code,
            "shippingAddress.postalCode",
            20,
            &mut errors,
        );
        if errors.is_empty() {
            Ok(ShippingAddress {
                country: country.to_ascii_uppercase(),
                region,
                postal_code,
            })
        } else {
            Err(errors)
        }
    }
}

/// A trimmed optional text of at most `max` characters without control characters; empty
/// text counts as absent.
fn free_text(
    value: &Option<String>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let text = value.as_deref()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "invalid-length",
            format!("must be at most {max} characters"),
        ));
        return None;
    }
    if text.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid-format",
            "must not contain control characters",
        ));
        return None;
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "65a1b2c3d4e5f60718293a4b";

    fn request(items: &[(&str, i64)]) -> OrderRequest {
        OrderRequest {
            items: items
                .iter()
                .map(|(p, q)| LineRequest {
                    product_id: (*p).to_owned(),
                    quantity: *q,
                })
                .collect(),
            shipping_address: None,
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<(String, String)> {
        errors.into_iter().map(|e| (e.field, e.code)).collect()
    }

    #[test]
    fn a_well_formed_request_parses_into_lines_in_request_order() {
        let parsed = request(&[(P, 2), ("65a1b2c3d4e5f60718293a4c", 1)])
            .parse()
            .unwrap();
        assert_eq!(parsed.lines.len(), 2);
        assert_eq!(parsed.lines[0], (Id::parse(P).unwrap(), 2));
    }

    #[test]
    fn repeated_products_are_kept_for_the_validation_slot_to_judge() {
        let parsed = request(&[(P, 1), (P, 1)]).parse().unwrap();
        assert_eq!(parsed.lines.len(), 2);
    }

    #[test]
    fn every_bad_field_is_reported_at_its_path() {
        let errors = request(&[("nope", 0), (P, -1), (P, 1_000_000_000_000)])
            .parse()
            .unwrap_err();
        assert_eq!(
            fields(errors),
            vec![
                ("items[0].productId".to_owned(), "invalid-id".to_owned()),
                ("items[0].quantity".to_owned(), "out-of-range".to_owned()),
                ("items[1].quantity".to_owned(), "out-of-range".to_owned()),
                ("items[2].quantity".to_owned(), "out-of-range".to_owned()),
            ]
        );
    }

    #[test]
    fn an_empty_order_is_refused() {
        assert_eq!(
            fields(request(&[]).parse().unwrap_err()),
            vec![("items".into(), "empty".into())]
        );
    }

    #[test]
    fn the_line_cap_is_obeyed_at_the_limit_and_enforced_above_it() {
        assert!(request(&vec![(P, 1); MAX_LINES]).parse().is_ok());
        let errors = request(&vec![(P, 1); MAX_LINES + 1]).parse().unwrap_err();
        assert_eq!(
            fields(errors),
            vec![("items".into(), "too-many-items".into())]
        );
    }

    #[test]
    fn shipping_countries_are_two_letters_and_upper_cased() {
        let mut r = request(&[(P, 1)]);
        r.shipping_address = Some(AddressRequest {
            country: "in".into(),
            region: Some(" Karnataka ".into()),
            postal_code: Some(String::new()),
        });
        let address = r.parse().unwrap().shipping_address.unwrap();
        assert_eq!(address.country, "IN");
        assert_eq!(address.region.as_deref(), Some("Karnataka"));
        assert_eq!(address.postal_code, None);

        for bad in ["IND", "I", "1N", ""] {
            r.shipping_address.as_mut().unwrap().country = bad.into();
            let errors = r.parse().unwrap_err();
            assert_eq!(
                fields(errors),
                vec![("shippingAddress.country".into(), "invalid-format".into())],
                "{bad:?}"
            );
        }
    }
}

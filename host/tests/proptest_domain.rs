//! Property tests of the edge parsers: the domain value types (ids, currency codes, e-mail
//! addresses, usernames, passwords, quantities, SKUs, product names) and the JSON request
//! bodies of registration and orders. For arbitrary input none of them panics; what they
//! accept satisfies the documented rules and parses back to itself; what they refuse comes
//! back as an error with a stable code (a 400/422 problem for request bodies).

use orderd::domain::order::parse_quantity;
use orderd::domain::product::{parse_name, parse_sku};
use orderd::domain::{Currency, Email, Id, ParseError, Password, Username};
use orderd::http::auth::RegisterRequest;
use orderd::http::error::ApiError;
use orderd::http::extract::parse_json;
use orderd::http::orders::{CreateOrder, CreateOrderLine};
use orderd::service::orders::OrderRequest;
use proptest::prelude::*;

/// 512 cases a property; failures are reported with their minimal input, not written into
/// the source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any string, biased towards the characters the parsers care about.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[0-9a-fA-F]{20,28}",
        "[A-Za-z0-9_. @+-]{0,70}",
        "\\PC{0,300}",
    ]
}

/// A refusal must carry a stable, kebab-case code and a message.
fn assert_refusal(err: &ParseError, allowed: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(
        allowed.contains(&err.code),
        "unexpected code {:?}",
        err.code
    );
    prop_assert!(!err.message.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ids_are_accepted_exactly_when_they_are_24_hex_digits(s in any_text()) {
        let expected = s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match Id::parse(&s) {
            Ok(id) => {
                prop_assert!(expected);
                prop_assert_eq!(id.to_hex(), s.to_ascii_lowercase());
                prop_assert_eq!(Id::parse(&id.to_hex()), Ok(id));
            }
            Err(err) => {
                prop_assert!(!expected);
                assert_refusal(&err, &["invalid-id"])?;
            }
        }
    }

    #[test]
    fn every_id_round_trips_through_its_hex_form(bytes in any::<[u8; 12]>()) {
        let id = Id::from_bytes(bytes);
        prop_assert_eq!(Id::parse(&id.to_hex()).map(|i| i.bytes()), Ok(bytes));
    }

    #[test]
    fn currencies_are_three_letters_upper_cased(s in any_text()) {
        let expected = s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic());
        match Currency::parse(&s) {
            Ok(c) => {
                prop_assert!(expected);
                prop_assert_eq!(c.as_str(), s.to_ascii_uppercase());
                prop_assert_eq!(Currency::parse(c.as_str()), Ok(c));
            }
            Err(err) => {
                prop_assert!(!expected);
                assert_refusal(&err, &["invalid-currency"])?;
            }
        }
    }

    #[test]
    fn accepted_emails_are_lower_case_bounded_and_parse_to_themselves(s in any_text()) {
        match Email::parse(&s) {
            Ok(email) => {
                let text = email.as_str();
                prop_assert!(text.len() <= 254);
                prop_assert_eq!(text, s.trim().to_lowercase());
                prop_assert!(text.contains('@'));
                let again = Email::parse(text);
                prop_assert_eq!(again.as_ref().map(Email::as_str), Ok(text));
            }
            Err(err) => assert_refusal(&err, &["invalid-length", "invalid-format"])?,
        }
    }

    #[test]
    fn ordinary_email_addresses_are_accepted(local in "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}[a-zA-Z0-9]", domain in "[a-z][a-z0-9-]{0,10}[a-z0-9]\\.[a-z]{2,6}") {
        prop_assume!(!local.contains(".."));
        let email = Email::parse(&format!("{local}@{domain}"));
        prop_assert!(email.is_ok(), "{local}@{domain}: {email:?}");
    }

    #[test]
    fn accepted_usernames_are_3_to_32_of_a_z_digits_and_underscores(s in any_text()) {
        match Username::parse(&s) {
            Ok(name) => {
                let text = name.as_str();
                prop_assert!((3..=32).contains(&text.len()));
                prop_assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                prop_assert_eq!(Username::parse(text), Ok(name.clone()));
            }
            Err(err) => assert_refusal(&err, &["invalid-length", "invalid-format"])?,
        }
    }

    #[test]
    fn ascii_usernames_are_accepted_exactly_when_they_follow_the_rules(s in "[ -~]{0,40}") {
        let expected = (3..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        prop_assert_eq!(Username::parse(&s).is_ok(), expected);
        if expected {
            prop_assert_eq!(Username::parse(&s).map(|u| u.as_str().to_owned()), Ok(s.to_ascii_lowercase()));
        }
    }

    #[test]
    fn passwords_of_8_to_128_characters_are_kept_as_typed(s in any_text()) {
        let chars = s.chars().count();
        match Password::parse(&s) {
            Ok(pw) => {
                prop_assert!((8..=128).contains(&chars));
                prop_assert_eq!(pw.expose(), s.as_str());
            }
            Err(err) => {
                prop_assert!(!(8..=128).contains(&chars));
                assert_refusal(&err, if chars < 8 { &["too-short"] } else { &["too-long"] })?;
            }
        }
    }

    #[test]
    fn quantities_are_accepted_from_1_to_the_u32_limit(n in prop_oneof![any::<i64>(), -3i64..10, (u32::MAX as i64 - 2)..(u32::MAX as i64 + 3)]) {
        match parse_quantity(n) {
            Ok(q) => prop_assert_eq!(i64::from(q), n),
            Err(err) => {
                prop_assert!(n < 1 || n > i64::from(u32::MAX));
                assert_refusal(&err, &["out-of-range"])?;
            }
        }
    }

    #[test]
    fn skus_are_1_to_64_safe_characters_kept_as_given(s in any_text()) {
        let expected = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        match parse_sku(&s) {
            Ok(sku) => {
                prop_assert!(expected);
                prop_assert_eq!(&sku, &s);
            }
            Err(err) => {
                prop_assert!(!expected);
                assert_refusal(&err, &["invalid-length", "invalid-format"])?;
            }
        }
    }

    #[test]
    fn accepted_product_names_are_trimmed_free_of_control_characters_and_stable(s in any_text()) {
        match parse_name(&s) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), s.trim());
                prop_assert!((1..=200).contains(&name.chars().count()));
                prop_assert!(!name.chars().any(char::is_control));
                prop_assert_eq!(parse_name(&name), Ok(name.clone()));
            }
            Err(err) => assert_refusal(&err, &["invalid-length", "invalid-format"])?,
        }
    }
}

/// What a refused request body must look like: 400 malformed-json, or 422 naming at least one
/// field with a code.
fn assert_body_refusal(err: &ApiError) -> Result<(), TestCaseError> {
    match err {
        ApiError::MalformedJson(detail) => prop_assert!(!detail.is_empty()),
        ApiError::Validation(errors) => {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(!e.code.is_empty(), "{e:?}");
                // The path names the field at fault; only a member whose own name is empty
                // (`{"": …}`, refused as unknown) has an empty path.
                prop_assert!(!e.field.is_empty() || e.code == "unknown-field", "{e:?}");
            }
        }
        other => return Err(TestCaseError::fail(format!("unexpected refusal {other:?}"))),
    }
    Ok(())
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any_text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "items|productId|quantity|shippingAddress|country|username|email|password",
                    any_text()
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON objects (the documented shape of every request body).
fn any_json_object() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::btree_map(
        prop_oneof![
            "items|productId|quantity|shippingAddress|username|email|password",
            any_text()
        ],
        any_json(),
        0..5,
    )
    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

/// An order body made of plausible parts (valid or not).
fn order_body() -> impl Strategy<Value = CreateOrder> {
    let line = (
        "[0-9a-f]{24}|[0-9a-z]{0,30}",
        prop_oneof![any::<i64>(), -2i64..5],
    )
        .prop_map(|(product_id, quantity)| CreateOrderLine {
            product_id,
            quantity,
        });
    prop::collection::vec(line, 0..8).prop_map(|items| CreateOrder {
        items,
        shipping_address: None,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_body_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(err) = parse_json::<CreateOrder>(&bytes) {
            assert_body_refusal(&err)?;
        }
        if let Err(err) = parse_json::<RegisterRequest>(&bytes) {
            assert_body_refusal(&err)?;
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_body_parsers(value in any_json()) {
        let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
        for result in [parse_json::<CreateOrder>(&bytes).map(|_| ()), parse_json::<RegisterRequest>(&bytes).map(|_| ())] {
            if let Err(err) = result {
                assert_body_refusal(&err)?;
            }
        }
    }

    #[test]
    fn json_objects_are_accepted_or_refused_with_a_field_and_code(value in any_json_object()) {
        let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
        for result in [parse_json::<CreateOrder>(&bytes).map(|_| ()), parse_json::<RegisterRequest>(&bytes).map(|_| ())] {
            if let Err(err) = result {
                prop_assert!(matches!(err, ApiError::Validation(_)), "valid JSON refused as {err:?}");
                assert_body_refusal(&err)?;
            }
        }
    }

    #[test]
    fn order_bodies_round_trip_and_their_lines_parse_or_name_the_field_at_fault(body in order_body()) {
        let bytes = serde_json::to_vec(&body).expect("an order body serializes");
        let parsed: CreateOrder = parse_json(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(serde_json::to_vec(&parsed).expect("serializes"), bytes);
        match OrderRequest::from(&parsed).parse() {
            Ok(request) => {
                prop_assert_eq!(request.lines.len(), parsed.items.len());
                for ((id, q), line) in request.lines.iter().zip(&parsed.items) {
                    prop_assert_eq!(id.to_hex(), line.product_id.to_ascii_lowercase());
                    prop_assert_eq!(i64::from(*q), line.quantity);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(e.field.starts_with("items"), "{e:?}");
                    prop_assert!(!e.code.is_empty());
                }
            }
        }
    }

    #[test]
    fn registration_bodies_with_string_fields_are_accepted_as_sent(username in any_text(), email in any_text(), password in any_text()) {
        let body = serde_json::json!({ "username": username, "email": email, "password": password });
        let parsed: RegisterRequest = parse_json(&serde_json::to_vec(&body).expect("serializes"))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!((parsed.username, parsed.email, parsed.password), (username, email, password));
    }
}

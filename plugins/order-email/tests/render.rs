//! Focused checks of the rendered messages: escaping, one-line subjects, the facts both parts
//! must state, and the size limits.

use order_email::{MAX_HTML_BYTES, MAX_SUBJECT_BYTES, render_cancellation, render_confirmation};
use orderd_rules::{Address, Customer, Money, OrderLine, StoredOrder};

fn line(n: u32, name: &str, sku: &str, unit_price: i64, quantity: u32) -> OrderLine {
    let subtotal = unit_price * i64::from(quantity);
    OrderLine {
        product_id: format!("65f1a2b3c4d5e6f7{n:08x}"),
        sku: sku.into(),
        name: name.into(),
        category: "misc".into(),
        unit_price: Money::new(unit_price, "INR"),
        quantity,
        subtotal: Money::new(subtotal, "INR"),
        tax: Money::new(subtotal * 18 / 100, "INR"),
    }
}

fn order(items: Vec<OrderLine>) -> StoredOrder {
    let subtotal: i64 = items.iter().map(|l| l.subtotal.amount).sum();
    let tax: i64 = items.iter().map(|l| l.tax.amount).sum();
    StoredOrder {
        order_id: "65f1a2b3c4d5e6f7a8b9c0ff".into(),
        status: "processed".into(),
        customer: Customer {
            id: "65f1a2b3c4d5e6f7a8b9c0d2".into(),
            email: "asha@example.com".into(),
            name: "asha".into(),
        },
        items,
        currency: "INR".into(),
        subtotal: Money::new(subtotal, "INR"),
        tax_total: Money::new(tax, "INR"),
        total: Money::new(subtotal + tax, "INR"),
        shipping_address: None,
        created_at: "2025-03-14T09:26:53Z".into(),
        cancelled_at: None,
    }
}

#[test]
fn a_script_product_name_is_text_not_markup_in_the_html() {
    let email = render_confirmation(
        &order(vec![line(1, "<script>alert(1)</script>", "X-1", 100, 1)]),
        &[],
    )
    .unwrap();
    assert!(email.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!email.html.contains("<script"), "{}", email.html);
}

#[test]
fn quotes_in_a_name_are_escaped_in_the_html() {
    let email = render_confirmation(
        &order(vec![line(1, r#"17" "pro" monitor's"#, "MON-17", 100, 1)]),
        &[],
    )
    .unwrap();
    assert!(
        email
            .html
            .contains("17&quot; &quot;pro&quot; monitor&#39;s"),
        "{}",
        email.html
    );
    assert!(!email.html.contains(r#"17" "pro""#));
}

#[test]
fn both_parts_name_the_order_every_item_and_sku_and_the_total() {
    let o = order(vec![
        line(1, "Assam tea", "TEA-250", 1999, 2),
        line(2, "Kettle", "KETTLE-1", 250_000, 1),
    ]);
    for email in [
        render_confirmation(&o, &[]).unwrap(),
        render_cancellation(&o, &[]).unwrap(),
    ] {
        for part in [&email.html, &email.text] {
            for fact in [
                "65f1a2b3c4d5e6f7a8b9c0ff",
                "Assam tea",
                "TEA-250",
                "Kettle",
                "KETTLE-1",
                "INR 2,997.17",
            ] {
                assert!(part.contains(fact), "missing {fact:?} in:\n{part}");
            }
        }
    }
}

#[test]
fn the_subject_has_no_line_break_even_if_inserted_text_has_one() {
    let mut o = order(vec![line(1, "Tea", "TEA", 100, 1)]);
    o.order_id = "65f1a2b3c4d5e6f7a8b9c0ff\r\nBcc: victim@example.com".into();
    for email in [
        render_confirmation(&o, &[]).unwrap(),
        render_cancellation(&o, &[]).unwrap(),
    ] {
        assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
        assert!(email.subject.contains("65f1a2b3c4d5e6f7a8b9c0ff"));
    }
}

#[test]
fn a_line_break_in_a_name_does_not_forge_lines_of_the_text() {
    let mut o = order(vec![line(1, "Tea\nTotal: INR 0.00", "TEA", 100, 1)]);
    o.customer.name = "asha\r\nYour order is free".into();
    let email = render_confirmation(&o, &[]).unwrap();
    assert!(
        !email.text.lines().any(|l| l.starts_with("Total: INR 0.00")),
        "{}",
        email.text
    );
    assert!(
        !email
            .text
            .lines()
            .any(|l| l.starts_with("Your order is free")),
        "{}",
        email.text
    );
}

#[test]
fn a_usual_subject_is_left_whole() {
    let email = render_confirmation(&order(vec![line(1, "Tea", "TEA", 100, 1)]), &[]).unwrap();
    assert_eq!(
        email.subject,
        "orderd: Your order 65f1a2b3c4d5e6f7a8b9c0ff is confirmed"
    );
}

#[test]
fn an_overlong_subject_is_cut_to_the_byte_limit_on_a_character_boundary() {
    let mut o = order(vec![line(1, "Tea", "TEA", 100, 1)]);
    o.order_id = "é".repeat(200);
    let email = render_confirmation(&o, &[]).unwrap();
    assert!(
        email.subject.len() <= MAX_SUBJECT_BYTES,
        "{} bytes",
        email.subject.len()
    );
    assert!(email.subject.len() > MAX_SUBJECT_BYTES - 2, "cut too short");
}

#[test]
fn a_cancellation_says_when_and_a_confirmation_does_not() {
    let mut o = order(vec![line(1, "Tea", "TEA", 100, 1)]);
    o.status = "cancelled".into();
    o.cancelled_at = Some("2025-03-15T10:00:00Z".into());
    let cancelled = render_cancellation(&o, &[]).unwrap();
    assert!(cancelled.subject.ends_with("has been cancelled"));
    assert!(
        cancelled
            .text
            .contains("Cancelled on: 2025-03-15T10:00:00Z")
    );
    assert!(
        cancelled
            .html
            .contains("Cancelled on: 2025-03-15T10:00:00Z")
    );
    let confirmed = render_confirmation(&o, &[]).unwrap();
    assert!(!confirmed.text.contains("Cancelled"), "{}", confirmed.text);
}

#[test]
fn the_shipping_address_appears_only_when_the_order_has_one() {
    let mut o = order(vec![line(1, "Tea", "TEA", 100, 1)]);
    let without = render_confirmation(&o, &[]).unwrap();
    assert!(
        !without.html.contains("Shipping address") && !without.text.contains("Shipping address")
    );
    o.shipping_address = Some(Address {
        country: "IN".into(),
        region: Some("Karnataka".into()),
        postal_code: None,
    });
    let with = render_confirmation(&o, &[]).unwrap();
    for part in [&with.html, &with.text] {
        assert!(
            part.contains("Shipping address") && part.contains("Karnataka") && part.contains("IN")
        );
    }
}

#[test]
fn the_html_is_a_complete_document() {
    let html = render_confirmation(&order(vec![line(1, "Tea", "TEA", 100, 1)]), &[])
        .unwrap()
        .html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn a_large_order_within_the_html_limit_renders() {
    let items = (0..500)
        .map(|n| line(n, &"n".repeat(200), "SKU", 100, 1))
        .collect();
    let email = render_confirmation(&order(items), &[]).unwrap();
    assert!(email.html.len() <= MAX_HTML_BYTES);
}

#[test]
fn an_order_past_the_html_limit_is_refused_rather_than_sent_cut() {
    let items = (0..2_000)
        .map(|n| line(n, &"n".repeat(200), "SKU", 100, 1))
        .collect();
    let err = render_confirmation(&order(items), &[]).unwrap_err();
    assert_eq!(err.code, "output-too-large");
}

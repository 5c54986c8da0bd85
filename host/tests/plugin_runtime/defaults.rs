//! The three built-in plugins give their documented results through the host. Expected values
//! are worked out by hand below, not taken from the plugins.

use orderd::plugins::{RuntimeSettings, SlotSettings};
use rule_types::{Money, OrderLine, StoredOrder};

use crate::helpers::{defaults_runtime, draft, settings};

#[tokio::test]
async fn gst_tax_charges_18_percent_per_line_rounded_half_up() {
    let runtime = defaults_runtime(settings()).await;
    let order = draft(&[
        (1999, 3, "general"),
        (2025, 1, "general"),
        (1, 1, "general"),
        (2, 1, "general"),
    ]);
    let out = runtime.calculate_tax(&order).await.unwrap();
    // 59.97 × 18% = 10.7946 → 10.79;  20.25 × 18% = 3.645 → 3.65 (half-up);
    // 0.01 × 18% = 0.0018 → 0.00;     0.02 × 18% = 0.0036 → 0.00
    let taxes: Vec<(u32, i64, i64)> = out
        .lines
        .iter()
        .map(|l| (l.item_index, l.taxable.amount, l.tax.amount))
        .collect();
    assert_eq!(
        taxes,
        vec![(0, 5997, 1079), (1, 2025, 365), (2, 1, 0), (3, 2, 0)]
    );
    assert!(
        out.lines
            .iter()
            .all(|l| l.rate_name == "gst" && l.rate_bps == 1800)
    );
    assert_eq!(out.total_tax, Money::new(1444, "INR"));
    assert_eq!(out.by_rate.len(), 1);
    assert_eq!(
        (out.by_rate[0].taxable.amount, out.by_rate[0].tax.amount),
        (8025, 1444)
    );
}

#[tokio::test]
async fn gst_tax_applies_a_configured_category_rate() {
    let mut settings = settings();
    settings.tax = SlotSettings {
        config: vec![("rate.essentials".into(), "500".into())],
        ..SlotSettings::default()
    };
    let runtime = defaults_runtime(settings).await;
    let order = draft(&[(1010, 1, "essentials"), (1010, 1, "general")]);
    let out = runtime.calculate_tax(&order).await.unwrap();
    // 10.10 × 5% = 0.505 → 0.51 (half-up); 10.10 × 18% = 1.818 → 1.82
    let lines: Vec<(&str, u32, i64)> = out
        .lines
        .iter()
        .map(|l| (l.rate_name.as_str(), l.rate_bps, l.tax.amount))
        .collect();
    assert_eq!(lines, vec![("gst-essentials", 500, 51), ("gst", 1800, 182)]);
    assert_eq!(out.total_tax.amount, 233);
    assert_eq!(out.by_rate.len(), 2);
}

#[tokio::test]
async fn order_limits_accepts_a_valid_order_and_reports_each_breach_with_its_code() {
    let runtime = defaults_runtime(RuntimeSettings { ..settings() }).await;
    let valid = draft(&[(1000, 1, "general"), (500, 100, "general")]);
    assert_eq!(runtime.validate(&valid).await.unwrap(), vec![]);

    let mut breaches = draft(&[
        (1000, 0, "general"),
        (1000, 101, "general"),
        (1000, 1, "general"),
    ]);
    breaches.items[2].product_id = breaches.items[0].product_id.clone();
    let violations = runtime.validate(&breaches).await.unwrap();
    let codes: Vec<(&str, Option<u32>)> = violations
        .iter()
        .map(|v| (v.code.as_str(), v.item_index))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("quantity-out-of-range", Some(0)),
            ("quantity-out-of-range", Some(1)),
            ("duplicate-product", Some(2)),
        ]
    );

    let empty = draft(&[]);
    let codes: Vec<String> = runtime
        .validate(&empty)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.code)
        .collect();
    assert_eq!(codes, vec!["empty-order"]);
}

fn order_with_hostile_name() -> StoredOrder {
    let mut order = orderd::plugins::fixtures::stored_order();
    order.items.truncate(1);
    order.items[0] = OrderLine {
        name: "<script>alert(1)</script>".into(),
        unit_price: Money::new(123_450, "INR"),
        quantity: 2,
        subtotal: Money::new(246_900, "INR"),
        tax: Money::new(44_442, "INR"),
        ..order.items[0].clone()
    };
    order.subtotal = Money::new(246_900, "INR");
    order.tax_total = Money::new(44_442, "INR");
    order.total = Money::new(291_342, "INR");
    order
}

#[tokio::test]
async fn order_email_escapes_catalog_text_and_formats_amounts() {
    let runtime = defaults_runtime(settings()).await;
    let order = order_with_hostile_name();
    let email = runtime.render_confirmation(&order).await.unwrap();
    assert!(!email.subject.is_empty() && !email.subject.contains('\n'));
    assert!(email.subject.contains(&order.order_id), "{}", email.subject);
    assert!(
        !email.html.contains("<script>"),
        "the product name is not markup"
    );
    assert!(
        email.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the product name is shown as text"
    );
    assert!(
        email.text.contains("<script>alert(1)</script>"),
        "the text part shows the name as is"
    );
    // 2,913.42 rupees: grouped thousands, two decimals, the currency code.
    assert!(
        email.html.contains("INR 2,913.42") && email.text.contains("INR 2,913.42"),
        "{}",
        email.text
    );

    let cancelled = StoredOrder {
        status: "cancelled".into(),
        cancelled_at: Some("2025-01-16T09:00:00Z".into()),
        ..order
    };
    let email = runtime.render_cancellation(&cancelled).await.unwrap();
    assert!(
        email.subject.to_lowercase().contains("cancel"),
        "{}",
        email.subject
    );
    assert!(!email.html.contains("<script>"));
}

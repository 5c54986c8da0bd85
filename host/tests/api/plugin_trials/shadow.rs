//! A shadow candidate beside the active version on live orders, its counts and its promotion.

use serde_json::Value;

use super::*;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use crate::orders::{place_ok, tax_half_up};

#[tokio::test]
async fn a_shadow_that_differs_for_one_category_diverges_on_exactly_those_orders_and_promotes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product_in("groceries", 10_000, 100).await;
    let phone = app.create_product_in("electronics", 20_000, 100).await;

    let response = shadow_upload(
        &app,
        &admin,
        &format!("&{ELECTRONICS_AT_28}"),
        wasm(GST_TAX),
    )
    .await;
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["config"][0]["key"], "rate.electronics", "{started}");
    assert_eq!(started["divergences"], 0);

    // Four electronics orders among five others, interleaved.
    let plan = [
        20_000, 10_000, 20_000, 10_000, 10_000, 20_000, 10_000, 20_000, 10_000,
    ];
    let (electronics_orders, other_orders) = (4, 5);
    for price in plan {
        let product = if price == 20_000 { &phone } else { &tea };
        let order = place_ok(&app, &customer, &[(product, 1)]).await;
        // Every order is taxed by the active version (18%), never by the shadow.
        assert_eq!(order["taxTotal"], tax_half_up(price, 1800), "{order}");
    }
    let total = (electronics_orders + other_orders) as u64;
    let s = shadow_after(&app, &admin, total).await;
    assert_eq!(s["dropped"], 0, "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    assert_eq!(s["divergences"], electronics_orders as u64, "{s}");
    assert_eq!(s["agreements"], other_orders as u64, "{s}");
    let examples = s["divergenceExamples"].as_array().unwrap();
    assert_eq!(examples.len(), 4, "{s}");
    for example in examples {
        assert_eq!(example["function"], "calculate");
        assert_eq!(example["input"]["items"][0]["category"], "electronics");
        assert_eq!(
            example["active"]["totalTax"]["amount"],
            tax_half_up(20_000, 1800)
        );
        assert_eq!(
            example["candidate"]["totalTax"]["amount"],
            tax_half_up(20_000, 2800)
        );
        assert_eq!(
            example["input"]["customer"]["email"],
            orderd::plugins::REDACTED_EMAIL
        );
    }
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let diverged = metrics
        .lines()
        .find(|l| {
            l.starts_with("plugin_shadow_calls_total")
                && l.contains("outcome=\"diverge\"")
                && l.contains("slot=\"tax\"")
        })
        .unwrap_or_else(|| panic!("no shadow divergence metric in\n{metrics}"));
    let count: f64 = diverged.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= electronics_orders as f64, "{diverged}");
    assert_eq!(
        stored_versions(&app, &admin).await,
        0,
        "a shadow stores nothing"
    );

    let response = send_wasm(
        &app,
        &admin.access_token,
        reqwest::Method::POST,
        "tax/promote",
        vec![],
    )
    .await;
    assert_eq!(response.status(), 200);
    let promoted: Value = response.json().await.unwrap();
    assert_eq!(
        promoted["shadow"]["divergences"], electronics_orders as u64,
        "{promoted}"
    );
    let versions = get_json(&app, &admin, "/api/admin/plugins/tax/versions").await;
    assert_eq!(
        versions["activeVersionId"], promoted["version"]["id"],
        "{versions}"
    );
    assert_eq!(versions["items"][0]["config"][0]["value"], "2800");
    assert!(
        shadow(&app, &admin).await.is_null(),
        "promotion ends the shadow"
    );
    let order = place_ok(&app, &customer, &[(&phone, 1)]).await;
    assert_eq!(order["taxTotal"], tax_half_up(20_000, 2800));
}

#[tokio::test]
async fn a_stopped_shadow_reports_its_counts_and_no_longer_runs() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    assert_eq!(
        shadow_upload(&app, &admin, "", wasm(FLAT_TAX))
            .await
            .status(),
        202
    );
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    shadow_after(&app, &admin, 1).await;
    let stopped = app
        .client
        .delete(app.url("/api/admin/plugins/tax/shadow"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    let stopped: Value = stopped.json().await.unwrap();
    assert_eq!(
        stopped["shadow"]["divergences"], 1,
        "flat 10% differs from GST: {stopped}"
    );
    assert!(shadow(&app, &admin).await.is_null());
    let promote = send_wasm(
        &app,
        &admin.access_token,
        reqwest::Method::POST,
        "tax/promote",
        vec![],
    )
    .await;
    assert_problem(promote, 409, "no-shadow").await;
}

#[tokio::test]
async fn a_shadow_without_free_capacity_drops_calls_and_counts_them_instead_of_queueing() {
    // No shadow call may run at once: every live call finds the shadow busy.
    let app = spawn_app_with(|s| s.plugins.shadow.max_in_flight = 0).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    assert_eq!(
        shadow_upload(&app, &admin, "", wasm(FLAT_TAX))
            .await
            .status(),
        202
    );
    for _ in 0..3 {
        let order = place_ok(&app, &customer, &[(&tea, 1)]).await;
        assert_eq!(order["taxTotal"], tax_half_up(10_000, 1800));
    }
    let s = shadow(&app, &admin).await;
    assert_eq!(s["dropped"], 3, "{s}");
    assert_eq!(
        (s["agreements"].as_u64(), s["divergences"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
}

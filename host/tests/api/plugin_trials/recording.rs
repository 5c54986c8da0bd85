//! Recorded recent calls (bounded, personal data redacted) and dry runs of a candidate on them.

use serde_json::Value;

use super::*;
use crate::helpers::{spawn_app, spawn_app_with};
use crate::orders::{place_ok, tax_half_up};

#[tokio::test]
async fn orders_are_recorded_per_slot_with_the_customers_personal_data_redacted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    let order = place_ok(&app, &customer, &[(&tea, 2)]).await;

    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    assert_eq!(recorded["personalData"], "redact");
    assert_eq!(recorded["maxCalls"], 100);
    let calls = recorded["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{recorded}");
    let call = &calls[0];
    assert_eq!(call["function"], "calculate");
    assert_eq!(call["input"]["items"][0]["quantity"], 2);
    assert_eq!(call["output"]["totalTax"]["amount"], order["taxTotal"]);
    assert_eq!(
        call["input"]["customer"]["email"],
        orderd::plugins::REDACTED_EMAIL
    );
    assert_eq!(
        call["input"]["customer"]["name"],
        orderd::plugins::REDACTED_NAME
    );
    let text = recorded.to_string();
    assert!(
        !text.contains(&customer.email) && !text.contains(&customer.username),
        "{text}"
    );
    assert!(recorded["bytes"].as_u64().unwrap() > 0);

    let validation = get_json(&app, &admin, "/api/admin/plugins/validation/recorded").await;
    assert_eq!(
        validation["calls"][0]["function"], "validate",
        "{validation}"
    );
    assert_eq!(validation["calls"][0]["output"], serde_json::json!([]));
}

#[tokio::test]
async fn the_recording_keeps_the_newest_calls_up_to_its_configured_count_and_may_keep_personal_data()
 {
    let app = spawn_app_with(|s| {
        s.plugins.recording.inputs_per_slot = 2;
        s.plugins.recording.personal_data = orderd::plugins::PersonalData::Keep;
    })
    .await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product(10_000, 10).await;
    for quantity in 1..=3 {
        place_ok(&app, &customer, &[(&tea, quantity)]).await;
    }
    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    let quantities: Vec<&Value> = recorded["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["input"]["items"][0]["quantity"])
        .collect();
    assert_eq!(
        quantities,
        [2, 3],
        "the oldest call was dropped: {recorded}"
    );
    assert_eq!(recorded["personalData"], "keep");
    assert_eq!(
        recorded["calls"][0]["input"]["customer"]["email"],
        customer.email.to_lowercase()
    );
}

#[tokio::test]
async fn a_dry_run_answers_per_input_where_a_candidate_differs_without_activating_or_storing_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let tea = app.create_product_in("groceries", 10_000, 10).await;
    let phone = app.create_product_in("electronics", 20_000, 10).await;
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    place_ok(&app, &customer, &[(&phone, 1)]).await;

    // The same rule with electronics at 28%: only the electronics order differs (the
    // fixture has an electronics line too).
    let response = dry_run(
        &app,
        &admin,
        &format!("?{ELECTRONICS_AT_28}"),
        wasm(GST_TAX),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["summary"]["inputs"], 3, "{report}");
    assert_eq!(report["summary"]["recorded"], 2);
    assert_eq!(report["summary"]["differing"], 2);
    assert_eq!(report["summary"]["candidateFailures"], 0);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items[0]["source"], "fixture");
    let (groceries, electronics) = (&items[1], &items[2]);
    assert_eq!(
        (groceries["source"].as_str(), groceries["differs"].as_bool()),
        (Some("recorded"), Some(false))
    );
    assert_eq!(groceries["active"], groceries["candidate"]);
    assert_eq!(electronics["differs"], true);
    assert_eq!(
        electronics["active"]["output"]["totalTax"]["amount"],
        tax_half_up(20_000, 1800)
    );
    assert_eq!(
        electronics["candidate"]["output"]["totalTax"]["amount"],
        tax_half_up(20_000, 2800)
    );

    // Another rule altogether differs everywhere.
    let report: Value = dry_run(&app, &admin, "", wasm(FLAT_TAX))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["summary"]["differing"], 3, "{report}");

    // Nothing changed: no version stored, the built-in rule still taxes, no shadow, and the
    // dry runs were not recorded as live calls.
    assert_eq!(stored_versions(&app, &admin).await, 0);
    assert_eq!(tax_source(&app, &admin).await, "embedded");
    assert!(shadow(&app, &admin).await.is_null());
    let recorded = get_json(&app, &admin, "/api/admin/plugins/tax/recorded").await;
    assert_eq!(recorded["calls"].as_array().unwrap().len(), 2);
    let order = place_ok(&app, &customer, &[(&phone, 1)]).await;
    assert_eq!(order["taxTotal"], tax_half_up(20_000, 1800));
}

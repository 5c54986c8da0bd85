//! Runs `gst_tax::calculate` on every JSON fixture in `fixtures/` and compares the whole
//! breakdown (or the error) with the one the fixture expects.

use orderd_rules::fixture::{Expected, Fixture};
use orderd_rules::{OrderDraft, TaxBreakdown};

type TaxFixture = Fixture<OrderDraft, TaxBreakdown>;

fn run(name: &str, json: &str) {
    let fixture: TaxFixture =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"));
    let actual = gst_tax::calculate(&fixture.input, &fixture.config);
    match (&fixture.expected, actual) {
        (Expected::Ok(expected), Ok(actual)) => assert_eq!(
            &actual, expected,
            "fixture {name} ({}): wrong breakdown",
            fixture.description
        ),
        (Expected::Error(expected), Err(actual)) => assert!(
            expected.matches(&actual),
            "fixture {name} ({}): expected {expected:?}, got {actual:?}",
            fixture.description
        ),
        (expected, actual) => panic!(
            "fixture {name} ({}): expected {expected:?}, got {actual:?}",
            fixture.description
        ),
    }
}

/// Declares one test per fixture file and the list of covered files.
macro_rules! fixtures {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run($file, include_str!(concat!("../fixtures/", $file)));
            }
        )*
        const COVERED: &[&str] = &[$($file),*];
    };
}

fixtures! {
    every_line_is_taxed_at_18_percent_by_default => "default-rate.json",
    category_rates_apply_and_totals_group_by_rate => "per-category-rates.json",
    a_custom_rate_name_prefixes_category_rate_names => "custom-rate-name.json",
    each_line_is_rounded_half_up_on_its_own => "half-up-rounding.json",
    an_empty_order_owes_no_tax => "empty-order.json",
    a_rate_above_100_percent_is_refused => "bad-config-rate-out-of-range.json",
    an_unknown_config_key_is_refused => "bad-config-unknown-key.json",
    a_line_amount_beyond_64_bits_is_refused => "amount-overflow.json",
}

#[test]
fn every_fixture_file_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let mut missing: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures/ is readable")
        .map(|e| {
            e.expect("fixture entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json") && !COVERED.contains(&name.as_str()))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "fixtures without a test: {missing:?}");
}

#[test]
fn the_sdk_fixture_runner_passes_every_fixture() {
    orderd_rules::testing::assert_tax_fixtures::<gst_tax::GstTax>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}

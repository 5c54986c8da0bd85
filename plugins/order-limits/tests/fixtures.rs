//! Runs `order_limits::validate` on every JSON fixture in `fixtures/` and compares the
//! violations (code and line, in order) or the error with the ones the fixture expects.
//! Messages are for humans and not compared.

use orderd_rules::OrderDraft;
use orderd_rules::fixture::{Expected, Fixture};
use serde::Deserialize;

/// A violation as a fixture states it: the stable parts only.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpectedViolation {
    code: String,
    item_index: Option<u32>,
}

type LimitsFixture = Fixture<OrderDraft, Vec<ExpectedViolation>>;

fn run(name: &str, json: &str) {
    let fixture: LimitsFixture =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"));
    let actual = order_limits::validate(&fixture.input, &fixture.config).map(|violations| {
        violations
            .into_iter()
            .map(|v| ExpectedViolation {
                code: v.code,
                item_index: v.item_index,
            })
            .collect::<Vec<_>>()
    });
    match (&fixture.expected, actual) {
        (Expected::Ok(expected), Ok(actual)) => assert_eq!(
            &actual, expected,
            "fixture {name} ({}): wrong violations",
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
    an_ordinary_order_breaks_no_default_limit => "valid-order.json",
    an_order_without_lines_is_empty => "empty-order.json",
    fifty_one_lines_are_too_many_by_default => "too-many-lines.json",
    every_breach_is_reported_order_level_first => "every-violation.json",
    configured_limits_accept_an_order_at_their_edges => "custom-limits.json",
    configured_limits_refuse_an_order_past_their_edges => "custom-limits-violated.json",
    a_zero_line_limit_is_refused_as_bad_config => "bad-config.json",
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
    orderd_rules::testing::assert_validation_fixtures::<order_limits::OrderLimits>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}

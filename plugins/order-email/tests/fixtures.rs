//! Renders every JSON fixture in `fixtures/` and checks the subject exactly and the HTML and
//! text parts by what they must and must not contain (whole documents would make every
//! wording change a fixture change).

use orderd_rules::fixture::{Expected, Fixture};
use orderd_rules::{RenderedEmail, StoredOrder};
use serde::Deserialize;

/// Which message a fixture renders, from which order.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailInput {
    kind: Kind,
    order: StoredOrder,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Kind {
    Confirmation,
    Cancellation,
}

/// What the rendered e-mail must look like.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailExpectation {
    subject: String,
    html_contains: Vec<String>,
    html_excludes: Vec<String>,
    text_contains: Vec<String>,
    text_excludes: Vec<String>,
}

type EmailFixture = Fixture<EmailInput, EmailExpectation>;

fn check(name: &str, expected: &EmailExpectation, email: &RenderedEmail) {
    assert_eq!(email.subject, expected.subject, "fixture {name}: subject");
    for (part, body, contains, excludes) in [
        (
            "html",
            &email.html,
            &expected.html_contains,
            &expected.html_excludes,
        ),
        (
            "text",
            &email.text,
            &expected.text_contains,
            &expected.text_excludes,
        ),
    ] {
        for needle in contains {
            assert!(
                body.contains(needle.as_str()),
                "fixture {name}: {part} lacks {needle:?}:\n{body}"
            );
        }
        for needle in excludes {
            assert!(
                !body.contains(needle.as_str()),
                "fixture {name}: {part} has {needle:?}:\n{body}"
            );
        }
    }
}

fn run(name: &str, json: &str) {
    let fixture: EmailFixture =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"));
    let render = match fixture.input.kind {
        Kind::Confirmation => order_email::render_confirmation,
        Kind::Cancellation => order_email::render_cancellation,
    };
    match (
        &fixture.expected,
        render(&fixture.input.order, &fixture.config),
    ) {
        (Expected::Ok(expected), Ok(email)) => check(name, expected, &email),
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
    a_confirmation_states_the_order_items_totals_and_address => "confirmation.json",
    a_cancellation_states_when_and_uses_whole_yen => "cancellation.json",
    markup_in_order_text_is_shown_as_text => "hostile-names.json",
    an_unknown_config_key_is_refused => "bad-config.json",
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
    orderd_rules::testing::assert_email_fixtures::<order_email::OrderEmail>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}

//! The JSON fixture format shared by the default plugins' tests (`plugins/<crate>/fixtures/`).
//!
//! A fixture is one call of a rule and what it must give back:
//!
//! ```json
//! {
//!   "description": "18% on every line by default",
//!   "config": [["rate.essentials", "500"]],
//!   "input": { "...": "an order draft or a stored order" },
//!   "expected": { "ok": { "...": "the rule's output" } }
//! }
//! ```
//!
//! or, for a call that must fail, `"expected": { "error": { "code": "bad-config",
//! "messageContains": "rate.essentials" } }`. The same files can drive smoke tests of a
//! built component, since input and output use the JSON form of the contract types.

use serde::{Deserialize, Serialize};

use crate::{Config, PluginError, RenderedEmail, StoredOrder, Violation};

/// One rule call and its expected outcome, generic over the rule's input `I` and the
/// expectation `O` (the exact output, or a set of checks on it for large outputs like e-mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture<I, O> {
    /// What the fixture shows, for failure messages.
    pub description: String,
    /// The slot config passed with the call; empty means every default.
    #[serde(default)]
    pub config: Config,
    /// The rule's input.
    pub input: I,
    /// What the call must return.
    pub expected: Expected<O>,
}

/// The outcome a fixture expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Expected<O> {
    /// The call succeeds and its output matches `O`.
    Ok(O),
    /// The call fails with a plugin error.
    Error(ExpectedError),
}

/// A plugin error a fixture expects: the stable code exactly, the message loosely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedError {
    /// The exact error code.
    pub code: String,
    /// Text the human-readable message must contain (e.g. the config key at fault).
    pub message_contains: String,
}

impl ExpectedError {
    /// Whether `actual` is the error this fixture expects.
    pub fn matches(&self, actual: &PluginError) -> bool {
        actual.code == self.code && actual.message.contains(&self.message_contains)
    }
}

/// A violation as a validation fixture states it: the stable code and line always, the
/// message (which is for people) only when the fixture gives one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedViolation {
    /// The exact code.
    pub code: String,
    /// The line at fault, or none for an order-level violation.
    #[serde(default)]
    pub item_index: Option<u32>,
    /// The exact message, when the fixture checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ExpectedViolation {
    /// `actual` in the shape of `expected` (`expected` decides whether the message counts),
    /// so the two compare field by field.
    pub fn project(actual: &[Violation], expected: &[ExpectedViolation]) -> Vec<ExpectedViolation> {
        actual
            .iter()
            .enumerate()
            .map(|(i, v)| ExpectedViolation {
                code: v.code.clone(),
                item_index: v.item_index,
                message: expected
                    .get(i)
                    .and_then(|e| e.message.as_ref())
                    .map(|_| v.message.clone()),
            })
            .collect()
    }
}

/// The input of an e-mail fixture: which message to render, from which order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailInput {
    /// `render-confirmation` or `render-cancellation`.
    pub kind: EmailKind,
    /// The order the message is about.
    pub order: StoredOrder,
}

/// Which e-mail function a fixture calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EmailKind {
    /// `render-confirmation`.
    Confirmation,
    /// `render-cancellation`.
    Cancellation,
}

/// What a rendered e-mail must look like: the subject exactly, the HTML and text parts by what
/// they must and must not contain (whole documents would make every wording change a fixture
/// change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailExpectation {
    /// The exact subject.
    pub subject: String,
    /// Text the HTML part must contain.
    #[serde(default)]
    pub html_contains: Vec<String>,
    /// Text the HTML part must not contain.
    #[serde(default)]
    pub html_excludes: Vec<String>,
    /// Text the plain-text part must contain.
    #[serde(default)]
    pub text_contains: Vec<String>,
    /// Text the plain-text part must not contain.
    #[serde(default)]
    pub text_excludes: Vec<String>,
}

impl EmailExpectation {
    /// Every way `email` falls short of this expectation, one readable line each; empty when
    /// it matches.
    pub fn mismatches(&self, email: &RenderedEmail) -> Vec<String> {
        let mut out = Vec::new();
        if email.subject != self.subject {
            out.push(format!(
                "subject: expected {:?}, got {:?}",
                self.subject, email.subject
            ));
        }
        for (part, body, contains, excludes) in [
            (
                "html",
                &email.html,
                &self.html_contains,
                &self.html_excludes,
            ),
            (
                "text",
                &email.text,
                &self.text_contains,
                &self.text_excludes,
            ),
        ] {
            for needle in contains {
                if !body.contains(needle.as_str()) {
                    out.push(format!("{part}: lacks {needle:?}"));
                }
            }
            for needle in excludes {
                if body.contains(needle.as_str()) {
                    out.push(format!("{part}: has {needle:?}, which it must not"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sample = Fixture<u32, u32>;

    #[test]
    fn a_success_fixture_parses_with_its_config() {
        let fixture: Sample = serde_json::from_str(
            r#"{"description": "d", "config": [["k", "v"]], "input": 1, "expected": {"ok": 2}}"#,
        )
        .unwrap();
        assert_eq!(fixture.config, [("k".to_string(), "v".to_string())]);
        assert_eq!(fixture.expected, Expected::Ok(2));
    }

    #[test]
    fn an_error_fixture_parses_and_config_defaults_to_empty() {
        let fixture: Sample = serde_json::from_str(
            r#"{"description": "d", "input": 1,
                "expected": {"error": {"code": "bad-config", "messageContains": "rate"}}}"#,
        )
        .unwrap();
        assert!(fixture.config.is_empty());
        let Expected::Error(expected) = fixture.expected else {
            panic!("expected an error fixture");
        };
        assert!(expected.matches(&PluginError::new("bad-config", "key `rate.x` is bad")));
        assert!(!expected.matches(&PluginError::new("bad-config", "key `shop` is bad")));
        assert!(!expected.matches(&PluginError::new("amount-overflow", "rate")));
    }

    #[test]
    fn an_email_expectation_names_each_shortfall() {
        let expectation = EmailExpectation {
            subject: "Order 1 confirmed".into(),
            html_contains: vec!["<p>".into()],
            html_excludes: vec!["<script>".into()],
            text_contains: vec!["Total".into()],
            text_excludes: vec![],
        };
        let good = RenderedEmail {
            subject: "Order 1 confirmed".into(),
            html: "<p>hi</p>".into(),
            text: "Total: 1".into(),
        };
        assert!(expectation.mismatches(&good).is_empty());
        let bad = RenderedEmail {
            subject: "Order 2".into(),
            html: "<script>x</script>".into(),
            text: String::new(),
        };
        assert_eq!(expectation.mismatches(&bad).len(), 4);
    }

    #[test]
    fn a_misspelt_fixture_field_is_refused() {
        let parsed: Result<Sample, _> =
            serde_json::from_str(r#"{"description": "d", "input": 1, "expect": {"ok": 2}}"#);
        assert!(parsed.is_err());
    }
}

//! Native fixture testing (not built for wasm32): runs every JSON fixture of a directory
//! against a rule and reports each mismatch readably, so a plugin crate's `cargo test` checks
//! its logic on the same files `orderd plugin test` runs against the built component.
//!
//! A fixture (`rule_types::fixture`) is `{description, config, input, expected}`; `expected`
//! is `{"ok": OUTPUT}` or `{"error": {"code", "messageContains"}}`. For the tax and
//! validation slots the input is an order draft and OUTPUT the exact result; for the e-mail
//! slot the input is `{"kind": "confirmation" | "cancellation", "order": STORED_ORDER}` and
//! OUTPUT an [`EmailExpectation`] (exact subject, text each part must or must not contain).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fixture::{
    EmailExpectation, EmailInput, EmailKind, Expected, ExpectedViolation, Fixture,
};
use crate::{
    EmailRenderer, OrderDraft, PluginError, TaxBreakdown, TaxRule, ValidationRule, Violation,
};

/// A tax or validation fixture.
pub type DraftFixture<O> = Fixture<OrderDraft, O>;
/// An e-mail fixture.
pub type EmailFixture = Fixture<EmailInput, EmailExpectation>;

/// Every `*.json` file directly in `dir`, sorted by name.
pub fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and parses one fixture file.
pub fn read_fixture<I: DeserializeOwned, O: DeserializeOwned>(
    file: &Path,
) -> Result<Fixture<I, O>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a fixture: {e}", file.display()))
}

/// How `actual` differs from `expected`, one line per difference; `check` compares two
/// successful outputs.
pub fn outcome_mismatches<E: std::fmt::Debug, A: Serialize>(
    expected: &Expected<E>,
    actual: Result<&A, &PluginError>,
    check: impl Fn(&E, &A) -> Vec<String>,
) -> Vec<String> {
    match (expected, actual) {
        (Expected::Ok(e), Ok(a)) => check(e, a),
        (Expected::Error(e), Err(a)) if e.matches(a) => Vec::new(),
        (Expected::Error(e), Err(a)) => vec![format!(
            "expected error {:?} with a message containing {:?}, got {:?}: {:?}",
            e.code, e.message_contains, a.code, a.message
        )],
        (Expected::Error(e), Ok(a)) => vec![format!(
            "expected error {:?}, got a result: {}",
            e.code,
            serde_json::to_string(a).unwrap_or_default()
        )],
        (Expected::Ok(_), Err(a)) => vec![format!(
            "expected a result, got error {:?}: {:?}",
            a.code, a.message
        )],
    }
}

/// The differences between two values as JSON, one line per path:
/// `lines[1].tax.amount: expected 1800, got 1200`.
pub fn exact_mismatches<T: Serialize + ?Sized>(expected: &T, actual: &T) -> Vec<String> {
    let (Ok(e), Ok(a)) = (serde_json::to_value(expected), serde_json::to_value(actual)) else {
        return vec!["a value cannot be shown as JSON".to_owned()];
    };
    let mut out = Vec::new();
    json_diff("", &e, &a, &mut out);
    out
}

/// Walks two JSON values side by side. Written here rather than taken from a crate: it is
/// a short recursion over `serde_json::Value`, and every dependency of this SDK is copied
/// into each plugin crate `orderd plugin new` writes, which must build offline.
fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    let at = |p: &str| {
        if p.is_empty() {
            "(whole output)".to_owned()
        } else {
            p.to_owned()
        }
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match a.get(key) {
                    Some(av) => json_diff(&p, ev, av, out),
                    None => out.push(format!("{p}: expected {ev}, missing")),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.push(format!("{p}: unexpected {av}"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}[{i}]"), ev, av, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{}: expected {} entries, got {}",
                    at(path),
                    e.len(),
                    a.len()
                ));
            }
        }
        (e, a) if e != a => out.push(format!("{}: expected {e}, got {a}", at(path))),
        _ => {}
    }
}

/// How the violations a rule returned differ from the ones a fixture expects (code and line
/// always, the message when the fixture states it).
pub fn violation_mismatches(expected: &[ExpectedViolation], actual: &[Violation]) -> Vec<String> {
    exact_mismatches(
        expected,
        ExpectedViolation::project(actual, expected).as_slice(),
    )
}

/// Runs every fixture in `dir` and panics listing each failing fixture and its differences.
fn assert_all(dir: &Path, run: impl Fn(&Path) -> Result<Vec<String>, String>) {
    let files = fixture_files(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty(), "no *.json fixtures in {}", dir.display());
    let mut report = Vec::new();
    for file in &files {
        let problems = run(file).unwrap_or_else(|e| vec![e]);
        if !problems.is_empty() {
            report.push(format!("{}:\n  {}", file.display(), problems.join("\n  ")));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} fixtures failed:\n{}",
        report.len(),
        files.len(),
        report.join("\n")
    );
}

/// Runs tax rule `R` natively on every fixture in `dir`; panics with a readable report of
/// every mismatch.
pub fn assert_tax_fixtures<R: TaxRule>(dir: impl AsRef<Path>) {
    assert_all(dir.as_ref(), |file| {
        let f: DraftFixture<TaxBreakdown> = read_fixture(file)?;
        let actual = R::calculate(&f.input, &f.config);
        Ok(outcome_mismatches(
            &f.expected,
            actual.as_ref(),
            exact_mismatches,
        ))
    });
}

/// Runs validation rule `R` natively on every fixture in `dir`; panics with a readable report
/// of every mismatch.
pub fn assert_validation_fixtures<R: ValidationRule>(dir: impl AsRef<Path>) {
    assert_all(dir.as_ref(), |file| {
        let f: DraftFixture<Vec<ExpectedViolation>> = read_fixture(file)?;
        let actual = R::validate(&f.input, &f.config);
        Ok(outcome_mismatches(&f.expected, actual.as_ref(), |e, a| {
            violation_mismatches(e, a)
        }))
    });
}

/// Runs e-mail renderer `R` natively on every fixture in `dir`; panics with a readable report
/// of every mismatch.
pub fn assert_email_fixtures<R: EmailRenderer>(dir: impl AsRef<Path>) {
    assert_all(dir.as_ref(), |file| {
        let f: EmailFixture = read_fixture(file)?;
        let actual = match f.input.kind {
            EmailKind::Confirmation => R::render_confirmation(&f.input.order, &f.config),
            EmailKind::Cancellation => R::render_cancellation(&f.input.order, &f.config),
        };
        Ok(outcome_mismatches(&f.expected, actual.as_ref(), |e, a| {
            e.mismatches(a)
        }))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_differences() {
        let v = json!({"a": [1, {"b": "x"}]});
        assert!(exact_mismatches(&v, &v).is_empty());
    }

    #[test]
    fn a_changed_leaf_is_named_by_its_path() {
        let e = json!({"lines": [{"tax": {"amount": 1800}}]});
        let a = json!({"lines": [{"tax": {"amount": 1200}}]});
        assert_eq!(
            exact_mismatches(&e, &a),
            ["lines[0].tax.amount: expected 1800, got 1200"]
        );
    }

    #[test]
    fn missing_extra_fields_and_list_lengths_are_reported() {
        let e = json!({"a": 1, "l": [1, 2]});
        let a = json!({"b": 2, "l": [1]});
        assert_eq!(
            exact_mismatches(&e, &a),
            [
                "a: expected 1, missing",
                "l: expected 2 entries, got 1",
                "b: unexpected 2"
            ]
        );
    }

    #[test]
    fn an_error_where_a_result_was_expected_is_a_mismatch() {
        let expected: Expected<u32> = Expected::Ok(1);
        let err = PluginError::new("bad-config", "rate");
        let out = outcome_mismatches(&expected, Err::<&u32, _>(&err), |_, _| Vec::new());
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("bad-config"), "{out:?}");
    }
}

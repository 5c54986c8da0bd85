//! `orderd plugin test FILE --slot S [--fixtures DIR]`: checks the component as `check` does,
//! then runs it under the production limits on every fixture in DIR — each a description,
//! a config, an input and the expected outcome, in the format of the SDK's native fixture
//! runner (`orderd_rules::testing`) — and prints PASS or FAIL per fixture with one line per
//! difference. Exits non-zero when any fixture fails or cannot be read.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use orderd_rules::fixture::{EmailExpectation, EmailInput, EmailKind, Expected, ExpectedViolation};
use orderd_rules::testing::{
    exact_mismatches, fixture_files, outcome_mismatches, read_fixture, violation_mismatches,
};
use orderd_rules::{Config, OrderDraft, PluginError, RenderedEmail, TaxBreakdown, Violation};

use super::{cli_settings, print_stdout, read_component};
use crate::plugins::{
    FailureKind, FailurePolicy, PluginCallError, PluginInput, PluginOutput, PluginRuntime,
    PluginSource, RuntimeSettings, Slot,
};

/// One fixture, read for its slot.
enum Case {
    Tax(Expected<TaxBreakdown>),
    Validation(Expected<Vec<ExpectedViolation>>),
    Email(Expected<EmailExpectation>),
}

/// A fixture ready to run: its description, config, input and expectation.
struct Loaded {
    description: String,
    config: Config,
    input: PluginInput,
    case: Case,
}

fn load(slot: Slot, file: &Path) -> Result<Loaded, String> {
    Ok(match slot {
        Slot::Tax => {
            let f = read_fixture::<OrderDraft, TaxBreakdown>(file)?;
            Loaded {
                description: f.description,
                config: f.config,
                input: PluginInput::Calculate(f.input),
                case: Case::Tax(f.expected),
            }
        }
        Slot::Validation => {
            let f = read_fixture::<OrderDraft, Vec<ExpectedViolation>>(file)?;
            Loaded {
                description: f.description,
                config: f.config,
                input: PluginInput::Validate(f.input),
                case: Case::Validation(f.expected),
            }
        }
        Slot::Email => {
            let f = read_fixture::<EmailInput, EmailExpectation>(file)?;
            let input = match f.input.kind {
                EmailKind::Confirmation => PluginInput::RenderConfirmation(f.input.order),
                EmailKind::Cancellation => PluginInput::RenderCancellation(f.input.order),
            };
            Loaded {
                description: f.description,
                config: f.config,
                input,
                case: Case::Email(f.expected),
            }
        }
    })
}

/// What the component did with one fixture.
enum Answer {
    /// It returned an output.
    Output(PluginOutput),
    /// It returned its own error value.
    Refused(PluginError),
    /// The call failed otherwise (trap, timeout, a failed output check): never a match.
    Failed(String),
}

/// The differences between what the component answered and what the fixture expects.
fn compare(case: &Case, answer: Answer) -> Vec<String> {
    let actual = match answer {
        Answer::Output(out) => Ok(out),
        Answer::Refused(err) => Err(err),
        Answer::Failed(text) => return vec![format!("the call failed: {text}")],
    };
    match (case, actual.as_ref()) {
        (Case::Tax(e), Ok(PluginOutput::Tax(a))) => outcome_mismatches(e, Ok(a), exact_mismatches),
        (Case::Tax(e), Err(err)) => {
            outcome_mismatches::<_, TaxBreakdown>(e, Err(err), exact_mismatches)
        }
        (Case::Validation(e), Ok(PluginOutput::Violations(a))) => {
            outcome_mismatches(e, Ok(a), |e, a| violation_mismatches(e, a))
        }
        (Case::Validation(e), Err(err)) => {
            outcome_mismatches::<_, Vec<Violation>>(e, Err(err), |e, a| violation_mismatches(e, a))
        }
        (Case::Email(e), Ok(PluginOutput::Email(a))) => {
            outcome_mismatches(e, Ok(a), |e, a| e.mismatches(a))
        }
        (Case::Email(e), Err(err)) => {
            outcome_mismatches::<_, RenderedEmail>(e, Err(err), |e, a| e.mismatches(a))
        }
        (_, Ok(out)) => vec![format!(
            "the component answered another slot's output: {out:?}"
        )],
    }
}

/// Runs one fixture: loads the component with the fixture's config (from the artifact cache,
/// so only the first load compiles) and calls it once.
async fn run_one(
    runtime: &PluginRuntime,
    slot: Slot,
    bytes: &[u8],
    file: &Path,
    fixture: Loaded,
) -> Vec<String> {
    let source = PluginSource::File {
        path: file.to_path_buf(),
    };
    if let Err(e) = runtime
        .load(
            slot,
            bytes.to_vec(),
            fixture.config,
            Some(FailurePolicy::FailClosed),
            source,
        )
        .await
    {
        return vec![format!("the component could not be loaded: {e:#}")];
    }
    let answer = match runtime.call(fixture.input).await {
        Ok((out, _)) => Answer::Output(out),
        Err(PluginCallError::Unavailable {
            kind: FailureKind::PluginError { code, message },
            ..
        }) => Answer::Refused(PluginError::new(code, message)),
        Err(e) => Answer::Failed(e.to_string()),
    };
    compare(&fixture.case, answer)
}

pub async fn test(file: &Path, slot: Slot, dir: &Path) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let files = fixture_files(dir).map_err(anyhow::Error::msg)?;
    if files.is_empty() {
        anyhow::bail!("no fixtures (*.json) in {}", dir.display());
    }
    let cache = tempfile::tempdir().context("Failed to create a compile cache")?;
    let settings = RuntimeSettings {
        cache_dir: Some(cache.path().to_path_buf()),
        ..cli_settings(slot, Config::new())
    };
    let runtime = PluginRuntime::new(settings)?;
    let report = runtime
        .check(slot, &bytes)
        .await
        .with_context(|| format!("{} is not a usable {slot} plugin", file.display()))?;
    print_stdout(&format!(
        "ok: {} is a plugin for the {slot} slot (compiled in {:.0} ms, smoke test {})",
        file.display(),
        report.compile_time.as_secs_f64() * 1e3,
        if report.smoke_tested {
            "passed"
        } else {
            "skipped"
        },
    ))?;
    let runtime = PluginRuntime::new(RuntimeSettings {
        smoke_test: false,
        cache_dir: Some(cache.path().to_path_buf()),
        ..cli_settings(slot, Config::new())
    })?;
    let mut failed = 0;
    for path in &files {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let (description, problems) = match load(slot, path) {
            Ok(fixture) => (
                fixture.description.clone(),
                run_one(&runtime, slot, &bytes, file, fixture).await,
            ),
            Err(e) => (String::new(), vec![e]),
        };
        if problems.is_empty() {
            print_stdout(&format!("PASS {name}: {description}"))?;
        } else {
            failed += 1;
            let mut text = format!("FAIL {name}: {description}");
            for p in problems {
                text.push_str("\n     ");
                text.push_str(&p);
            }
            print_stdout(&text)?;
        }
    }
    print_stdout(&format!(
        "{} passed, {failed} failed ({} fixtures in {})",
        files.len() - failed,
        files.len(),
        dir.display()
    ))?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

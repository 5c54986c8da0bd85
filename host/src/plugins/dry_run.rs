//! Dry runs: a candidate compiled and checked like a load, then run on the slot's built-in
//! fixtures and on its recorded recent calls next to the active version, input by input.
//! Nothing is activated, stored or recorded.
//!
//! Both versions run on the same input as it was recorded (personal data already treated), so a
//! difference comes from the versions, not from the redaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rule_types::Config;
use serde::Serialize;

use super::call::{PluginInput, PluginOutput};
use super::contract::{FailurePolicy, PluginSource, Slot};
use super::error::LoadError;
use super::fixtures;
use super::runtime::{PluginRuntime, candidate};
use super::slot::ActivePlugin;

/// Where a dry-run input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSource {
    /// A built-in fixture (what every candidate is smoke-tested on).
    Fixture,
    /// A recorded live call.
    Recorded,
}

/// What one version answered to one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The checked output, when the call succeeded.
    pub output: Option<PluginOutput>,
    /// The failure kind (`trap`, `timeout`, `plugin-error`, `not-loaded`, …) when it failed.
    pub error_kind: Option<String>,
    /// The failure detail.
    pub error: Option<String>,
}

impl RunResult {
    fn failed(kind: &str, message: String) -> Self {
        Self {
            output: None,
            error_kind: Some(kind.to_owned()),
            error: Some(message),
        }
    }
}

/// One input and both answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunItem {
    /// Fixture or recorded call.
    pub source: InputSource,
    /// The recorded call's `seq`, for recorded inputs.
    pub recorded_seq: Option<u64>,
    /// When the recorded call happened, for recorded inputs.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The function and its input.
    pub input: PluginInput,
    /// The active version's answer now.
    pub active: RunResult,
    /// The candidate's answer.
    pub candidate: RunResult,
    /// Whether the answers differ (a different output, or one failed and the other did not,
    /// or both failed differently).
    pub differs: bool,
}

/// Totals of a dry run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunSummary {
    /// Inputs run.
    pub inputs: usize,
    /// Of those, recorded calls.
    pub recorded: usize,
    /// Inputs where the answers differ.
    pub differing: usize,
    /// Inputs the candidate failed on.
    pub candidate_failures: usize,
}

/// The outcome of a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunReport {
    /// The slot.
    pub slot: Slot,
    /// Hex sha256 of the candidate.
    pub sha256: String,
    /// Hex sha256 of the active version it was compared with, if any.
    pub active_sha256: Option<String>,
    /// Time to compile the candidate.
    pub compile_time: Duration,
    /// The config the candidate ran with.
    pub config: Config,
    /// Totals.
    pub summary: DryRunSummary,
    /// Fixtures first, then recorded calls oldest first.
    pub items: Vec<DryRunItem>,
}

/// The built-in fixture inputs of `slot`.
pub(crate) fn fixture_inputs(slot: Slot) -> Vec<PluginInput> {
    match slot {
        Slot::Tax => vec![PluginInput::Calculate(fixtures::draft())],
        Slot::Validation => vec![PluginInput::Validate(fixtures::draft())],
        Slot::Email => vec![
            PluginInput::RenderConfirmation(fixtures::stored_order()),
            PluginInput::RenderCancellation(fixtures::cancelled_order()),
        ],
    }
}

impl PluginRuntime {
    /// Compiles and checks `wasm` for `slot`, then runs it and the active version on the
    /// slot's fixtures and recorded calls. Refuses (like a load) a component that does not
    /// compile or does not implement the slot's world; a candidate that fails on some input is
    /// reported, not refused.
    pub async fn dry_run(
        &self,
        slot: Slot,
        wasm: Vec<u8>,
        config: Config,
        policy: Option<FailurePolicy>,
    ) -> Result<DryRunReport, LoadError> {
        let prepared = self.prepare(slot, wasm.into()).await?;
        let compile_time = prepared.compile_time;
        let plugin = candidate(
            prepared,
            PluginSource::Embedded,
            self.effective_config(slot, &config),
            policy.unwrap_or(self.settings().slot(slot).policy),
        );
        let active = self.active_plugin(slot);
        let recording = self.recording(slot);
        let inputs = fixture_inputs(slot)
            .into_iter()
            .map(|input| (InputSource::Fixture, None, input))
            .chain(recording.calls.iter().map(|call| {
                (
                    InputSource::Recorded,
                    Some((call.seq, call.at)),
                    call.input.clone(),
                )
            }));
        let mut summary = DryRunSummary::default();
        let mut items = Vec::new();
        for (source, recorded, input) in inputs {
            let active_result = match &active {
                Some(active) => self.run_one(slot, active, &input).await,
                None => RunResult::failed("not-loaded", format!("the {slot} slot is empty")),
            };
            let candidate_result = self.run_one(slot, &plugin, &input).await;
            let differs = active_result.output != candidate_result.output
                || active_result.error_kind != candidate_result.error_kind;
            summary.inputs += 1;
            summary.recorded += usize::from(source == InputSource::Recorded);
            summary.differing += usize::from(differs);
            summary.candidate_failures += usize::from(candidate_result.output.is_none());
            items.push(DryRunItem {
                source,
                recorded_seq: recorded.map(|r| r.0),
                recorded_at: recorded.map(|r| r.1),
                input,
                active: active_result,
                candidate: candidate_result,
                differs,
            });
        }
        Ok(DryRunReport {
            slot,
            sha256: plugin.sha256.clone(),
            active_sha256: active.map(|a| a.sha256.clone()),
            compile_time,
            config: plugin.config.clone(),
            summary,
            items,
        })
    }

    async fn run_one(&self, slot: Slot, plugin: &ActivePlugin, input: &PluginInput) -> RunResult {
        match self.invoke(slot, plugin, input).await.0 {
            Ok(output) => RunResult {
                output: Some(output),
                error_kind: None,
                error: None,
            },
            Err(failure) => RunResult::failed(failure.kind.code(), failure.message),
        }
    }
}

//! The JSON of the plugin trial routes: recorded calls, dry-run reports, shadow states and
//! promotions, with their conversions from the runtime's types.

use super::*;

/// One recorded live call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCallDto {
    /// Increases by one per recorded call of this instance.
    pub seq: u64,
    /// When the call returned.
    pub at: DateTime<Utc>,
    /// Hex sha256 of the version that answered.
    pub sha256: String,
    /// `calculate`, `validate`, `render-confirmation` or `render-cancellation`.
    pub function: String,
    /// The order draft or stored order the call got.
    #[schema(value_type = Object)]
    pub input: Value,
    /// What the active version answered (an object, or an array of violations).
    pub output: Value,
}

impl From<&RecordedCall> for RecordedCallDto {
    fn from(call: &RecordedCall) -> Self {
        let (function, input) = split_input(&call.input);
        Self {
            seq: call.seq,
            at: call.at,
            sha256: call.sha256.clone(),
            function,
            input,
            output: json(&call.output),
        }
    }
}

/// A slot's recorded recent calls on this instance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingDto {
    pub slot: String,
    /// Most calls kept (`0`: recording is off).
    pub max_calls: usize,
    /// Most bytes kept (JSON of input and output).
    pub max_bytes: usize,
    /// Bytes held now.
    pub bytes: usize,
    /// `redact`, `drop` or `keep`: how the customer's e-mail, name and address are kept.
    pub personal_data: String,
    /// Oldest first.
    pub calls: Vec<RecordedCallDto>,
}

pub(super) fn personal_data_name(mode: PersonalData) -> &'static str {
    match mode {
        PersonalData::Redact => "redact",
        PersonalData::Drop => "drop",
        PersonalData::Keep => "keep",
    }
}

/// One version's answer in a dry run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunResultDto {
    /// The checked output (an object, or an array of violations); `null` when the call failed.
    pub output: Option<Value>,
    /// `trap`, `timeout`, `memory`, `plugin-error`, `bad-output`, `not-loaded`, … when it failed.
    pub error_kind: Option<String>,
    /// The failure's detail.
    pub error: Option<String>,
}

impl From<&RunResult> for RunResultDto {
    fn from(r: &RunResult) -> Self {
        Self {
            output: r.output.as_ref().map(json),
            error_kind: r.error_kind.clone(),
            error: r.error.clone(),
        }
    }
}

/// One input of a dry run with both answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunItemDto {
    /// `fixture` (built in) or `recorded` (a live call).
    pub source: String,
    /// The recorded call's `seq`.
    pub recorded_seq: Option<u64>,
    /// When the recorded call happened.
    pub recorded_at: Option<DateTime<Utc>>,
    pub function: String,
    #[schema(value_type = Object)]
    pub input: Value,
    /// The active version's answer, run now on the same input.
    pub active: RunResultDto,
    /// The candidate's answer.
    pub candidate: RunResultDto,
    /// Whether the two answers differ.
    pub differs: bool,
}

/// Totals of a dry run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunSummaryDto {
    pub inputs: usize,
    /// Of the inputs, recorded live calls.
    pub recorded: usize,
    /// Inputs whose answers differ.
    pub differing: usize,
    /// Inputs the candidate failed on.
    pub candidate_failures: usize,
}

/// The outcome of a dry run. Nothing was stored or activated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunDto {
    pub slot: String,
    /// Hex sha256 of the candidate.
    pub sha256: String,
    /// Hex sha256 of the active version it was compared with.
    pub active_sha256: Option<String>,
    /// Time to compile the candidate, in milliseconds.
    pub compile_ms: f64,
    /// The config the candidate ran with.
    pub config: Vec<ConfigEntry>,
    pub summary: DryRunSummaryDto,
    /// Fixtures first, then recorded calls oldest first.
    pub items: Vec<DryRunItemDto>,
}

impl From<&DryRunReport> for DryRunDto {
    fn from(r: &DryRunReport) -> Self {
        Self {
            slot: r.slot.as_str().to_owned(),
            sha256: r.sha256.clone(),
            active_sha256: r.active_sha256.clone(),
            compile_ms: r.compile_time.as_secs_f64() * 1e3,
            config: config_entries(&r.config),
            summary: DryRunSummaryDto {
                inputs: r.summary.inputs,
                recorded: r.summary.recorded,
                differing: r.summary.differing,
                candidate_failures: r.summary.candidate_failures,
            },
            items: r
                .items
                .iter()
                .map(|item| {
                    let (function, input) = split_input(&item.input);
                    DryRunItemDto {
                        source: json(&item.source).as_str().unwrap_or_default().to_owned(),
                        recorded_seq: item.recorded_seq,
                        recorded_at: item.recorded_at,
                        function,
                        input,
                        active: RunResultDto::from(&item.active),
                        candidate: RunResultDto::from(&item.candidate),
                        differs: item.differs,
                    }
                })
                .collect(),
        }
    }
}

/// A live call the shadow answered differently.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DivergenceDto {
    pub at: DateTime<Utc>,
    pub function: String,
    #[schema(value_type = Object)]
    pub input: Value,
    /// What the active version answered (and the caller got).
    pub active: Value,
    /// What the shadow answered.
    pub candidate: Value,
}

/// A live call the shadow failed on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowFailureDto {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

/// A shadow candidate and what it has seen on this instance's live calls.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowDto {
    pub slot: String,
    /// Hex sha256 of the shadow component.
    pub sha256: String,
    /// The config it runs with.
    pub config: Vec<ConfigEntry>,
    /// The policy it was uploaded with (`null`: the slot's configured one).
    pub policy: Option<String>,
    pub started_at: DateTime<Utc>,
    /// Live calls it answered like the active version.
    pub agreements: u64,
    /// Live calls it answered differently.
    pub divergences: u64,
    /// Live calls it failed on.
    pub failures: u64,
    /// Live calls not shadowed because shadow capacity was busy.
    pub dropped: u64,
    /// The most recent divergences.
    pub divergence_examples: Vec<DivergenceDto>,
    /// The most recent failures.
    pub failure_examples: Vec<ShadowFailureDto>,
}

impl From<&ShadowStatus> for ShadowDto {
    fn from(s: &ShadowStatus) -> Self {
        Self {
            slot: s.slot.as_str().to_owned(),
            sha256: s.sha256.clone(),
            config: config_entries(&s.config),
            policy: s.policy.map(|p| policy_name(p).to_owned()),
            started_at: s.started_at,
            agreements: s.agreements,
            divergences: s.divergences,
            failures: s.failures,
            dropped: s.dropped,
            divergence_examples: s
                .divergence_examples
                .iter()
                .map(|d| {
                    let (function, input) = split_input(&d.input);
                    DivergenceDto {
                        at: d.at,
                        function,
                        input,
                        active: json::<PluginOutput>(&d.active),
                        candidate: json::<PluginOutput>(&d.candidate),
                    }
                })
                .collect(),
            failure_examples: s
                .failure_examples
                .iter()
                .map(|f| ShadowFailureDto {
                    at: f.at,
                    kind: f.kind.clone(),
                    message: f.message.clone(),
                })
                .collect(),
        }
    }
}

/// `GET …/shadow`: the slot's shadow, if one runs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShadowStateDto {
    pub slot: String,
    /// `null` when no shadow runs.
    pub shadow: Option<ShadowDto>,
}

impl ShadowStateDto {
    /// The answer for `slot` and its shadow, if one runs (or ran, for a stop).
    pub fn of(slot: Slot, shadow: Option<&ShadowStatus>) -> Self {
        Self {
            slot: slot.as_str().to_owned(),
            shadow: shadow.map(ShadowDto::from),
        }
    }
}

/// `200` to a promotion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PromotedDto {
    /// The stored, now active version.
    pub version: PluginVersionDto,
    /// The shadow's final counts.
    pub shadow: Option<ShadowDto>,
}

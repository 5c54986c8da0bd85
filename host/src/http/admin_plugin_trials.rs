//! Admin routes for trying a new plugin version safely, under `/api/admin/plugins/{slot}`:
//! the slot's recorded recent calls (`GET …/recorded`), a dry run of a candidate on them and on
//! the built-in fixtures (`POST …/dry-run`), the shadow started by an upload with
//! `mode=shadow` (`GET`/`DELETE …/shadow`) and its promotion (`POST …/promote`). The work
//! happens in the plugin runtime (`plugins::recorder`, `dry_run`, `shadow`).
//!
//! Recorded calls, dry-run items and shadow examples carry the call's input as
//! `{function, input}` and outputs as the plugin answered them, with personal data treated per
//! the `plugins.recording.personal_data` setting.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::admin_plugins::{
    ConfigEntry, MAX_WASM_BYTES, PluginVersionDto, WasmBody, admin_error, config_entries, slot,
    upload_settings,
};
use super::error::{ApiError, Problem};
use super::extract::AdminUser;
use super::state::AppState;
use crate::plugins::{
    DryRunReport, FailurePolicy, PersonalData, PluginInput, PluginOutput, RecordedCall, RunResult,
    ShadowStatus, Slot,
};
use crate::service::plugins::{self as service, PluginAdminError, Upload, policy_name};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/plugins/{slot}/recorded", get(recorded_calls))
        .route(
            "/api/admin/plugins/{slot}/dry-run",
            post(dry_run).layer(DefaultBodyLimit::max(MAX_WASM_BYTES)),
        )
        .route(
            "/api/admin/plugins/{slot}/shadow",
            get(shadow_state).delete(stop_shadow),
        )
        .route("/api/admin/plugins/{slot}/promote", post(promote_shadow))
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `(function, input)` of a call input (`{"function": …, "input": …}` on the wire).
fn split_input(input: &PluginInput) -> (String, Value) {
    let mut value = json(input);
    let function = value["function"].as_str().unwrap_or_default().to_owned();
    (function, value["input"].take())
}

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

fn personal_data_name(mode: PersonalData) -> &'static str {
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

/// `200` to a promotion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PromotedDto {
    /// The stored, now active version.
    pub version: PluginVersionDto,
    /// The shadow's final counts.
    pub shadow: Option<ShadowDto>,
}

/// Starts a shadow from an upload with `mode=shadow` (called by the upload route).
pub(super) async fn start_shadow(
    state: &AppState,
    slot: Slot,
    wasm: Bytes,
    config: rule_types::Config,
    policy: Option<FailurePolicy>,
) -> Result<Response, ApiError> {
    let status = state
        .plugins
        .start_shadow(slot, wasm.to_vec(), config, policy)
        .await
        .map_err(|e| admin_error(PluginAdminError::Refused(e)))?;
    Ok((StatusCode::ACCEPTED, Json(ShadowDto::from(&status))).into_response())
}

/// The slot's recorded recent live calls on this instance (admin-only: they are real orders).
#[utoipa::path(get, path = "/api/admin/plugins/{slot}/recorded", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "The recorded calls", body = RecordingDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn recorded_calls(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<RecordingDto>, ApiError> {
    let slot = slot(&slot_name)?;
    let recording = state.plugins.recording(slot);
    Ok(Json(RecordingDto {
        slot: slot.as_str().to_owned(),
        max_calls: recording.max_calls,
        max_bytes: recording.max_bytes,
        bytes: recording.bytes,
        personal_data: personal_data_name(recording.personal_data).to_owned(),
        calls: recording.calls.iter().map(RecordedCallDto::from).collect(),
    }))
}

/// Compiles and checks a candidate like an upload, then runs it and the active version on the
/// built-in fixtures and the slot's recorded calls, and returns both answers per input.
/// Nothing is stored, activated or recorded.
#[utoipa::path(post, path = "/api/admin/plugins/{slot}/dry-run", tag = "admin", security(("bearer" = [])),
    params(
        ("slot" = String, Path, description = "`tax`, `validation` or `email`"),
        ("policy" = Option<String>, Query, description = "`fail-closed` or `fallback`"),
        ("config" = Option<Vec<String>>, Query, description = "`key=value`, repeatable"),
    ),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The candidate component, at most 10 MiB"),
    responses(
        (status = 200, description = "Both answers per input", body = DryRunDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/wasm", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`plugin-rejected` (not a component for the slot), or bad query parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn dry_run(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(slot_name): Path<String>,
    uri: Uri,
    WasmBody(wasm): WasmBody,
) -> Result<Json<DryRunDto>, ApiError> {
    let slot = slot(&slot_name)?;
    let settings = upload_settings(&uri, false)?;
    let report = state
        .plugins
        .dry_run(slot, wasm.to_vec(), settings.config, settings.policy)
        .await
        .map_err(|e| admin_error(PluginAdminError::Refused(e)))?;
    Ok(Json(DryRunDto::from(&report)))
}

/// The slot's shadow on this instance and its counts: agreements, divergences (with the most
/// recent examples), failures and dropped calls.
#[utoipa::path(get, path = "/api/admin/plugins/{slot}/shadow", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "The shadow, or `null`", body = ShadowStateDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn shadow_state(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<ShadowStateDto>, ApiError> {
    let slot = slot(&slot_name)?;
    Ok(Json(ShadowStateDto {
        slot: slot.as_str().to_owned(),
        shadow: state
            .plugins
            .shadow_status(slot)
            .as_ref()
            .map(ShadowDto::from),
    }))
}

/// Stops the slot's shadow (if any) and returns its final counts.
#[utoipa::path(delete, path = "/api/admin/plugins/{slot}/shadow", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "The stopped shadow, or `null` if none ran", body = ShadowStateDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stop_shadow(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<ShadowStateDto>, ApiError> {
    let slot = slot(&slot_name)?;
    Ok(Json(ShadowStateDto {
        slot: slot.as_str().to_owned(),
        shadow: state
            .plugins
            .stop_shadow(slot, None)
            .as_ref()
            .map(ShadowDto::from),
    }))
}

/// Activates the slot's shadow the way an upload does — checked, activated here, recorded in
/// the store as a new version that every instance converges on — and stops the shadow.
#[utoipa::path(post, path = "/api/admin/plugins/{slot}/promote", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "Stored and active", body = PromotedDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no-shadow`: the slot runs no shadow on this instance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`plugin-rejected`: the shadow no longer loads (nothing changed)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn promote_shadow(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<PromotedDto>, ApiError> {
    let slot = slot(&slot_name)?;
    let Some(shadow) = state.plugins.shadow_upload(slot) else {
        return Err(ApiError::Conflict {
            code: "no-shadow",
            detail: format!(
                "the {slot} slot runs no shadow on this instance; upload one with mode=shadow"
            ),
            errors: vec![],
        });
    };
    let upload = Upload {
        slot,
        wasm: shadow.wasm.to_vec(),
        config: shadow.config,
        policy: shadow.policy,
        uploaded_by: admin.id,
    };
    let version = service::upload(state.store.as_ref(), &state.plugins, upload)
        .await
        .map_err(admin_error)?;
    let last = state.plugins.stop_shadow(slot, Some(&version.sha256));
    tracing::info!(slot = %slot, admin_id = %admin.id, version = %version.id, "shadow promoted");
    Ok(Json(PromotedDto {
        version: PluginVersionDto::from(&version),
        shadow: last.as_ref().map(ShadowDto::from),
    }))
}

/// The routes of this module in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(recorded_calls, dry_run, shadow_state, stop_shadow, promote_shadow),
    components(schemas(
        RecordedCallDto,
        RecordingDto,
        RunResultDto,
        DryRunItemDto,
        DryRunSummaryDto,
        DryRunDto,
        DivergenceDto,
        ShadowFailureDto,
        ShadowDto,
        ShadowStateDto,
        PromotedDto
    ))
)]
pub struct AdminPluginTrialsApi;

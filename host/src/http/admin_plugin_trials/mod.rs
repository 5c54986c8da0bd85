//! Admin routes for trying a new plugin version safely, under `/api/admin/plugins/{slot}`:
//! the slot's recorded recent calls (`GET …/recorded`), a dry run of a candidate on them and on
//! the built-in fixtures (`POST …/dry-run`), the shadow started by an upload with
//! `mode=shadow` (`GET`/`DELETE …/shadow`) and its promotion (`POST …/promote`). The work
//! happens in the plugin runtime (`plugins::recorder`, `dry_run`, `shadow`).
//!
//! Recorded calls, dry-run items and shadow examples carry the call's input as
//! `{function, input}` and outputs as the plugin answered them, with personal data treated per
//! the `plugins.recording.personal_data` setting.

mod dto;
pub use dto::*;

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
    let shadow = state.plugins.shadow_status(slot);
    Ok(Json(ShadowStateDto::of(slot, shadow.as_ref())))
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
    let shadow = state.plugins.stop_shadow(slot, None);
    Ok(Json(ShadowStateDto::of(slot, shadow.as_ref())))
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

//! Admin routes under `/api/admin/plugins`: what every rule slot runs, uploading a new
//! version, a slot's version history, rollback. The work happens in `service::plugins`.
//!
//! Upload: `PUT /api/admin/plugins/{slot}` with `Content-Type: application/wasm` and the
//! component as the body (at most 32 MiB: a component carrying an interpreter, such as a
//! Python plugin, is about 18 MiB). Settings go in the query string:
//! `policy=fail-closed|fallback` (once; omitted keeps each instance's configured policy) and
//! `config=key=value` (repeatable, in order; URL-encode the inner `=` as `%3D` or not, the
//! first `=` after `config` splits; omitted uses each instance's configured config of the
//! slot). Example:
//! `PUT /api/admin/plugins/tax?policy=fallback&config=rate.default%3D1200&config=rate.essentials%3D500`.
//! `mode=shadow` runs the component as the slot's shadow instead (see `admin_plugin_trials`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, FieldError, Problem};
use super::extract::AdminUser;
use super::state::AppState;
use crate::plugins::{PluginSource, Slot, SlotStatus};
use crate::service::plugins::{self as service, PluginAdminError, Upload, parse_policy};
use crate::storage::PluginVersion;

/// Largest component accepted by the upload route, in bytes (the same limit as the plugins
/// directory's).
pub const MAX_WASM_BYTES: usize = crate::plugins::MAX_COMPONENT_BYTES;

/// The media type of an uploaded component.
const WASM: &str = "application/wasm";

/// One key/value setting passed to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
}

pub(super) fn config_entries(config: &[(String, String)]) -> Vec<ConfigEntry> {
    config
        .iter()
        .map(|(key, value)| ConfigEntry {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// What one slot runs on this instance, and what the shared store says it should run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotDto {
    /// `tax`, `validation` or `email`.
    pub slot: String,
    /// Hex sha256 of the component serving calls.
    pub sha256: Option<String>,
    /// `embedded` (built into orderd), `file` (the plugins directory) or `upload`.
    pub source: Option<String>,
    /// The uploaded version serving calls, when `source` is `upload`.
    pub version_id: Option<String>,
    /// The version the store marks active (`null`: none uploaded, or rolled back to the
    /// built-in default). Every instance converges on it within a few seconds.
    pub stored_version_id: Option<String>,
    /// Counts swaps into this slot on this instance.
    pub generation: u64,
    /// `fail-closed` or `fallback`.
    pub policy: Option<String>,
    /// Settings passed on every call.
    pub config: Vec<ConfigEntry>,
    /// When the serving version was swapped in.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Calls since this instance started.
    pub calls: u64,
    /// Calls whose serving version failed.
    pub errors: u64,
    /// Calls a fallback version served.
    pub fallbacks: u64,
}

/// Every slot.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SlotsDto {
    pub slots: Vec<SlotDto>,
}

/// An uploaded version (without its bytes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersionDto {
    /// 24-hex version id.
    pub id: String,
    pub slot: String,
    /// Hex sha256 of the component.
    pub sha256: String,
    /// Settings passed on every call, in the order given.
    pub config: Vec<ConfigEntry>,
    /// `fail-closed` or `fallback`; `null` keeps each instance's configured policy.
    pub policy: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The admin who uploaded it.
    pub created_by: Option<String>,
}

impl From<&PluginVersion> for PluginVersionDto {
    fn from(v: &PluginVersion) -> Self {
        Self {
            id: v.id.to_hex(),
            slot: v.slot.clone(),
            sha256: v.sha256.clone(),
            config: config_entries(&v.config),
            policy: v.policy.clone(),
            created_at: v.created_at,
            created_by: v.created_by.map(|id| id.to_hex()),
        }
    }
}

/// `201` to an upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedDto {
    /// The stored, now active version.
    pub version: PluginVersionDto,
}

/// A slot's uploaded versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionsDto {
    pub slot: String,
    /// The version the store marks active; `null` for the built-in default.
    pub active_version_id: Option<String>,
    /// Newest first.
    pub items: Vec<PluginVersionDto>,
}

/// `200` to a rollback.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolledBackDto {
    pub slot: String,
    /// The version now active; `null` for the built-in default.
    pub version: Option<PluginVersionDto>,
}

/// Routes under `/api/admin/plugins`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/plugins", get(list_slots))
        .route(
            "/api/admin/plugins/{slot}",
            put(upload_plugin).layer(DefaultBodyLimit::max(MAX_WASM_BYTES)),
        )
        .route("/api/admin/plugins/{slot}/versions", get(list_versions))
        .route("/api/admin/plugins/{slot}/rollback", post(rollback_plugin))
}

/// An unknown slot is a resource that does not exist.
pub(super) fn slot(name: &str) -> Result<Slot, ApiError> {
    name.parse().map_err(|_| ApiError::NotFound)
}

pub(super) fn admin_error(err: PluginAdminError) -> ApiError {
    match err {
        PluginAdminError::Refused(reason) => ApiError::Unprocessable {
            code: "plugin-rejected",
            detail: format!("{reason}; nothing was changed"),
            errors: vec![],
        },
        PluginAdminError::NothingToRollBack(slot) => ApiError::Conflict {
            code: "nothing-to-roll-back",
            detail: format!(
                "the {slot} slot runs its built-in plugin; there is nothing to roll back"
            ),
            errors: vec![],
        },
        PluginAdminError::Store(err) => ApiError::Internal(err),
    }
}

fn slot_dto(status: SlotStatus, stored: Option<String>) -> SlotDto {
    let (source, version_id) = match &status.source {
        None => (None, None),
        Some(PluginSource::Embedded) => (Some("embedded"), None),
        Some(PluginSource::File { .. }) => (Some("file"), None),
        Some(PluginSource::Upload { version_id }) => (Some("upload"), Some(version_id.clone())),
    };
    SlotDto {
        slot: status.slot.as_str().to_owned(),
        sha256: status.sha256,
        source: source.map(str::to_owned),
        version_id,
        stored_version_id: stored,
        generation: status.generation,
        policy: status.policy.map(|p| service::policy_name(p).to_owned()),
        config: config_entries(&status.config),
        loaded_at: status.loaded_at,
        calls: status.calls,
        errors: status.errors,
        fallbacks: status.fallbacks,
    }
}

/// What every slot runs on this instance.
#[utoipa::path(get, path = "/api/admin/plugins", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every slot", body = SlotsDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_slots(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<SlotsDto>, ApiError> {
    let active = state.store.active_plugins().await?;
    let slots = state
        .plugins
        .status()
        .into_iter()
        .map(|status| {
            let stored = active
                .iter()
                .find(|a| a.slot == status.slot.as_str())
                .and_then(|a| a.version_id)
                .map(|id| id.to_hex());
            slot_dto(status, stored)
        })
        .collect();
    Ok(Json(SlotsDto { slots }))
}

/// The body of an upload: `application/wasm` (else 415), at most [`MAX_WASM_BYTES`] (else 413).
pub struct WasmBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WasmBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some(WASM) {
            return Err(ApiError::UnsupportedMediaType(WASM));
        }
        Bytes::from_request(req, state)
            .await
            .map(WasmBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the request body could not be read".to_owned())
                }
            })
    }
}

/// What an upload asks for: activate the version, or run it as the slot's shadow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum UploadMode {
    /// Store and activate (the default).
    #[default]
    Active,
    /// Run beside the active version on live calls, storing nothing (`mode=shadow`).
    Shadow,
}

/// The query parameters of an upload or a dry run.
pub(super) struct UploadSettings {
    pub config: rule_types::Config,
    pub policy: Option<crate::plugins::FailurePolicy>,
    pub mode: UploadMode,
}

/// The `policy`, repeated `config` and (when `allow_mode`) `mode` query parameters of an
/// upload.
pub(super) fn upload_settings(uri: &Uri, allow_mode: bool) -> Result<UploadSettings, ApiError> {
    let mut config = Vec::new();
    let mut policy = None;
    let mut mode = None;
    let mut errors = Vec::new();
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "mode" if allow_mode && mode.is_some() => errors.push(FieldError::new(
                "mode",
                "duplicate-field",
                "appears more than once",
            )),
            "mode" if allow_mode => match value.as_ref() {
                "active" => mode = Some(UploadMode::Active),
                "shadow" => mode = Some(UploadMode::Shadow),
                _ => errors.push(FieldError::new(
                    "mode",
                    "invalid-value",
                    "must be active or shadow",
                )),
            },
            "config" => match value.split_once('=') {
                Some((key, val)) if !key.trim().is_empty() => {
                    config.push((key.trim().to_owned(), val.to_owned()))
                }
                _ => errors.push(FieldError::new(
                    "config",
                    "invalid-format",
                    "must be key=value with a non-empty key",
                )),
            },
            "policy" if policy.is_some() => {
                errors.push(FieldError::new(
                    "policy",
                    "duplicate-field",
                    "appears more than once",
                ));
            }
            "policy" => match parse_policy(&value) {
                Some(p) => policy = Some(p),
                None => errors.push(FieldError::new(
                    "policy",
                    "invalid-value",
                    "must be fail-closed or fallback",
                )),
            },
            other => errors.push(FieldError::new(other, "unknown-field", "is not allowed")),
        }
    }
    if errors.is_empty() {
        Ok(UploadSettings {
            config,
            policy,
            mode: mode.unwrap_or_default(),
        })
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Uploads a new version of a slot's plugin: compiled, checked against the slot's world and
/// smoke-tested, then activated here and recorded in the store (every other instance follows
/// within a few seconds). A refused component changes nothing. With `mode=shadow` the
/// component is checked the same way but only runs beside the active version on this
/// instance's live calls (`202`, see `GET /api/admin/plugins/{slot}/shadow`); nothing is stored
/// or activated until `POST /api/admin/plugins/{slot}/promote`.
#[utoipa::path(put, path = "/api/admin/plugins/{slot}", tag = "admin", security(("bearer" = [])),
    params(
        ("slot" = String, Path, description = "`tax`, `validation` or `email`"),
        ("policy" = Option<String>, Query, description = "`fail-closed` or `fallback`"),
        ("config" = Option<Vec<String>>, Query, description = "`key=value`, repeatable"),
        ("mode" = Option<String>, Query, description = "`active` (default) or `shadow`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component, at most 32 MiB"),
    responses(
        (status = 201, description = "Stored and active", body = UploadedDto),
        (status = 202, description = "`mode=shadow`: running as the slot's shadow; nothing stored or activated", body = super::admin_plugin_trials::ShadowDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 32 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/wasm", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`plugin-rejected` with the reason (nothing changed), or bad query parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload_plugin(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(slot_name): Path<String>,
    uri: Uri,
    WasmBody(wasm): WasmBody,
) -> Result<Response, ApiError> {
    let slot = slot(&slot_name)?;
    let UploadSettings {
        config,
        policy,
        mode,
    } = upload_settings(&uri, true)?;
    if mode == UploadMode::Shadow {
        return super::admin_plugin_trials::start_shadow(&state, slot, wasm, config, policy).await;
    }
    let upload = Upload {
        slot,
        wasm: wasm.to_vec(),
        config,
        policy,
        uploaded_by: admin.id,
    };
    let version = service::upload(state.store.as_ref(), &state.plugins, upload)
        .await
        .map_err(admin_error)?;
    let body = UploadedDto {
        version: PluginVersionDto::from(&version),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A slot's uploaded versions, newest first, and which one is active.
#[utoipa::path(get, path = "/api/admin/plugins/{slot}/versions", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "The versions", body = VersionsDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_versions(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<VersionsDto>, ApiError> {
    let slot = slot(&slot_name)?;
    let (versions, active) = service::versions(state.store.as_ref(), slot)
        .await
        .map_err(admin_error)?;
    Ok(Json(VersionsDto {
        slot: slot.as_str().to_owned(),
        active_version_id: active.and_then(|a| a.version_id).map(|id| id.to_hex()),
        items: versions.iter().map(PluginVersionDto::from).collect(),
    }))
}

/// Activates the version uploaded before the active one, or the built-in default after the
/// oldest upload.
#[utoipa::path(post, path = "/api/admin/plugins/{slot}/rollback", tag = "admin", security(("bearer" = [])),
    params(("slot" = String, Path, description = "`tax`, `validation` or `email`")),
    responses(
        (status = 200, description = "The version now active (`null`: the built-in default)", body = RolledBackDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such slot", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`nothing-to-roll-back`: the slot runs its built-in plugin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rollback_plugin(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(slot_name): Path<String>,
) -> Result<Json<RolledBackDto>, ApiError> {
    let slot = slot(&slot_name)?;
    let version = service::rollback(state.store.as_ref(), &state.plugins, slot)
        .await
        .map_err(admin_error)?;
    tracing::info!(slot = %slot, admin_id = %admin.id, "plugin rollback requested");
    Ok(Json(RolledBackDto {
        slot: slot.as_str().to_owned(),
        version: version.as_ref().map(PluginVersionDto::from),
    }))
}

/// The admin plugin routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list_slots, upload_plugin, list_versions, rollback_plugin),
    components(schemas(
        ConfigEntry,
        SlotDto,
        SlotsDto,
        PluginVersionDto,
        UploadedDto,
        VersionsDto,
        RolledBackDto
    ))
)]
pub struct AdminPluginsApi;

//! `GET /api/admin/plugins/stats`: per slot, who uploaded the active version and when, and the
//! live calls of every version over the last minutes (calls, failures, p50/p99 latency) as
//! the plugin runtime counts them (`plugins::call_window`). The operator console's rule cards
//! read it; `/metrics` carries the same figures as `plugin_window_*{slot, version}` gauges.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, Problem};
use super::extract::AdminUser;
use super::state::AppState;
use crate::plugins::{PluginSource, Slot, VersionWindow, WINDOW_MINUTES};

/// Live calls of one version over the window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionStatsDto {
    /// The first 12 hex digits of the version's sha256.
    pub version: String,
    /// Whether it is the slot's active version on this instance.
    pub active: bool,
    pub calls: u64,
    /// Calls that failed (a fallback may have served them).
    pub failures: u64,
    /// Median latency of a call, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    pub last_call_at: DateTime<Utc>,
}

/// The upload behind a slot's active version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadedByDto {
    /// 24-hex id of the stored version.
    pub version_id: String,
    pub uploaded_at: DateTime<Utc>,
    /// E-mail address of the admin who uploaded it (`null` when unknown or since deleted).
    pub uploaded_by: Option<String>,
}

/// One slot's figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotStatsDto {
    pub slot: String,
    /// The upload the active version came from; `null` for the built-in default or a file.
    pub upload: Option<UploadedByDto>,
    /// Every version with calls in the window, the active one included once it was called.
    pub versions: Vec<VersionStatsDto>,
}

/// Every slot's figures on this instance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatsDto {
    /// Minutes the figures cover (the current, partial one included).
    pub window_minutes: u64,
    pub slots: Vec<SlotStatsDto>,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/plugins/stats", get(plugin_stats))
}

#[derive(OpenApi)]
#[openapi(
    paths(plugin_stats),
    components(schemas(PluginStatsDto, SlotStatsDto, VersionStatsDto, UploadedByDto))
)]
pub struct AdminPluginStatsApi;

/// Live plugin calls per slot and version over the last minutes (admin).
#[utoipa::path(get, path = "/api/admin/plugins/stats", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every slot", body = PluginStatsDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn plugin_stats(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<PluginStatsDto>, ApiError> {
    let window = state.plugins.call_window();
    let mut slots = Vec::new();
    for status in state.plugins.status() {
        let active = status
            .sha256
            .as_deref()
            .map(|sha| &sha[..12.min(sha.len())]);
        let upload = match &status.source {
            Some(PluginSource::Upload { version_id }) => {
                upload_of(&state, status.slot, version_id).await?
            }
            _ => None,
        };
        let versions = window
            .iter()
            .filter(|w| w.slot == status.slot)
            .map(|w| version_dto(w, active))
            .collect();
        slots.push(SlotStatsDto {
            slot: status.slot.as_str().to_owned(),
            upload,
            versions,
        });
    }
    Ok(Json(PluginStatsDto {
        window_minutes: WINDOW_MINUTES,
        slots,
    }))
}

fn version_dto(w: &VersionWindow, active: Option<&str>) -> VersionStatsDto {
    VersionStatsDto {
        version: w.version.clone(),
        active: active == Some(w.version.as_str()),
        calls: w.calls,
        failures: w.failures,
        p50_ms: w.p50_ms,
        p99_ms: w.p99_ms,
        last_call_at: w.last_call_at,
    }
}

/// The stored upload `version_id` of `slot` with its uploader's e-mail address.
async fn upload_of(
    state: &AppState,
    slot: Slot,
    version_id: &str,
) -> Result<Option<UploadedByDto>, ApiError> {
    // The listing leaves the component bytes out; a slot keeps a handful of versions.
    let versions = state.store.plugin_versions(slot.as_str()).await?;
    let Some(version) = versions.into_iter().find(|v| v.id.to_hex() == version_id) else {
        return Ok(None);
    };
    let uploaded_by = match version.created_by {
        Some(id) => state
            .store
            .user_by_id(id)
            .await?
            .map(|u| u.email.as_str().to_owned()),
        None => None,
    };
    Ok(Some(UploadedByDto {
        version_id: version.id.to_hex(),
        uploaded_at: version.created_at,
        uploaded_by,
    }))
}

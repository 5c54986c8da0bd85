//! Readiness, `GET /api/ready`: the store answers, every plugin slot has a version, and every
//! delivery role this process runs (`relay`, `consumer`) has had a good pass within
//! `delivery.stale_after_ms`. Ready is a 200 with what was checked; not ready is a 503
//! `application/problem+json` document (`urn:orderd:problem:not-ready`) whose `detail` names
//! each reason and which carries the same checks as extension members.
//!
//! A role that is restarting or failing but had a good pass recently keeps the process ready:
//! a blip of the queue should not take every instance out of a load balancer at once; a role
//! stuck for longer than the threshold should.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX, Problem};
use super::state::AppState;
use crate::delivery::role_health::RoleReport;

/// One delivery role as readiness sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleReadiness {
    /// `starting`, `ok`, `failing` (a pass failed; the role retries by itself), `restarting`
    /// (the role ended with an error or a panic and is started again after a pause) or
    /// `stopped`.
    pub state: &'static str,
    /// Why the role is failing or restarting; absent once a pass works again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Milliseconds since the role's last good pass; `null` before its first.
    pub last_good_pass_ago_ms: Option<u64>,
    /// Times the role was started again after failing, since the process started.
    pub restarts: u64,
    /// Panics of the role's handler tasks, caught without stopping the role.
    pub handler_panics: u64,
    /// Whether the role has had no good pass for longer than `delivery.stale_after_ms`
    /// (counted from start-up before its first); a stale role makes the process not ready.
    pub stale: bool,
}

/// What readiness checked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checks {
    /// "ok" or "unreachable".
    pub store: &'static str,
    /// Per slot: whether a version is loaded.
    pub plugins: BTreeMap<String, bool>,
    /// Per delivery role this process runs; empty for an api-only process.
    pub roles: BTreeMap<String, RoleReadiness>,
}

/// Ready: every check passed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always "ready".
    pub status: &'static str,
    #[serde(flatten)]
    pub checks: Checks,
}

/// Not ready: a problem document (`status` is 503) with the checks as extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotReady {
    #[serde(flatten)]
    pub problem: Problem,
    #[serde(flatten)]
    pub checks: Checks,
}

/// Readiness of the store, the plugin slots and this process's delivery roles.
#[utoipa::path(get, path = "/api/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The store is unreachable, a plugin slot has no version, \
            or a delivery role has had no good pass for longer than `delivery.stale_after_ms`",
            body = NotReady, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let store_ok = match state.store.ping().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = ?err, "readiness: store ping failed");
            false
        }
    };
    let plugins: BTreeMap<String, bool> = state
        .plugins
        .status()
        .into_iter()
        .map(|s| (s.slot.as_str().to_owned(), s.sha256.is_some()))
        .collect();
    let mut reasons = Vec::new();
    if !store_ok {
        reasons.push("the store is unreachable".to_owned());
    }
    for (slot, _) in plugins.iter().filter(|(_, loaded)| !**loaded) {
        reasons.push(format!("plugin slot {slot} has no version"));
    }
    let health = &state.delivery;
    let mut roles = BTreeMap::new();
    for report in health.reports() {
        let stale = health.stale(&report);
        if stale {
            reasons.push(format!(
                "the {} has had no good pass for {} ms (limit {} ms)",
                report.name,
                report.without_good_pass.as_millis(),
                health.stale_after().as_millis()
            ));
        }
        roles.insert(report.name.to_owned(), role_readiness(report, stale));
    }
    let checks = Checks {
        store: if store_ok { "ok" } else { "unreachable" },
        plugins,
        roles,
    };
    if reasons.is_empty() {
        return Json(Readiness {
            status: "ready",
            checks,
        })
        .into_response();
    }
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let body = NotReady {
        problem: Problem {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}not-ready"),
            title: "Not ready".to_owned(),
            status: status.as_u16(),
            detail: reasons.join("; "),
            errors: Vec::new(),
        },
        checks,
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

fn role_readiness(report: RoleReport, stale: bool) -> RoleReadiness {
    RoleReadiness {
        state: report.state.as_str(),
        last_error: report.last_error,
        last_good_pass_ago_ms: report.last_good_pass_ago.map(|d| d.as_millis() as u64),
        restarts: report.restarts,
        handler_panics: report.handler_panics,
        stale,
    }
}

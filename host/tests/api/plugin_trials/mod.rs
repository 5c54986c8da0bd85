//! Trying a new plugin version safely through the admin API: recorded recent calls (personal
//! data redacted), dry runs on them, a shadow beside the active version and its promotion,
//! admins only, hostile requests refused.

mod access;
mod recording;
mod shadow;

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::Value;

use crate::helpers::{TestApp, TestUser};

pub const FLAT_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/flat_tax.wasm");
pub const GST_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/gst_tax.wasm");
pub const PANICKER: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/panicker.wasm");

/// The candidate of the shadow tests: the built-in GST rule with electronics at 28% instead of
/// the default 18%, so it differs from the active version only on electronics lines.
pub const ELECTRONICS_AT_28: &str = "config=rate.electronics%3D2800";

pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("test plugin {path}: {e}"))
}

/// `method /api/admin/plugins/{path}` with `body` as `application/wasm`.
pub async fn send_wasm(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> Response {
    app.client
        .request(method, app.url(&format!("/api/admin/plugins/{path}")))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub async fn dry_run(app: &TestApp, admin: &TestUser, query: &str, body: Vec<u8>) -> Response {
    let path = format!("tax/dry-run{query}");
    send_wasm(app, &admin.access_token, reqwest::Method::POST, &path, body).await
}

pub async fn shadow_upload(
    app: &TestApp,
    admin: &TestUser,
    query: &str,
    body: Vec<u8>,
) -> Response {
    let path = format!("tax?mode=shadow{query}");
    send_wasm(app, &admin.access_token, reqwest::Method::PUT, &path, body).await
}

pub async fn get_json(app: &TestApp, admin: &TestUser, path: &str) -> Value {
    let response = app.get(path, Some(&admin.access_token)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

pub async fn shadow(app: &TestApp, admin: &TestUser) -> Value {
    get_json(app, admin, "/api/admin/plugins/tax/shadow").await["shadow"].clone()
}

/// Waits until the tax shadow has seen `calls` live calls (shadow calls run off the request
/// path, so they finish a little after the orders' responses).
pub async fn shadow_after(app: &TestApp, admin: &TestUser, calls: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = shadow(app, admin).await;
        let seen = ["agreements", "divergences", "failures", "dropped"]
            .iter()
            .map(|k| s[k].as_u64().unwrap())
            .sum::<u64>();
        if seen >= calls || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn stored_versions(app: &TestApp, admin: &TestUser) -> usize {
    get_json(app, admin, "/api/admin/plugins/tax/versions").await["items"]
        .as_array()
        .unwrap()
        .len()
}

pub async fn tax_source(app: &TestApp, admin: &TestUser) -> Value {
    let slots = get_json(app, admin, "/api/admin/plugins").await;
    slots["slots"][0]["source"].clone()
}

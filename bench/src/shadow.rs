//! A shadow candidate during a load run (`orderd-bench load --shadow FILE`): uploaded to the
//! tax slot with `mode=shadow` before the warm-up, its counts printed after the run, so the
//! order latency with a shadow running can be put next to a run without one.

use anyhow::{Context, bail};
use serde_json::Value;

use crate::api::Api;

/// Starts `wasm` as the tax slot's shadow with `config` (`key=value` pairs).
pub async fn start(api: &Api, admin: &str, wasm: Vec<u8>, config: &[String]) -> anyhow::Result<()> {
    let mut query: Vec<(&str, &str)> = vec![("mode", "shadow")];
    query.extend(config.iter().map(|c| ("config", c.as_str())));
    let resp = api
        .http
        .put(api.url("/api/admin/plugins/tax"))
        .query(&query)
        .bearer_auth(admin)
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .context("Failed to upload the shadow")?;
    let status = resp.status();
    if status.as_u16() != 202 {
        let body = resp.text().await.unwrap_or_default();
        bail!("starting the shadow answered {status}: {body}");
    }
    Ok(())
}

/// The tax slot's shadow counts as one line.
pub async fn summary(api: &Api, admin: &str) -> anyhow::Result<String> {
    let body: Value = api
        .http
        .get(api.url("/api/admin/plugins/tax/shadow"))
        .bearer_auth(admin)
        .send()
        .await
        .context("Failed to read the shadow")?
        .json()
        .await
        .context("Failed to parse the shadow")?;
    let s = &body["shadow"];
    Ok(format!(
        "agreements {} divergences {} failures {} dropped {}",
        s["agreements"], s["divergences"], s["failures"], s["dropped"]
    ))
}

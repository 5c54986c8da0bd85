//! `orderd plugin replay FILE --slot S --url URL`: sends a candidate to a running orderd's
//! dry-run endpoint (`POST /api/admin/plugins/{slot}/dry-run`), which runs it and the active
//! version on the server's built-in fixtures and recorded recent calls, and prints where the
//! answers differ, field by field. Nothing is stored or activated.
//!
//! Credentials: `--token` (or `ORDERD_TOKEN`), else an admin's `--email` and `--password` (or
//! `ORDERD_ADMIN_EMAIL` / `ORDERD_ADMIN_PASSWORD`), exchanged for a token at
//! `POST /api/auth/login`. Exit code 0 when the run completed (1 with `--fail-on-diff` when any
//! answer differs); a refused candidate or a server error is one line on stderr and exit 1.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

use super::plugin::SlotArg;
use crate::http::admin_plugin_trials::{DryRunDto, RunResultDto};
use crate::plugins::Slot;

/// Options of `orderd plugin replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The candidate component (.wasm).
    pub file: PathBuf,
    /// The slot it is meant for.
    #[arg(long, value_enum)]
    pub slot: SlotArg,
    /// Base URL of the orderd to replay on, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// Config for the candidate, as key=value (repeatable; none: the slot's configured config).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// An admin's bearer token.
    #[arg(long, env = "ORDERD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// An admin's e-mail, used with --password when no token is given.
    #[arg(long, env = "ORDERD_ADMIN_EMAIL")]
    pub email: Option<String>,
    /// The admin's password.
    #[arg(long, env = "ORDERD_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Exit with status 1 when any answer differs.
    #[arg(long)]
    pub fail_on_diff: bool,
}

/// Runs the command.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?
        .block_on(replay(args))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let slot = Slot::from(args.slot);
    let wasm = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("Failed to read {}", args.file.display()))?;
    let base = args.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("Failed to build the HTTP client")?;
    let token = match (&args.token, &args.email, &args.password) {
        (Some(token), _, _) => token.clone(),
        (None, Some(email), Some(password)) => login(&client, &base, email, password).await?,
        _ => bail!(
            "no credentials: pass --token (ORDERD_TOKEN) or --email and --password (ORDERD_ADMIN_EMAIL, ORDERD_ADMIN_PASSWORD)"
        ),
    };
    let query: Vec<(&str, &str)> = args.config.iter().map(|c| ("config", c.as_str())).collect();
    let response = client
        .post(format!("{base}/api/admin/plugins/{slot}/dry-run"))
        .query(&query)
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .with_context(|| format!("Failed to reach {base}"))?;
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or("no detail");
        bail!("the server refused the dry run ({status}): {detail}");
    }
    let report: DryRunDto = response
        .json()
        .await
        .context("Failed to read the dry-run report")?;
    let text = render(&report);
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("Failed to write to stdout")?;
    if args.fail_on_diff && report.summary.differing > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .with_context(|| format!("Failed to reach {base}"))?;
    if !response.status().is_success() {
        bail!("login as {email} failed ({})", response.status());
    }
    let body: Value = response
        .json()
        .await
        .context("Failed to read the login answer")?;
    body["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("the login answer has no accessToken")
}

/// The report as text: a summary line, then each differing input with the fields that differ.
pub fn render(report: &DryRunDto) -> String {
    let s = &report.summary;
    let mut out = format!(
        "candidate {} vs active {} on the {} slot: {} inputs ({} recorded), {} differ, {} candidate failures\n",
        short(&report.sha256),
        report.active_sha256.as_deref().map_or("(none)", short),
        report.slot,
        s.inputs,
        s.recorded,
        s.differing,
        s.candidate_failures,
    );
    for item in report.items.iter().filter(|i| i.differs) {
        let label = match (item.recorded_seq, item.recorded_at) {
            (Some(seq), Some(at)) => format!("recorded #{seq} ({})", at.to_rfc3339()),
            _ => "fixture".to_owned(),
        };
        let _ = writeln!(out, "\n{label}: {}", item.function);
        for line in differences(&item.active, &item.candidate) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn short(sha: &str) -> &str {
    &sha[..12.min(sha.len())]
}

/// `path: active → candidate` for every leaf that differs, or the failures.
fn differences(active: &RunResultDto, candidate: &RunResultDto) -> Vec<String> {
    match (&active.output, &candidate.output) {
        (Some(a), Some(c)) => {
            let mut lines = Vec::new();
            diff_values("", a, c, &mut lines);
            lines
        }
        _ => vec![
            format!("active:    {}", outcome(active)),
            format!("candidate: {}", outcome(candidate)),
        ],
    }
}

fn outcome(result: &RunResultDto) -> String {
    match (&result.output, &result.error_kind) {
        (Some(output), _) => output.to_string(),
        (None, kind) => format!(
            "failed ({}): {}",
            kind.as_deref().unwrap_or("unknown"),
            result.error.as_deref().unwrap_or("")
        ),
    }
}

/// Walks two JSON values and notes each differing leaf by its path (`lines[1].tax.amount`).
/// A few lines of tree walking; a diff crate would compare text lines, not fields.
fn diff_values(path: &str, a: &Value, c: &Value, out: &mut Vec<String>) {
    match (a, c) {
        (Value::Object(a), Value::Object(c)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(c.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    c.get(key).unwrap_or(&Value::Null),
                );
                diff_values(&child, x, y, out);
            }
        }
        (Value::Array(a), Value::Array(c)) => {
            for i in 0..a.len().max(c.len()) {
                let (x, y) = (
                    a.get(i).unwrap_or(&Value::Null),
                    c.get(i).unwrap_or(&Value::Null),
                );
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if a != c => out.push(format!("{path}: {a} → {c}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_each_differing_field_by_its_path() {
        let active = RunResultDto {
            output: Some(
                json!({"lines": [{"rateBps": 1800, "tax": {"amount": 90}}], "totalTax": {"amount": 90}}),
            ),
            error_kind: None,
            error: None,
        };
        let candidate = RunResultDto {
            output: Some(
                json!({"lines": [{"rateBps": 2800, "tax": {"amount": 140}}], "totalTax": {"amount": 140}}),
            ),
            error_kind: None,
            error: None,
        };
        assert_eq!(
            differences(&active, &candidate),
            [
                "lines[0].rateBps: 1800 → 2800",
                "lines[0].tax.amount: 90 → 140",
                "totalTax.amount: 90 → 140"
            ]
        );
    }
}

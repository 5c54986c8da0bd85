//! `orderd plugin deploy FILE --slot S --url URL`: uploads a component to a running orderd
//! through the admin API and says what happened.
//!
//! 1. signs in as an admin (`ORDERD_ADMIN_EMAIL` / `ORDERD_ADMIN_PASSWORD`, else a prompt on
//!    the terminal);
//! 2. asks for a dry run (`POST /api/admin/plugins/{slot}/dry-run`) and prints its result; a
//!    server without that route (404) is reported and the deploy goes on, a candidate the
//!    dry run refuses (422) stops it before anything is stored;
//! 3. uploads it (`PUT /api/admin/plugins/{slot}`) and prints the stored version;
//! 4. reads `GET /api/admin/plugins` until the slot runs that version (a few seconds at most)
//!    and prints whether it is active.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::{print_stdout, read_component};
use crate::plugins::Slot;

/// Environment variable with the admin's e-mail address.
pub const EMAIL_VAR: &str = "ORDERD_ADMIN_EMAIL";
/// Environment variable with the admin's password.
pub const PASSWORD_VAR: &str = "ORDERD_ADMIN_PASSWORD";

/// How long to wait for the uploaded version to show as active.
const ACTIVE_WAIT: Duration = Duration::from_secs(5);

/// The options of `plugin deploy` besides the file.
pub struct DeployArgs {
    pub slot: Slot,
    pub url: String,
    pub config: Vec<(String, String)>,
    pub policy: Option<String>,
}

pub async fn deploy(file: &Path, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let base = args.url.trim_end_matches('/').to_owned();
    let slot = args.slot;
    let (email, password) = credentials()?;
    // No connection reuse: a server that answers the dry run with 404 without reading the
    // body closes that connection, and the upload must not be sent down it.
    let http = Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .context("Failed to build the HTTP client")?;

    let login = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": password }));
    let body = expect_ok(login, "sign in").await?;
    let token = body["accessToken"]
        .as_str()
        .context("the login answer has no accessToken")?
        .to_owned();

    let mut query: Vec<(&str, String)> = args
        .config
        .iter()
        .map(|(k, v)| ("config", format!("{k}={v}")))
        .collect();
    if let Some(policy) = &args.policy {
        query.push(("policy", policy.clone()));
    }
    let candidate = |req: RequestBuilder| {
        req.bearer_auth(&token)
            .query(&query)
            .header("content-type", "application/wasm")
            .body(bytes.clone())
    };

    let dry_run = candidate(http.post(format!("{base}/api/admin/plugins/{slot}/dry-run")))
        .send()
        .await
        .with_context(|| format!("Failed to reach {base}"))?;
    match dry_run.status() {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => print_stdout(
            "dry run:   not offered by this server (POST …/dry-run answered 404); skipped",
        )?,
        status if status.is_success() => {
            let body: Value = dry_run.json().await.unwrap_or(Value::Null);
            print_stdout(&format!("dry run:   {}", summarize_dry_run(&body)))?;
        }
        status => {
            let detail = problem_detail(dry_run).await;
            bail!(
                "the dry run refused the candidate ({}): {detail}; nothing was uploaded",
                status.as_u16()
            );
        }
    }

    let uploaded = expect_ok(
        candidate(http.put(format!("{base}/api/admin/plugins/{slot}"))),
        "upload",
    )
    .await?;
    let version = &uploaded["version"];
    let id = version["id"]
        .as_str()
        .context("the upload answer has no version id")?
        .to_owned();
    print_stdout(&format!(
        "uploaded:  version {id} of the {slot} slot (sha256 {})",
        version["sha256"].as_str().unwrap_or("?")
    ))?;

    let started = Instant::now();
    loop {
        let list = expect_ok(
            http.get(format!("{base}/api/admin/plugins"))
                .bearer_auth(&token),
            "read the active plugins",
        )
        .await?;
        let running = list["slots"]
            .as_array()
            .and_then(|slots| slots.iter().find(|s| s["slot"] == slot.as_str()))
            .and_then(|s| s["versionId"].as_str().map(str::to_owned));
        if running.as_deref() == Some(id.as_str()) {
            print_stdout(&format!(
                "active:    yes, the {slot} slot runs version {id}"
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() > ACTIVE_WAIT {
            print_stdout(&format!(
                "active:    no, after {}s the {slot} slot runs {}",
                ACTIVE_WAIT.as_secs(),
                running
                    .as_deref()
                    .unwrap_or("a version that was not uploaded")
            ))?;
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The admin's e-mail and password: from the environment, else asked on the terminal.
fn credentials() -> anyhow::Result<(String, String)> {
    let email = std::env::var(EMAIL_VAR).ok().filter(|v| !v.is_empty());
    let password = std::env::var(PASSWORD_VAR).ok().filter(|v| !v.is_empty());
    if let (Some(e), Some(p)) = (&email, &password) {
        return Ok((e.clone(), p.clone()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("set {EMAIL_VAR} and {PASSWORD_VAR} (no terminal to ask on)");
    }
    let email = match email {
        Some(e) => e,
        None => {
            eprint!("admin e-mail: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("Failed to read the e-mail")?;
            line.trim().to_owned()
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            rpassword::prompt_password("admin password: ").context("Failed to read the password")?
        }
    };
    Ok((email, password))
}

/// Sends `req` and returns its JSON body, or fails with the problem's detail.
async fn expect_ok(req: RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let res = req
        .send()
        .await
        .with_context(|| format!("Failed to {what}: the server did not answer"))?;
    if !res.status().is_success() {
        let status = res.status();
        let detail = problem_detail(res).await;
        bail!("Failed to {what}: {status}: {detail}");
    }
    res.json()
        .await
        .with_context(|| format!("Failed to {what}: the answer is not JSON"))
}

/// The `detail` (and field errors) of a problem+json answer, else its text.
async fn problem_detail(res: Response) -> String {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let Ok(body) = serde_json::from_str::<Value>(&text) else {
        return format!("{status} {}", text.chars().take(200).collect::<String>());
    };
    let mut out = body["detail"]
        .as_str()
        .or(body["title"].as_str())
        .unwrap_or("no detail")
        .to_owned();
    if let Some(errors) = body["errors"].as_array() {
        for e in errors {
            out.push_str(&format!(
                "; {}: {}",
                e["field"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("?")
            ));
        }
    }
    out
}

/// One line about a dry run's answer: how many inputs it ran and how many answers differ
/// from the active version's, when the answer says so; else the answer itself, shortened.
fn summarize_dry_run(body: &Value) -> String {
    let results = ["results", "inputs", "items"]
        .iter()
        .find_map(|k| body[*k].as_array());
    if let Some(results) = results {
        let differ = results
            .iter()
            .filter(|r| r["differs"].as_bool() == Some(true))
            .count();
        return format!(
            "{} inputs run, {differ} answered differently from the active version",
            results.len()
        );
    }
    let text = body.to_string();
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_with_results_is_summarized_by_how_many_differ() {
        let body = json!({"results": [{"differs": true}, {"differs": false}, {"differs": true}]});
        assert_eq!(
            summarize_dry_run(&body),
            "3 inputs run, 2 answered differently from the active version"
        );
    }

    #[test]
    fn a_dry_run_answer_of_another_shape_is_shown_shortened() {
        let body = json!({"note": "x".repeat(400)});
        let line = summarize_dry_run(&body);
        assert!(line.starts_with("{\"note\":\"xxx"), "{line}");
        assert_eq!(line.chars().count(), 300);
    }
}

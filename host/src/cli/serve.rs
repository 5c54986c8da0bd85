//! `orderd serve [--roles api,relay,consumer] [--demo] [--config FILE]`: loads the settings,
//! starts logging, builds the application and runs it until Ctrl-C or SIGTERM.
//!
//! `--demo` (development mode only) creates a demo admin and a small catalog when absent and
//! prints curl commands to try the API with.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;

use super::admin::{AdminOutcome, ensure_admin};
use crate::configuration::Settings;
use crate::domain::{Currency, Id, Product};
use crate::http::AppState;
use crate::startup::{Application, Roles, shutdown_signal};
use crate::storage::StoreError;

/// E-mail of the demo admin.
pub const DEMO_ADMIN_EMAIL: &str = "admin@example.com";
/// Password of the demo admin (development only).
pub const DEMO_ADMIN_PASSWORD: &str = "demo-admin-password";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Comma-separated roles to play: api, relay, consumer (default: the `roles` setting, all).
    #[arg(long)]
    pub roles: Option<String>,
    /// Create a demo admin and catalog if absent and print how to use them.
    #[arg(long)]
    pub demo: bool,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let settings = Settings::load(self.config.as_deref())?;
        crate::telemetry::init(&settings.log);
        for warning in crate::node_env::warnings() {
            tracing::warn!("{warning}");
        }
        let roles = Roles::parse(self.roles.as_deref().unwrap_or(&settings.roles))?;
        if self.demo && settings.is_production() {
            bail!("--demo is for development only; it is refused in production mode");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("Failed to start the async runtime")?;
        runtime.block_on(async move {
            let app = Application::build(settings, roles).await?;
            if self.demo {
                seed_demo(app.state()).await?;
                print_demo_usage(app.port());
            }
            app.run_until_stopped(shutdown_signal()).await
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The demo catalog: (sku, name, category, price in paise, stock).
const DEMO_PRODUCTS: &[(&str, &str, &str, i64, i64)] = &[
    (
        "DEMO-TEA-500G",
        "Assam tea, 500 g",
        "essentials",
        34_900,
        100,
    ),
    (
        "DEMO-NOTEBOOK",
        "Dotted notebook A5",
        "stationery",
        19_900,
        250,
    ),
    (
        "DEMO-HEADPHONES",
        "Wireless headphones",
        "electronics",
        249_900,
        20,
    ),
];

/// Creates the demo admin and catalog where absent.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<()> {
    let store = state.store.as_ref();
    match ensure_admin(
        store,
        &state.passwords,
        DEMO_ADMIN_EMAIL,
        DEMO_ADMIN_PASSWORD,
        Some("demo_admin"),
        false,
    )
    .await?
    {
        AdminOutcome::Created(id) => tracing::info!(%id, "created the demo admin"),
        AdminOutcome::Promoted(id) | AdminOutcome::AlreadyAdmin(id) => {
            tracing::info!(%id, "the demo admin exists")
        }
        AdminOutcome::ExistsNotPromoted(id) => tracing::warn!(
            %id,
            "a customer registered {DEMO_ADMIN_EMAIL} before the demo seeded it; that account is \
             NOT made an admin, so the demo admin is unavailable (start with a fresh data dir)"
        ),
    }
    let currency = Currency::parse("INR").map_err(|e| anyhow::anyhow!("{e}"))?;
    for (sku, name, category, price, stock) in DEMO_PRODUCTS {
        let now = Utc::now();
        let product = Product {
            id: Id::new(),
            name: (*name).to_owned(),
            sku: (*sku).to_owned(),
            description: Some("Demo product".to_owned()),
            category: (*category).to_owned(),
            price: *price,
            currency,
            stock: *stock,
            created_at: now,
            updated_at: now,
        };
        match store.create_product(&product).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err).context("Failed to create a demo product"),
        }
    }
    Ok(())
}

fn print_demo_usage(port: u16) {
    println!("{}", demo_usage(port));
}

/// What `serve --demo` prints once it is ready.
fn demo_usage(port: u16) -> String {
    let base = format!("http://127.0.0.1:{port}");
    format!(
        r#"
orderd demo is running on {base}

  # the operator console: open it in a browser, sign in as the demo admin
  {base}/console

  # sign in as the demo admin ({DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD})
  TOKEN=$(curl -s {base}/api/auth/login -H 'content-type: application/json' \
    -d '{{"email":"{DEMO_ADMIN_EMAIL}","password":"{DEMO_ADMIN_PASSWORD}"}}' | sed 's/.*"accessToken":"\([^"]*\)".*/\1/')

  # browse the catalog
  curl -s {base}/api/products

  # add a product
  curl -s {base}/api/products -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{{"name":"Masala chai","sku":"CHAI-1","category":"essentials","price":12900,"currency":"INR","stock":50}}'

  # register a customer
  curl -s {base}/api/auth/register -H 'content-type: application/json' \
    -d '{{"username":"ada","email":"ada@example.com","password":"correct horse battery"}}'

  # the API description
  curl -s {base}/openapi.json
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_names_the_console_url_and_its_sign_in() {
        let usage = demo_usage(8123);
        assert!(
            usage.contains("\n  http://127.0.0.1:8123/console\n"),
            "{usage}"
        );
        assert!(usage.contains(DEMO_ADMIN_EMAIL) && usage.contains(DEMO_ADMIN_PASSWORD));
    }
}

//! `orderd plugin replay`: the real binary sends a candidate to a running orderd's dry run and
//! prints where it differs from the active version on the recorded calls.

use std::process::Output;

use crate::helpers::{TestApp, spawn_app};
use crate::orders::place_ok;

const GST_TAX: &str = concat!(env!("ORDERD_PLUGIN_DIR"), "/gst_tax.wasm");

async fn replay(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderd"));
    command
        .args([
            "plugin",
            "replay",
            GST_TAX,
            "--slot",
            "tax",
            "--url",
            &app.address,
        ])
        .args(args)
        .env_remove("ORDERD_TOKEN")
        .env_remove("ORDERD_ADMIN_EMAIL")
        .env_remove("ORDERD_ADMIN_PASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("orderd runs")
}

#[tokio::test]
async fn replay_prints_the_fields_where_a_candidate_differs_on_recorded_orders() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let phone = app.create_product_in("electronics", 20_000, 10).await;
    let tea = app.create_product_in("groceries", 10_000, 10).await;
    place_ok(&app, &customer, &[(&tea, 1)]).await;
    place_ok(&app, &customer, &[(&phone, 1)]).await;

    let args = ["--config", "rate.electronics=2800"];
    let out = replay(&app, &args, &[("ORDERD_TOKEN", &admin.access_token)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 inputs (2 recorded), 2 differ, 0 candidate failures"),
        "{stdout}"
    );
    assert!(stdout.contains("recorded #"), "{stdout}");
    assert!(stdout.contains("totalTax.amount: 3600 → 5600"), "{stdout}");
    assert!(stdout.contains("rateBps: 1800 → 2800"), "{stdout}");

    // With an admin's e-mail and password instead of a token, and failing on a difference.
    let with_login = [
        ("ORDERD_ADMIN_EMAIL", admin.email.as_str()),
        ("ORDERD_ADMIN_PASSWORD", admin.password.as_str()),
    ];
    let args = ["--config", "rate.electronics=2800", "--fail-on-diff"];
    let out = replay(&app, &args, &with_login).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = replay(&app, &["--fail-on-diff"], &with_login).await;
    assert!(
        out.status.success(),
        "the same rule and config agrees everywhere"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 differ"));
}

#[tokio::test]
async fn replay_without_admin_credentials_fails_with_one_line() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let out = replay(&app, &[], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no credentials"));
    let out = replay(&app, &[], &[("ORDERD_TOKEN", &customer.access_token)]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403"), "{stderr}");
}

//! What the `admin create` and `serve --demo` commands do to a store, and graceful shutdown.

use std::time::Duration;

use orderd::cli::admin::{AdminOutcome, ensure_admin};
use orderd::cli::serve::{DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, seed_demo};
use orderd::domain::Role;
use orderd::startup::{Application, Roles};
use serde_json::{Value, json};

use crate::helpers::{spawn_app, test_settings};

#[tokio::test]
async fn an_admin_created_from_the_command_line_signs_in_and_manages_the_catalog() {
    let app = spawn_app().await;
    let outcome = ensure_admin(
        app.store.as_ref(),
        &app.state.passwords,
        "Root@Example.com",
        "root password",
        None,
        false,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, AdminOutcome::Created(_)), "{outcome:?}");
    let login: Value = app
        .login("root@example.com", "root password")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "admin");
    assert_eq!(login["user"]["username"], "root");
    let product = json!({"name": "Tea", "sku": "CLI-1", "category": "general", "price": 1, "currency": "INR", "stock": 1});
    let token = login["accessToken"].as_str().unwrap();
    assert_eq!(
        app.post_json("/api/products", &product, Some(token))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_existing_customer_is_promoted_only_when_asked_and_keeps_its_password() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let outcome = ensure_admin(
        app.store.as_ref(),
        &app.state.passwords,
        &customer.email,
        "ignored password",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(outcome, AdminOutcome::Promoted(customer.id));
    let stored = app.store.user_by_id(customer.id).await.unwrap().unwrap();
    assert_eq!(stored.role, Role::Admin);
    assert_eq!(
        app.login(&customer.email, &customer.password)
            .await
            .status(),
        200
    );
    let again = ensure_admin(
        app.store.as_ref(),
        &app.state.passwords,
        &customer.email,
        "x",
        None,
        false,
    )
    .await
    .unwrap();
    assert_eq!(again, AdminOutcome::AlreadyAdmin(customer.id));
}

#[tokio::test]
async fn invalid_admin_input_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    assert!(
        ensure_admin(
            store,
            &app.state.passwords,
            "not-an-email",
            "long enough",
            None,
            false
        )
        .await
        .is_err()
    );
    assert!(
        ensure_admin(
            store,
            &app.state.passwords,
            "ok@example.com",
            "short",
            None,
            false
        )
        .await
        .is_err()
    );
    assert!(
        ensure_admin(
            store,
            &app.state.passwords,
            "ok@example.com",
            "long enough",
            Some("no spaces!"),
            false
        )
        .await
        .is_err()
    );
    assert!(
        store
            .user_by_email("ok@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_demo_seed_creates_an_admin_and_a_catalog_once() {
    let app = spawn_app().await;
    seed_demo(&app.state).await.unwrap();
    seed_demo(&app.state).await.unwrap();
    let catalog: Value = app.get("/api/products", None).await.json().await.unwrap();
    assert_eq!(catalog["items"].as_array().unwrap().len(), 3);
    let login: Value = app
        .login(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "admin");
}

#[tokio::test]
async fn an_account_registered_first_with_the_admin_email_is_not_promoted_by_admin_create() {
    let app = spawn_app().await;
    // The attacker registers the e-mail the operator is about to make an admin.
    let attacker = app
        .register("squatter", "ops@company.example", "attacker password")
        .await;
    assert_eq!(attacker.status(), 201);
    let outcome = ensure_admin(
        app.store.as_ref(),
        &app.state.passwords,
        "ops@company.example",
        "operator password",
        None,
        false,
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, AdminOutcome::ExistsNotPromoted(_)),
        "{outcome:?}"
    );
    let stored = app
        .store
        .user_by_email("ops@company.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role, Role::Customer, "the squatter stays a customer");
    let login: Value = app
        .login("ops@company.example", "attacker password")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "customer");
}

#[tokio::test]
async fn the_demo_seed_does_not_promote_a_customer_who_registered_the_demo_admin_email() {
    let app = spawn_app().await;
    let attacker = app
        .register("early_bird", DEMO_ADMIN_EMAIL, "attacker password")
        .await;
    assert_eq!(attacker.status(), 201);
    seed_demo(&app.state).await.unwrap();
    let stored = app
        .store
        .user_by_email(DEMO_ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role, Role::Customer);
    // The catalog is still seeded.
    let catalog: Value = app.get("/api/products", None).await.json().await.unwrap();
    assert_eq!(catalog["items"].as_array().unwrap().len(), 3);
}

#[test]
fn admin_create_from_the_binary_refuses_an_existing_account_and_says_whose_password_stays() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orderd"))
            .args(args)
            .env("ORDERD_DATA_DIR", dir.path())
            .env("ORDERD_LOG__FILTER", "warn")
            .output()
            .expect("orderd runs")
    };
    let create = |extra: &[&str]| {
        let mut args = vec![
            "admin",
            "create",
            "--email",
            "boss@company.example",
            "--password",
            "first password",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let first = create(&[]);
    assert!(first.status.success(), "{first:?}");
    // Demote it, so the account exists as a customer.
    let demote = run(&["admin", "demote", "--email", "boss@company.example"]);
    assert!(demote.status.success(), "{demote:?}");
    let refused = create(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(stderr.contains("--promote-existing"), "{stderr}");
    let promoted = create(&["--promote-existing"]);
    let stdout = String::from_utf8_lossy(&promoted.stdout);
    assert!(promoted.status.success(), "{promoted:?}");
    assert!(
        stdout.contains("keeps the password its holder set")
            && stdout.contains("--password given was NOT applied"),
        "{stdout}"
    );
}

#[tokio::test]
async fn after_the_shutdown_signal_the_server_stops_accepting_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(
        test_settings(dir.path().to_path_buf()),
        Roles::parse("api").unwrap(),
    )
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/api/health", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "run_until_stopped returned cleanly: {result:?}"
    );
    assert!(
        client.get(&url).send().await.is_err(),
        "no longer accepting connections"
    );
}

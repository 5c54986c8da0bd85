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
async fn an_existing_customer_is_promoted_and_keeps_its_password() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let outcome = ensure_admin(
        app.store.as_ref(),
        &app.state.passwords,
        &customer.email,
        "ignored password",
        None,
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
            None
        )
        .await
        .is_err()
    );
    assert!(
        ensure_admin(store, &app.state.passwords, "ok@example.com", "short", None)
            .await
            .is_err()
    );
    assert!(
        ensure_admin(
            store,
            &app.state.passwords,
            "ok@example.com",
            "long enough",
            Some("no spaces!")
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

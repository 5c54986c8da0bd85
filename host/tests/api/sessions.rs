//! Sessions: concurrent refreshes with one token (two tabs, a client retry) within the grace
//! window, true reuse after it, and access tokens that stop working at once when their user
//! is demoted or signs out everywhere.

use std::time::Duration;

use orderd::domain::{Id, Role};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with, unique};

const PASSWORD: &str = "correct horse battery";

/// Registers and signs in a customer; returns (e-mail, login body).
async fn signed_in(app: &TestApp) -> (String, Value) {
    let username = unique("tabs");
    let email = format!("{username}@example.com");
    assert_eq!(
        app.register(&username, &email, PASSWORD).await.status(),
        201
    );
    let login: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    (email, login)
}

/// `POST /api/auth/refresh` with `token` in the body, from a client without cookies.
async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refreshToken": token }))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_both_get_the_same_successor_which_keeps_working() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let (_, login) = signed_in(&app).await;
        let token = login["refreshToken"].as_str().unwrap();
        let (one, two) = tokio::join!(refresh(&app, token), refresh(&app, token));
        assert_eq!((one.status().as_u16(), two.status().as_u16()), (200, 200));
        let (one, two): (Value, Value) = (one.json().await.unwrap(), two.json().await.unwrap());
        assert_eq!(
            one["refreshToken"], two["refreshToken"],
            "both tabs hold the same successor"
        );
        // The successor is live: the user was not logged out.
        let next = refresh(&app, one["refreshToken"].as_str().unwrap()).await;
        assert_eq!(next.status(), 200);
    }
}

#[tokio::test]
async fn a_client_retrying_a_refresh_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    let (_, login) = signed_in(&app).await;
    let token = login["refreshToken"].as_str().unwrap();
    let first: Value = refresh(&app, token).await.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let retry = refresh(&app, token).await;
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["refreshToken"], first["refreshToken"]);
}

#[tokio::test]
async fn a_rotated_token_presented_after_the_grace_window_revokes_its_family() {
    let app = spawn_app_with(|s| s.auth.refresh_grace_ms = 300).await;
    let (_, login) = signed_in(&app).await;
    let stolen = login["refreshToken"].as_str().unwrap().to_owned();
    let rotated: Value = refresh(&app, &stolen).await.json().await.unwrap();
    let current = rotated["refreshToken"].as_str().unwrap().to_owned();

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_problem(refresh(&app, &stolen).await, 401, "unauthorized").await;
    assert_problem(refresh(&app, &current).await, 401, "unauthorized").await;
}

/// `GET /api/admin/plugins` with `token`: an admin-only route.
async fn admin_route(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/api/admin/plugins", Some(token)).await
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_access_at_once_not_when_the_token_expires() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    assert_eq!(admin_route(&app, &admin.access_token).await.status(), 200);
    // Every customer's failed orders, an admin-only view of a customer route.
    let all_failed = "/api/orders?status=failed";
    assert_eq!(
        app.get(all_failed, Some(&admin.access_token))
            .await
            .status(),
        200
    );

    app.store.set_role(admin.id, Role::Customer).await.unwrap();

    assert_problem(
        admin_route(&app, &admin.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get(all_failed, Some(&admin.access_token)).await,
        401,
        "unauthorized",
    )
    .await;
    // Signing in again gives a customer token.
    let login: Value = app
        .login(&admin.email, &admin.password)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "customer");
    let token = login["accessToken"].as_str().unwrap();
    assert_problem(admin_route(&app, token).await, 403, "forbidden").await;
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_account_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let laptop: Value = app
        .login(&admin.email, &admin.password)
        .await
        .json()
        .await
        .unwrap();
    let phone: Value = app
        .login(&admin.email, &admin.password)
        .await
        .json()
        .await
        .unwrap();
    let laptop_token = laptop["accessToken"].as_str().unwrap();
    let phone_token = phone["accessToken"].as_str().unwrap();
    assert_eq!(admin_route(&app, phone_token).await.status(), 200);

    let out = app
        .client
        .post(app.url("/api/auth/logout-all"))
        .bearer_auth(laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);

    for token in [laptop_token, phone_token, admin.access_token.as_str()] {
        assert_problem(admin_route(&app, token).await, 401, "unauthorized").await;
    }
    for body in [&laptop, &phone] {
        let token = body["refreshToken"].as_str().unwrap();
        assert_problem(refresh(&app, token).await, 401, "unauthorized").await;
    }
    // A new sign-in works.
    let again: Value = app
        .login(&admin.email, &admin.password)
        .await
        .json()
        .await
        .unwrap();
    let token = again["accessToken"].as_str().unwrap();
    assert_eq!(admin_route(&app, token).await.status(), 200);
}

#[tokio::test]
async fn a_customer_signing_out_everywhere_can_no_longer_use_me_or_refresh() {
    let app = spawn_app().await;
    let (_, login) = signed_in(&app).await;
    let token = login["accessToken"].as_str().unwrap();
    assert_eq!(app.get("/api/auth/me", Some(token)).await.status(), 200);
    let out = app
        .client
        .post(app.url("/api/auth/logout-all"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_problem(
        app.get("/api/auth/me", Some(token)).await,
        401,
        "unauthorized",
    )
    .await;
    let refresh_token = login["refreshToken"].as_str().unwrap();
    assert_problem(refresh(&app, refresh_token).await, 401, "unauthorized").await;
    let again = app
        .client
        .post(app.url("/api/auth/logout-all"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_problem(again, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_admin_token_of_an_account_that_no_longer_exists_is_refused() {
    let app = spawn_app().await;
    // Validly signed, for an admin the store does not know (deleted).
    let token = app
        .state
        .tokens
        .issue_access(Id::new(), Role::Admin)
        .unwrap()
        .token;
    assert_problem(admin_route(&app, &token).await, 401, "unauthorized").await;
}

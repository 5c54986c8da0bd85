//! Registration, login, token refresh and rotation, logout, `me`, hostile tokens and the
//! login rate limit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, error_fields, spawn_app, spawn_app_with, unique};

const PASSWORD: &str = "correct horse battery";

async fn registered(app: &TestApp) -> (String, String) {
    let username = unique("ada");
    let email = format!("{username}@example.com");
    assert_eq!(
        app.register(&username, &email, PASSWORD).await.status(),
        201
    );
    (username, email)
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("orderd_refresh="))
        .expect("a refresh cookie is set")
}

async fn me_status(app: &TestApp, token: &str) -> Response {
    app.get("/api/auth/me", Some(token)).await
}

#[tokio::test]
async fn registering_returns_201_with_the_user_and_never_the_password() {
    let app = spawn_app().await;
    let username = unique("Grace_");
    let response = app
        .register(&username, &format!(" {username}@Example.COM "), PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let user = &body["user"];
    assert_eq!(user["username"], username.to_lowercase());
    assert_eq!(
        user["email"],
        format!("{}@example.com", username.to_lowercase())
    );
    assert_eq!(user["role"], "customer");
    assert_eq!(user["id"].as_str().unwrap().len(), 24);
    assert!(user["createdAt"].is_string());
    let stored = app
        .store
        .user_by_email(&format!("{}@example.com", username.to_lowercase()))
        .await
        .unwrap();
    assert!(stored.unwrap().password_hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn registering_with_invalid_fields_lists_every_field_and_writes_nothing() {
    let app = spawn_app().await;
    let response = app.register("a", "not-an-email", "short").await;
    let problem = assert_problem(response, 422, "validation").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["email", "password", "username"]);
    assert!(
        app.store
            .user_by_email("not-an-email")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn passwords_of_8_characters_are_accepted_and_of_7_refused() {
    let app = spawn_app().await;
    let ok = unique("eight");
    assert_eq!(
        app.register(&ok, &format!("{ok}@example.com"), "12345678")
            .await
            .status(),
        201
    );
    let short = unique("seven");
    let problem = assert_problem(
        app.register(&short, &format!("{short}@example.com"), "1234567")
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "too-short");
    assert!(
        app.store
            .user_by_email(&format!("{short}@example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_taken_email_or_username_is_a_409_naming_the_field() {
    let app = spawn_app().await;
    let (username, email) = registered(&app).await;
    let other = unique("other");
    let problem = assert_problem(
        app.register(&other, &email.to_uppercase(), PASSWORD).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(error_fields(&problem), ["email"]);
    let problem = assert_problem(
        app.register(
            &username.to_uppercase(),
            &format!("{other}@example.com"),
            PASSWORD,
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(error_fields(&problem), ["username"]);
    assert!(
        app.store
            .user_by_email(&format!("{other}@example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn login_returns_a_token_pair_and_a_strict_http_only_refresh_cookie() {
    let app = spawn_app().await;
    let (_, email) = registered(&app).await;
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert_eq!(body["user"]["email"], email);
    let refresh = body["refreshToken"].as_str().unwrap();
    assert!(
        cookie.starts_with(&format!("orderd_refresh={refresh};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP development cookie: {cookie}"
    );
    let me = me_status(&app, body["accessToken"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], email);
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_unless_plain_http_is_configured() {
    let app = spawn_app_with(|s| s.http.plain_http_cookies = false).await;
    let (_, email) = registered(&app).await;
    let response = app.login(&email, PASSWORD).await;
    assert!(set_cookie(&response).contains("; Secure"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let (_, email) = registered(&app).await;
    let wrong = assert_problem(
        app.login(&email, "wrong password!").await,
        401,
        "unauthorized",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@example.com", PASSWORD).await,
        401,
        "unauthorized",
    )
    .await;
    let malformed = assert_problem(
        app.login("not an email", PASSWORD).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, malformed);
    assert!(
        wrong["errors"].as_array().unwrap().is_empty(),
        "names no field: {wrong}"
    );
}

#[tokio::test]
async fn me_without_a_token_or_with_a_malformed_header_is_401() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/auth/me", None).await, 401, "unauthorized").await;
    let basic = app
        .client
        .get(app.url("/api/auth/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthorized").await;
}

/// Claims like the service's, for forging tokens.
fn claims(app: &TestApp, user_id: &str, overrides: Value) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "iss": app.state.settings.auth.issuer, "aud": app.state.settings.auth.audience,
        "sub": user_id, "role": "admin", "exp": now + 600, "iat": now,
        "jti": "forged", "typ": "access",
    });
    for (key, value) in overrides.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

fn sign(app: &TestApp, alg: Algorithm, claims: &Value) -> String {
    let secret = app.state.settings.resolve_jwt_secret().unwrap();
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_correctly_signed_token_is_accepted_so_the_forgeries_below_are_meaningful() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let token = sign(
        &app,
        Algorithm::HS256,
        &claims(&app, &customer.id.to_hex(), json!({"role": "customer"})),
    );
    assert_eq!(me_status(&app, &token).await.status(), 200);
}

#[tokio::test]
async fn expired_forged_none_other_algorithm_and_foreign_tokens_are_401() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let id = customer.id.to_hex();
    let now = jsonwebtoken::get_current_timestamp();
    let good = sign(&app, Algorithm::HS256, &claims(&app, &id, json!({})));
    let (header, rest) = good.split_once('.').unwrap();
    let payload = rest.split('.').next().unwrap();
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let forged_signature = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    let alg_none = format!("{}.{payload}.", b64(json!({"alg": "none", "typ": "JWT"})));
    let rs256_header = format!(
        "{}.{payload}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        rest.split('.').nth(1).unwrap()
    );
    let other_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&app, &id, json!({})),
        &EncodingKey::from_secret(&[1u8; 48]),
    )
    .unwrap();
    let cases = [
        (
            "expired",
            sign(
                &app,
                Algorithm::HS256,
                &claims(&app, &id, json!({"exp": now - 3600, "iat": now - 4000})),
            ),
        ),
        ("forged signature", forged_signature),
        ("signed with another key", other_key),
        ("alg none", alg_none),
        (
            "HS512 with the right key",
            sign(&app, Algorithm::HS512, &claims(&app, &id, json!({}))),
        ),
        ("RS256 header", rs256_header),
        (
            "wrong issuer",
            sign(
                &app,
                Algorithm::HS256,
                &claims(&app, &id, json!({"iss": "someone-else"})),
            ),
        ),
        (
            "wrong audience",
            sign(
                &app,
                Algorithm::HS256,
                &claims(&app, &id, json!({"aud": "another-api"})),
            ),
        ),
        (
            "refresh typ",
            sign(
                &app,
                Algorithm::HS256,
                &claims(&app, &id, json!({"typ": "refresh"})),
            ),
        ),
        (
            "no typ",
            sign(
                &app,
                Algorithm::HS256,
                &claims(&app, &id, json!({"typ": null})),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (name, token) in cases {
        let response = me_status(&app, &token).await;
        assert_eq!(response.status(), 401, "{name}");
        assert_problem(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_accepted_as_an_access_token() {
    let app = spawn_app().await;
    let (_, email) = registered(&app).await;
    let body: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let response = me_status(&app, body["refreshToken"].as_str().unwrap()).await;
    assert_problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn refreshing_by_cookie_rotates_the_token_and_reusing_the_old_one_revokes_the_family() {
    // No grace window: the reuse below comes at once (the window is tested in sessions.rs).
    let app = spawn_app_with(|s| s.auth.refresh_grace_ms = 0).await;
    let (_, email) = registered(&app).await;
    let first: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let first_refresh = first["refreshToken"].as_str().unwrap().to_owned();

    // The client's cookie store sends the cookie; no body.
    let response = app
        .client
        .post(app.url("/api/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    let second: Value = response.json().await.unwrap();
    let second_refresh = second["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(first_refresh, second_refresh);
    assert!(cookie.starts_with(&format!("orderd_refresh={second_refresh};")));
    assert_eq!(
        me_status(&app, second["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Presenting the rotated-away token again: 401, and the current one dies with its family.
    let reuse = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refreshToken": first_refresh}),
            None,
        )
        .await;
    assert_problem(reuse, 401, "unauthorized").await;
    let after = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refreshToken": second_refresh}),
            None,
        )
        .await;
    assert_problem(after, 401, "unauthorized").await;
}

#[tokio::test]
async fn refreshing_by_body_works_without_cookies() {
    let app = spawn_app().await;
    let (_, email) = registered(&app).await;
    let login: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let no_cookies = reqwest::Client::new();
    let response = no_cookies
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refreshToken": login["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);
    assert_ne!(body["refreshToken"], login["refreshToken"]);
}

#[tokio::test]
async fn refreshing_without_a_token_or_with_garbage_is_401() {
    let app = spawn_app().await;
    assert_problem(
        app.client
            .post(app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    for token in ["", "garbage", &"A".repeat(43)] {
        let response = app
            .post_json("/api/auth/refresh", &json!({"refreshToken": token}), None)
            .await;
        assert_problem(response, 401, "unauthorized").await;
    }
    let wrong_type = app
        .post_json("/api/auth/refresh", &json!({"refreshToken": 42}), None)
        .await;
    assert_problem(wrong_type, 422, "validation").await;
}

#[tokio::test]
async fn logout_revokes_the_family_and_clears_the_cookie() {
    let app = spawn_app().await;
    let (_, email) = registered(&app).await;
    let login: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(set_cookie(&response).contains("Max-Age=0"));
    let refresh = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refreshToken": login["refreshToken"]}),
            None,
        )
        .await;
    assert_problem(refresh, 401, "unauthorized").await;
}

#[tokio::test]
async fn login_within_the_rate_limit_is_served_and_beyond_it_is_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.burst = 3;
        s.rate_limit.replenish_ms = 60_000;
    })
    .await;
    for attempt in 0..3 {
        let response = app.login("nobody@example.com", PASSWORD).await;
        assert_eq!(
            response.status(),
            401,
            "attempt {attempt} is within the limit"
        );
    }
    let limited = app.login("nobody@example.com", PASSWORD).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(limited, 429, "rate-limited").await;
    let register = app
        .register("limited_user", "limited@example.com", PASSWORD)
        .await;
    assert_problem(register, 429, "rate-limited").await;
    assert!(
        app.store
            .user_by_email("limited@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // Other routes are not limited.
    assert_eq!(app.get("/api/products", None).await.status(), 200);
}

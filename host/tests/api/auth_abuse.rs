//! Abuse of the authentication routes: clients behind a load balancer, spoofed forwarding
//! headers, IPv6 clients rotating addresses, password guessing against one account, and
//! floods of refresh and logout requests.

use std::time::Duration;

use orderd::configuration::{ClientIpHeader, Settings};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app_with, unique};

const PASSWORD: &str = "correct horse battery";

/// Limits on, a login/register burst of `burst` per client that does not refill during the
/// test, and the account throttle out of the way unless a test sets it.
fn limited(s: &mut Settings, burst: u32) {
    s.rate_limit.enabled = true;
    s.rate_limit.burst = burst;
    s.rate_limit.replenish_ms = 600_000;
    s.rate_limit.free_failed_logins = 1_000;
}

/// A login for an unknown account sent with `header: value`.
async fn login_via(app: &TestApp, header: &str, value: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header(header, value)
        .json(&json!({"email": "nobody@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_client_using_up_its_logins_does_not_lock_out_another() {
    let app = spawn_app_with(|s| {
        limited(s, 2);
        s.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            login_via(&app, "x-forwarded-for", "198.51.100.1")
                .await
                .status(),
            401
        );
    }
    let limited = login_via(&app, "x-forwarded-for", "198.51.100.1").await;
    assert_problem(limited, 429, "rate-limited").await;
    // Another client behind the same proxy still gets its own budget.
    let other = login_via(&app, "x-forwarded-for", "198.51.100.2").await;
    assert_eq!(other.status(), 401, "another client is not limited");
}

#[tokio::test]
async fn a_spoofed_forwarding_header_from_an_untrusted_peer_does_not_escape_the_limit() {
    let app = spawn_app_with(|s| limited(s, 2)).await;
    for i in 0..2 {
        let response = login_via(&app, "x-forwarded-for", &format!("203.0.113.{i}")).await;
        assert_eq!(response.status(), 401);
    }
    let spoofed = login_via(&app, "x-forwarded-for", "203.0.113.99").await;
    assert_problem(spoofed, 429, "rate-limited").await;
}

#[tokio::test]
async fn a_client_prepending_addresses_to_the_proxy_header_is_still_keyed_on_its_own() {
    let app = spawn_app_with(|s| {
        limited(s, 2);
        s.http.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    // The proxy appends the real client (198.51.100.7); whatever the client wrote before it
    // changes nothing.
    for fake in ["1.1.1.1", "2.2.2.2"] {
        let value = format!("{fake}, 198.51.100.7");
        assert_eq!(
            login_via(&app, "x-forwarded-for", &value).await.status(),
            401
        );
    }
    let limited = login_via(&app, "x-forwarded-for", "3.3.3.3, 198.51.100.7").await;
    assert_problem(limited, 429, "rate-limited").await;
}

#[tokio::test]
async fn ipv6_clients_rotating_addresses_inside_one_64_share_one_budget() {
    let app = spawn_app_with(|s| {
        limited(s, 2);
        s.http.trusted_proxies = vec!["127.0.0.1".into()];
        s.http.client_ip_header = ClientIpHeader::Forwarded;
    })
    .await;
    for address in ["2001:db8:1:2::1", "2001:db8:1:2:abcd:ef01:2345:6789"] {
        let value = format!("for=\"[{address}]\"");
        assert_eq!(login_via(&app, "forwarded", &value).await.status(), 401);
    }
    let rotated = login_via(&app, "forwarded", "for=\"[2001:db8:1:2:ffff::9]:443\"").await;
    assert_problem(rotated, 429, "rate-limited").await;
    let next_network = login_via(&app, "forwarded", "for=\"[2001:db8:1:3::1]\"").await;
    assert_eq!(next_network.status(), 401, "another /64 is another client");
}

/// Registers a customer and returns its e-mail.
async fn account(app: &TestApp) -> String {
    let username = unique("guessme");
    let email = format!("{username}@example.com");
    assert_eq!(
        app.register(&username, &email, PASSWORD).await.status(),
        201
    );
    email
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_logins_of_one_account_make_its_next_login_wait_longer_and_longer() {
    let app = spawn_app_with(|s| {
        limited(s, 1_000);
        s.rate_limit.free_failed_logins = 2;
        s.rate_limit.failed_login_delay_ms = 1_000;
        s.rate_limit.failed_login_delay_cap_ms = 4_000;
    })
    .await;
    let email = account(&app).await;
    for _ in 0..3 {
        assert_eq!(app.login(&email, "wrong password").await.status(), 401);
    }
    // Even the right password waits: the guesser learns nothing during the wait.
    let waiting = app.login(&email, PASSWORD).await;
    assert_eq!(retry_after(&waiting), 1);
    assert_problem(waiting, 429, "rate-limited").await;
    // Other accounts are not affected.
    let other = account(&app).await;
    assert_eq!(app.login(&other, PASSWORD).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.login(&email, "wrong password").await.status(), 401);
    let longer = app.login(&email, PASSWORD).await;
    assert_eq!(retry_after(&longer), 2, "the wait doubled");
    assert_problem(longer, 429, "rate-limited").await;

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let body: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    assert!(body["accessToken"].is_string(), "{body}");
    // A success clears the record: the next failures are free again.
    assert_eq!(app.login(&email, "wrong password").await.status(), 401);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_guesser_cannot_lock_the_owner_out_for_longer_than_the_cap() {
    let app = spawn_app_with(|s| {
        limited(s, 1_000);
        s.rate_limit.free_failed_logins = 1;
        s.rate_limit.failed_login_delay_ms = 500;
        s.rate_limit.failed_login_delay_cap_ms = 1_000;
    })
    .await;
    let email = account(&app).await;
    // A burst of guesses: the ones made while the account waits are refused and not counted.
    let mut refused = 0;
    for _ in 0..30 {
        match app.login(&email, "wrong password").await.status().as_u16() {
            401 => {}
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        refused >= 20,
        "guesses during the wait are refused: {refused}"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        200,
        "the owner signs in once the capped wait is over"
    );
}

#[tokio::test]
async fn refresh_and_logout_floods_are_rate_limited_per_client() {
    let app = spawn_app_with(|s| {
        limited(s, 1_000);
        s.rate_limit.session_burst = 3;
        s.rate_limit.session_replenish_ms = 600_000;
    })
    .await;
    let unknown = json!({"refreshToken": "A".repeat(43)});
    for _ in 0..2 {
        let response = app.post_json("/api/auth/refresh", &unknown, None).await;
        assert_problem(response, 401, "unauthorized").await;
    }
    assert_eq!(
        app.post_json("/api/auth/logout", &unknown, None)
            .await
            .status(),
        204
    );
    let refresh = app.post_json("/api/auth/refresh", &unknown, None).await;
    assert!(refresh.headers().contains_key("retry-after"));
    assert_problem(refresh, 429, "rate-limited").await;
    let logout = app.post_json("/api/auth/logout", &unknown, None).await;
    assert_problem(logout, 429, "rate-limited").await;
    // Logins have their own budget.
    assert_eq!(
        app.login("nobody@example.com", PASSWORD).await.status(),
        401
    );
}

#[tokio::test]
async fn malformed_refresh_tokens_of_any_size_are_refused_with_401() {
    let app = spawn_app_with(|s| limited(s, 1_000)).await;
    for token in [
        String::new(),
        "x".repeat(42),
        "!".repeat(43),
        "A".repeat(44),
        "A".repeat(60_000),
    ] {
        let response = app
            .post_json("/api/auth/refresh", &json!({"refreshToken": token}), None)
            .await;
        assert_problem(response, 401, "unauthorized").await;
    }
}

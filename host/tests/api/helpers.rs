//! Shared helpers of the API tests: [`spawn_app`] starts the whole service on a free port with
//! a fresh data directory, and [`TestApp`] drives it over real HTTP.
//!
//! Typical use:
//! ```ignore
//! let app = spawn_app().await;
//! let admin = app.admin().await;                      // admin created through the store
//! let product = app.create_product(500, 10).await;    // product created through the store
//! let customer = app.customer().await;                // registered and logged in via the API
//! let response = app.post_json("/api/orders", &body, Some(&customer.access_token)).await;
//! let problem = assert_problem(response, 422, "validation").await;
//! ```

// Not every test module uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orderd::configuration::Settings;
use orderd::domain::{Currency, Email, Id, Password, Product, Role, User, Username};
use orderd::http::AppState;
use orderd::startup::{Application, Roles};
use orderd::storage::Store;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A running service and a client for it. Stops when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub port: u16,
    /// A client with a cookie store (the refresh cookie) that never follows redirects.
    pub client: reqwest::Client,
    /// The service's shared state: its store, plugin runtime, token service, settings.
    pub state: AppState,
    /// Shortcut for `state.store`: read and write the database directly to arrange a test or
    /// to check that nothing was written.
    pub store: Arc<dyn Store>,
    /// The data directory (database, generated JWT secret); removed when the app is dropped.
    pub data_dir: tempfile::TempDir,
    /// Cancels the service's shutdown token when the app is dropped.
    _stop: DropGuard,
}

/// A user the helpers created, with a valid access token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Id,
    pub username: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
}

/// Settings for tests: port 0, the given data directory, plain-HTTP cookies (so the cookie
/// store sends the refresh cookie back), rate limiting off, and a shared cache of compiled
/// plugins so each app starts fast.
pub fn test_settings(data_dir: PathBuf) -> Settings {
    let mut settings = Settings {
        data_dir,
        ..Settings::default()
    };
    settings.http.port = 0;
    settings.http.plain_http_cookies = true;
    settings.http.shutdown_grace_ms = 2_000;
    settings.rate_limit.enabled = false;
    settings.auth.hash_concurrency = 4;
    settings.plugins.cache_dir =
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    settings
}

/// Starts the service with [`test_settings`] and the `api` role only.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service with [`test_settings`] changed by `configure` (e.g. turning the rate
/// limit on).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_playing("api", configure).await
}

/// Starts the service playing `roles` (e.g. `api,relay,consumer`) with [`test_settings`]
/// changed by `configure`.
pub async fn spawn_app_playing(roles: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        orderd::telemetry::init(&Default::default());
    }
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let mut settings = test_settings(data_dir.path().to_path_buf());
    configure(&mut settings);
    let app = Application::build(settings, Roles::parse(roles).expect("roles"))
        .await
        .expect("the application builds");
    let port = app.port();
    let state = app.state().clone();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client,
        store: state.store.clone(),
        state,
        data_dir,
        _stop: stop.drop_guard(),
    }
}

/// A string unique within this test process, for usernames, e-mails and SKUs.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}_{}",
        std::process::id() % 10_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestApp {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`, with a bearer token when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `POST path` with a JSON body, with a bearer token when given.
    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `PATCH path` with a JSON body, with a bearer token when given.
    pub async fn patch_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `POST path` with a raw body and content type, for malformed-body tests.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `POST /api/auth/register`.
    pub async fn register(&self, username: &str, email: &str, password: &str) -> Response {
        let body = serde_json::json!({"username": username, "email": email, "password": password});
        self.post_json("/api/auth/register", &body, None).await
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        let body = serde_json::json!({"email": email, "password": password});
        self.post_json("/api/auth/login", &body, None).await
    }

    /// A new customer, registered and logged in through the API.
    pub async fn customer(&self) -> TestUser {
        let username = unique("cust");
        let email = format!("{username}@example.com");
        let password = "correct horse battery".to_owned();
        let response = self.register(&username, &email, &password).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "register: {}",
            response.text().await.unwrap_or_default()
        );
        let response = self.login(&email, &password).await;
        assert_eq!(response.status(), StatusCode::OK, "login");
        let body: Value = response.json().await.expect("login body");
        TestUser {
            id: Id::parse(body["user"]["id"].as_str().expect("user id")).expect("id"),
            username,
            email,
            password,
            access_token: body["accessToken"]
                .as_str()
                .expect("access token")
                .to_owned(),
        }
    }

    /// A new admin, written directly to the store (as `orderd admin create` does), with an
    /// access token signed by the service.
    pub async fn admin(&self) -> TestUser {
        let username = unique("admin");
        let email = format!("{username}@example.com");
        let password = "admin password 1".to_owned();
        let user = self
            .insert_user(&username, &email, &password, Role::Admin)
            .await;
        let token = self
            .state
            .tokens
            .issue_access(user.id, Role::Admin)
            .expect("token");
        TestUser {
            id: user.id,
            username,
            email,
            password,
            access_token: token.token,
        }
    }

    /// Writes a user straight to the store.
    pub async fn insert_user(
        &self,
        username: &str,
        email: &str,
        password: &str,
        role: Role,
    ) -> User {
        let hash = self
            .state
            .passwords
            .hash(&Password::parse(password).expect("password"))
            .await
            .expect("hash");
        let user = User {
            id: Id::new(),
            username: Username::parse(username).expect("username"),
            email: Email::parse(email).expect("email"),
            password_hash: hash,
            role,
            created_at: orderd::http::now(),
        };
        self.store.create_user(&user).await.expect("user stored");
        user
    }

    /// Writes a product straight to the store: category "general", INR, unique SKU.
    pub async fn create_product(&self, price: i64, stock: i64) -> Product {
        self.create_product_in("general", price, stock).await
    }

    /// Like [`TestApp::create_product`], in `category` (tax rates may depend on it).
    pub async fn create_product_in(&self, category: &str, price: i64, stock: i64) -> Product {
        let now = orderd::http::now();
        let sku = unique("SKU-");
        let product = Product {
            id: Id::new(),
            name: format!("Product {sku}"),
            sku,
            description: None,
            category: category.to_owned(),
            price,
            currency: Currency::parse("INR").expect("currency"),
            stock,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_product(&product)
            .await
            .expect("product stored");
        product
    }

    /// The product's stock as stored now.
    pub async fn stock_of(&self, id: Id) -> i64 {
        self.store
            .product(id)
            .await
            .expect("store")
            .expect("product exists")
            .stock
    }
}

/// Asserts `response` is a problem document with `status` and type
/// `urn:orderd:problem:<code>`, and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "status; body: {text}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(
        body["type"],
        format!("urn:orderd:problem:{code}"),
        "type; body: {text}"
    );
    assert_eq!(body["status"], status, "status member; body: {text}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "title and detail; body: {text}"
    );
    assert!(body["errors"].is_array(), "errors array; body: {text}");
    body
}

/// The `field`s listed in a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

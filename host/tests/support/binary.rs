//! Driving the real `orderd` binary from a test: start `orderd serve --demo` on a data
//! directory and port, wait until it answers, talk JSON to it, and stop it with SIGTERM.

#![allow(dead_code)] // each test crate uses the part it needs

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running `orderd serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `orderd serve --demo` with every role on `data` and `port`, rate limiting off and
/// the shared plugin cache, plus the settings in `env`; its log goes to `serve-<run>.log` in
/// `data`.
pub fn start(data: &Path, port: u16, run: usize, env: &[(&str, String)]) -> Server {
    let log = std::fs::File::create(data.join(format!("serve-{run}.log"))).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderd"));
    command
        .args(["serve", "--demo", "--roles", "api,relay,consumer"])
        .env("ORDERD_DATA_DIR", data)
        .env("ORDERD_HTTP__PORT", port.to_string())
        .env("ORDERD_RATE_LIMIT__ENABLED", "false")
        .env(
            "ORDERD_PLUGINS__CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
        )
        .env("RUST_LOG", "info");
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start orderd");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Waits until `server` answers `/api/health`.
pub async fn wait_ready(http: &reqwest::Client, server: &mut Server) {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{}/api/health", server.base)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "orderd exited during start-up"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "orderd did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with a pid this test started and has not reaped yet.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(
        sent,
        0,
        "SIGTERM to {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits up to `limit` for `child` to exit.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "orderd did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> reqwest::Result<(u16, Value)> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

pub async fn get(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let (status, body) = post(
        http,
        format!("{base}/api/auth/login"),
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body["accessToken"].as_str().unwrap().to_owned()
}

/// Creates a product with `stock` as the demo admin and registers a customer; returns the
/// admin's token, the product id and the customer's token.
pub async fn product_and_customer(
    http: &reqwest::Client,
    base: &str,
    sku: &str,
    stock: i64,
) -> (String, String, String) {
    let admin = login(http, base, "admin@example.com", "demo-admin-password").await;
    let (status, product) = post(
        http,
        format!("{base}/api/products"),
        Some(&admin),
        json!({"name": format!("Tea {sku}"), "sku": sku, "category": "grocery", "price": 1250, "currency": "INR", "stock": stock}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{product}");
    let product_id = product["id"].as_str().unwrap().to_owned();
    let email = format!("{}@example.com", sku.to_ascii_lowercase());
    let username = sku.to_ascii_lowercase().replace('-', "_");
    let (status, body) = post(
        http,
        format!("{base}/api/auth/register"),
        None,
        json!({"username": username, "email": email, "password": "binary-test-password"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let customer = login(http, base, &email, "binary-test-password").await;
    (admin, product_id, customer)
}

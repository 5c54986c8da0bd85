//! Crash test on the real binary: `orderd serve` (api, relay and consumer in one process, the
//! embedded queue and file mail) runs as a child process on a temporary data directory while
//! several clients place orders; it is killed with SIGKILL at random moments and restarted on
//! the same data each time. Afterwards every order that got a 201 must be `processed` with
//! exactly one confirmation e-mail, no outbox event may be left unpublished or dead, and the
//! stock taken must equal the units of every order the store holds.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

const KILLS: usize = 4;
const CLIENTS: usize = 4;
const INITIAL_STOCK: i64 = 100_000;

struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &Path, port: u16, run: usize) -> Server {
    let log = std::fs::File::create(data.join(format!("serve-{run}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args(["serve", "--demo", "--roles", "api,relay,consumer"])
        .env("ORDERD_DATA_DIR", data)
        .env("ORDERD_HTTP__PORT", port.to_string())
        .env("ORDERD_RATE_LIMIT__ENABLED", "false")
        .env(
            "ORDERD_PLUGINS__CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
        )
        .env("ORDERD_CONSUMER__VISIBILITY_MS", "2000")
        .env("ORDERD_CONSUMER__EMAIL_CLAIM_MS", "2000")
        .env("ORDERD_RELAY__LEASE_MS", "1000")
        .env("RUST_LOG", "info")
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

async fn wait_ready(http: &reqwest::Client, server: &mut Server) {
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

async fn post(
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

async fn get(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_repeated_sigkills_with_one_email_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let port = free_port();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut server = start(&data, port, 0);
    wait_ready(&http, &mut server).await;
    let base = server.base.clone();

    // A product with known stock (created by the demo admin) and one customer.
    let admin = login(&http, &base, "admin@example.com", "demo-admin-password").await;
    let (status, product) = post(
        &http,
        format!("{base}/api/products"),
        Some(&admin),
        json!({"name": "Crash-test tea", "sku": "CRASH-TEA", "category": "grocery", "price": 1250, "currency": "INR", "stock": INITIAL_STOCK}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{product}");
    let product_id = product["id"].as_str().unwrap().to_owned();
    let (status, _) = post(&http, format!("{base}/api/auth/register"), None, json!({"username": "crash_client", "email": "crash@example.com", "password": "crash-test-password"})).await.unwrap();
    assert_eq!(status, 201);
    let customer = login(&http, &base, "crash@example.com", "crash-test-password").await;

    // Clients place orders continuously; every 201 is remembered.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token, product_id) = (
            http.clone(),
            base.clone(),
            customer.clone(),
            product_id.clone(),
        );
        let (accepted, stop) = (accepted.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"items": [{"productId": product_id, "quantity": 1}]});
                match post(&http, format!("{base}/api/orders"), Some(&token), body).await {
                    Ok((201, order)) => accepted
                        .lock()
                        .unwrap()
                        .push(order["id"].as_str().unwrap().to_owned()),
                    Ok((status, body)) => assert!(status >= 500, "unexpected {status}: {body}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    for run in 1..=KILLS {
        let pause = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        server = start(&data, port, run);
        wait_ready(&http, &mut server).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() > 50,
        "too few orders to say anything: {}",
        accepted.len()
    );

    // Every accepted order reaches `processed`.
    let started = Instant::now();
    for id in &accepted {
        loop {
            let order = get(&http, format!("{base}/api/orders/{id}"), &customer).await;
            if order["status"] == "processed" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "order {id} stuck in {}",
                order["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Every order the store holds (201'd or whose response was lost), and the stock.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/orders?limit=100&cursor={c}"),
            None => format!("{base}/api/orders?limit=100"),
        };
        let page = get(&http, url, &customer).await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let held: HashSet<String> = all
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        accepted.iter().all(|id| held.contains(id)),
        "a 201'd order is missing"
    );
    let units: i64 = all
        .iter()
        .map(|o| o["items"][0]["quantity"].as_i64().unwrap())
        .sum();
    let product = http
        .get(format!("{base}/api/products/{product_id}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        INITIAL_STOCK - product["stock"].as_i64().unwrap(),
        units,
        "stock does not add up"
    );

    // Nothing left in the outbox.
    for status in ["pending", "dead"] {
        let page = get(
            &http,
            format!("{base}/api/admin/outbox?status={status}"),
            &admin,
        )
        .await;
        assert_eq!(page["total"], 0, "{status} outbox events left: {page}");
    }

    // Exactly one confirmation per accepted order.
    let mut per_order: HashMap<String, usize> = HashMap::new();
    for entry in std::fs::read_dir(data.join("mail")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read(&path).unwrap();
            let mail = mail_parser::MessageParser::default()
                .parse(&raw[..])
                .unwrap();
            let subject = mail.subject().unwrap_or_default();
            if let Some(id) = held.iter().find(|id| subject.contains(id.as_str())) {
                *per_order.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for id in &accepted {
        assert_eq!(
            per_order.get(id),
            Some(&1),
            "order {id} has {:?} e-mails",
            per_order.get(id)
        );
    }
    eprintln!(
        "{} accepted orders ({} held) over {KILLS} SIGKILLs: all processed, one e-mail each",
        accepted.len(),
        held.len()
    );

    // A graceful stop at the end.
    nix_term(&server.child);
    let started = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "orderd did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM (std only offers SIGKILL).
fn nix_term(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

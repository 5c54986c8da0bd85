//! Throughput and latency of `POST /api/orders` against the raw store transaction it ends in.
//!
//! Starts orderd in-process (api role, embedded SQLite on a temporary data directory, the
//! WebAssembly tax and validation slots), seeds customers and a catalog with ample stock, then
//! drives `POST /api/orders` from 64 concurrent keep-alive clients for a fixed time and prints
//! orders/s and latency percentiles. Then, on the same store, it runs the write every order
//! ends in — `place_order` with prebuilt orders (stock decrements, order, outbox event) — from
//! the same number of tasks for the same time, and prints the ratio.
//!
//! `cargo bench -p orderd --bench orders_http`
//! Environment: `ORDERS_BENCH_SECS` (default 10), `ORDERS_BENCH_CLIENTS` (default 64).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use orderd::configuration::Settings;
use orderd::domain::{Currency, Email, Id, Order, OutboxEvent, Product, Role, User, Username};
use orderd::startup::{Application, Roles};
use orderd::storage::{StockTake, Store};
use orderd::testing::placement;
use tokio_util::sync::CancellationToken;

/// Catalog size; each order takes 1–3 distinct products from it.
const PRODUCTS: usize = 200;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: reproducible order mixes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 1–3 distinct products with quantities 1–3.
fn order_lines(rng: &mut Rng, products: &[Product]) -> Vec<(usize, u32)> {
    let count = 1 + rng.below(3);
    let mut lines: Vec<(usize, u32)> = Vec::with_capacity(count);
    while lines.len() < count {
        let index = rng.below(products.len());
        if lines.iter().all(|(i, _)| *i != index) {
            lines.push((index, 1 + rng.below(3) as u32));
        }
    }
    lines
}

/// Latency percentiles of sorted samples, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1_000.0
}

async fn seed(store: &dyn Store, customers: usize) -> anyhow::Result<(Vec<User>, Vec<Product>)> {
    let now = Utc::now();
    let mut users = Vec::with_capacity(customers);
    for n in 0..customers {
        let user = User {
            id: Id::new(),
            username: Username::parse(&format!("bench_{n}"))?,
            email: Email::parse(&format!("bench{n}@example.com"))?,
            // Never verified: the benchmark signs access tokens directly.
            password_hash: "unused".into(),
            role: Role::Customer,
            created_at: now,
        };
        store.create_user(&user).await?;
        users.push(user);
    }
    let mut products = Vec::with_capacity(PRODUCTS);
    for n in 0..PRODUCTS {
        let product = Product {
            id: Id::new(),
            name: format!("Bench product {n}"),
            sku: format!("BENCH-{n}"),
            description: None,
            category: if n % 4 == 0 { "essentials" } else { "general" }.into(),
            price: 1_000 + (n as i64 * 37) % 50_000,
            currency: Currency::parse("INR")?,
            stock: orderd::domain::product::MAX_STOCK,
            created_at: now,
            updated_at: now,
        };
        store.create_product(&product).await?;
        products.push(product);
    }
    Ok((users, products))
}

/// What one load task measured: every latency, and response counts by status.
type TaskResult = (Vec<Duration>, HashMap<u16, u64>);

/// What one load phase measured.
struct Phase {
    ok: u64,
    errors: Vec<(u16, u64)>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

async fn http_phase(
    address: &str,
    tokens: Vec<String>,
    products: Arc<Vec<Product>>,
    run_for: Duration,
) -> Phase {
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for (n, token) in tokens.into_iter().enumerate() {
        let url = format!("{address}/api/orders");
        let products = products.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("http client");
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1));
            let (mut latencies, mut statuses) = (Vec::new(), HashMap::<u16, u64>::new());
            while Instant::now() < deadline {
                let items: Vec<_> = order_lines(&mut rng, &products)
                    .into_iter()
                    .map(|(i, q)| serde_json::json!({"productId": products[i].id.to_hex(), "quantity": q}))
                    .collect();
                let body = serde_json::json!({ "items": items });
                let sent = Instant::now();
                let status = match client.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                latencies.push(sent.elapsed());
                *statuses.entry(status).or_default() += 1;
            }
            (latencies, statuses)
        }));
    }
    collect(tasks, started).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<TaskResult>>, started: Instant) -> Phase {
    let mut phase = Phase {
        ok: 0,
        errors: Vec::new(),
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut errors = BTreeMap::new();
    for task in tasks {
        let (latencies, statuses) = task.await.expect("load task");
        phase.latencies.extend(latencies);
        for (status, n) in statuses {
            if status == 201 {
                phase.ok += n;
            } else {
                *errors.entry(status).or_insert(0) += n;
            }
        }
    }
    phase.elapsed = started.elapsed();
    phase.errors = errors.into_iter().collect();
    phase.latencies.sort_unstable();
    phase
}

/// An order as the service would build it for `lines`, priced and taxed at 18% here.
fn prebuilt(
    user: Id,
    products: &[Product],
    lines: &[(usize, u32)],
) -> (Order, Vec<StockTake>, OutboxEvent) {
    let lines: Vec<(&Product, u32)> = lines.iter().map(|&(i, q)| (&products[i], q)).collect();
    let p = placement(user, &lines, 1800, Utc::now());
    (p.order, p.takes, p.event)
}

async fn store_phase(
    store: Arc<dyn Store>,
    users: Vec<Id>,
    products: Arc<Vec<Product>>,
    run_for: Duration,
) -> Phase {
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for (n, user) in users.into_iter().enumerate() {
        let (store, products) = (store.clone(), products.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (n as u64 + 1));
            let (mut latencies, mut statuses) = (Vec::new(), HashMap::<u16, u64>::new());
            while Instant::now() < deadline {
                let lines = order_lines(&mut rng, &products);
                let (order, takes, event) = prebuilt(user, &products, &lines);
                let sent = Instant::now();
                let status = match store.place_order(&order, &takes, &event, None).await {
                    Ok(()) => 201,
                    Err(_) => 500,
                };
                latencies.push(sent.elapsed());
                *statuses.entry(status).or_default() += 1;
            }
            (latencies, statuses)
        }));
    }
    collect(tasks, started).await
}

fn report(name: &str, phase: &Phase) {
    println!(
        "{name:<28} {:>9.0} orders/s   p50 {:>6.2} ms   p99 {:>6.2} ms   p99.9 {:>6.2} ms   ({} ok in {:.1} s{})",
        phase.rate(),
        percentile(&phase.latencies, 50.0),
        percentile(&phase.latencies, 99.0),
        percentile(&phase.latencies, 99.9),
        phase.ok,
        phase.elapsed.as_secs_f64(),
        if phase.errors.is_empty() {
            String::new()
        } else {
            format!(", errors by status {:?}", phase.errors)
        },
    );
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no arguments and
    // should not spend ten seconds, so it only runs when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("orders_http: run with `cargo bench -p orderd --bench orders_http`");
        return Ok(());
    }
    let seconds = env_or("ORDERS_BENCH_SECS", 10);
    let clients = env_or("ORDERS_BENCH_CLIENTS", 64) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let data_dir = tempfile::tempdir()?;
        let mut settings = Settings {
            data_dir: data_dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.http.port = 0;
        settings.rate_limit.enabled = false;
        let app = Application::build(settings, Roles::parse("api")?).await?;
        let (port, state) = (app.port(), app.state().clone());
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));

        let (users, products) = seed(state.store.as_ref(), clients).await?;
        let products = Arc::new(products);
        let tokens = users
            .iter()
            .map(|u| state.tokens.issue_access(u.id, Role::Customer).map(|t| t.token))
            .collect::<Result<Vec<_>, _>>()?;
        let address = format!("http://127.0.0.1:{port}");
        println!(
            "orders_http: {clients} clients, {seconds} s per phase, {} cores, embedded SQLite, WebAssembly tax + validation",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        // Warm-up: connections, statement caches, instance pool.
        http_phase(&address, tokens.clone(), products.clone(), Duration::from_secs(1)).await;
        let http = http_phase(&address, tokens, products.clone(), Duration::from_secs(seconds)).await;
        report("POST /api/orders (HTTP)", &http);

        let user_ids = users.iter().map(|u| u.id).collect();
        let raw = store_phase(state.store.clone(), user_ids, products, Duration::from_secs(seconds)).await;
        report("store place_order (raw)", &raw);
        println!("HTTP / raw: {:.0}%", 100.0 * http.rate() / raw.rate());

        stop.cancel();
        server.await??;
        anyhow::Ok(())
    })
}

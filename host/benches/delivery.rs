//! Delivery benchmark.
//!
//! 1. Commit → processed latency in embedded mode: orders placed through the store at a fixed
//!    offered rate (default 500/s for 10 s) while one relay and one consumer run as in
//!    `orderd serve` (embedded queue, e-mail slot, file mail transport). Latency is each
//!    order's `processed_at − created_at`.
//! 2. E-mail throughput to a local SMTP sink: lettre's own transport over one pooled
//!    connection (the baseline), our sender over one connection (TCP_NODELAY only), and our
//!    pooled sender, in the same run. The sink is aiosmtpd from `.venv-services` when that
//!    exists, else an in-process tokio SMTP sink.
//!
//! `cargo bench -p orderd --bench delivery` (env: `BENCH_RATE`, `BENCH_SECS`, `BENCH_EMAILS`).

#[path = "../tests/delivery/smtp_sink.rs"]
mod smtp_sink;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use orderd::delivery::consumer::{Consumer, ConsumerSettings};
use orderd::delivery::queue::embedded::EmbeddedQueue;
use orderd::delivery::relay::{Relay, RelaySettings};
use orderd::domain::{
    Currency, Email, Id, Order, OrderStatus, OutboxEvent, Product, Role, User, Username,
};
use orderd::mail::{Mailer, OutgoingEmail, SmtpSecurity, SmtpSettings, message_id_for};
use orderd::plugins::{PluginRuntime, RuntimeSettings};
use orderd::storage::sqlite::SqliteStore;
use orderd::storage::{StockTake, Store};
use orderd::testing::placement;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        latency().await?;
        throughput().await
    })
}

async fn latency() -> anyhow::Result<()> {
    let rate = env_num("BENCH_RATE", 500);
    let secs = env_num("BENCH_SECS", 10);
    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(&dir.path().join("orderd.db"))?;
    let db = sqlite.db();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let queue = EmbeddedQueue::open(db, "events", 5).await?;
    let plugin_settings = RuntimeSettings {
        cache_dir: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-plugin-cache"),
        ),
        ..RuntimeSettings::default()
    };
    let renderer = Arc::new(PluginRuntime::with_embedded_defaults(plugin_settings).await?);
    let mailer = Arc::new(Mailer::file(
        "Shop <shop@example.com>",
        dir.path().join("mail"),
    )?);
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(
            store.clone(),
            queue.clone(),
            RelaySettings::default(),
            wake.clone(),
        )
        .run(stop.clone()),
    );
    let consumer = Arc::new(Consumer::new(
        store.clone(),
        queue.clone(),
        mailer,
        renderer,
        ConsumerSettings::default(),
    ));
    let consumer = tokio::spawn(consumer.run(stop.clone()));

    let (user, product) = fixtures(&store).await?;
    let total = rate * secs;
    let mut ids = Vec::with_capacity(total as usize);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut placing = tokio::task::JoinSet::new();
    for _ in 0..total {
        tick.tick().await;
        let (store, wake, user, product) =
            (store.clone(), wake.clone(), user.clone(), product.clone());
        placing.spawn(async move {
            let (order, takes, event) = order_of(&user, &product);
            store
                .place_order(&order, &takes, &event, None)
                .await
                .map(|_| order.id)
        });
        while let Some(done) = placing.try_join_next() {
            ids.push(done??);
            wake.notify_one();
        }
    }
    while let Some(done) = placing.join_next().await {
        ids.push(done??);
        wake.notify_one();
    }
    let offered = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lags = Vec::with_capacity(ids.len());
    for id in &ids {
        loop {
            let order = store.order(*id).await?.expect("order exists");
            if order.status == OrderStatus::Processed {
                lags.push(
                    (order.processed_at.unwrap() - order.created_at)
                        .to_std()
                        .unwrap_or_default(),
                );
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "order {id} not processed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.cancel();
    relay.await?;
    consumer.await?;
    lags.sort();
    println!("## embedded: commit -> processed at an offered {rate} orders/s for {secs} s");
    println!(
        "orders {}   placed in {:.2} s ({:.0}/s)   p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        lags.len(),
        offered.as_secs_f64(),
        lags.len() as f64 / offered.as_secs_f64(),
        percentile(&lags, 0.50).as_secs_f64() * 1e3,
        percentile(&lags, 0.99).as_secs_f64() * 1e3,
        lags.last().unwrap().as_secs_f64() * 1e3,
    );
    Ok(())
}

async fn fixtures(store: &Arc<dyn Store>) -> anyhow::Result<(User, Product)> {
    let now = Utc::now();
    let user = User {
        id: Id::new(),
        username: Username::parse("bench_user").map_err(anyhow::Error::msg)?,
        email: Email::parse("bench@example.com").map_err(anyhow::Error::msg)?,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Customer,
        created_at: now,
    };
    store.create_user(&user).await?;
    let product = Product {
        id: Id::new(),
        name: "Masala Chai".into(),
        sku: "BENCH-CHAI".into(),
        description: None,
        category: "grocery".into(),
        price: 1250,
        currency: Currency::parse("INR").map_err(anyhow::Error::msg)?,
        stock: 100_000_000,
        created_at: now,
        updated_at: now,
    };
    store.create_product(&product).await?;
    Ok((user, product))
}

fn order_of(user: &User, p: &Product) -> (Order, Vec<StockTake>, OutboxEvent) {
    let placed = placement(user.id, &[(p, 1)], 1800, Utc::now());
    (placed.order, placed.takes, placed.event)
}

/// aiosmtpd from the project's test venv, stopped on drop (its Maildir with it).
struct Aiosmtpd(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_aiosmtpd(python: &Path) -> anyhow::Result<(Aiosmtpd, SocketAddr)> {
    let maildir = tempfile::tempdir()?;
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.path().join(sub))?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = std::process::Command::new(python)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let server = Aiosmtpd(child, maildir);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((server, addr));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("aiosmtpd did not start")
}

fn email(n: usize) -> OutgoingEmail {
    OutgoingEmail {
        to: "customer@example.com".into(),
        to_name: "Customer".into(),
        subject: format!("Your order {n} is confirmed"),
        text: "Thank you for your order.\nMasala Chai x 1  INR 12.50\nTotal INR 14.75\n".repeat(4),
        html: "<p>Thank you for your order.</p><table><tr><td>Masala Chai</td><td>INR 12.50</td></tr></table>".repeat(4),
        message_id: message_id_for(Id::new()),
    }
}

async fn throughput() -> anyhow::Result<()> {
    let n = env_num("BENCH_EMAILS", 1000) as usize;
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-services/bin/python");
    let (_aiosmtpd, _sink, addr, sink_name) = if python.exists() {
        let (server, addr) = start_aiosmtpd(&python).await?;
        (
            Some(server),
            None,
            addr,
            "aiosmtpd (Mailbox handler, .venv-services)",
        )
    } else {
        let sink = smtp_sink::SmtpSink::start().await;
        let addr = sink.addr;
        (None, Some(sink), addr, "in-process tokio SMTP sink")
    };
    println!("\n## e-mail throughput to {sink_name} at {addr}");

    // Baseline: lettre's transport, one pooled connection, one message after another.
    let lettre = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .pool_config(PoolConfig::new().max_size(1))
        .build();
    let probe_dir = tempfile::tempdir()?;
    let probe = Mailer::file("Shop <shop@example.com>", probe_dir.path().to_owned())?;
    let baseline_n = (n / 5).max(50);
    let started = Instant::now();
    for i in 0..baseline_n {
        lettre.send(probe.build(&email(i))?).await?;
    }
    let baseline = baseline_n as f64 / started.elapsed().as_secs_f64();
    println!(
        "lettre AsyncSmtpTransport, 1 connection:     {baseline:8.1} msg/s ({baseline_n} messages)"
    );

    let mut results = Vec::new();
    for pool_size in [1usize, 8] {
        let settings = SmtpSettings {
            host: addr.ip().to_string(),
            port: Some(addr.port()),
            security: SmtpSecurity::Plain,
            pool_size,
            ..SmtpSettings::default()
        };
        let mailer = Arc::new(Mailer::smtp("Shop <shop@example.com>", settings)?);
        let started = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..n {
            let mailer = mailer.clone();
            sends.spawn(async move { mailer.send(&email(i)).await });
        }
        while let Some(sent) = sends.join_next().await {
            sent??;
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        println!(
            "orderd SMTP sender, TCP_NODELAY, pool of {pool_size}: {rate:8.1} msg/s ({n} messages)"
        );
        results.push(rate);
    }
    println!(
        "pooled sender / lettre baseline: {:.1}x",
        results[1] / baseline
    );
    Ok(())
}

//! The load itself: `POST /api/orders` from N concurrent clients, either closed-loop (each
//! client sends its next order when the previous one is answered, for a fixed time) or
//! open-loop at a fixed offered rate (sends scheduled at the rate, latency measured from the
//! scheduled time, so a stalled server is charged for the requests it delayed — no coordinated
//! omission). Also paced side traffic (logins, health checks) and the commit → processed lag
//! read back from the orders' own timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::task::JoinSet;

use crate::api::{Api, Customer};
use crate::stats::Recorder;

/// Most requests the open-loop scheduler keeps in flight; beyond that, sends wait (and the
/// wait counts toward their latency).
const MAX_IN_FLIGHT: usize = 4096;

/// What the load sends orders with: a client, customers and a catalog.
#[derive(Clone)]
pub struct Fixture {
    pub api: Api,
    /// The admin's token (reads every order, uploads plugins).
    pub admin: String,
    /// Customers the load rotates through.
    pub customers: Arc<Vec<Customer>>,
    /// Product ids with practically unlimited stock.
    pub products: Arc<Vec<String>>,
}

impl Fixture {
    /// Registers `customers` users and `products` products on the service behind `api`.
    pub async fn set_up(api: Api, customers: usize, products: usize) -> anyhow::Result<Self> {
        let tag = format!("{:x}", rand::random::<u32>());
        let admin = api.admin_token().await?;
        let catalog = api.catalog(&admin, &tag, products).await?;
        let users = api.customers(&format!("b{tag}"), customers).await?;
        Ok(Self {
            api,
            admin,
            customers: Arc::new(users),
            products: Arc::new(catalog),
        })
    }
}

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent clients (closed loop) — and the connection pool size.
    pub clients: usize,
    /// How long to send.
    pub duration: Duration,
    /// Offered orders per second; `None` = closed loop.
    pub rate: Option<f64>,
    /// Print a progress line every second.
    pub progress: bool,
}

/// What a load run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every `POST /api/orders`.
    pub orders: Recorder,
    /// Ids of the orders answered with 201.
    pub created: Vec<String>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Outcome {
    /// Acknowledged orders per second.
    pub fn rate(&self) -> f64 {
        self.orders.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Shared running totals for the progress line.
#[derive(Default)]
struct Progress {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// Runs `plan` against the fixture's service.
pub async fn drive(fixture: &Fixture, plan: &Plan) -> Outcome {
    let progress = Arc::new(Progress::default());
    let ticker = plan
        .progress
        .then(|| tokio::spawn(report_progress(progress.clone(), plan.duration)));
    let started = Instant::now();
    let mut outcome = match plan.rate {
        None => closed_loop(fixture, plan, &progress).await,
        Some(rate) => open_loop(fixture, plan, rate, &progress).await,
    };
    outcome.elapsed = started.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    outcome
}

async fn closed_loop(fixture: &Fixture, plan: &Plan, progress: &Arc<Progress>) -> Outcome {
    let deadline = Instant::now() + plan.duration;
    let mut tasks = JoinSet::new();
    for client in 0..plan.clients.max(1) {
        let fixture = fixture.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let customer = &fixture.customers[client % fixture.customers.len()];
            let mut out = Outcome::default();
            while Instant::now() < deadline {
                let body = Api::order_body(&fixture.products);
                let sent = Instant::now();
                let (status, id) = send(&fixture.api, &customer.token, &body, &progress).await;
                out.orders.record(status, sent.elapsed());
                out.created.extend(id);
            }
            out
        });
    }
    collect(tasks).await
}

async fn open_loop(fixture: &Fixture, plan: &Plan, rate: f64, progress: &Arc<Progress>) -> Outcome {
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let shared = Arc::new(Mutex::new(Outcome::default()));
    let mut tasks = JoinSet::new();
    let mut i: u32 = 0;
    loop {
        let scheduled = start + interval * i;
        if scheduled.duration_since(start) >= plan.duration {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let customer = fixture.customers[i as usize % fixture.customers.len()].clone();
        let (api, products) = (fixture.api.clone(), fixture.products.clone());
        let (limit, shared, progress) = (limit.clone(), shared.clone(), progress.clone());
        tasks.spawn(async move {
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            let body = Api::order_body(&products);
            let (status, id) = send(&api, &customer.token, &body, &progress).await;
            let took = scheduled.elapsed();
            let mut out = shared.lock().expect("outcome lock");
            out.orders.record(status, took);
            out.created.extend(id);
        });
        i += 1;
        // Reap finished tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut out = shared.lock().expect("outcome lock");
    std::mem::take(&mut *out)
}

async fn send(
    api: &Api,
    token: &str,
    body: &serde_json::Value,
    progress: &Progress,
) -> (u16, Option<String>) {
    match api.place_order(token, body).await {
        Ok((status, id)) => {
            let counter = if status == 201 {
                &progress.ok
            } else {
                &progress.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            (status, id)
        }
        Err(_) => {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            (0, None)
        }
    }
}

async fn collect(mut tasks: JoinSet<Outcome>) -> Outcome {
    let mut total = Outcome::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(out) = done {
            total.orders.merge(&out.orders);
            total.created.extend(out.created);
        }
    }
    total
}

async fn report_progress(progress: Arc<Progress>, duration: Duration) {
    let started = Instant::now();
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let ok = progress.ok.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed);
        eprintln!(
            "  [{:>4.0}s/{:.0}s] {:>6} orders/s   {ok} created   {failed} failed",
            started.elapsed().as_secs_f64(),
            duration.as_secs_f64(),
            ok - last
        );
        last = ok;
    }
}

/// Sends `request` at `rate` per second for `duration` (open loop, latency from the
/// scheduled time) and records the answers: side traffic such as logins and health checks.
pub async fn paced<F, Fut>(rate: f64, duration: Duration, request: F) -> Recorder
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let shared = Arc::new(Mutex::new(Recorder::default()));
    let mut tasks = JoinSet::new();
    let mut i: u32 = 0;
    while interval * i < duration {
        let scheduled = start + interval * i;
        tokio::time::sleep_until(scheduled).await;
        let fut = request(i);
        let shared = shared.clone();
        tasks.spawn(async move {
            let status = fut.await;
            shared
                .lock()
                .expect("recorder lock")
                .record(status, scheduled.elapsed());
        });
        i += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut rec = shared.lock().expect("recorder lock");
    std::mem::take(&mut *rec)
}

/// Commit → processed lags of (a sample of at most `sample`) `ids`, read from each order's
/// `createdAt` and `processedAt` once it is processed; waits up to `limit` for the
/// stragglers. Returns the lags and how many orders were still not processed.
pub async fn processing_lags(
    fixture: &Fixture,
    ids: &[String],
    sample: usize,
    limit: Duration,
) -> (Vec<Duration>, usize) {
    let step = (ids.len() / sample.max(1)).max(1);
    let picked: Vec<&String> = ids.iter().step_by(step).collect();
    let deadline = Instant::now() + limit;
    let lags: Vec<Option<Duration>> = futures::stream::iter(picked)
        .map(|id| async move {
            loop {
                if let Ok(Some(order)) = fixture.api.order(&fixture.admin, id).await
                    && let Some(done) = order.processed_at
                {
                    return (done - order.created_at).to_std().ok();
                }
                if Instant::now() > deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let missing = lags.iter().filter(|l| l.is_none()).count();
    (lags.into_iter().flatten().collect(), missing)
}

/// A customer's e-mail and password sign-in, for the login side traffic.
pub async fn login_status(api: &Api, customer: &Customer) -> u16 {
    let body =
        serde_json::json!({ "email": customer.email, "password": crate::api::CUSTOMER_PASSWORD });
    match api
        .http
        .post(api.url("/api/auth/login"))
        .json(&body)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// `GET /api/health`'s status.
pub async fn health_status(api: &Api) -> u16 {
    match api.http.get(api.url("/api/health")).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

//! In-process measurements on the host library, without HTTP: the order service placing
//! orders with the WebAssembly slots versus the same rules compiled natively behind the same
//! `RuleProvider` trait, the rules alone per call, the raw store transaction (stock
//! decrement + order + outbox event) the service ends in, and the raw store writes of a whole
//! order's life (that transaction, both status transitions and the inbox record).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use orderd::domain::Email;
use orderd::domain::{
    Currency, Id, Order, OrderStatus, OutboxEvent, Product, Role, User, Username,
};
use orderd::plugins::native::{NativeRules, RuleProvider};
use orderd::plugins::{PluginRuntime, RuntimeSettings};
use orderd::service::orders::{Actor, LineRequest, OrderRequest, place_order};
use orderd::storage::sqlite::SqliteStore;
use orderd::storage::{StockTake, Store, StoreError};
use orderd::testing::placement;
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::task::JoinSet;

use crate::stats::Recorder;

/// A temporary embedded store with one customer and a catalog.
pub struct Bench {
    /// The store under measurement.
    pub store: Arc<dyn Store>,
    /// The customer placing every order.
    pub actor: Actor,
    /// Products with practically unlimited stock.
    pub products: Arc<Vec<Product>>,
    /// Keeps the database directory alive.
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A fresh store in a temporary directory with `products` products.
    pub async fn new(products: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("Failed to create a temporary directory")?;
        let store =
            SqliteStore::open(&dir.path().join("orderd.db")).context("Failed to open the store")?;
        let store: Arc<dyn Store> = Arc::new(store);
        let user = User {
            id: Id::new(),
            username: parse(Username::parse("inproc_bench"))?,
            email: parse(Email::parse("inproc@bench.example.com"))?,
            password_hash: "$argon2id$unused".to_owned(),
            role: Role::Customer,
            created_at: Utc::now(),
        };
        store
            .create_user(&user)
            .await
            .context("Failed to create the customer")?;
        let currency = parse(Currency::parse("INR"))?;
        let categories = ["essentials", "stationery", "electronics", "general"];
        let mut catalog = Vec::with_capacity(products);
        for i in 0..products {
            let now = Utc::now();
            let product = Product {
                id: Id::new(),
                name: format!("Bench product {i}"),
                sku: format!("INPROC-{i}"),
                description: None,
                category: categories[i % categories.len()].to_owned(),
                price: 10_000 + 1_000 * i as i64,
                currency,
                stock: 1_000_000_000,
                created_at: now,
                updated_at: now,
            };
            store
                .create_product(&product)
                .await
                .context("Failed to create a product")?;
            catalog.push(product);
        }
        Ok(Self {
            store,
            actor: Actor {
                id: user.id,
                role: Role::Customer,
            },
            products: Arc::new(catalog),
            _dir: dir,
        })
    }

    /// 1–3 distinct random products, 1–3 units each.
    fn lines(products: &[Product]) -> Vec<(&Product, u32)> {
        let mut rng = rand::thread_rng();
        let n = rng.gen_range(1..=3.min(products.len()));
        products
            .choose_multiple(&mut rng, n)
            .map(|p| (p, rng.gen_range(1..=3)))
            .collect()
    }

    /// Places orders through the order service with `rules` from `workers` concurrent tasks
    /// for `duration`; returns the latencies and the completed-order rate.
    pub async fn service_rate(
        &self,
        rules: Arc<dyn RuleProvider>,
        workers: usize,
        duration: Duration,
    ) -> (Recorder, f64) {
        let deadline = Instant::now() + duration;
        let mut tasks = JoinSet::new();
        for _ in 0..workers.max(1) {
            let (store, rules, products, actor) = (
                self.store.clone(),
                rules.clone(),
                self.products.clone(),
                self.actor,
            );
            tasks.spawn(async move {
                let mut rec = Recorder::default();
                while Instant::now() < deadline {
                    let request = OrderRequest {
                        items: Self::lines(&products)
                            .into_iter()
                            .map(|(p, q)| LineRequest {
                                product_id: p.id.to_hex(),
                                quantity: i64::from(q),
                            })
                            .collect(),
                        shipping_address: None,
                    };
                    let started = Instant::now();
                    let status =
                        match place_order(store.as_ref(), rules.as_ref(), actor, &request, None)
                            .await
                        {
                            Ok(_) => 201,
                            Err(_) => 500,
                        };
                    rec.record(status, started.elapsed());
                }
                rec
            });
        }
        finish(tasks, duration).await
    }

    /// Commits the store transaction of an order (stock decrements, order, outbox event)
    /// directly, from `workers` concurrent tasks for `duration`.
    pub async fn raw_rate(&self, workers: usize, duration: Duration) -> (Recorder, f64) {
        let deadline = Instant::now() + duration;
        let mut tasks = JoinSet::new();
        for _ in 0..workers.max(1) {
            let (store, products, actor) = (self.store.clone(), self.products.clone(), self.actor);
            tasks.spawn(async move {
                let mut rec = Recorder::default();
                while Instant::now() < deadline {
                    let (order, takes, event) = raw_order(actor.id, &Self::lines(&products));
                    let started = Instant::now();
                    let status = match store.place_order(&order, &takes, &event, None).await {
                        Ok(()) => 201,
                        Err(_) => 500,
                    };
                    rec.record(status, started.elapsed());
                }
                rec
            });
        }
        finish(tasks, duration).await
    }

    /// The smallest set of store writes one order needs from commit to processed, each its own
    /// transaction as the pipeline runs them: place (stock decrements + order + outbox event),
    /// `pending → processing`, `processing → processed`, and the inbox record of the event.
    /// From `workers` concurrent tasks for `duration`; latency is that of all four, and the
    /// rate counts orders that completed all four.
    pub async fn pipeline_raw_rate(&self, workers: usize, duration: Duration) -> (Recorder, f64) {
        let deadline = Instant::now() + duration;
        let mut tasks = JoinSet::new();
        for _ in 0..workers.max(1) {
            let (store, products, actor) = (self.store.clone(), self.products.clone(), self.actor);
            tasks.spawn(async move {
                let mut rec = Recorder::default();
                while Instant::now() < deadline {
                    let (order, takes, event) = raw_order(actor.id, &Self::lines(&products));
                    let started = Instant::now();
                    let status = match order_lifecycle(store.as_ref(), &order, &takes, &event).await
                    {
                        Ok(()) => 201,
                        Err(_) => 500,
                    };
                    rec.record(status, started.elapsed());
                }
                rec
            });
        }
        finish(tasks, duration).await
    }

    /// Calls validation then tax on the smoke-test draft, one call pair after another, for
    /// `duration`; returns the mean time of one pair in microseconds.
    pub async fn rules_cost(
        &self,
        rules: &dyn RuleProvider,
        duration: Duration,
    ) -> anyhow::Result<RulesCost> {
        let draft = orderd::plugins::fixtures::draft();
        let (mut validate, mut tax) = (Duration::ZERO, Duration::ZERO);
        let started = Instant::now();
        let mut calls = 0u32;
        while started.elapsed() < duration {
            let t0 = Instant::now();
            rules
                .validate(&draft)
                .await
                .map_err(|e| anyhow::anyhow!("validate failed: {e}"))?;
            let t1 = Instant::now();
            rules
                .calculate_tax(&draft)
                .await
                .map_err(|e| anyhow::anyhow!("tax failed: {e}"))?;
            validate += t1 - t0;
            tax += t1.elapsed();
            calls += 1;
        }
        let per_call = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls.max(1));
        Ok(RulesCost {
            validate_us: per_call(validate),
            tax_us: per_call(tax),
        })
    }
}

/// Mean cost of one call of each rule, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct RulesCost {
    pub validate_us: f64,
    pub tax_us: f64,
}

/// A domain parse result as an `anyhow` result.
fn parse<T>(r: Result<T, orderd::domain::ParseError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e}"))
}

/// The runtime serving the embedded default plugins, as `orderd serve` starts it.
pub async fn wasm_rules() -> anyhow::Result<Arc<dyn RuleProvider>> {
    let runtime = PluginRuntime::with_embedded_defaults(RuntimeSettings::default())
        .await
        .context("Failed to start the plugin runtime")?;
    Ok(Arc::new(runtime))
}

/// The same default rules called natively.
pub fn native_rules() -> Arc<dyn RuleProvider> {
    Arc::new(NativeRules::default())
}

async fn finish(mut tasks: JoinSet<Recorder>, duration: Duration) -> (Recorder, f64) {
    let mut total = Recorder::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(rec) = done {
            total.merge(&rec);
        }
    }
    let rate = total.ok() as f64 / duration.as_secs_f64();
    (total, rate)
}

/// The four write transactions of one order's life, in pipeline order.
async fn order_lifecycle(
    store: &dyn Store,
    order: &Order,
    takes: &[StockTake],
    event: &OutboxEvent,
) -> Result<(), StoreError> {
    store.place_order(order, takes, event, None).await?;
    store
        .transition_order(
            order.id,
            &[OrderStatus::Pending],
            OrderStatus::Processing,
            Utc::now(),
        )
        .await?;
    store
        .transition_order(
            order.id,
            &[OrderStatus::Processing],
            OrderStatus::Processed,
            Utc::now(),
        )
        .await?;
    store.inbox_record(event.id, Utc::now()).await?;
    Ok(())
}

/// An order for `lines` with an 18% tax per line, its stock takes and its outbox event.
fn raw_order(user_id: Id, lines: &[(&Product, u32)]) -> (Order, Vec<StockTake>, OutboxEvent) {
    let p = placement(user_id, lines, 1800, Utc::now());
    (p.order, p.takes, p.event)
}

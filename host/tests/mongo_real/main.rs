//! What only a real MongoDB replica set can show: transactions racing from several store
//! instances (the oversell race, write conflicts retried, cancels racing), relay leases
//! across instances, and change-stream wake-ups with resume after a restart; in `recovery`,
//! what the store does when a stream dies, a clock runs ahead or a commit reply is lost.
//!
//! Runs when `ORDERD_TEST_MONGODB_URI` names a replica set (e.g. `docker compose up mongo`, then
//! `ORDERD_TEST_MONGODB_URI=mongodb://127.0.0.1:27017/?replicaSet=rs0&directConnection=true`);
//! otherwise every test reports itself skipped, by name and reason, and returns. Each test uses a database of its
//! own and drops it at the end.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, SubsecRound, Utc};
use orderd::domain::{
    Currency, EventType, Id, Order, OrderStatus, OutboxEvent, OutboxStatus, Product,
};
use orderd::storage::mongo::{MongoOptions, MongoStore, Topology, WatchTarget};
use orderd::storage::{
    Conflict, OrderStore, OutboxStore, PluginStore, ProductStore, StockTake, StoreError,
    StoreResult,
};
use orderd::testing::placement;

mod recovery;
#[path = "../support/skip.rs"]
mod support_skip;
use support_skip::{Need, skip};

const URI_ENV: &str = "ORDERD_TEST_MONGODB_URI";

/// How long a wake-up may take to arrive (the product promises convergence within 2 s).
const WAKE_WITHIN: StdDuration = StdDuration::from_secs(2);

/// Two store instances (two driver clients, as two processes would have) on a fresh database.
struct Pair {
    a: MongoStore,
    b: MongoStore,
}

impl Pair {
    async fn open(test: &str) -> Option<Pair> {
        Self::open_with(test, MongoOptions::default()).await
    }

    /// A pair whose instance `b` connects with `b_options`.
    async fn open_with(test: &str, b_options: MongoOptions) -> Option<Pair> {
        let Ok(uri) = std::env::var(URI_ENV) else {
            skip(
                test,
                Need::Unavailable("needs a real MongoDB replica set (ORDERD_TEST_MONGODB_URI)"),
            );
            return None;
        };
        let db = format!("orderd_real_{}", Id::new());
        let a = MongoStore::connect(&uri, &db, MongoOptions::default())
            .await
            .expect("connect instance a");
        let b = MongoStore::connect(&uri, &db, b_options)
            .await
            .expect("connect instance b");
        Some(Pair { a, b })
    }

    async fn drop_database(self) {
        self.a
            .database()
            .drop()
            .await
            .expect("drop the test database");
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

async fn stocked(store: &MongoStore, stock: i64) -> Product {
    let at = now();
    let p = Product {
        id: Id::new(),
        name: "Masala Chai".to_owned(),
        sku: format!("SKU-{}", Id::new()),
        description: None,
        category: "grocery".to_owned(),
        price: 25_000,
        currency: Currency::parse("INR").unwrap(),
        stock,
        created_at: at,
        updated_at: at,
    };
    store.create_product(&p).await.expect("create product");
    p
}

fn order_of(lines: &[(&Product, u32)]) -> (Order, Vec<StockTake>, OutboxEvent) {
    let p = placement(Id::new(), lines, 0, now());
    (p.order, p.takes, p.event)
}

async fn place(store: &MongoStore, lines: &[(&Product, u32)]) -> StoreResult<Order> {
    let (order, takes, event) = order_of(lines);
    store
        .place_order(&order, &takes, &event, None)
        .await
        .map(|()| order)
}

async fn stock_of(store: &MongoStore, id: Id) -> i64 {
    store.product(id).await.unwrap().unwrap().stock
}

#[tokio::test]
async fn a_replica_set_is_recognised_and_accepted() {
    let Some(pair) = Pair::open("a_replica_set_is_recognised_and_accepted").await else {
        return;
    };

    assert!(
        matches!(
            pair.a.topology(),
            Topology::ReplicaSet { .. } | Topology::Sharded
        ),
        "{}",
        pair.a.topology()
    );

    pair.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_for_fifty_units_sell_exactly_fifty() {
    let Some(pair) = Pair::open("two_instances_racing_for_fifty_units_sell_exactly_fifty").await
    else {
        return;
    };
    let tea = Arc::new(stocked(&pair.a, 50).await);

    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = if n % 2 == 0 {
                pair.a.clone()
            } else {
                pair.b.clone()
            };
            let tea = Arc::clone(&tea);
            tokio::spawn(async move { place(&store, &[(&tea, 1)]).await })
        })
        .collect();
    let (mut sold, mut short) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => sold += 1,
            Err(StoreError::InsufficientStock(ids)) => {
                assert_eq!(ids, vec![tea.id]);
                short += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!((sold, short), (50, 150));
    assert_eq!(stock_of(&pair.b, tea.id).await, 0);
    assert_eq!(
        pair.a.count_outbox(OutboxStatus::Pending).await.unwrap(),
        50
    );
    pair.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_conflicts_between_concurrent_orders_are_retried_until_all_commit() {
    let Some(pair) =
        Pair::open("write_conflicts_between_concurrent_orders_are_retried_until_all_commit").await
    else {
        return;
    };
    let (tea, coffee) = (
        Arc::new(stocked(&pair.a, 10_000).await),
        Arc::new(stocked(&pair.a, 10_000).await),
    );

    // Every order touches both products, half of them in the other order: the transactions
    // conflict constantly, and the driver must retry them rather than fail them.
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let store = if n % 2 == 0 {
                pair.a.clone()
            } else {
                pair.b.clone()
            };
            let (tea, coffee) = (Arc::clone(&tea), Arc::clone(&coffee));
            tokio::spawn(async move {
                if n % 4 < 2 {
                    place(&store, &[(&tea, 1), (&coffee, 2)]).await
                } else {
                    place(&store, &[(&coffee, 2), (&tea, 1)]).await
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every order commits");
    }

    assert_eq!(stock_of(&pair.a, tea.id).await, 10_000 - 100);
    assert_eq!(stock_of(&pair.b, coffee.id).await, 10_000 - 200);
    pair.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cancels_of_one_order_restock_it_once() {
    let Some(pair) = Pair::open("concurrent_cancels_of_one_order_restock_it_once").await else {
        return;
    };
    let tea = stocked(&pair.a, 10).await;
    let order_id = place(&pair.a, &[(&tea, 3)]).await.unwrap().id;
    let sources = OrderStatus::sources_of(OrderStatus::Cancelled);

    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let store = if n % 2 == 0 {
                pair.a.clone()
            } else {
                pair.b.clone()
            };
            let sources = sources.clone();
            tokio::spawn(async move {
                let event = OutboxEvent::new(
                    order_id,
                    EventType::OrderCancelled,
                    serde_json::json!({}),
                    now(),
                );
                store.cancel_order(order_id, &sources, now(), &event).await
            })
        })
        .collect();
    let mut cancelled = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(o) => {
                assert_eq!(o.status, OrderStatus::Cancelled);
                cancelled += 1;
            }
            Err(StoreError::Conflict(what)) => {
                assert_eq!(what, Conflict::OrderStatus(OrderStatus::Cancelled))
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!(cancelled, 1);
    assert_eq!(stock_of(&pair.a, tea.id).await, 10);
    assert_eq!(pair.b.count_outbox(OutboxStatus::Pending).await.unwrap(), 2);
    pair.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_on_two_instances_never_lease_one_event_twice() {
    let Some(pair) = Pair::open("relays_on_two_instances_never_lease_one_event_twice").await else {
        return;
    };
    let tea = stocked(&pair.a, 1_000).await;
    let mut written = HashSet::new();
    for _ in 0..60 {
        let (order, takes, event) = order_of(&[(&tea, 1)]);
        pair.a
            .place_order(&order, &takes, &event, None)
            .await
            .unwrap();
        written.insert(event.id);
    }
    let at = now() + chrono::Duration::seconds(1);

    let relays: Vec<_> = (0..6)
        .map(|n| {
            let store = if n % 2 == 0 {
                pair.a.clone()
            } else {
                pair.b.clone()
            };
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_outbox(&format!("relay-{n}"), at, StdDuration::from_secs(30), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for relay in relays {
        for id in relay.await.unwrap() {
            assert!(seen.insert(id), "event {id} was leased twice");
        }
    }

    assert_eq!(seen, written);
    pair.drop_database().await;
}

#[tokio::test]
async fn an_order_committed_on_one_instance_wakes_the_other_instances_relay() {
    let Some(pair) =
        Pair::open("an_order_committed_on_one_instance_wakes_the_other_instances_relay").await
    else {
        return;
    };
    let tea = stocked(&pair.a, 10).await;
    let mut wakeups = pair
        .a
        .watch_outbox()
        .await
        .expect("change streams on a replica set");

    place(&pair.b, &[(&tea, 1)]).await.unwrap();

    tokio::time::timeout(WAKE_WITHIN, wakeups.next())
        .await
        .expect("a wake-up within 2 s")
        .unwrap();
    pair.drop_database().await;
}

#[tokio::test]
async fn a_restarted_watcher_resumes_after_its_stored_token_and_sees_what_it_missed() {
    let Some(pair) =
        Pair::open("a_restarted_watcher_resumes_after_its_stored_token_and_sees_what_it_missed")
            .await
    else {
        return;
    };
    let tea = stocked(&pair.a, 10).await;
    let mut first = pair.a.watch_outbox().await.unwrap();
    place(&pair.b, &[(&tea, 1)]).await.unwrap();
    tokio::time::timeout(WAKE_WITHIN, first.next())
        .await
        .unwrap()
        .unwrap();
    drop(first);

    // Written while no stream was open: only a resumed stream reports it.
    place(&pair.b, &[(&tea, 1)]).await.unwrap();
    let mut resumed = pair.a.watch_outbox().await.unwrap();

    tokio::time::timeout(WAKE_WITHIN, resumed.next())
        .await
        .expect("the missed insert is reported after resuming")
        .unwrap();
    pair.drop_database().await;
}

#[tokio::test]
async fn activating_a_plugin_on_one_instance_wakes_the_others_plugin_sync() {
    let Some(pair) =
        Pair::open("activating_a_plugin_on_one_instance_wakes_the_others_plugin_sync").await
    else {
        return;
    };
    let notify = Arc::new(tokio::sync::Notify::new());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = pair.a.spawn_wakeups(
        WatchTarget::ActivePlugins,
        Arc::clone(&notify),
        shutdown.clone(),
    );
    // The stream's opening wake-up (changes made before it opened are not replayed).
    tokio::time::timeout(StdDuration::from_secs(10), notify.notified())
        .await
        .expect("the stream opens");

    pair.b.set_active_plugin("tax", None, now()).await.unwrap();

    tokio::time::timeout(WAKE_WITHIN, notify.notified())
        .await
        .expect("a wake-up within 2 s");
    shutdown.cancel();
    task.await.unwrap();
    pair.drop_database().await;
}

//! Test fixtures for delivery: a store on a temporary file with the embedded queue beside it,
//! real orders placed through the store, the real e-mail plugin, consumers and relays with
//! short timeouts, and readers for delivered e-mail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use orderd::delivery::consumer::{Consumer, ConsumerSettings, EmailRenderer};
use orderd::delivery::queue::Queue;
use orderd::delivery::queue::embedded::EmbeddedQueue;
use orderd::delivery::relay::{Outcome, Relay, RelaySettings};
use orderd::domain::{Currency, Id, Order, OrderStatus, OutboxEvent, Product, Role, User};
use orderd::domain::{Email, Username};
use orderd::mail::{Mailer, SmtpSecurity, SmtpSettings};
use orderd::plugins::{PluginRuntime, RuntimeSettings};
use orderd::storage::Store;
use orderd::storage::sqlite::{SqliteDb, SqliteStore};
use orderd::testing::{Placement, placement};
use tokio::sync::Notify;

/// One delivery setup on a fresh database file.
pub struct Env {
    pub store: Arc<dyn Store>,
    pub db: SqliteDb,
    /// Where the file mail transport writes.
    pub mail_dir: PathBuf,
    pub renderer: Arc<dyn EmailRenderer>,
    pub wake: Arc<Notify>,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("orderd.db")).expect("open store");
        let db = store.db();
        let mail_dir = dir.path().join("mail");
        Self {
            store: Arc::new(store),
            db,
            mail_dir,
            renderer: Arc::new(runtime().await),
            wake: Arc::new(Notify::new()),
            dir,
        }
    }

    /// The embedded queue (receive limit `max_receives`) polling every 20 ms.
    pub async fn queue(&self, max_receives: u32) -> Arc<EmbeddedQueue> {
        EmbeddedQueue::open_with_poll(
            self.db.clone(),
            "events",
            max_receives,
            Duration::from_millis(20),
        )
        .await
        .expect("open queue")
    }

    pub fn file_mailer(&self) -> Arc<Mailer> {
        Arc::new(
            Mailer::file("Shop <shop@example.com>", self.mail_dir.clone()).expect("file mailer"),
        )
    }

    pub fn consumer(&self, queue: Arc<dyn Queue>, mailer: Arc<Mailer>) -> Consumer {
        self.consumer_with(queue, mailer, fast_consumer())
    }

    /// A consumer with its own settings.
    pub fn consumer_with(
        &self,
        queue: Arc<dyn Queue>,
        mailer: Arc<Mailer>,
        settings: ConsumerSettings,
    ) -> Consumer {
        Consumer::new(
            self.store.clone(),
            queue,
            mailer,
            self.renderer.clone(),
            settings,
        )
    }

    pub fn relay(&self, queue: Arc<dyn Queue>) -> Relay {
        Relay::new(self.store.clone(), queue, fast_relay(), self.wake.clone())
            .with_outbox_db(Some(self.db.clone()))
    }

    /// A registered customer.
    pub async fn customer(&self) -> User {
        let tag = Id::new().to_hex();
        let user = User {
            id: Id::new(),
            username: Username::parse(&format!("u_{}", &tag[12..])).unwrap(),
            email: Email::parse(&format!("{tag}@example.com")).unwrap(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            role: Role::Customer,
            created_at: Utc::now().trunc_subsecs(3),
        };
        self.store.create_user(&user).await.expect("create user");
        user
    }

    /// A product named `name` costing `price` paise with plenty of stock.
    pub async fn product(&self, name: &str, price: i64, stock: i64) -> Product {
        let at = Utc::now().trunc_subsecs(3);
        let p = Product {
            id: Id::new(),
            name: name.to_owned(),
            sku: format!("SKU-{}", Id::new().to_hex()),
            description: None,
            category: "grocery".to_owned(),
            price,
            currency: Currency::parse("INR").unwrap(),
            stock,
            created_at: at,
            updated_at: at,
        };
        self.store.create_product(&p).await.expect("create product");
        p
    }

    /// Places a pending order of `lines` through the store, with its `order.created` event.
    pub async fn place(&self, user: &User, lines: &[(&Product, u32)]) -> (Order, OutboxEvent) {
        let Placement {
            order,
            takes,
            event,
        } = placement(user.id, lines, 1800, Utc::now().trunc_subsecs(3));
        self.store
            .place_order(&order, &takes, &event, None)
            .await
            .expect("place order");
        self.wake.notify_waiters();
        (order, event)
    }

    pub async fn status(&self, id: Id) -> OrderStatus {
        self.store
            .order(id)
            .await
            .expect("read order")
            .expect("order exists")
            .status
    }
}

/// The plugin runtime with the built-in plugins, sharing a compiled-artifact cache.
pub async fn runtime() -> PluginRuntime {
    let settings = RuntimeSettings {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        ..RuntimeSettings::default()
    };
    PluginRuntime::with_embedded_defaults(settings)
        .await
        .expect("plugin runtime")
}

/// Consumer settings with one-second visibility so redeliveries happen within a test.
pub fn fast_consumer() -> ConsumerSettings {
    ConsumerSettings {
        concurrency: 16,
        wait_ms: 200,
        visibility_ms: 1_000,
        email_claim_ms: 1_500,
        drain_ms: 5_000,
        retry_base_ms: 200,
        retry_cap_ms: 1_000,
        ..ConsumerSettings::default()
    }
}

pub fn fast_relay() -> RelaySettings {
    RelaySettings {
        poll_interval_ms: 20,
        backoff_base_ms: 50,
        backoff_cap_ms: 200,
        ..RelaySettings::default()
    }
}

/// An SMTP mailer for a plain server at `addr` (short timeout so "down" fails fast).
pub fn smtp_mailer(addr: std::net::SocketAddr) -> Arc<Mailer> {
    let settings = SmtpSettings {
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        security: SmtpSecurity::Plain,
        pool_size: 4,
        timeout_ms: 2_000,
        ..SmtpSettings::default()
    };
    Arc::new(Mailer::smtp("Shop <shop@example.com>", settings).expect("smtp mailer"))
}

/// Runs relay passes until one finds nothing.
pub async fn relay_until_idle(relay: &Relay) {
    while relay.try_run_once().await.expect("relay pass") != Outcome::Idle {}
}

/// Runs consumer passes until the queue holds nothing (visible or in flight), or `limit`.
pub async fn consume_until_empty(consumers: &[&Consumer], queue: &Arc<dyn Queue>, limit: Duration) {
    let started = Instant::now();
    loop {
        futures::future::join_all(consumers.iter().map(|c| c.try_run_once())).await;
        let depth = queue.depth().await.expect("depth");
        if depth.visible == 0 && depth.in_flight == 0 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "queue not empty after {limit:?}: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Receives everything in `queue` (a dead-letter queue) and returns the bodies.
pub async fn drain_bodies(queue: &Arc<dyn Queue>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = queue
            .receive(10, Duration::from_millis(100), Duration::from_secs(30))
            .await
            .expect("receive");
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().map(|m| m.body));
    }
}

/// A delivered e-mail, parsed.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn parse_email(raw: &[u8]) -> Delivered {
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse e-mail");
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    Delivered {
        message_id: msg.message_id().unwrap_or_default().to_owned(),
        to,
        subject: msg.subject().unwrap_or_default().to_owned(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
    }
}

/// Every `.eml` file in `dir`, parsed.
pub fn emails_in(dir: &Path) -> Vec<Delivered> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| parse_email(&std::fs::read(&p).expect("read eml")))
        .collect()
}

/// `amount` paise as the e-mail plugin prints it, for amounts under 1,000 rupees.
pub fn inr(amount: i64) -> String {
    format!("INR {}.{:02}", amount / 100, amount % 100)
}

/// Checks that `email` is the confirmation of `order`: id in subject, text and HTML; every
/// item's name and SKU and the total in text and HTML.
pub fn assert_confirmation_of(email: &Delivered, order: &Order) {
    let id = order.id.to_hex();
    assert!(
        email.subject.contains(&id),
        "subject {:?} lacks the order id",
        email.subject
    );
    for (part, body) in [("text", &email.text), ("html", &email.html)] {
        assert!(body.contains(&id), "{part} lacks the order id:\n{body}");
        for item in &order.items {
            assert!(
                body.contains(&item.name),
                "{part} lacks item {}:\n{body}",
                item.name
            );
            assert!(
                body.contains(&item.sku),
                "{part} lacks SKU {}:\n{body}",
                item.sku
            );
        }
        assert!(
            body.contains(&inr(order.total)),
            "{part} lacks the total {}:\n{body}",
            inr(order.total)
        );
    }
}

/// Optional real services named by the test command (see scripts/services.sh).
pub use crate::support_skip::service_env;

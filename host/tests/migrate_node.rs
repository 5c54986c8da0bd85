//! `orderd migrate node` end to end with the real binary: a database shaped like the Node
//! system's (Mongoose documents: ObjectIds, rupees as doubles, bcrypt hashes made by Python's
//! `bcrypt`, `createdAt`/`updatedAt`, `__v`), with hostile documents among them, served by the
//! MongoDB wire emulator the test command starts, copied into a fresh SQLite store.
//!
//! Checked: the dry run writes nothing and says what it would do; the run copies what maps,
//! keeps ids, converts money to paise and reports every refused document and rounding by id;
//! a second run changes nothing and says so; then `orderd serve` on the migrated data lets a
//! Node user log in with their old password and read their order at its old id, confirms the
//! pending order once and sends nothing for the processed one.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/bcrypt.rs"]
mod support_bcrypt;
#[path = "support/skip.rs"]
mod support_skip;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mongodb::bson::{Bson, DateTime as BsonDateTime, Document, doc, oid::ObjectId};
use orderd::domain::{Id, OrderStatus, OutboxStatus};
use orderd::storage::sqlite::SqliteStore;
use orderd::storage::{OrderStore, OutboxStore, ProductStore, UserStore};

use binary::{free_port, get, login, wait_ready};
use support_skip::{Need, service_env, skip};

const TEST: &str = "migrate_node";
const PASSWORD: &str = "node-era-password";

fn at(day: u32) -> BsonDateTime {
    BsonDateTime::from_chrono(
        chrono::NaiveDate::from_ymd_opt(2025, 3, day)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_utc(),
    )
}

/// The Node system's documents, good and hostile, by name.
struct NodeData {
    users: Vec<Document>,
    products: Vec<Document>,
    orders: Vec<Document>,
    ada: ObjectId,
    tea: ObjectId,
    pending: ObjectId,
    processed: ObjectId,
}

fn node_data(hash: &str) -> NodeData {
    let (ada, bob, dup, nameless) = (
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
    );
    let (tea, odd, negative, stringy) = (
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
    );
    let (pending, processed, orphan, bad_qty, weird) = (
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
    );
    let user = |id, name: &str, email: &str| {
        doc! { "_id": id, "username": name, "email": email, "password": hash,
        "createdAt": at(1), "updatedAt": at(1), "__v": 0 }
    };
    let users = vec![
        user(ada, "ada_l", "Ada@Example.com"),
        user(bob, "bob_b", "bob@example.com"),
        // Hostile: the same e-mail as Ada's in another case; a user without an e-mail.
        user(dup, "ada_again", "ada@example.com"),
        doc! { "_id": nameless, "username": "nomail", "password": hash, "__v": 0 },
    ];
    let products = vec![
        doc! { "_id": tea, "name": "Assam tea", "description": "250 g", "price": 199.99,
        "stock": 40, "createdAt": at(2), "updatedAt": at(2), "__v": 0 },
        // Not a whole number of paise: rounded and reported.
        doc! { "_id": odd, "name": "Loose leaf", "price": 10.005, "stock": Bson::Int64(3),
        "createdAt": at(2), "__v": 0 },
        // Hostile: negative stock; a string for the price.
        doc! { "_id": negative, "name": "Broken", "price": 5.0, "stock": -4, "__v": 0 },
        doc! { "_id": stringy, "name": "Stringy", "price": "12.50", "stock": 1, "__v": 0 },
    ];
    let line = |product, quantity: Bson, price: f64| doc! { "productId": product, "quantity": quantity, "price": price };
    let orders = vec![
        doc! { "_id": pending, "user": ada, "items": [line(tea, Bson::Int32(2), 199.99)],
        "tax": 71.99, "totalAmount": 471.97, "status": "Pending",
        "createdAt": at(5), "updatedAt": at(5), "__v": 0 },
        doc! { "_id": processed, "user": ada, "items": [line(odd, Bson::Int32(1), 10.0)],
        "tax": 1.8, "totalAmount": 11.8, "status": "Processed", "emailSent": true,
        "createdAt": at(4), "updatedAt": at(6), "__v": 0 },
        // Hostile: a customer that does not exist; a quantity as a string; an unknown status.
        doc! { "_id": orphan, "user": ObjectId::new(), "items": [line(tea, Bson::Int32(1), 199.99)],
        "status": "Pending", "__v": 0 },
        doc! { "_id": bad_qty, "user": bob, "items": [line(tea, Bson::String("2".into()), 199.99)],
        "status": "Pending", "__v": 0 },
        doc! { "_id": weird, "user": bob, "items": [line(tea, Bson::Int32(1), 199.99)],
        "status": "Shipped", "__v": 0 },
    ];
    NodeData {
        users,
        products,
        orders,
        ada,
        tea,
        pending,
        processed,
    }
}

fn migrate(data: &Path, from: &str, extra: &[&str]) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args(["migrate", "node", "--from", from])
        .args(extra)
        .env("ORDERD_DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run orderd migrate");
    let out = String::from_utf8(stdout).unwrap();
    assert!(
        status.code().is_some(),
        "killed: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert_ne!(
        status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), out)
}

fn has_line(out: &str, needle: &str) {
    assert!(
        out.lines().any(|l| l.contains(needle)),
        "no line with {needle:?} in:\n{out}"
    );
}

#[tokio::test]
async fn node_users_products_and_orders_are_copied_once_with_their_ids_and_every_refusal_reported()
{
    let Some(uri) = service_env("ORDERD_TEST_NX27017_URI", TEST) else {
        return;
    };
    let Some(hash) = support_bcrypt::python_bcrypt(PASSWORD, "$2b$") else {
        return skip(TEST, Need::Service("ORDERD_TEST_PYTHON"));
    };
    let node = node_data(&hash);
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db_name = format!("node_{}", ObjectId::new().to_hex());
    let db = client.database(&db_name);
    for (name, docs) in [
        ("users", &node.users),
        ("products", &node.products),
        ("orders", &node.orders),
    ] {
        db.collection::<Document>(name)
            .insert_many(docs.clone())
            .await
            .unwrap();
    }
    let from = format!("{}/{db_name}", uri.trim_end_matches('/'));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // Dry run: the same checks and report, nothing written.
    let (code, out) = migrate(data, &from, &["--dry-run"]);
    assert_eq!(code, Some(3), "{out}");
    has_line(&out, "dry run: nothing was written");
    has_line(
        &out,
        "users     would copy 2, already in orderd 0, refused 2",
    );
    has_line(
        &out,
        "products  would copy 2, already in orderd 0, refused 2",
    );
    has_line(
        &out,
        "orders    would copy 2, already in orderd 0, refused 3",
    );
    has_line(&out, "pending orders would be published once: 1");

    // The run.
    let (code, out) = migrate(data, &from, &[]);
    assert_eq!(code, Some(3), "{out}");
    has_line(&out, "users     copied 2, already in orderd 0, refused 2");
    has_line(&out, "products  copied 2, already in orderd 0, refused 2");
    has_line(&out, "orders    copied 2, already in orderd 0, refused 3");
    has_line(&out, "pending orders published once: 1");
    let ids = |o: &[Document], n: usize| o[n].get_object_id("_id").unwrap().to_hex();
    for (needle_id, field, reason) in [
        (ids(&node.users, 2), "email", "is the same as user"),
        (ids(&node.users, 3), "email", "is missing"),
        (ids(&node.products, 2), "stock", "is -4, negative"),
        (
            ids(&node.products, 3),
            "price",
            "is a string, expected a number of rupees",
        ),
        (ids(&node.orders, 2), "user", "which was not migrated"),
        (
            ids(&node.orders, 3),
            "items.0.quantity",
            "is a string, expected a number",
        ),
        (
            ids(&node.orders, 4),
            "status",
            "is \"Shipped\", expected Pending, Processing or Processed",
        ),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with("refused:")
                && l.contains(&needle_id)
                && l.contains(&format!(" {field}: "))
                && l.contains(reason)),
            "no refusal of {needle_id} {field} ({reason}) in:\n{out}"
        );
    }
    has_line(
        &out,
        &format!(
            "note: products {} price: 10.005 rupees is not a whole number of paise; rounded to 1001 paise",
            ids(&node.products, 1)
        ),
    );

    // What the store holds: ids kept, money in paise, the hash as it was, one event.
    let store = SqliteStore::open(&data.join(orderd::storage::sqlite::DATABASE_FILE)).unwrap();
    let ada = store
        .user_by_id(Id::from(node.ada))
        .await
        .unwrap()
        .expect("Ada copied");
    assert_eq!(ada.email.as_str(), "ada@example.com");
    assert!(
        ada.password_hash.starts_with("$2b$"),
        "{}",
        ada.password_hash
    );
    let tea = store
        .product(Id::from(node.tea))
        .await
        .unwrap()
        .expect("tea copied");
    assert_eq!(
        (tea.price, tea.currency.as_str(), tea.stock),
        (19_999, "INR", 40)
    );
    assert_eq!(tea.sku, format!("node-{}", node.tea.to_hex()));
    let pending = store
        .order(Id::from(node.pending))
        .await
        .unwrap()
        .expect("pending copied");
    assert_eq!(pending.status, OrderStatus::Pending);
    assert_eq!(
        (pending.subtotal, pending.tax_total, pending.total),
        (39_998, 7_200, 47_198)
    );
    // Node's own tax (71.99) differs from 18% of the rounded line (72.00): orderd keeps its own, and says so.
    has_line(
        &out,
        &format!(
            "note: orders {} tax: stored 7199 paise",
            node.pending.to_hex()
        ),
    );
    let processed = store
        .order(Id::from(node.processed))
        .await
        .unwrap()
        .expect("processed copied");
    assert_eq!(processed.status, OrderStatus::Processed);
    assert_eq!(processed.processed_at, Some(at(6).to_chrono()));
    assert_eq!(store.count_outbox(OutboxStatus::Pending).await.unwrap(), 1);

    // Again: nothing changes, and it says so.
    let (code, out) = migrate(data, &from, &[]);
    assert_eq!(code, Some(3), "{out}");
    has_line(&out, "users     copied 0, already in orderd 2, refused 2");
    has_line(&out, "orders    copied 0, already in orderd 2, refused 3");
    has_line(&out, "nothing to change");
    assert_eq!(store.count_outbox(OutboxStatus::Pending).await.unwrap(), 1);
    drop(store);

    // orderd on the migrated data: the old password, the old order URL, one confirmation.
    let http = reqwest::Client::new();
    let mut server = binary::start(data, free_port(), 0, &[]);
    wait_ready(&http, &mut server).await;
    let token = login(&http, &server.base, "ada@example.com", PASSWORD).await;
    let started = Instant::now();
    loop {
        let order = get(
            &http,
            format!("{}/api/orders/{}", server.base, node.pending.to_hex()),
            &token,
        )
        .await;
        if order["status"] == "processed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not processed: {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = get(
        &http,
        format!("{}/api/orders/{}", server.base, node.processed.to_hex()),
        &token,
    )
    .await;
    assert_eq!(old["status"], "processed", "{old}");
    binary::sigterm(&server.child);
    binary::wait_exit(&mut server.child, Duration::from_secs(30)).await;
    let mails: Vec<String> = std::fs::read_dir(data.join("mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let naming = |id: ObjectId| mails.iter().filter(|m| m.contains(&id.to_hex())).count();
    assert_eq!(
        naming(node.pending),
        1,
        "the pending order's confirmation, once"
    );
    assert_eq!(
        naming(node.processed),
        0,
        "nothing for an order the Node system processed"
    );
}

/// Runs `orderd migrate node` expected to fail; its exit code and stderr.
fn migrate_refused(data: &Path, from: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args(["migrate", "node", "--from", from])
        .env("ORDERD_DATA_DIR", data)
        .envs(env.iter().copied())
        .output()
        .expect("run orderd migrate");
    assert!(output.stdout.is_empty(), "nothing is reported as copied");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_source_without_a_database_in_its_path_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = migrate_refused(dir.path(), "mongodb://127.0.0.1:1/", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("names no database"), "{err}");
}

#[test]
fn copying_orderds_own_mongodb_database_onto_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The Node variable selects orderd's store too: both now name database `shop`.
    let env = [("MONGODB_URI", "mongodb://127.0.0.1:1/shop")];
    let (code, err) = migrate_refused(dir.path(), "mongodb://127.0.0.1:1/shop", &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("names orderd's own database (shop)"), "{err}");
}

//! Crash test on the real binary: `orderd serve` (api, relay and consumer in one process, the
//! embedded queue and file mail) runs as a child process on a temporary data directory while
//! several clients place orders; it is killed with SIGKILL at random moments and restarted on
//! the same data each time. Afterwards every order that got a 201 must be `processed` with
//! exactly one confirmation e-mail, no outbox event may be left unpublished or dead, and the
//! stock taken must equal the units of every order the store holds.

#[path = "support/binary.rs"]
mod binary;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use binary::{Server, free_port, get, post, product_and_customer, wait_ready};

const KILLS: usize = 4;
const CLIENTS: usize = 4;
const INITIAL_STOCK: i64 = 100_000;

/// `orderd serve` with short visibility, claim and lease times, so work a SIGKILL left
/// behind is taken up again quickly.
fn start(data: &Path, port: u16, run: usize) -> Server {
    let env = [
        ("ORDERD_CONSUMER__VISIBILITY_MS", "2000".to_owned()),
        ("ORDERD_CONSUMER__EMAIL_CLAIM_MS", "2000".to_owned()),
        ("ORDERD_RELAY__LEASE_MS", "1000".to_owned()),
    ];
    binary::start(data, port, run, &env)
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
    let (admin, product_id, customer) =
        product_and_customer(&http, &base, "CRASH-TEA", INITIAL_STOCK).await;

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
    binary::sigterm(&server.child);
    let status = binary::wait_exit(&mut server.child, Duration::from_secs(15)).await;
    assert!(status.success(), "orderd stopped with {status}");
}

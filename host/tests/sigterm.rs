//! Graceful stop of the real binary under load: `orderd serve` (every role, the embedded queue,
//! SMTP mail to a slow in-process server) takes orders from several clients and gets SIGTERM
//! in the middle. It must exit 0 within its two drain budgets (HTTP, then the consumer), having
//! finished the e-mail sends it had started. Restarted on the same data it must process every
//! order that got a 201, and the mail server must have received each order's confirmation
//! exactly once — an e-mail cut off mid-send would be sent again after the restart.

#[path = "support/binary.rs"]
mod binary;
#[path = "delivery/smtp_sink.rs"]
mod smtp_sink;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use binary::{Server, free_port, get, post, product_and_customer, wait_exit, wait_ready};
use smtp_sink::SmtpSink;

const CLIENTS: usize = 4;
/// The HTTP drain budget given to orderd.
const HTTP_DRAIN_MS: u64 = 5_000;
/// The consumer drain budget given to orderd.
const CONSUMER_DRAIN_MS: u64 = 10_000;
/// How long the mail server takes to accept each message: long enough that SIGTERM finds
/// sends in flight.
const SEND_TIME: Duration = Duration::from_millis(150);

fn start(data: &Path, port: u16, run: usize, smtp: std::net::SocketAddr) -> Server {
    let env = [
        ("ORDERD_MAIL__TRANSPORT", "smtp".to_owned()),
        ("ORDERD_MAIL__SMTP__HOST", smtp.ip().to_string()),
        ("ORDERD_MAIL__SMTP__PORT", smtp.port().to_string()),
        ("ORDERD_MAIL__SMTP__SECURITY", "plain".to_owned()),
        ("ORDERD_HTTP__SHUTDOWN_GRACE_MS", HTTP_DRAIN_MS.to_string()),
        ("ORDERD_CONSUMER__DRAIN_MS", CONSUMER_DRAIN_MS.to_string()),
        // Short claims and visibility: a send cut off by the stop would be retried soon after
        // the restart and show up as a second copy, rather than as a long stall.
        ("ORDERD_CONSUMER__VISIBILITY_MS", "3000".to_owned()),
        ("ORDERD_CONSUMER__EMAIL_CLAIM_MS", "2000".to_owned()),
    ];
    binary::start(data, port, run, &env)
}

/// Order id → e-mails whose subject names it, and Message-ID → copies received.
fn deliveries(sink: &SmtpSink, ids: &[String]) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let (mut per_order, mut per_message_id) = (HashMap::new(), HashMap::new());
    for raw in sink.messages() {
        let mail = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .expect("parse a delivered e-mail");
        let message_id = mail.message_id().unwrap_or_default().to_owned();
        *per_message_id.entry(message_id).or_insert(0) += 1;
        let subject = mail.subject().unwrap_or_default();
        if let Some(id) = ids.iter().find(|id| subject.contains(id.as_str())) {
            *per_order.entry(id.clone()).or_insert(0) += 1;
        }
    }
    (per_order, per_message_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_under_load_lets_sends_finish_and_a_restart_processes_every_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let port = free_port();
    let sink = SmtpSink::start_slow(SEND_TIME).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut server = start(&data, port, 0, sink.addr);
    wait_ready(&http, &mut server).await;
    let base = server.base.clone();
    let (_, product_id, customer) = product_and_customer(&http, &base, "TERM-TEA", 100_000).await;

    // Clients place orders until told to stop; every 201 is remembered.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
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
            while !stop.load(Ordering::Relaxed) {
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

    // SIGTERM once the pipeline is busy: orders accepted and e-mails going out.
    let started = Instant::now();
    while sink.count() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no e-mails under load"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    binary::sigterm(&server.child);
    let budget = Duration::from_millis(HTTP_DRAIN_MS + CONSUMER_DRAIN_MS) + Duration::from_secs(5);
    let status = wait_exit(&mut server.child, budget).await;
    assert!(status.success(), "orderd stopped with {status}");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 20, "too few orders: {}", accepted.len());
    let log = std::fs::read_to_string(data.join("serve-0.log")).unwrap();
    assert!(
        !log.contains("drain budget over") && !log.contains("drain deadline passed"),
        "a drain ran out of time:\n{log}"
    );

    // Restarted on the same data, every accepted order is processed.
    let mut server = start(&data, port, 1, sink.addr);
    wait_ready(&http, &mut server).await;
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
    binary::sigterm(&server.child);
    let status = wait_exit(&mut server.child, budget).await;
    assert!(status.success(), "orderd stopped with {status}");

    // Each order's confirmation reached the mail server once.
    let (per_order, per_message_id) = deliveries(&sink, &accepted);
    for id in &accepted {
        assert_eq!(
            per_order.get(id),
            Some(&1),
            "order {id}: {:?} e-mails",
            per_order.get(id)
        );
    }
    let repeated: Vec<_> = per_message_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "Message-IDs received more than once: {repeated:?}"
    );
    eprintln!(
        "{} accepted orders across a SIGTERM under load: all processed, one e-mail each",
        accepted.len()
    );
}

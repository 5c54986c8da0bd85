//! The fault scenarios themselves (see the parent module for what each checks).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;

use super::proxy::Proxy;
use super::services::{self, missing_python_module};
use super::verify::{stock_mismatches, verify};
use super::{FaultArgs, Steady};
use crate::api::Api;
use crate::load::Fixture;
use crate::server::{ServerSpec, free_port};
use crate::target::fresh_spec;

/// Initial stock of every product the fixture creates.
const INITIAL_STOCK: i64 = 1_000_000_000;

/// A fresh spec whose plugin artifacts are cached in the data directory, so a restart skips
/// compiling the default plugins, as a production restart on the same disk would.
fn spec_with_cache(
    binary: &Path,
    extra: &[(&str, String)],
) -> anyhow::Result<(ServerSpec, tempfile::TempDir)> {
    let (mut spec, dir) = fresh_spec(binary, &[])?;
    let cache = spec.data_dir.join("plugin-cache");
    spec.env.insert(
        "ORDERD_PLUGINS__CACHE_DIR".into(),
        cache.display().to_string(),
    );
    for (key, value) in extra {
        spec.env.insert((*key).to_owned(), value.clone());
    }
    Ok((spec, dir))
}

/// Settings that send mail over SMTP to `port` on loopback, without TLS.
fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("ORDERD_MAIL__TRANSPORT", "smtp".into()),
        ("ORDERD_MAIL__SMTP__HOST", "127.0.0.1".into()),
        ("ORDERD_MAIL__SMTP__PORT", port.to_string()),
        ("ORDERD_MAIL__SMTP__SECURITY", "plain".into()),
        ("ORDERD_MAIL__SMTP__TIMEOUT_MS", "2000".into()),
    ]
}

/// SIGKILL during load, restart on the same data, then check every acknowledged order.
pub async fn kills(args: &FaultArgs, binary: &Path) -> anyhow::Result<bool> {
    // Over SMTP every delivery is its own file, so a second delivery of one event shows; the
    // file transport names files by Message-ID and folds such repeats into one.
    let smtp_missing = missing_python_module("aiosmtpd");
    let root = tempfile::tempdir().context("Failed to create a temporary directory")?;
    let maildir = root.path().join("maildir");
    let sink = match &smtp_missing {
        None => Some(services::smtp_sink(&maildir, &root.path().join("smtp.log")).await?),
        Some(reason) => {
            println!(
                "  e-mail: file transport (repeats of one Message-ID fold into one file, so deliveries cannot be counted): {reason}"
            );
            None
        }
    };
    let extra = sink.as_ref().map(|s| smtp_env(s.port)).unwrap_or_default();
    let (spec, _dir) = spec_with_cache(binary, &extra)?;
    let mail_dir = if sink.is_some() {
        maildir.join("new")
    } else {
        spec.mail_dir()
    };
    spec.create_admin()?;
    let mut server = spec.start().await?;
    let fixture = Fixture::set_up(Api::new(&spec.url(), args.clients)?, 16, 10).await?;
    let steady = Steady::start(&fixture, args.clients, Duration::ZERO);
    let started = Instant::now();
    for k in 1..=args.kills {
        let wait = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let spec = server.kill()?;
        eprintln!(
            "  kill {k}/{} after {wait} ms: {} orders acknowledged so far",
            args.kills,
            steady.acked()
        );
        server = spec.start().await?;
    }
    while steady.acked() < args.min_orders {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (acked, unacked) = steady.finish().await;
    let load_time = started.elapsed();
    let verdict = verify(
        &fixture,
        &acked,
        &mail_dir,
        sink.is_some(),
        Duration::from_secs(120),
    )
    .await?;
    let (mismatches, stored) = stock_mismatches(&fixture, INITIAL_STOCK).await?;
    let outbox = outbox_gauges(&fixture.api).await;
    println!(
        "  {} SIGKILLs over {:.1} s of load; {} requests not acknowledged (refused, cut off or failed)",
        args.kills,
        load_time.as_secs_f64(),
        unacked
    );
    verdict.print("kills");
    println!(
        "  stored orders {stored} (acknowledged {} + committed but unanswered {}); stock mismatches: {}",
        acked.len(),
        stored.saturating_sub(acked.len()),
        if mismatches.is_empty() {
            "none".to_owned()
        } else {
            mismatches.join("; ")
        }
    );
    println!("  outbox: {outbox}");
    drop(server);
    Ok(verdict.met() && mismatches.is_empty())
}

/// Orders queued while no consumer runs; then a consumer process drains them.
pub async fn backlog(args: &FaultArgs, binary: &Path) -> anyhow::Result<bool> {
    let (mut spec, _dir) = spec_with_cache(binary, &[])?;
    spec.roles = "api,relay".into();
    spec.create_admin()?;
    let api_server = spec.start().await?;
    let fixture = Fixture::set_up(Api::new(&spec.url(), 16)?, 16, 10).await?;
    let steady = Steady::start(&fixture, 16, Duration::ZERO);
    let started = Instant::now();
    while steady.acked() < args.backlog_orders {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (acked, _) = steady.finish().await;
    let fill = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut pending = 0;
    for id in acked.iter().take(50) {
        if fixture
            .api
            .order(&fixture.admin, id)
            .await?
            .is_some_and(|o| o.status == "pending")
        {
            pending += 1;
        }
    }
    println!(
        "  queued {} orders in {:.1} s with no consumer; {pending} of the first 50 still pending; outbox: {}",
        acked.len(),
        fill.as_secs_f64(),
        outbox_gauges(&fixture.api).await
    );
    let mut consumer_spec = spec.clone();
    consumer_spec.roles = "consumer".into();
    consumer_spec.port = free_port()?;
    consumer_spec.log = spec.log.with_file_name("consumer.log");
    let drain_start = Instant::now();
    let consumer = consumer_spec.start().await?;
    let verdict = verify(
        &fixture,
        &acked,
        &spec.mail_dir(),
        false,
        Duration::from_secs(300),
    )
    .await?;
    let drained = drain_start.elapsed();
    println!(
        "  consumer started: backlog drained in {:.1} s ({:.0} orders/s, start-up included)",
        drained.as_secs_f64(),
        acked.len() as f64 / drained.as_secs_f64()
    );
    verdict.print("backlog");
    consumer.stop(Duration::from_secs(15)).await?;
    api_server.stop(Duration::from_secs(15)).await?;
    Ok(pending == 50.min(acked.len()) && verdict.met())
}

/// The SMTP server becomes unreachable mid-run, then returns.
pub async fn smtp_cut(args: &FaultArgs, binary: &Path) -> anyhow::Result<bool> {
    if let Some(reason) = missing_python_module("aiosmtpd") {
        println!("  skipped: {reason}");
        return Ok(true);
    }
    let root = tempfile::tempdir().context("Failed to create a temporary directory")?;
    let maildir = root.path().join("maildir");
    let sink = services::smtp_sink(&maildir, &root.path().join("smtp.log")).await?;
    let proxy = Proxy::start(format!("127.0.0.1:{}", sink.port)).await?;
    let (spec, _dir) = spec_with_cache(binary, &smtp_env(proxy.port))?;
    let mail = MailSink {
        dir: maildir.join("new"),
        every_delivery_kept: true,
    };
    outage_run(args, spec, &proxy, &mail, "smtp-cut").await
}

/// The SQS endpoint becomes unreachable mid-run, then returns.
pub async fn sqs_cut(args: &FaultArgs, binary: &Path) -> anyhow::Result<bool> {
    if let Some(reason) = missing_python_module("moto") {
        println!("  skipped: {reason}");
        return Ok(true);
    }
    let root = tempfile::tempdir().context("Failed to create a temporary directory")?;
    let moto = services::sqs_server(&root.path().join("sqs.log")).await?;
    let proxy = Proxy::start(format!("127.0.0.1:{}", moto.port)).await?;
    let name = "bench-events";
    let settings = orderd::delivery::queue::QueueSettings {
        backend: orderd::delivery::queue::QueueBackend::Sqs,
        name: name.into(),
        endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
        region: Some("us-east-1".into()),
        ..Default::default()
    };
    let client = orderd::delivery::queue::sqs::client(&settings).await;
    orderd::delivery::queue::sqs::create_queues(&client, name, false, settings.max_receives)
        .await
        .context("Failed to create the SQS queues")?;
    let extra = [
        ("ORDERD_QUEUE__BACKEND", "sqs".to_owned()),
        ("ORDERD_QUEUE__NAME", name.to_owned()),
        (
            "ORDERD_QUEUE__ENDPOINT",
            format!("http://127.0.0.1:{}", proxy.port),
        ),
        ("ORDERD_QUEUE__REGION", "us-east-1".to_owned()),
        ("ORDERD_RELAY__BACKOFF_CAP_MS", "2000".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    let (spec, _dir) = spec_with_cache(binary, &extra)?;
    let mail = MailSink {
        dir: spec.mail_dir(),
        every_delivery_kept: false,
    };
    outage_run(args, spec, &proxy, &mail, "sqs-cut").await
}

/// Where a scenario's e-mails end up.
struct MailSink {
    /// The directory of message files.
    dir: PathBuf,
    /// One file per delivery (an SMTP sink's Maildir) rather than one per Message-ID.
    every_delivery_kept: bool,
}

/// ~100 orders/s for 3 s, the proxy cut for `--outage` seconds, 4 s more after restoring,
/// then the usual verdict.
async fn outage_run(
    args: &FaultArgs,
    spec: ServerSpec,
    proxy: &Proxy,
    mail: &MailSink,
    label: &str,
) -> anyhow::Result<bool> {
    spec.create_admin()?;
    let server = spec.start().await?;
    let fixture = Fixture::set_up(Api::new(&spec.url(), 4)?, 4, 10).await?;
    let steady = Steady::start(&fixture, 4, Duration::from_millis(40));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = steady.acked();
    proxy.cut();
    tokio::time::sleep(Duration::from_secs_f64(args.outage)).await;
    let waiting = waiting_among_last(&fixture, &steady, 20).await;
    proxy.restore();
    let during = steady.acked() - before;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (acked, unacked) = steady.finish().await;
    let started = Instant::now();
    let verdict = verify(
        &fixture,
        &acked,
        &mail.dir,
        mail.every_delivery_kept,
        Duration::from_secs(120),
    )
    .await?;
    println!(
        "  outage {:.0} s: {during} orders acknowledged during it ({waiting} of the last 20 waiting at its end), {unacked} requests not acknowledged; all settled {:.1} s after the load",
        args.outage,
        started.elapsed().as_secs_f64()
    );
    verdict.print(label);
    println!("  outbox: {}", outbox_gauges(&fixture.api).await);
    server.stop(Duration::from_secs(15)).await?;
    Ok(verdict.met())
}

/// How many of the `n` most recently acknowledged orders are not processed yet.
async fn waiting_among_last(fixture: &Fixture, steady: &Steady, n: usize) -> usize {
    let last: Vec<String> = {
        let acked = steady.acked.lock().expect("acked lock");
        acked.iter().rev().take(n).cloned().collect()
    };
    let mut waiting = 0;
    for id in &last {
        if let Ok(Some(order)) = fixture.api.order(&fixture.admin, id).await
            && order.status != "processed"
        {
            waiting += 1;
        }
    }
    waiting
}

/// The `orderd_outbox_events` gauges from `/metrics`, e.g. `pending=0 published=2000`.
async fn outbox_gauges(api: &Api) -> String {
    let Ok(resp) = api.http.get(api.url("/metrics")).send().await else {
        return "unavailable".into();
    };
    let text = resp.text().await.unwrap_or_default();
    let gauges: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("orderd_outbox_events{"))
        .filter_map(|l| {
            let status = l.split("status=\"").nth(1)?.split('"').next()?;
            let value = l.rsplit(' ').next()?;
            Some(format!("{status}={value}"))
        })
        .collect();
    if gauges.is_empty() {
        "no orderd_outbox_events gauge".into()
    } else {
        gauges.join(" ")
    }
}

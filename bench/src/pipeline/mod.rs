//! `orderd-bench pipeline`: the whole pipeline of one process, in one command.
//!
//! Each run starts `orderd serve --roles api,relay,consumer` on a fresh data directory
//! (embedded SQLite store and queue, the default plugins, the file mail transport) and:
//!
//! 1. **closed loop** — `--clients` keep-alive clients place orders for `--duration` seconds;
//!    the server's `orderd_orders_placed_total` / `orderd_orders_processed_total` counters,
//!    read before and after, give what was accepted and processed meanwhile, the backlog at
//!    the stop, and (polling every 50 ms) how long the pipeline takes to catch up;
//! 2. **open loop** — once caught up, `--rate` orders/s for `--open-seconds`, then every
//!    order's commit → processed latency from its own `createdAt` and `processedAt`;
//! 3. **memory** — the server's peak RSS during the closed loop and its RSS 5 s after the
//!    load and the drain;
//! 4. **raw store** — with the server stopped, the four store transactions of one order's life
//!    (place, two status transitions, inbox) from `--raw-workers` tasks on a SQLite file of
//!    their own, through the host library: the ceiling the pipeline is compared with.
//!
//! `--runs N` repeats everything on fresh servers; the summary gives each figure's median
//! with min–max, and a goal counts as met when the median meets it.
//!
//! Every run's data directory is kept until the last run has ended. A run leaves tens of
//! thousands of `.eml` files, and on ext4 without a journal (this project's benchmark machine)
//! creating a file within a minute or more of many deletions scans past the freed inodes:
//! deleting a run's files before the next run made that run's mail writes several times
//! dearer (BENCHMARKS.md, Pipeline). For the same reason, leave a few minutes between two
//! invocations.

mod counters;
mod phases;
mod report;
mod summary;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::api::Api;
use crate::inproc::Bench;
use crate::load::{self, Fixture, Plan};
use crate::load_cmd::secs;
use crate::server::{self, read_memory};
use crate::target::{fresh_spec, parse_env};
use counters::wait_for_drain;
use phases::DRAIN_POLL;
use report::RunReport;

/// Products in the catalog (each order takes 1–3 of them).
const CATALOG: usize = 200;
/// Seconds between the drain and the "after" memory reading.
const SETTLE_SECONDS: u64 = 5;

/// Options of `pipeline`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The orderd binary to start (default: target/release/orderd of this workspace).
    #[arg(long)]
    pub orderd: Option<PathBuf>,
    /// Extra settings for the started orderd, `KEY=VALUE`.
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Concurrent keep-alive clients of the closed loop.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds of the closed loop.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Seconds of closed-loop warm-up before it (not reported; its backlog is drained first).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Offered orders/s of the open loop.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds of the open loop.
    #[arg(long, default_value_t = 10.0)]
    pub open_seconds: f64,
    /// Orders whose commit → processed latency is read back (default: every acknowledged one).
    #[arg(long)]
    pub lag_sample: Option<usize>,
    /// Concurrent tasks of the raw-store phase.
    #[arg(long, default_value_t = 64)]
    pub raw_workers: usize,
    /// Seconds of the raw-store phase.
    #[arg(long, default_value_t = 5.0)]
    pub raw_seconds: f64,
    /// Seconds to wait for the pipeline to catch up before the drain counts as not done.
    #[arg(long, default_value_t = 120.0)]
    pub drain_limit: f64,
    /// Further seconds to wait, after a drain that was not done, before giving up on the open
    /// loop (it must start on an empty backlog).
    #[arg(long, default_value_t = 300.0)]
    pub settle_limit: f64,
    /// Repetitions on fresh servers (a goal's figure is the median of at least 3).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Keep every run's data directory (database, mail files, log) and print where, instead
    /// of removing them at the end: for looking at what a run left, or for back-to-back
    /// invocations that must not follow a mass deletion (see the module docs).
    #[arg(long)]
    pub keep_data: bool,
}

/// Runs the `pipeline` command.
pub async fn run(args: PipelineArgs) -> anyhow::Result<()> {
    let binary = args.orderd.clone().unwrap_or_else(server::default_binary);
    let runs = args.runs.max(1);
    let started = chrono::Utc::now();
    let mut figures = Vec::with_capacity(runs);
    // Removed only after the last run (see the module docs).
    let mut data_dirs = Vec::with_capacity(runs);
    for k in 1..=runs {
        eprintln!("== pipeline run {k}/{runs} ==");
        let (report, data_dir) = run_once(&args, &binary).await?;
        data_dirs.push(data_dir);
        println!("\n== pipeline run {k}/{runs} ==");
        report.print(&args);
        figures.push(report.figures(&args));
    }
    println!(
        "\n== pipeline summary: {runs} run(s), {} ==",
        started.format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "command: orderd-bench {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "closed loop {} clients × {:.0} s; open loop {:.0}/s × {:.0} s; raw store {} tasks × {:.0} s; all roles in one orderd, embedded store and queue, file mail",
        args.clients,
        args.duration,
        args.rate,
        args.open_seconds,
        args.raw_workers,
        args.raw_seconds
    );
    if runs < 3 {
        println!("(fewer than 3 runs: these figures cannot support a goal claim)");
    }
    summary::print_table(&figures);
    if args.keep_data {
        for dir in data_dirs {
            println!("kept: {}", dir.keep().display());
        }
    }
    Ok(())
}

/// One run on a fresh server, then the raw-store phase with that server stopped; the run's
/// data directory is returned for the caller to remove.
async fn run_once(
    args: &PipelineArgs,
    binary: &std::path::Path,
) -> anyhow::Result<(RunReport, tempfile::TempDir)> {
    let (mut spec, data_dir) = fresh_spec(binary, &[])?;
    spec.env
        .insert("ORDERD_MAIL__TRANSPORT".into(), "file".into());
    for (key, value) in &args.env {
        spec.env.insert(key.clone(), value.clone());
    }
    spec.create_admin()?;
    let server = spec.start().await?;
    let pid = server.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = read_memory(pid).ok();
    let api = Api::new(&spec.url(), args.clients)?;
    eprintln!("setting up customers and {CATALOG} products …");
    let fixture = Fixture::set_up(api.clone(), args.clients.clamp(1, 64), CATALOG).await?;
    let drain_limit = secs(args.drain_limit);
    if args.warmup > 0.0 {
        let warm = Plan {
            clients: args.clients,
            duration: secs(args.warmup),
            rate: None,
            progress: false,
        };
        load::drive(&fixture, &warm).await;
        eprintln!("warm-up sent; waiting for its backlog …");
        let warm_drain = wait_for_drain(&api, DRAIN_POLL, drain_limit).await;
        anyhow::ensure!(
            warm_drain.caught_up,
            "the warm-up's backlog ({:.0} orders) was not processed within {:.0} s",
            warm_drain.last.backlog(),
            args.drain_limit
        );
    }

    eprintln!(
        "closed loop: {} clients for {:.0} s …",
        args.clients, args.duration
    );
    let plan = Plan {
        clients: args.clients,
        duration: secs(args.duration),
        rate: None,
        progress: true,
    };
    let closed = phases::closed_loop(&fixture, pid, &plan).await?;
    eprintln!(
        "load stopped with {:.0} orders not yet processed; polling /metrics until they are …",
        closed.backlog()
    );
    let drain = wait_for_drain(&api, DRAIN_POLL, drain_limit).await;
    let settle = if drain.caught_up {
        None
    } else {
        eprintln!(
            "not caught up within {:.0} s; waiting up to {:.0} s more before the open loop …",
            args.drain_limit, args.settle_limit
        );
        Some(wait_for_drain(&api, Duration::from_millis(500), secs(args.settle_limit)).await)
    };
    let caught_up = drain.caught_up || settle.is_some_and(|s| s.caught_up);
    tokio::time::sleep(Duration::from_secs(SETTLE_SECONDS)).await;
    let after = read_memory(pid).ok();

    let open = if caught_up {
        eprintln!(
            "open loop: {:.0} orders/s for {:.0} s …",
            args.rate, args.open_seconds
        );
        Some(
            phases::open_loop(
                &fixture,
                args.clients,
                args.rate,
                secs(args.open_seconds),
                drain_limit,
                args.lag_sample,
            )
            .await,
        )
    } else {
        eprintln!("the backlog never drained: no open loop in this run");
        None
    };
    server
        .stop(Duration::from_secs(15))
        .await
        .context("Failed to stop orderd")?;

    eprintln!(
        "raw store: {} tasks for {:.0} s on a fresh SQLite file …",
        args.raw_workers, args.raw_seconds
    );
    let bench = Bench::new(CATALOG).await?;
    bench.pipeline_raw_rate(args.raw_workers, secs(0.5)).await;
    let raw_started = Instant::now();
    let (raw, _) = bench
        .pipeline_raw_rate(args.raw_workers, secs(args.raw_seconds))
        .await;
    let raw_elapsed = raw_started.elapsed();
    anyhow::ensure!(
        raw.failed() == 0,
        "raw store orders failed: {}",
        raw.status_summary()
    );
    let report = RunReport {
        idle,
        closed,
        drain,
        settle,
        after,
        open,
        raw,
        raw_elapsed,
    };
    Ok((report, data_dir))
}

//! `orderd-bench compare`: the side-by-side figures in one run.
//!
//! In process (host library, no HTTP): the order service with the WebAssembly slots versus
//! the same rules compiled natively behind the same `RuleProvider` trait, the rules alone per
//! call, and the raw store transaction. Against a started orderd: the closed-loop HTTP rate
//! (→ HTTP/raw ratio), commit → processed at a fixed rate, hot swaps of the tax plugin under
//! load, and logins plus health checks during load.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::inproc::{self, Bench};
use crate::load::{self, Fixture, Plan};
use crate::load_cmd::{print_memory, print_outcome, secs};
use crate::stats::{Recorder, goal_line, lag_histogram};
use crate::target::{Target, TargetArgs};

/// Products in the catalog of every phase (each order takes 1–3 of them).
const CATALOG: usize = 200;

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Seconds per measured phase (the hot-swap phases always take `--swap-seconds`).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Concurrent clients of the closed-loop phases (and workers of the in-process ones).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Offered orders/s of the hot-swap and commit → processed phases.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds of each hot-swap phase (without, then with swaps).
    #[arg(long, default_value_t = 10.0)]
    pub swap_seconds: f64,
    /// Milliseconds between two tax-plugin uploads.
    #[arg(long, default_value_t = 200)]
    pub swap_every_ms: u64,
    /// Directory with gst_tax.wasm and flat_tax.wasm (default: the build's plugin directory).
    #[arg(long)]
    pub plugin_dir: Option<PathBuf>,
    /// Skip the in-process phases.
    #[arg(long)]
    pub skip_inproc: bool,
}

/// Runs the `compare` command.
pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    let phase = secs(args.duration);
    let inproc = if args.skip_inproc {
        None
    } else {
        Some(in_process(&args, phase).await?)
    };

    let mut target = Target::open(&args.target, args.clients).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = target.memory();
    eprintln!("setting up customers and products …");
    let fixture = Fixture::set_up(target.api.clone(), args.clients.min(64), CATALOG).await?;
    load::drive(
        &fixture,
        &Plan {
            clients: args.clients,
            duration: secs(1.0),
            rate: None,
            progress: false,
        },
    )
    .await;

    eprintln!("HTTP, closed loop, {} clients …", args.clients);
    let closed_plan = Plan {
        clients: args.clients,
        duration: phase,
        rate: None,
        progress: true,
    };
    let closed = load::drive(&fixture, &closed_plan).await;
    let rate_plan = Plan {
        clients: args.clients,
        duration: phase,
        rate: Some(args.rate),
        progress: false,
    };

    // The closed loop outran the consumer: let it catch up, so that the commit → processed
    // sample of the next phase measures the pipeline, not this backlog.
    drain(&fixture, &closed.created).await;
    eprintln!(
        "hot swap: {:.0} s at {:.0}/s without swaps, then with swaps …",
        args.swap_seconds, args.rate
    );
    let swap = hot_swap(&fixture, &args).await?;
    let (lags, missing) =
        load::processing_lags(&fixture, &swap.quiet_created, 2000, Duration::from_secs(30)).await;

    let mut sides: Vec<SideTraffic> = Vec::new();
    for (plan, logins) in [
        (&closed_plan, false),
        (&closed_plan, true),
        (&rate_plan, true),
    ] {
        // Each phase starts once the consumer has caught up with the one before it.
        let previous = sides
            .last()
            .map_or(&swap.swapping_created, |side| &side.created);
        drain(&fixture, previous).await;
        let label = format!(
            "{} {}",
            if logins {
                "logins and health during"
            } else {
                "health alone during"
            },
            crate::load_cmd::describe(plan)
        );
        eprintln!("{label} …");
        sides.push(side_traffic(&fixture, plan, logins, label).await);
    }
    let peak = target.memory();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = target.memory();

    println!("\n== compare ==");
    if let Some(ip) = &inproc {
        println!(
            "in process (order service, no HTTP; {} workers, {:.0} s each):",
            args.clients, args.duration
        );
        let cost = 1.0 - ip.wasm_rate / ip.native_rate;
        goal_line(
            "service with WASM slots",
            &format!(
                "{:.0} orders/s p99 {:.2} ms",
                ip.wasm_rate,
                ip.wasm.ms(0.99)
            ),
            "-",
            None,
        );
        goal_line(
            "service with native rules",
            &format!(
                "{:.0} orders/s p99 {:.2} ms",
                ip.native_rate,
                ip.native.ms(0.99)
            ),
            "-",
            None,
        );
        goal_line(
            "WASM throughput cost",
            &format!("{:.1}%", cost * 100.0),
            "≤ 15%",
            Some(cost <= 0.15),
        );
        goal_line(
            "validate + tax per order",
            &format!(
                "WASM {:.1} + {:.1} µs / native {:.2} + {:.2} µs",
                ip.wasm_rules.validate_us,
                ip.wasm_rules.tax_us,
                ip.native_rules.validate_us,
                ip.native_rules.tax_us
            ),
            "-",
            None,
        );
        goal_line(
            "raw store transaction",
            &format!("{:.0} tx/s", ip.raw_rate),
            "-",
            None,
        );
    }
    println!("HTTP against orderd:");
    print_outcome(&closed, &closed_plan);
    if let Some(ip) = &inproc {
        let ratio = closed.rate() / ip.raw_rate;
        goal_line(
            "HTTP / raw store rate",
            &format!("{:.0}%", ratio * 100.0),
            "≥ 50%",
            Some(ratio >= 0.5),
        );
    }
    let lag = lag_histogram(&lags);
    goal_line(
        &format!("commit → processed @{:.0}/s", args.rate),
        &format!("p50 {:.1} ms p99 {:.1} ms", lag.ms(0.5), lag.ms(0.99)),
        "p99 ≤ 100 ms",
        (args.rate <= 500.0).then_some(lag.ms(0.99) <= 100.0 && missing == 0),
    );
    println!(
        "  ({} orders sampled, {missing} not processed within 30 s)",
        lags.len()
    );
    swap.print();
    println!("side traffic (argon2 logins must not stall the runtime):");
    for side in &sides {
        side.print();
    }
    print_memory(idle, peak, after);
    if args.target.keep {
        target.keep();
    }
    Ok(())
}

/// In-process figures.
struct InProcess {
    wasm: Recorder,
    wasm_rate: f64,
    native: Recorder,
    native_rate: f64,
    raw_rate: f64,
    wasm_rules: inproc::RulesCost,
    native_rules: inproc::RulesCost,
}

async fn in_process(args: &CompareArgs, phase: Duration) -> anyhow::Result<InProcess> {
    eprintln!("in process: starting the plugin runtime …");
    let wasm_rules = inproc::wasm_rules().await?;
    let native_rules = inproc::native_rules();
    let bench = Bench::new(CATALOG).await?;
    // Warm both paths (instance pool, page cache) before measuring.
    bench
        .service_rate(wasm_rules.clone(), args.clients, secs(0.5))
        .await;
    bench
        .service_rate(native_rules.clone(), args.clients, secs(0.5))
        .await;
    eprintln!("in process: rules per call …");
    let wasm_cost = bench.rules_cost(wasm_rules.as_ref(), secs(1.0)).await?;
    let native_cost = bench.rules_cost(native_rules.as_ref(), secs(1.0)).await?;
    eprintln!("in process: order service with WASM, then native, then the raw transaction …");
    let (wasm, wasm_rate) = bench.service_rate(wasm_rules, args.clients, phase).await;
    let (native, native_rate) = bench.service_rate(native_rules, args.clients, phase).await;
    let (raw, raw_rate) = bench.raw_rate(args.clients, phase).await;
    anyhow::ensure!(
        raw.failed() == 0 && wasm.failed() == 0 && native.failed() == 0,
        "in-process orders failed"
    );
    Ok(InProcess {
        wasm,
        wasm_rate,
        native,
        native_rate,
        raw_rate,
        wasm_rules: wasm_cost,
        native_rules: native_cost,
    })
}

/// Hot-swap figures: an open-loop phase without swaps, then one with swaps.
struct SwapOutcome {
    quiet: Recorder,
    quiet_created: Vec<String>,
    swapping: Recorder,
    swapping_created: Vec<String>,
    uploads: Recorder,
}

impl SwapOutcome {
    fn print(&self) {
        let failed = self.swapping.failed();
        goal_line(
            "non-2xx orders during swaps",
            &format!("{failed} of {}", self.swapping.total()),
            "0",
            Some(failed == 0),
        );
        goal_line(
            "order p99 without / with swaps",
            &format!(
                "{:.2} / {:.2} ms",
                self.quiet.ms(0.99),
                self.swapping.ms(0.99)
            ),
            "-",
            None,
        );
        println!(
            "  uploads: {} ({}), upload p50 {:.1} ms; orders with swaps: {}",
            self.uploads.total(),
            self.uploads.status_summary(),
            self.uploads.ms(0.5),
            self.swapping.status_summary()
        );
    }
}

async fn hot_swap(fixture: &Fixture, args: &CompareArgs) -> anyhow::Result<SwapOutcome> {
    let dir = args
        .plugin_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(orderd::plugins::PLUGIN_DIR));
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("Failed to read {name} in {}", dir.display()))
    };
    let components = Arc::new([read("flat_tax.wasm")?, read("gst_tax.wasm")?]);
    let plan = Plan {
        clients: args.clients,
        duration: secs(args.swap_seconds),
        rate: Some(args.rate),
        progress: true,
    };
    let quiet = load::drive(fixture, &plan).await;

    let stop = Arc::new(AtomicBool::new(false));
    let uploads = {
        let (api, admin, stop, components) = (
            fixture.api.clone(),
            fixture.admin.clone(),
            stop.clone(),
            components.clone(),
        );
        let every = Duration::from_millis(args.swap_every_ms);
        tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut tick = tokio::time::interval(every);
            // An upload slower than the period delays the next one instead of bunching up.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let component = components[i % 2].clone();
                i += 1;
                let started = std::time::Instant::now();
                let status = api
                    .upload_plugin(&admin, "tax", component)
                    .await
                    .map_or(0, |s| s);
                rec.record(status, started.elapsed());
            }
            rec
        })
    };
    let swapping = load::drive(fixture, &plan).await;
    stop.store(true, Ordering::Relaxed);
    let uploads = uploads.await.context("the upload task failed")?;
    Ok(SwapOutcome {
        quiet: quiet.orders,
        quiet_created: quiet.created,
        swapping: swapping.orders,
        swapping_created: swapping.created,
        uploads,
    })
}

/// Side-traffic figures of one phase.
struct SideTraffic {
    /// What the phase was.
    label: String,
    login: Recorder,
    health: Recorder,
    orders: Recorder,
    orders_rate: f64,
    /// Orders created meanwhile (the next phase waits for them to be processed).
    created: Vec<String>,
}

impl SideTraffic {
    fn print(&self) {
        println!("  {}:", self.label);
        if self.login.total() > 0 {
            goal_line(
                "  login p99 (20/s)",
                &format!("{:.2} ms", self.login.ms(0.99)),
                "-",
                None,
            );
        }
        goal_line(
            "  health p99 (20/s)",
            &format!("{:.2} ms", self.health.ms(0.99)),
            "≤ 5 ms",
            Some(self.health.ms(0.99) <= 5.0),
        );
        println!(
            "      logins {}; health {}; orders {:.0}/s, {}",
            self.login.status_summary(),
            self.health.status_summary(),
            self.orders_rate,
            self.orders.percentiles()
        );
    }
}

/// Health checks at 20/s (and, with `logins`, 20 logins/s) while `plan` sends orders.
async fn side_traffic(fixture: &Fixture, plan: &Plan, logins: bool, label: String) -> SideTraffic {
    let quiet_plan = Plan {
        progress: false,
        ..plan.clone()
    };
    let (api, customers) = (fixture.api.clone(), fixture.customers.clone());
    let login_rate = if logins { 20.0 } else { 0.0 };
    let login_task = async move {
        if login_rate == 0.0 {
            return Recorder::default();
        }
        load::paced(login_rate, quiet_plan.duration, move |i| {
            let (api, customer) = (api.clone(), customers[i as usize % customers.len()].clone());
            async move { load::login_status(&api, &customer).await }
        })
        .await
    };
    let api = fixture.api.clone();
    let health = load::paced(20.0, plan.duration, move |_| {
        let api = api.clone();
        async move { load::health_status(&api).await }
    });
    let (orders, login, health) =
        tokio::join!(load::drive(fixture, &quiet_plan), login_task, health);
    SideTraffic {
        label,
        login,
        health,
        orders_rate: orders.rate(),
        orders: orders.orders,
        created: orders.created,
    }
}

/// Waits (up to two minutes) until the newest of `created` are processed, so the next phase
/// does not inherit the consumer's backlog.
async fn drain(fixture: &Fixture, created: &[String]) {
    let newest: Vec<String> = created.iter().rev().take(20).cloned().collect();
    let (_, missing) =
        load::processing_lags(fixture, &newest, newest.len(), Duration::from_secs(120)).await;
    if missing > 0 {
        eprintln!("warning: {missing} orders still unprocessed after two minutes");
    }
}

//! `orderd-bench load`: one load run with its full report — orders/s, latency percentiles,
//! answers by status, commit → processed lag, and the server's idle and peak memory.

use std::time::Duration;

use clap::Args;

use crate::load::{self, Fixture, Outcome, Plan};
use crate::server::{Memory, mib};
use crate::stats::{goal_line, lag_histogram};
use crate::target::{Target, TargetArgs};

/// Options of `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Offered orders per second (open loop); without it, each client sends as fast as it is
    /// answered (closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Customers to register (orders rotate through them); default: one per client, ≤ 64.
    #[arg(long)]
    pub customers: Option<usize>,
    /// Products in the catalog (each order takes 1–3 of them).
    #[arg(long, default_value_t = 200)]
    pub products: usize,
    /// Seconds of warm-up, sent like the measured run, before measuring (not reported).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Orders whose commit → processed lag is read back (a sample of the created ones).
    #[arg(long, default_value_t = 2000)]
    pub lag_sample: usize,
    /// Run this tax component as the tax slot's shadow during the run (`mode=shadow`).
    #[arg(long)]
    pub shadow: Option<std::path::PathBuf>,
    /// Config of the shadow, as key=value (repeatable).
    #[arg(long = "shadow-config", value_name = "KEY=VALUE")]
    pub shadow_config: Vec<String>,
}

/// Runs the `load` command.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let mut target = Target::open(&args.target, args.clients).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = target.memory();
    let customers = args.customers.unwrap_or(args.clients.min(64));
    eprintln!(
        "setting up {customers} customers and {} products …",
        args.products
    );
    let fixture = Fixture::set_up(target.api.clone(), customers, args.products).await?;
    let shadow_admin = match &args.shadow {
        Some(path) => {
            let wasm = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("Failed to read {}: {e}", path.display()))?;
            let admin = target.api.admin_token().await?;
            crate::shadow::start(&target.api, &admin, wasm, &args.shadow_config).await?;
            eprintln!("shadow running in the tax slot: {}", path.display());
            Some(admin)
        }
        None => None,
    };
    if args.warmup > 0.0 {
        // Warm up the way the run sends, so a closed-loop burst leaves no backlog behind
        // for an open-loop run to inherit.
        let warm = Plan {
            clients: args.clients,
            duration: secs(args.warmup),
            rate: args.rate,
            progress: false,
        };
        load::drive(&fixture, &warm).await;
    }
    let plan = Plan {
        clients: args.clients,
        duration: secs(args.duration),
        rate: args.rate,
        progress: true,
    };
    eprintln!("driving POST /api/orders: {} …", describe(&plan));
    let outcome = load::drive(&fixture, &plan).await;
    let (lags, missing) = load::processing_lags(
        &fixture,
        &outcome.created,
        args.lag_sample,
        Duration::from_secs(30),
    )
    .await;
    let peak = target.memory();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = target.memory();
    println!("\n== load: {} ==", describe(&plan));
    print_outcome(&outcome, &plan);
    let lag = lag_histogram(&lags);
    let lag_goal = args.rate.is_some_and(|r| r <= 500.0);
    goal_line(
        "commit → processed",
        &format!("p50 {:.1} ms p99 {:.1} ms", lag.ms(0.5), lag.ms(0.99)),
        "p99 ≤ 100 ms @500/s",
        lag_goal.then_some(lag.ms(0.99) <= 100.0 && missing == 0),
    );
    println!(
        "  ({} orders sampled, {missing} not processed within 30 s)",
        lags.len()
    );
    print_memory(idle, peak, after);
    if let Some(admin) = &shadow_admin {
        println!(
            "  shadow: {}",
            crate::shadow::summary(&target.api, admin).await?
        );
    }
    if let Some(dir) = target.data_dir() {
        println!("  data: {}", dir.display());
    }
    if args.target.keep {
        target.keep();
    }
    Ok(())
}

/// Prints throughput, latency and statuses of a load run, with the throughput goals for
/// the closed-loop 64-client case.
pub fn print_outcome(outcome: &Outcome, plan: &Plan) {
    let at_64 = plan.rate.is_none() && plan.clients == 64;
    goal_line(
        "orders/s (201 answers)",
        &format!("{:.0}", outcome.rate()),
        "≥ 2,000 @64 clients",
        at_64.then_some(outcome.rate() >= 2000.0),
    );
    goal_line(
        "latency p99",
        &format!("{:.2} ms", outcome.orders.ms(0.99)),
        "≤ 50 ms @64 clients",
        at_64.then_some(outcome.orders.ms(0.99) <= 50.0),
    );
    println!("  latency: {}", outcome.orders.percentiles());
    println!("  answers: {}", outcome.orders.status_summary());
}

/// Idle RSS after start (the goal), the peak, and the RSS once idle again after the load.
pub fn print_memory(idle: Option<Memory>, peak: Option<Memory>, after: Option<Memory>) {
    let (Some(idle), Some(peak), Some(after)) = (idle, peak, after) else {
        return;
    };
    goal_line(
        "idle RSS (after start)",
        &mib(idle.rss_kib),
        "≤ 60 MiB",
        Some(idle.rss_kib <= 60 * 1024),
    );
    goal_line("peak RSS (VmHWM)", &mib(peak.peak_kib), "-", None);
    goal_line(
        "idle RSS (2 s after the load)",
        &mib(after.rss_kib),
        "≤ 60 MiB",
        Some(after.rss_kib <= 60 * 1024),
    );
}

/// "64 clients, closed loop, 10 s" or "open loop at 500 orders/s, 10 s".
pub fn describe(plan: &Plan) -> String {
    match plan.rate {
        None => format!(
            "{} clients, closed loop, {:.0} s",
            plan.clients,
            plan.duration.as_secs_f64()
        ),
        Some(rate) => format!(
            "open loop at {rate:.0} orders/s, {:.0} s",
            plan.duration.as_secs_f64()
        ),
    }
}

/// Seconds as a duration.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

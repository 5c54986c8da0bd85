//! `orderd-bench`: reproducible measurements of orderd with one command each.
//!
//! * `load` — drives `POST /api/orders` against a started (or given) orderd and reports
//!   orders/s, latency percentiles, answers by status, commit → processed lag and memory.
//! * `compare` — side by side in one run: WASM slots vs native rules, HTTP vs the raw store
//!   transaction, hot swaps under load, logins and health checks during load.
//! * `pipeline` — all three roles in one process: accepted vs processed under a closed
//!   loop, the backlog and its drain, commit → processed at a fixed rate, memory, and the raw
//!   store rate of an order's whole life for comparison.
//! * `faults` — SIGKILLs during load, a queue backlog with the consumer stopped, SMTP and SQS
//!   outages; counts acknowledged, processed and lost orders, orders with a second distinct
//!   e-mail, and orders delivered more than once.
//!
//! Every figure is printed next to its goal. See BENCHMARKS.md for recorded runs.

mod api;
mod compare;
mod faults;
mod inproc;
mod load;
mod load_cmd;
mod pipeline;
mod server;
mod shadow;
mod stats;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Load, comparisons and faults for orderd.
#[derive(Debug, Parser)]
#[command(name = "orderd-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive POST /api/orders and report throughput, latency, lag and memory.
    Load(load_cmd::LoadArgs),
    /// WASM vs native, HTTP vs raw store, hot swap under load, logins during load.
    Compare(compare::CompareArgs),
    /// Accepted vs processed, backlog and drain, commit → processed, memory, vs the raw store.
    Pipeline(pipeline::PipelineArgs),
    /// SIGKILLs, queue backlog, SMTP and SQS outages against the real binary.
    Faults(faults::FaultArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Load(args) => load_cmd::run(args).await,
            Command::Compare(args) => compare::run(args).await,
            Command::Pipeline(args) => pipeline::run(args).await,
            Command::Faults(args) => faults::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

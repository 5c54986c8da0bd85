//! `orderd-bench faults`: the fault suite against the real binary.
//!
//! * `kills` — SIGKILL at random moments during load (at least `--kills` times over at least
//!   `--min-orders` acknowledged orders), restarting on the same data each time; then every
//!   acknowledged order must end processed with exactly one e-mail, and stock must add up.
//! * `backlog` — orders into the disk-backed queue while no consumer runs
//!   (`serve --roles api,relay`), then `serve --roles consumer` beside it drains the backlog.
//! * `smtp-cut` / `sqs-cut` — the SMTP server or the SQS endpoint becomes unreachable (a
//!   proxy in front of it drops every connection) mid-run, then comes back; every order must
//!   still end processed with one e-mail. They need aiosmtpd / moto in `.venv-services` and
//!   are skipped, with the reason printed, without them.

mod proxy;
mod scenarios;
mod services;
pub mod verify;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::load::Fixture;

/// The scenarios of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Kills,
    Backlog,
    SmtpCut,
    SqsCut,
}

/// Options of `faults`.
#[derive(Debug, Clone, Args)]
pub struct FaultArgs {
    /// The orderd binary (default: target/release/orderd of this workspace).
    #[arg(long)]
    pub orderd: Option<PathBuf>,
    /// Scenarios to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// SIGKILLs in the kill scenario.
    #[arg(long, default_value_t = 10)]
    pub kills: usize,
    /// Acknowledged orders the kill scenario needs at least.
    #[arg(long, default_value_t = 2000)]
    pub min_orders: usize,
    /// Concurrent clients of the kill scenario.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Orders queued up while the consumer is stopped, in the backlog scenario.
    #[arg(long, default_value_t = 2000)]
    pub backlog_orders: usize,
    /// Seconds the SMTP server or SQS endpoint stays unreachable.
    #[arg(long, default_value_t = 5.0)]
    pub outage: f64,
}

/// Runs the chosen scenarios; fails if any missed its goal.
pub async fn run(args: FaultArgs) -> anyhow::Result<()> {
    let binary = args
        .orderd
        .clone()
        .unwrap_or_else(crate::server::default_binary);
    let all = [
        Scenario::Kills,
        Scenario::Backlog,
        Scenario::SmtpCut,
        Scenario::SqsCut,
    ];
    let chosen: Vec<Scenario> = if args.only.is_empty() {
        all.to_vec()
    } else {
        args.only.clone()
    };
    let mut failed = Vec::new();
    for scenario in chosen {
        println!("\n== faults: {scenario:?} ==");
        let met = match scenario {
            Scenario::Kills => scenarios::kills(&args, &binary).await?,
            Scenario::Backlog => scenarios::backlog(&args, &binary).await?,
            Scenario::SmtpCut => scenarios::smtp_cut(&args, &binary).await?,
            Scenario::SqsCut => scenarios::sqs_cut(&args, &binary).await?,
        };
        if !met {
            failed.push(format!("{scenario:?}"));
        }
    }
    anyhow::ensure!(
        failed.is_empty(),
        "fault scenarios missed their goals: {}",
        failed.join(", ")
    );
    Ok(())
}

/// Orders sent continuously by a few clients, across server restarts and outages: a failed
/// or unanswered request is retried after a short pause, and only 201 answers are
/// acknowledged orders.
struct Steady {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    /// Requests without a 201 (errors, refused connections, no answer).
    unacked: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Steady {
    /// `clients` clients, each pausing `pause` between orders.
    fn start(fixture: &Fixture, clients: usize, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let unacked = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients.max(1))
            .map(|i| {
                let (fixture, stop, acked, unacked) = (
                    fixture.clone(),
                    stop.clone(),
                    acked.clone(),
                    unacked.clone(),
                );
                tokio::spawn(async move {
                    let token = fixture.customers[i % fixture.customers.len()].token.clone();
                    while !stop.load(Ordering::Relaxed) {
                        let body = Api::order_body(&fixture.products);
                        match fixture.api.place_order(&token, &body).await {
                            Ok((201, Some(id))) => acked.lock().expect("acked lock").push(id),
                            _ => {
                                unacked.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            acked,
            unacked,
            tasks,
        }
    }

    /// Orders acknowledged so far.
    fn acked(&self) -> usize {
        self.acked.lock().expect("acked lock").len()
    }

    /// Stops the clients; the acknowledged order ids and the count of other answers.
    async fn finish(self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let acked = std::mem::take(&mut *self.acked.lock().expect("acked lock"));
        (acked, self.unacked.load(Ordering::Relaxed))
    }
}

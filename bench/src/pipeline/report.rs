//! What one pipeline run measured: the details as counted, and the figures with their goals
//! that the summary over runs is made of.

use std::time::Duration;

use super::PipelineArgs;
use super::counters::Drain;
use super::phases::{ClosedLoop, OpenLoop};
use super::summary::{Figure, Goal, Unit, Value, thousands};
use crate::server::{Memory, mib};
use crate::stats::Recorder;

/// Orders/s the pipeline must accept and process.
const RATE_GOAL: f64 = 2500.0;
/// Share of the accepted orders processed while the load runs, %.
const SHARE_GOAL: f64 = 95.0;
/// Backlog at the stop, in seconds of intake.
const BACKLOG_GOAL: f64 = 1.0;
/// Seconds to catch up after the load.
const DRAIN_GOAL: f64 = 2.0;
/// Commit → processed p99 of the open loop, ms.
const LAG_GOAL_MS: f64 = 100.0;
/// Peak RSS during the closed loop, MiB.
const PEAK_GOAL_MIB: f64 = 150.0;
/// RSS after the load and the drain, MiB.
const AFTER_GOAL_MIB: f64 = 60.0;
/// Store transactions per order in the raw phase.
const RAW_TRANSACTIONS: u32 = 4;

/// One run's measurements.
pub struct RunReport {
    /// Memory one second after start.
    pub idle: Option<Memory>,
    pub closed: ClosedLoop,
    /// Catching up after the closed loop (the drain figure).
    pub drain: Drain,
    /// The further wait before the open loop, when the drain did not finish in time.
    pub settle: Option<Drain>,
    /// Memory 5 s after the closed loop's drain.
    pub after: Option<Memory>,
    /// `None` when the backlog never drained, so no open loop ran.
    pub open: Option<OpenLoop>,
    /// The raw-store phase: one record per order (all four transactions).
    pub raw: Recorder,
    pub raw_elapsed: Duration,
}

impl RunReport {
    /// Orders per second through the four raw store transactions.
    fn raw_rate(&self) -> f64 {
        self.raw.ok() as f64 / self.raw_elapsed.as_secs_f64().max(1e-9)
    }

    /// The run's figures, in the same order in every run.
    pub fn figures(&self, args: &PipelineArgs) -> Vec<Figure> {
        let c = &self.closed;
        let exact = |v: f64| Some(Value::exact(v));
        let drain = Value {
            v: self.drain.took.as_secs_f64(),
            more_than: !self.drain.caught_up,
        };
        let open = self.open.as_ref();
        let mem = |kib: Option<u64>| kib.map(|k| Value::exact(k as f64 / 1024.0));
        vec![
            Figure::new(
                "closed: accepted (201s, client side)",
                Unit::PerSecond,
                Goal::AtLeast(RATE_GOAL),
                exact(c.accepted_client()),
            ),
            Figure::new(
                "closed: accepted (placed counter)",
                Unit::PerSecond,
                Goal::None,
                exact(c.accepted_counter()),
            ),
            Figure::new(
                "closed: processed during the load",
                Unit::PerSecond,
                Goal::AtLeast(RATE_GOAL),
                exact(c.processed_rate()),
            ),
            Figure::new(
                "closed: processed ÷ accepted",
                Unit::Percent,
                Goal::AtLeast(SHARE_GOAL),
                exact(c.processed_share() * 100.0),
            ),
            Figure::new(
                "closed: backlog at stop (orders)",
                Unit::Orders,
                Goal::None,
                exact(c.backlog()),
            ),
            Figure::new(
                "closed: backlog at stop (s of intake)",
                Unit::Seconds,
                Goal::Below(BACKLOG_GOAL),
                exact(c.backlog_seconds()),
            ),
            Figure::new(
                "closed: drain time",
                Unit::Seconds,
                Goal::AtMost(DRAIN_GOAL),
                Some(drain),
            ),
            Figure::new(
                format!("open: accepted of {} offered", thousands(args.rate)),
                Unit::PerSecond,
                Goal::None,
                open.and_then(|o| exact(o.outcome.rate())),
            ),
            Figure::new(
                "closed: server CPU per order",
                Unit::Micros,
                Goal::None,
                c.server_cpu_us_per_order().map(Value::exact),
            ),
            Figure::new(
                "open: commit → processed p50",
                Unit::Millis,
                Goal::None,
                open.and_then(|o| o.lag_ms(0.5)),
            ),
            Figure::new(
                "open: commit → processed p99",
                Unit::Millis,
                Goal::AtMost(LAG_GOAL_MS),
                open.and_then(|o| o.lag_ms(0.99)),
            ),
            Figure::new(
                format!("raw store: orders ({RAW_TRANSACTIONS} tx each)"),
                Unit::PerSecond,
                Goal::None,
                exact(self.raw_rate()),
            ),
            Figure::new(
                "pipeline ÷ raw (processed/s ÷ raw)",
                Unit::Percent,
                Goal::None,
                exact(c.processed_rate() / self.raw_rate().max(1e-9) * 100.0),
            ),
            Figure::new(
                "memory: peak RSS during the closed loop",
                Unit::Mebibytes,
                Goal::AtMost(PEAK_GOAL_MIB),
                mem(c.peak_kib()),
            ),
            Figure::new(
                "memory: RSS 5 s after load and drain",
                Unit::Mebibytes,
                Goal::AtMost(AFTER_GOAL_MIB),
                mem(self.after.map(|m| m.rss_kib)),
            ),
        ]
    }

    /// Prints what was counted, then the figures with their goals.
    pub fn print(&self, args: &PipelineArgs) {
        let c = &self.closed;
        println!(
            "closed loop, {} clients, {:.1} s: {} ({})",
            args.clients,
            c.outcome.elapsed.as_secs_f64(),
            c.outcome.orders.status_summary(),
            c.outcome.orders.percentiles()
        );
        println!(
            "  counters over {:.1} s: placed {:.0} → {:.0} (+{:.0}), processed {:.0} → {:.0} (+{:.0}), failed +{:.0}",
            c.window.as_secs_f64(),
            c.before.placed,
            c.after.placed,
            c.after.placed - c.before.placed,
            c.before.processed,
            c.after.processed,
            c.after.processed - c.before.processed,
            c.after.failed - c.before.failed
        );
        let cores = |cpu: Option<std::time::Duration>| {
            cpu.map_or_else(
                || "unreadable".to_owned(),
                |cpu| {
                    format!(
                        "{:.2} cores",
                        cpu.as_secs_f64() / c.window.as_secs_f64().max(1e-9)
                    )
                },
            )
        };
        println!(
            "  CPU during the load: server {}, load generator {}",
            cores(c.server_cpu),
            cores(c.client_cpu)
        );
        print_log_pages(c.log_pages_per_order());
        print_drain("  drain", &self.drain, c.backlog());
        if let Some(settle) = &self.settle {
            print_drain("  further wait", settle, self.drain.last.backlog());
        }
        match &self.open {
            Some(open) => print_open(open),
            None => println!("open loop: not run (the closed loop's backlog never drained)"),
        }
        println!(
            "raw store, {} tasks, {:.1} s: {} orders ({} each: place, pending → processing, processing → processed, inbox); per order {}",
            args.raw_workers,
            self.raw_elapsed.as_secs_f64(),
            self.raw.ok(),
            RAW_TRANSACTIONS,
            self.raw.percentiles()
        );
        let show = |m: Option<u64>| m.map_or_else(|| "unreadable".to_owned(), mib);
        let mark = if c.peak_reset {
            "reset to RSS at its start"
        } else {
            "not resettable here; counts only if it rose"
        };
        println!(
            "memory: {} after start; closed loop: RSS {} at its start, high-water mark {} at its end ({mark}), largest 100 ms sample {}; {} 5 s after the drain",
            show(self.idle.map(|m| m.rss_kib)),
            show(c.start.map(|m| m.rss_kib)),
            show(c.end.map(|m| m.peak_kib)),
            show(c.sampled_peak_kib),
            show(self.after.map(|m| m.rss_kib))
        );
        for figure in self.figures(args) {
            println!(
                "  {:<40} {:<16} goal {:<12} {}",
                figure.label,
                figure.value_text(),
                figure.goal_text(),
                figure.verdict()
            );
        }
    }
}

fn print_drain(label: &str, drain: &Drain, from: f64) {
    if drain.caught_up {
        println!(
            "{label}: {from:.0} orders caught up in {:.2} s ({:.0} orders/s)",
            drain.took.as_secs_f64(),
            from / drain.took.as_secs_f64().max(1e-9)
        );
    } else {
        println!(
            "{label}: gave up after {:.0} s with {:.0} of {from:.0} orders still waiting",
            drain.took.as_secs_f64(),
            drain.last.backlog()
        );
    }
}

fn print_open(open: &OpenLoop) {
    println!(
        "open loop, offered {:.0}/s for {:.1} s: sent {:.0}/s, accepted {:.0}/s; {} ({})",
        open.offered,
        open.outcome.elapsed.as_secs_f64(),
        open.sent_rate(),
        open.outcome.rate(),
        open.outcome.orders.status_summary(),
        open.outcome.orders.percentiles()
    );
    let backlog_at_stop = open.drain.last.backlog();
    if open.drain.caught_up {
        println!(
            "  caught up {:.2} s after the stop",
            open.drain.took.as_secs_f64()
        );
    } else {
        println!(
            "  not caught up {:.0} s after the stop ({backlog_at_stop:.0} orders waiting)",
            open.drain.took.as_secs_f64()
        );
    }
    println!(
        "  commit → processed read back for {} orders ({} still unprocessed after {:.1} s count as longer than that)",
        open.lags.len() + open.unprocessed,
        open.unprocessed,
        open.waited.as_secs_f64()
    );
    print_log_pages(open.log_pages_per_order);
}

/// The store's write-ahead log traffic per order (absent with MongoDB).
fn print_log_pages(pages: Option<f64>) {
    if let Some(pages) = pages {
        println!(
            "  write-ahead log: {pages:.1} pages ({:.0} KiB) per order",
            pages * 4.0
        );
    }
}

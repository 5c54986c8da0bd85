//! Logging: a `tracing` subscriber printing human-readable lines or one JSON object per line,
//! filtered by `RUST_LOG` when set, else by the configured filter; and the names of the
//! pipeline counters that several modules record.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::configuration::{LogFormat, LogSettings};

/// Orders committed by the api role (the pipeline's intake), a counter.
pub const ORDERS_PLACED_TOTAL: &str = "orderd_orders_placed_total";
/// Orders the consumer moved to `processed` (the pipeline's output), a counter.
pub const ORDERS_PROCESSED_TOTAL: &str = "orderd_orders_processed_total";

/// Installs the global subscriber. Safe to call more than once: later calls (tests starting
/// several apps) leave the first subscriber in place.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        // Colours only on a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

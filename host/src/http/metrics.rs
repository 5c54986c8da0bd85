//! Prometheus metrics: the process-wide recorder (installed once, however many apps a test
//! process starts), the request-metrics middleware, and the names of the metrics the HTTP layer
//! records. Other modules record through the `metrics` macros and show up on `GET /metrics`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests served, by `method`, `route` (the matched pattern) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Request latency in seconds, by `method`, `route` and `status`.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// Histogram buckets in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples recorded since the last pass are folded into their
/// histograms, whether or not anything scrapes `/metrics` (the exporter's own default).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// A handle on the process-wide Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process-wide recorder, installed on first use. Later calls return the same one, so
    /// several apps in one process (tests) share it.
    pub fn install() -> anyhow::Result<Self> {
        if let Some(handle) = HANDLE.get() {
            return Ok(Self {
                handle: handle.clone(),
            });
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        // Only the first caller to get here installs; a racing caller gets that one's handle.
        if HANDLE.set(handle.clone()).is_ok() {
            metrics::set_global_recorder(recorder)
                .map_err(|err| anyhow::anyhow!("Failed to install the metrics recorder: {err}"))?;
            spawn_upkeep(handle, UPKEEP_INTERVAL)?;
        }
        let handle = HANDLE
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("metrics recorder missing"))?;
        Ok(Self { handle })
    }

    /// The current metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Starts the thread that runs the recorder's upkeep every `every`.
///
/// The recorder keeps every histogram sample as it was recorded until an upkeep pass or a
/// render folds it into its histogram; with nothing scraping `/metrics` they would pile up
/// for as long as the process runs (8 bytes a sample, several samples per order). The
/// exporter spawns this task itself only when it also serves the endpoint; here `/metrics` is
/// a route of the API, so the process runs it. A thread rather than a task: the recorder is
/// installed once per process, whichever runtime (if any) installs it first.
pub fn spawn_upkeep(handle: PrometheusHandle, every: Duration) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                handle.run_upkeep();
            }
        })
        .map(drop)
        .map_err(|err| anyhow::anyhow!("Failed to start the metrics upkeep thread: {err}"))
}

/// Records the count and latency of every routed request.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(HTTP_REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

//! Load shedding for the order routes: at most `http.max_in_flight_orders` order writes run
//! at once; a request that finds no turn within `http.admission_wait_ms` is answered at once
//! with 503 `overloaded` and `Retry-After`, before its body is read or its token checked.
//!
//! Without it, offered load beyond what the store and CPU complete queues without limit: in
//! tokio's scheduler, the writer's queue and the kernel's socket buffers, and every answer gets
//! slower, the successful ones too. With it, latency of the admitted requests stays bounded by
//! the limit over the service rate, and memory by the limit; the rest are refused cheaply and
//! retried by their clients.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;

/// How long a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// The shared gate of the order routes.
#[derive(Clone, Debug)]
pub struct Admission {
    /// One permit per order write in progress.
    turns: Arc<Semaphore>,
    /// Longest wait for a turn.
    wait: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, wait: Duration) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(max_in_flight.max(1))),
            wait,
        }
    }
}

/// Middleware: runs the request when it gets a turn in time, else refuses it.
pub async fn admit(State(gate): State<Admission>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(gate.wait, gate.turns.acquire()).await {
        Ok(Ok(_turn)) => next.run(request).await,
        _ => {
            metrics::counter!("orderd_http_shed_total").increment(1);
            ApiError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS,
            }
            .into_response()
        }
    }
}

//! Load shedding for the order routes: at most `http.max_in_flight_orders` order writes run
//! at once; a request that finds no turn within `http.admission_wait_ms` is answered at once
//! with 503 `overloaded` and `Retry-After`, before its body is read or its token checked.
//!
//! Intake is also paced to delivery: when a consumer runs in this process and its queue holds
//! more than `http.max_delivery_backlog` messages, an order write waits (up to
//! `http.backlog_wait_ms`) for the backlog to come down before it runs, else it is refused the
//! same way. So the API cannot accept orders faster than they are completed for long: the
//! backlog stays near the limit, and drains in a fraction of a second when intake stops.
//!
//! Without it, offered load beyond what the store and CPU complete queues without limit: in
//! tokio's scheduler, the writer's queue and the kernel's socket buffers, and every answer gets
//! slower, the successful ones too. With it, latency of the admitted requests stays bounded by
//! the limit over the service rate, and memory by the limit; the rest are refused cheaply and
//! retried by their clients.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;
use crate::configuration::HttpSettings;
use crate::delivery::DeliveryHealth;

/// How long a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// How often a paced request looks at the backlog again.
const PACE_STEP: Duration = Duration::from_millis(5);

/// The shared gate of the order routes.
#[derive(Clone, Debug)]
pub struct Admission {
    /// One permit per order write in progress.
    turns: Arc<Semaphore>,
    /// Longest wait for a turn.
    wait: Duration,
    /// The delivery roles of this process, whose queue backlog paces intake.
    delivery: Arc<DeliveryHealth>,
    /// Backlog (messages) above which order writes wait; 0 turns pacing off.
    max_backlog: u64,
    /// Longest wait for the backlog to come down.
    backlog_wait: Duration,
}

impl Admission {
    /// The gate `settings` describe, pacing on `delivery`'s sampled backlog.
    pub fn new(settings: &HttpSettings, delivery: Arc<DeliveryHealth>) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(settings.max_in_flight_orders.max(1))),
            wait: Duration::from_millis(settings.admission_wait_ms),
            delivery,
            max_backlog: settings.max_delivery_backlog,
            backlog_wait: Duration::from_millis(settings.backlog_wait_ms),
        }
    }

    /// Waits until delivery's backlog is at most the limit; `false` when it stayed above it
    /// for the whole wait.
    async fn paced(&self) -> bool {
        if self.max_backlog == 0 {
            return true;
        }
        let deadline = tokio::time::Instant::now() + self.backlog_wait;
        loop {
            match self.delivery.backlog() {
                Some(backlog) if backlog > self.max_backlog => {}
                _ => return true,
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(PACE_STEP).await;
        }
    }
}

/// Middleware: runs an order write when it gets a turn in time and delivery keeps up, else
/// refuses it. Reads pass straight through.
pub async fn admit(State(gate): State<Admission>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let turn = match tokio::time::timeout(gate.wait, gate.turns.acquire()).await {
        Ok(Ok(turn)) => turn,
        _ => return shed("in-flight"),
    };
    if !gate.paced().await {
        return shed("delivery-backlog");
    }
    let response = next.run(request).await;
    drop(turn);
    response
}

fn shed(reason: &'static str) -> Response {
    metrics::counter!("orderd_http_shed_total", "reason" => reason).increment(1);
    ApiError::Overloaded {
        retry_after_secs: RETRY_AFTER_SECS,
    }
    .into_response()
}

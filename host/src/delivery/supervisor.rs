//! Supervision of the delivery roles: a role that fails — an error while it starts (the queue
//! unreachable at boot), an error or a panic while it runs, or returning before shutdown — is
//! started again after a pause from the one [`backoff`] schedule, capped, instead of ending
//! silently while the API keeps taking orders. Every restart is logged with its cause, counted
//! (`orderd_role_restarts_total{role}`) and shown on the role's [`RoleHealth`].
//!
//! [`contain`] is the same idea one level down: a handler task that panics is logged and
//! counted (`orderd_handler_panics_total{role}`), and the role carries on.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::backoff;
use super::role_health::RoleHealth;

/// Restarts of a supervised role, by `role`.
pub const ROLE_RESTARTS_TOTAL: &str = "orderd_role_restarts_total";
/// Panics of handler tasks caught without stopping their role, by `role`.
pub const HANDLER_PANICS_TOTAL: &str = "orderd_handler_panics_total";

/// Supervision settings (`[delivery]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// `/api/ready` answers 503 when a role of this process has had no good pass for longer
    /// than this. Keep it above `consumer.wait_ms`: an idle consumer passes once per long poll.
    pub stale_after_ms: u64,
    /// Pause before the first restart of a failed role; doubles per failure in a row.
    pub restart_base_ms: u64,
    /// Longest pause between restarts.
    pub restart_cap_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            stale_after_ms: 30_000,
            restart_base_ms: 500,
            restart_cap_ms: 30_000,
        }
    }
}

impl DeliverySettings {
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms)
    }
}

/// Runs the role that `start` makes until `shutdown`, starting it again whenever it fails.
///
/// Each run is spawned as a task of its own, so a panic in it ends that run only. A run is
/// expected to watch `shutdown` itself and drain before it returns; a run that returns `Ok`
/// while `shutdown` is not cancelled counts as a failure. The pause before a restart grows
/// with failures in a row and starts over after a run that had a good pass; shutdown during
/// a pause ends supervision at once.
pub async fn supervise<F, Fut>(
    health: Arc<RoleHealth>,
    settings: DeliverySettings,
    shutdown: CancellationToken,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let role = health.name();
    let base = Duration::from_millis(settings.restart_base_ms.max(1));
    let cap = Duration::from_millis(settings.restart_cap_ms).max(base);
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let passes_before = health.good_passes();
        // A JoinSet aborts the run if supervision itself is dropped.
        let mut run = JoinSet::new();
        run.spawn(start());
        let Some(joined) = run.join_next().await else {
            break;
        };
        let cause = match joined {
            Ok(Ok(())) if shutdown.is_cancelled() => break,
            Ok(Ok(())) => anyhow::anyhow!("the {role} stopped without being asked to"),
            Ok(Err(err)) => err,
            Err(err) if err.is_panic() => {
                anyhow::anyhow!("the {role} panicked: {}", panic_text(&*err.into_panic()))
            }
            Err(err) => anyhow::anyhow!("the {role} task was cancelled: {err}"),
        };
        if shutdown.is_cancelled() {
            tracing::error!(
                role,
                error = format!("{cause:#}"),
                "Role failed while stopping"
            );
            break;
        }
        failures = if health.good_passes() > passes_before {
            1
        } else {
            failures.saturating_add(1)
        };
        let pause = backoff(failures, base, cap);
        health.mark_restarting(&cause);
        metrics::counter!(ROLE_RESTARTS_TOTAL, "role" => role).increment(1);
        tracing::error!(
            role,
            error = format!("{cause:#}"),
            failures_in_a_row = failures,
            restart_in_ms = pause.as_millis() as u64,
            "Role failed; restarting it"
        );
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    health.mark_stopped();
    tracing::info!(role, "Role stopped");
}

/// Runs `work`, one handler task of `health`'s role: a panic in it is logged with `item` (what
/// was being handled), counted, and returned as `None` instead of unwinding further.
pub async fn contain<T>(
    health: &RoleHealth,
    item: &str,
    work: impl Future<Output = T>,
) -> Option<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(done) => Some(done),
        Err(panic) => {
            record_panic(health, item, &*panic);
            None
        }
    }
}

/// Logs and counts a handler panic of `health`'s role caught while handling `item`.
pub fn record_panic(health: &RoleHealth, item: &str, panic: &(dyn std::any::Any + Send)) {
    let role = health.name();
    health.count_handler_panic();
    metrics::counter!(HANDLER_PANICS_TOTAL, "role" => role).increment(1);
    tracing::error!(
        role,
        item,
        panic = panic_text(panic),
        "A handler panicked; the role carries on and the work is tried again"
    );
}

/// The message of a panic payload (`panic!` with a literal or a format string).
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::delivery::role_health::RoleState;

    fn fast() -> DeliverySettings {
        DeliverySettings {
            restart_base_ms: 10,
            restart_cap_ms: 40,
            ..DeliverySettings::default()
        }
    }

    /// A role whose runs do what `script` says for run n (0-based), then pass and wait.
    fn scripted(
        health: Arc<RoleHealth>,
        shutdown: CancellationToken,
        script: fn(u32) -> Option<anyhow::Result<()>>,
    ) -> (
        Arc<AtomicU32>,
        impl FnMut() -> futures::future::BoxFuture<'static, anyhow::Result<()>>,
    ) {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let start = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (health, shutdown) = (health.clone(), shutdown.clone());
            async move {
                if let Some(result) = script(n) {
                    return result;
                }
                health.mark_good();
                shutdown.cancelled().await;
                Ok(())
            }
            .boxed()
        };
        (runs, start)
    }

    async fn until(mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(5), "timed out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_role_that_fails_and_panics_is_restarted_until_it_runs() {
        let health = Arc::new(RoleHealth::new("relay"));
        let stop = CancellationToken::new();
        let (runs, start) = scripted(health.clone(), stop.clone(), |n| match n {
            0 => Some(Err(anyhow::anyhow!("queue unreachable"))),
            1 => panic!("boom in run two"),
            _ => None,
        });
        let supervised = tokio::spawn(supervise(health.clone(), fast(), stop.clone(), start));
        until(|| health.report().state == RoleState::Ok).await;
        let report = health.report();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(report.restarts, 2);
        stop.cancel();
        supervised.await.unwrap();
        assert_eq!(health.report().state, RoleState::Stopped);
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no restart after shutdown");
    }

    #[tokio::test]
    async fn a_failing_role_shows_restarting_with_its_last_error() {
        let health = Arc::new(RoleHealth::new("consumer"));
        let stop = CancellationToken::new();
        let (_, start) = scripted(health.clone(), stop.clone(), |n| {
            Some(Err(anyhow::anyhow!("attempt {n} refused")))
        });
        let supervised = tokio::spawn(supervise(health.clone(), fast(), stop.clone(), start));
        until(|| health.report().restarts >= 3).await;
        let report = health.report();
        assert_eq!(report.state, RoleState::Restarting);
        assert!(report.last_error.unwrap().contains("refused"));
        stop.cancel();
        supervised.await.unwrap();
    }

    #[tokio::test]
    async fn a_role_returning_before_shutdown_is_restarted() {
        let health = Arc::new(RoleHealth::new("relay"));
        let stop = CancellationToken::new();
        let (runs, start) = scripted(health.clone(), stop.clone(), |n| (n == 0).then_some(Ok(())));
        let supervised = tokio::spawn(supervise(health.clone(), fast(), stop.clone(), start));
        until(|| health.report().state == RoleState::Ok).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(health.report().restarts == 1);
        stop.cancel();
        supervised.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_during_a_long_pause_ends_supervision_at_once() {
        let health = Arc::new(RoleHealth::new("relay"));
        let stop = CancellationToken::new();
        let (_, start) = scripted(health.clone(), stop.clone(), |_| {
            Some(Err(anyhow::anyhow!("down")))
        });
        let slow = DeliverySettings {
            restart_base_ms: 60_000,
            restart_cap_ms: 60_000,
            ..DeliverySettings::default()
        };
        let supervised = tokio::spawn(supervise(health.clone(), slow, stop.clone(), start));
        until(|| health.report().restarts == 1).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), supervised)
            .await
            .expect("supervision ended during its pause")
            .unwrap();
        assert_eq!(health.report().state, RoleState::Stopped);
    }

    #[tokio::test]
    async fn a_contained_panic_is_counted_and_the_caller_carries_on() {
        let health = RoleHealth::new("consumer");
        let fine = contain(&health, "message 1", async { 7 }).await;
        assert_eq!(fine, Some(7));
        let item = String::from("message 2");
        let failed: Option<u8> =
            contain(&health, &item, async { panic!("renderer blew up") }).await;
        assert_eq!(failed, None);
        assert_eq!(health.report().handler_panics, 1);
    }
}

//! Convergence of this instance's plugin runtime on the store's active versions, so every
//! instance sharing a store serves the version an operator activated through any of them.
//!
//! [`PluginSync::try_run_once`] reads the active pointers and, for every slot whose generation
//! changed since it last looked, swaps in that version (or reverts to the built-in default);
//! [`run`] repeats it every interval, and at once when woken (on MongoDB a change stream on the
//! active pointers wakes it), until shutdown. The first pass after start applies every active
//! upload, so a restarted instance comes back on the operator's versions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::plugins::{PluginRuntime, Slot};
use crate::storage::Store;

use super::plugins::{ApplyError, apply};

/// Default time between two looks at the store's active pointers.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The convergence loop's state: which generation of each slot this instance last applied.
pub struct PluginSync {
    /// Where the active pointers and the versions' bytes live.
    store: Arc<dyn Store>,
    /// This instance's runtime, swapped to follow the store.
    runtime: PluginRuntime,
    /// Per slot, the store generation last applied (or given up on); a slot is looked at
    /// again only when its generation moves.
    applied: HashMap<Slot, u64>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many slots were swapped to follow the store.
    Converged(usize),
    /// Nothing changed in the store since the last pass, or the runtime already matched.
    Idle,
}

impl PluginSync {
    pub fn new(store: Arc<dyn Store>, runtime: PluginRuntime) -> Self {
        Self {
            store,
            runtime,
            applied: HashMap::new(),
        }
    }

    /// One look at the store: applies every slot whose generation moved. A store failure is
    /// returned (and retried on the next pass); a version the runtime refuses is logged and
    /// not retried until the pointer moves again, while the slot keeps serving.
    pub async fn try_run_once(&mut self) -> anyhow::Result<Outcome> {
        let active = self.store.active_plugins().await.map_err(|e| {
            anyhow::Error::new(e).context("Failed to read the active plugin versions")
        })?;
        let mut swapped = 0;
        for pointer in active {
            let Ok(slot) = pointer.slot.parse::<Slot>() else {
                tracing::warn!(slot = %pointer.slot, "the store names an unknown plugin slot");
                continue;
            };
            if self.applied.get(&slot) == Some(&pointer.generation) {
                continue;
            }
            match apply(self.store.as_ref(), &self.runtime, slot, pointer.version_id).await {
                Ok(changed) => {
                    if changed {
                        swapped += 1;
                        tracing::info!(slot = %slot, version = ?pointer.version_id, generation = pointer.generation, "plugin slot converged on the stored version");
                    }
                    self.applied.insert(slot, pointer.generation);
                }
                Err(ApplyError::Load(err)) => {
                    tracing::error!(slot = %slot, version = ?pointer.version_id, error = %err, "the stored active plugin version does not load here; the slot keeps its current version");
                    self.applied.insert(slot, pointer.generation);
                }
                Err(ApplyError::Store(err)) => return Err(err),
            }
        }
        Ok(if swapped == 0 {
            Outcome::Idle
        } else {
            Outcome::Converged(swapped)
        })
    }
}

/// Runs `sync` every `interval`, and at once after `wake` is notified, until `shutdown` is
/// cancelled. Failed passes are logged and retried, so it only ever returns `Ok`; the
/// `Result` lets it join the other background tasks.
pub async fn run(
    mut sync: PluginSync,
    interval: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut ticker = ticker(interval);
    while next_pass(&mut ticker, &wake, &shutdown).await {
        // A pass is short (one query, and a compile only when a version changed); it is not
        // interrupted so a swap is never left half done.
        if let Err(err) = sync.try_run_once().await {
            tracing::warn!(error = ?err, "plugin convergence pass failed; retrying at the next interval");
        }
    }
    tracing::debug!("plugin convergence loop stopped");
    Ok(())
}

/// The interval of [`run`]; its first tick is immediate.
fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Waits for the next tick or wake-up: `true` when a pass is due, `false` on shutdown.
async fn next_pass(
    ticker: &mut tokio::time::Interval,
    wake: &Notify,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = ticker.tick() => true,
        _ = wake.notified() => true,
    }
}

/// Spawns the convergence loop of `runtime` on `store`; it stops when `shutdown` is cancelled.
pub fn spawn_plugin_sync(
    store: Arc<dyn Store>,
    runtime: PluginRuntime,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let wake = Arc::new(Notify::new());
    tokio::spawn(run(
        PluginSync::new(store, runtime),
        interval,
        wake,
        shutdown,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_wake_up_runs_a_pass_long_before_the_next_interval() {
        let (wake, stop, passes) = (Notify::new(), CancellationToken::new(), AtomicU32::new(0));
        let loop_ = async {
            let mut ticker = ticker(Duration::from_secs(3600));
            while next_pass(&mut ticker, &wake, &stop).await {
                passes.fetch_add(1, Ordering::SeqCst);
            }
        };
        let check = async {
            let count_reaches = async |n| {
                while passes.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            count_reaches(1).await; // the first tick is immediate
            wake.notify_one();
            tokio::time::timeout(Duration::from_secs(2), count_reaches(2))
                .await
                .expect("the wake-up ran a pass");
            stop.cancel();
        };
        tokio::join!(loop_, check);
        assert_eq!(
            passes.load(Ordering::SeqCst),
            2,
            "no pass without a tick or a wake-up"
        );
    }
}

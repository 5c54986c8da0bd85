//! Shadow mode: a candidate version that runs beside a slot's active version on live calls,
//! whose output is never used. After the active version has answered a call, the call's input
//! and answer are handed to a spawned task that runs the candidate and counts agreements,
//! divergences (keeping the most recent as examples) and failures.
//!
//! A shadow never slows or queues live calls: at most `shadow.max_in_flight` shadow calls run
//! per slot, and one more is only started when the instance pool has a free permit at once;
//! otherwise the live call is not shadowed and the drop is counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rule_types::Config;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::call::{PluginInput, PluginOutput, invoke};
use super::contract::{FailurePolicy, PluginSource, Slot};
use super::error::LoadError;
use super::recorder::redact_input;
use super::runtime::{PluginRuntime, candidate};
use super::slot::ActivePlugin;

/// What was uploaded as the shadow, kept so `promote` can store and activate exactly it.
#[derive(Debug, Clone)]
pub struct ShadowUpload {
    /// The component's bytes.
    pub wasm: Arc<[u8]>,
    /// The config as uploaded (empty: the slot's configured config).
    pub config: Config,
    /// The policy as uploaded (`None`: the slot's configured policy).
    pub policy: Option<FailurePolicy>,
}

/// One live call on which the shadow answered differently from the active version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// When the shadow answered.
    pub at: DateTime<Utc>,
    /// The call's input (personal data treated like recorded calls).
    pub input: PluginInput,
    /// What the active version answered (and the caller got).
    pub active: PluginOutput,
    /// What the shadow answered.
    pub candidate: PluginOutput,
}

/// One live call the shadow failed on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowFailure {
    /// When it failed.
    pub at: DateTime<Utc>,
    /// The failure kind (`trap`, `timeout`, `plugin-error`, …).
    pub kind: String,
    /// Detail.
    pub message: String,
}

/// A slot's shadow and what it has seen so far.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowStatus {
    /// The slot.
    pub slot: Slot,
    /// Hex sha256 of the shadow component.
    pub sha256: String,
    /// The config it runs with.
    pub config: Config,
    /// The policy it was uploaded with (`None`: the slot's configured one).
    pub policy: Option<FailurePolicy>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Live calls it answered like the active version.
    pub agreements: u64,
    /// Live calls it answered differently.
    pub divergences: u64,
    /// Live calls it failed on.
    pub failures: u64,
    /// Live calls not shadowed because shadow calls or the instance pool were busy.
    pub dropped: u64,
    /// The most recent divergences, oldest first.
    pub divergence_examples: Vec<Divergence>,
    /// The most recent failures, oldest first.
    pub failure_examples: Vec<ShadowFailure>,
}

/// A running shadow.
pub(crate) struct Shadow {
    plugin: ActivePlugin,
    upload: ShadowUpload,
    started_at: DateTime<Utc>,
    in_flight: Arc<Semaphore>,
    max_examples: usize,
    agreements: AtomicU64,
    divergences: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    divergence_examples: Mutex<VecDeque<Divergence>>,
    failure_examples: Mutex<VecDeque<ShadowFailure>>,
}

fn push_bounded<T>(queue: &Mutex<VecDeque<T>>, item: T, max: usize) {
    if max == 0 {
        return;
    }
    let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
    if queue.len() >= max {
        queue.pop_front();
    }
    queue.push_back(item);
}

fn copy<T: Clone>(queue: &Mutex<VecDeque<T>>) -> Vec<T> {
    let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
    queue.iter().cloned().collect()
}

fn count(slot: Slot, outcome: &'static str) {
    metrics::counter!("plugin_shadow_calls_total", "slot" => slot.as_str(), "outcome" => outcome)
        .increment(1);
}

impl Shadow {
    fn status(&self, slot: Slot) -> ShadowStatus {
        ShadowStatus {
            slot,
            sha256: self.plugin.sha256.clone(),
            config: self.plugin.config.clone(),
            policy: self.upload.policy,
            started_at: self.started_at,
            agreements: self.agreements.load(Ordering::Relaxed),
            divergences: self.divergences.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            divergence_examples: copy(&self.divergence_examples),
            failure_examples: copy(&self.failure_examples),
        }
    }

    fn drop_one(&self, slot: Slot) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        count(slot, "dropped");
    }
}

impl PluginRuntime {
    /// Compiles, checks and smoke-tests `wasm` for `slot` like a load, then runs it as the
    /// slot's shadow (replacing any shadow before it). Nothing is activated or stored.
    pub async fn start_shadow(
        &self,
        slot: Slot,
        wasm: Vec<u8>,
        config: Config,
        policy: Option<FailurePolicy>,
    ) -> Result<ShadowStatus, LoadError> {
        let wasm: Arc<[u8]> = wasm.into();
        let prepared = self.prepare(slot, wasm.clone()).await?;
        let plugin = candidate(
            prepared,
            PluginSource::Embedded,
            self.effective_config(slot, &config),
            policy.unwrap_or(self.settings().slot(slot).policy),
        );
        if self.settings().smoke_test {
            self.smoke_test(slot, &plugin).await?;
        }
        let settings = &self.settings().shadow;
        let shadow = Arc::new(Shadow {
            plugin,
            upload: ShadowUpload {
                wasm,
                config,
                policy,
            },
            started_at: Utc::now(),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_examples: settings.examples,
            agreements: AtomicU64::new(0),
            divergences: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            divergence_examples: Mutex::new(VecDeque::new()),
            failure_examples: Mutex::new(VecDeque::new()),
        });
        let status = shadow.status(slot);
        self.shadows()[slot.index()].store(Some(shadow));
        tracing::info!(slot = %slot, sha256 = %status.sha256, "shadow started");
        Ok(status)
    }

    /// The shadow of `slot` and its counts, if one runs.
    pub fn shadow_status(&self, slot: Slot) -> Option<ShadowStatus> {
        self.shadows()[slot.index()]
            .load()
            .as_ref()
            .map(|s| s.status(slot))
    }

    /// What was uploaded as the shadow of `slot`, if one runs.
    pub fn shadow_upload(&self, slot: Slot) -> Option<ShadowUpload> {
        self.shadows()[slot.index()]
            .load()
            .as_ref()
            .map(|s| s.upload.clone())
    }

    /// Stops the shadow of `slot` if it is still the one with `sha256` (any, when `None`);
    /// returns its final counts.
    pub fn stop_shadow(&self, slot: Slot, sha256: Option<&str>) -> Option<ShadowStatus> {
        let cell = &self.shadows()[slot.index()];
        let current = cell.load_full()?;
        if sha256.is_some_and(|s| s != current.plugin.sha256) {
            return None;
        }
        let previous = cell.compare_and_swap(&Some(current.clone()), None);
        let stopped = previous.as_ref()?;
        if !Arc::ptr_eq(stopped, &current) {
            return None;
        }
        tracing::info!(slot = %slot, sha256 = %current.plugin.sha256, "shadow stopped");
        Some(current.status(slot))
    }

    /// Hands a call the active version answered to the slot's shadow, if one runs. Returns at
    /// once: the shadow call runs on a spawned task, or is dropped when that would wait.
    pub(crate) fn shadow_call(&self, slot: Slot, input: &PluginInput, answer: &PluginOutput) {
        let guard = self.shadows()[slot.index()].load();
        let Some(shadow) = guard.as_ref() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            shadow.drop_one(slot);
            return;
        };
        let Ok(permit) = shadow.in_flight.clone().try_acquire_owned() else {
            shadow.drop_one(slot);
            return;
        };
        let (runtime, shadow) = (self.clone(), Arc::clone(shadow));
        let (input, answer) = (input.clone(), answer.clone());
        handle.spawn(async move {
            runtime.run_shadow(slot, &shadow, input, answer).await;
            drop(permit);
        });
    }

    async fn run_shadow(
        &self,
        slot: Slot,
        shadow: &Shadow,
        mut input: PluginInput,
        mut answer: PluginOutput,
    ) {
        let Some(_pool) = self.try_pool_permit() else {
            shadow.drop_one(slot);
            return;
        };
        let (engine, limits) = self.engine_and_limits(slot);
        let (result, _) = invoke(engine, limits, slot, &shadow.plugin, &input).await;
        match result {
            Ok(out) if out == answer => {
                shadow.agreements.fetch_add(1, Ordering::Relaxed);
                count(slot, "agree");
            }
            Ok(mut out) => {
                shadow.divergences.fetch_add(1, Ordering::Relaxed);
                count(slot, "diverge");
                if let Some(personal) = redact_input(&mut input, self.personal_data()) {
                    personal.apply(&mut answer);
                    personal.apply(&mut out);
                }
                let example = Divergence {
                    at: Utc::now(),
                    input,
                    active: answer,
                    candidate: out,
                };
                push_bounded(&shadow.divergence_examples, example, shadow.max_examples);
            }
            Err(failure) => {
                shadow.failures.fetch_add(1, Ordering::Relaxed);
                count(slot, "fail");
                tracing::debug!(slot = %slot, kind = failure.kind.code(), "shadow call failed: {}", failure.message);
                let example = ShadowFailure {
                    at: Utc::now(),
                    kind: failure.kind.code().to_owned(),
                    message: failure.message,
                };
                push_bounded(&shadow.failure_examples, example, shadow.max_examples);
            }
        }
    }
}

//! [`PluginRuntime`]: the process's handle on the three rule slots. It owns the engine, the
//! linker and the slots, and runs calls under each slot's failure policy; loading candidates
//! (compile, world check, smoke test, swap) is in `load.rs`.

mod load;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwapOption;
use chrono::Utc;
use rule_types::{Config, OrderDraft, RenderedEmail, StoredOrder, TaxBreakdown, Violation};
use serde::Serialize;
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::cache::ArtifactCache;
use super::call::{CallStats, Failure, Limits, PluginInput, PluginOutput, invoke};
use super::call_window::{CallWindow, VersionWindow};
use super::contract::{FailurePolicy, PluginSource, Slot};
use super::embedded::default_component;
use super::engine::{build_engine, build_linker};
use super::error::{FailureKind, LoadError, PluginCallError};
use super::fixtures;
use super::loader::{Prepared, prepare};
use super::recorder::{Recorder, Recording};
use super::settings::PersonalData;
use super::settings::RuntimeSettings;
use super::shadow::Shadow;
use super::slot::{ActivePlugin, LoadedVersion, SlotState, SlotStatus};
use super::store::HostState;

/// The plugin runtime. Cheap to clone; one per process.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("slots", &self.status())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The one engine every plugin of this runtime is compiled for.
    engine: Engine,
    /// WASI preview 2, granting nothing; every plugin links against it.
    linker: Linker<HostState>,
    /// Operator settings, fixed at start.
    settings: RuntimeSettings,
    /// Per-call limits of each slot, indexed by [`Slot::index`].
    limits: [Limits; 3],
    /// Bounds concurrent calls to what the instance pool holds.
    permits: Semaphore,
    /// Precompiled artifacts, when a cache directory is configured.
    cache: Option<Arc<ArtifactCache>>,
    /// Tax, validation and e-mail, indexed by [`Slot::index`].
    slots: [SlotState; 3],
    /// Recent answered calls per slot.
    recorder: Recorder,
    /// The shadow candidate of each slot, if any, indexed by [`Slot::index`].
    shadows: [ArcSwapOption<Shadow>; 3],
    /// Live calls per slot and version over the last minutes.
    window: CallWindow,
}

/// A version compiled, checked and smoke-tested for a slot, not yet serving
/// ([`PluginRuntime::prepare_candidate`], then [`PluginRuntime::activate`]).
pub struct Candidate {
    /// The slot it was prepared for.
    slot: Slot,
    /// The version, with generation 0 until it is activated.
    plugin: ActivePlugin,
}

/// What `check` learned about a candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The slot it was checked for.
    pub slot: Slot,
    /// Hex sha256 of the component.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size_bytes: usize,
    /// Time to compile it (near zero when it came from the artifact cache).
    pub compile_time: Duration,
    /// Whether the compiled code came from the artifact cache.
    pub cached: bool,
    /// The component's exports.
    pub exports: Vec<String>,
    /// The component's imports.
    pub imports: Vec<String>,
    /// Whether it was run on the built-in fixtures (and passed).
    pub smoke_tested: bool,
}

impl PluginRuntime {
    /// A runtime with empty slots.
    pub fn new(settings: RuntimeSettings) -> anyhow::Result<Self> {
        let engine = build_engine(&settings)?;
        let linker = build_linker(&engine)?;
        let cache = match &settings.cache_dir {
            Some(dir) => Some(Arc::new(ArtifactCache::open(dir, &engine)?)),
            None => None,
        };
        let limits = Slot::ALL.map(|slot| Limits {
            memory_cap: settings.memory_cap(slot),
            deadline: settings.slot_deadline(slot),
            fuel: settings.fuel,
            max_tax_rate_bps: settings.max_tax_rate_bps,
        });
        let permits = Semaphore::new(settings.max_concurrent_calls.max(1) as usize);
        let recorder = Recorder::new(settings.recording.clone());
        let inner = Inner {
            recorder,
            shadows: Default::default(),
            window: CallWindow::default(),
            engine,
            linker,
            settings,
            limits,
            permits,
            cache,
            slots: Default::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// A runtime serving the three built-in default plugins, with each slot's configured
    /// policy and config.
    pub async fn with_embedded_defaults(settings: RuntimeSettings) -> anyhow::Result<Self> {
        let runtime = Self::new(settings)?;
        for slot in Slot::ALL {
            runtime
                .load_default(slot)
                .await
                .with_context(|| format!("Failed to load the built-in {slot} plugin"))?;
        }
        Ok(runtime)
    }

    /// The runtime's settings.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.inner.settings
    }

    fn slot(&self, slot: Slot) -> &SlotState {
        &self.inner.slots[slot.index()]
    }

    /// Tax of `draft`, from the tax slot.
    pub async fn calculate_tax(&self, draft: &OrderDraft) -> Result<TaxBreakdown, PluginCallError> {
        match self.call(PluginInput::Calculate(draft.clone())).await?.0 {
            PluginOutput::Tax(out) => Ok(out),
            other => Err(mismatch(Slot::Tax, &other)),
        }
    }

    /// The violations of `draft` (empty = valid), from the validation slot.
    pub async fn validate(&self, draft: &OrderDraft) -> Result<Vec<Violation>, PluginCallError> {
        match self.call(PluginInput::Validate(draft.clone())).await?.0 {
            PluginOutput::Violations(out) => Ok(out),
            other => Err(mismatch(Slot::Validation, &other)),
        }
    }

    /// The confirmation e-mail for `order`, from the e-mail slot.
    pub async fn render_confirmation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        match self
            .call(PluginInput::RenderConfirmation(order.clone()))
            .await?
            .0
        {
            PluginOutput::Email(out) => Ok(out),
            other => Err(mismatch(Slot::Email, &other)),
        }
    }

    /// The cancellation e-mail for `order`, from the e-mail slot.
    pub async fn render_cancellation(
        &self,
        order: &StoredOrder,
    ) -> Result<RenderedEmail, PluginCallError> {
        match self
            .call(PluginInput::RenderCancellation(order.clone()))
            .await?
            .0
        {
            PluginOutput::Email(out) => Ok(out),
            other => Err(mismatch(Slot::Email, &other)),
        }
    }

    /// Runs `input` on its slot under the slot's failure policy, with the call's measurements.
    pub async fn call(
        &self,
        input: PluginInput,
    ) -> Result<(PluginOutput, CallStats), PluginCallError> {
        let slot = input.slot();
        let state = self.slot(slot);
        state.calls.fetch_add(1, Ordering::Relaxed);
        let Some(active) = state.active.load_full() else {
            state.errors.fetch_add(1, Ordering::Relaxed);
            return Err(PluginCallError::NotLoaded { slot });
        };
        let size = input.json_size();
        if size > self.inner.settings.input_cap_bytes {
            let failure = Failure {
                kind: FailureKind::InputTooLarge,
                message: format!(
                    "the input is {size} bytes of JSON; at most {} are accepted",
                    self.inner.settings.input_cap_bytes
                ),
            };
            metrics::counter!(
                "plugin_calls_total", "slot" => slot.as_str(),
                "version" => active.version().to_owned(), "outcome" => failure.kind.code()
            )
            .increment(1);
            log_failure(slot, &active, &failure);
            self.inner
                .window
                .record(slot, active.version(), None, false);
            return Err(self.fail(slot, &active, failure));
        }
        let (result, stats) = self.invoke(slot, &active, &input).await;
        self.inner
            .window
            .record(slot, active.version(), Some(stats.duration), result.is_ok());
        let failure = match result {
            Ok(out) => {
                self.shadow_call(slot, &input, &out);
                self.inner
                    .recorder
                    .record(slot, &active.sha256, input, size, &out);
                return Ok((out, stats));
            }
            Err(failure) => failure,
        };
        log_failure(slot, &active, &failure);
        if active.policy == FailurePolicy::Fallback && failure.kind.is_plugin_fault() {
            for candidate in self.fallbacks(state, &active) {
                let (result, stats) = self.invoke(slot, &candidate, &input).await;
                self.inner.window.record(
                    slot,
                    candidate.version(),
                    Some(stats.duration),
                    result.is_ok(),
                );
                match (result, stats) {
                    (Ok(out), stats) => {
                        state.errors.fetch_add(1, Ordering::Relaxed);
                        state.fallbacks.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            slot = %slot, version = %active.version(), fallback = %candidate.version(),
                            "a fallback version served the call"
                        );
                        return Ok((out, stats));
                    }
                    (Err(f), _) => log_failure(slot, &candidate, &f),
                }
            }
        }
        Err(self.fail(slot, &active, failure))
    }

    /// Counts a failed call and builds its error.
    fn fail(&self, slot: Slot, active: &ActivePlugin, failure: Failure) -> PluginCallError {
        self.slot(slot).errors.fetch_add(1, Ordering::Relaxed);
        PluginCallError::Unavailable {
            slot,
            version: active.version().to_owned(),
            kind: failure.kind,
            message: failure.message,
        }
    }

    /// The versions to retry on, in order: the previous good one, then the built-in default,
    /// skipping any that is the failing version itself.
    fn fallbacks(&self, state: &SlotState, active: &ActivePlugin) -> Vec<Arc<ActivePlugin>> {
        let mut out: Vec<Arc<ActivePlugin>> = Vec::new();
        for candidate in [state.previous.load_full(), state.default.load_full()]
            .into_iter()
            .flatten()
        {
            let same_as =
                |p: &ActivePlugin| p.sha256 == candidate.sha256 && p.config == candidate.config;
            if !same_as(active) && !out.iter().any(|p| same_as(p)) {
                out.push(candidate);
            }
        }
        out
    }

    pub(super) async fn invoke(
        &self,
        slot: Slot,
        plugin: &ActivePlugin,
        input: &PluginInput,
    ) -> (Result<PluginOutput, Failure>, CallStats) {
        let Ok(_permit) = self.inner.permits.acquire().await else {
            let failure = Failure {
                kind: FailureKind::Instantiation,
                message: "the runtime is shutting down".into(),
            };
            return (Err(failure), CallStats::default());
        };
        let limits = &self.inner.limits[slot.index()];
        invoke(&self.inner.engine, limits, slot, plugin, input).await
    }

    /// What every slot is serving, and its call counters.
    pub fn status(&self) -> Vec<SlotStatus> {
        Slot::ALL
            .into_iter()
            .map(|slot| SlotStatus::of(slot, self.slot(slot)))
            .collect()
    }

    /// Live calls per slot and version over the last
    /// [`WINDOW_MINUTES`](super::WINDOW_MINUTES) minutes.
    pub fn call_window(&self) -> Vec<VersionWindow> {
        self.inner.window.snapshot()
    }

    /// Refreshes the `/metrics` gauges of [`PluginRuntime::call_window`].
    pub fn publish_call_window(&self) {
        self.inner.window.publish();
    }

    /// The status of one slot.
    pub fn slot_status(&self, slot: Slot) -> SlotStatus {
        SlotStatus::of(slot, self.slot(slot))
    }

    /// The recent answered calls of `slot` (admin-only data).
    pub fn recording(&self, slot: Slot) -> Recording {
        self.inner.recorder.snapshot(slot)
    }

    /// The config a version uploaded with `config` runs with: its own, or the slot's
    /// configured one when it came without.
    pub fn effective_config(&self, slot: Slot, config: &Config) -> Config {
        if config.is_empty() {
            self.inner.settings.slot(slot).config.clone()
        } else {
            config.clone()
        }
    }

    pub(super) fn active_plugin(&self, slot: Slot) -> Option<Arc<ActivePlugin>> {
        self.slot(slot).active.load_full()
    }

    pub(super) fn shadows(&self) -> &[ArcSwapOption<Shadow>; 3] {
        &self.inner.shadows
    }

    pub(super) fn personal_data(&self) -> PersonalData {
        self.inner.recorder.personal_data()
    }

    /// The engine and `slot`'s limits (memory cap, deadline), for running a candidate as
    /// that slot would.
    pub(super) fn engine_and_limits(&self, slot: Slot) -> (&Engine, &Limits) {
        (&self.inner.engine, &self.inner.limits[slot.index()])
    }

    /// A permit of the instance pool if one is free now.
    pub(super) fn try_pool_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.inner.permits.try_acquire().ok()
    }
}

pub(super) fn candidate(
    prepared: Prepared,
    source: PluginSource,
    config: Config,
    policy: FailurePolicy,
) -> ActivePlugin {
    ActivePlugin {
        pre: prepared.pre,
        sha256: prepared.sha256,
        generation: 0,
        source,
        config,
        policy,
        loaded_at: Utc::now(),
    }
}

fn log_failure(slot: Slot, plugin: &ActivePlugin, failure: &Failure) {
    tracing::warn!(
        slot = %slot, version = %plugin.version(), kind = failure.kind.code(), policy = %plugin.policy,
        "plugin call failed: {}", failure.message
    );
}

fn mismatch(slot: Slot, output: &PluginOutput) -> PluginCallError {
    let kind = FailureKind::BadOutput;
    let message = format!("unexpected output for the {slot} slot: {output:?}");
    PluginCallError::Unavailable {
        slot,
        version: String::new(),
        kind,
        message,
    }
}

//! The three rule slots and what each holds: the active plugin behind an atomic swap, the
//! previous good version and the embedded default (the fallback chain), and the call counters
//! `status()` reports. A swap is one pointer store; calls in flight keep the version they
//! started with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use rule_types::Config;
use serde::Serialize;

use super::bindings::{email::EmailRenderPre, tax::TaxRulesPre, validation::OrderValidationPre};
use super::contract::{FailurePolicy, PluginSource, Slot};
use super::store::HostState;

/// A compiled plugin ready to instantiate, typed by its slot's world.
#[derive(Clone)]
pub(crate) enum SlotPre {
    Tax(TaxRulesPre<HostState>),
    Validation(OrderValidationPre<HostState>),
    Email(EmailRenderPre<HostState>),
}

/// One loaded version of a plugin.
pub(crate) struct ActivePlugin {
    /// Instantiation template, checked against the slot's world.
    pub pre: SlotPre,
    /// Hex sha256 of the component bytes: the version's identity.
    pub sha256: String,
    /// Counts swaps into this slot, so status readers can tell versions apart in time.
    pub generation: u64,
    /// Where the bytes came from.
    pub source: PluginSource,
    /// Key/value settings passed on every call.
    pub config: Config,
    /// What a failed call does while this version is active.
    pub policy: FailurePolicy,
    /// When this version became active.
    pub loaded_at: DateTime<Utc>,
}

impl ActivePlugin {
    /// Short version label for logs and metrics (the first 12 hex digits of the sha256).
    pub fn version(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }

    /// The same compiled plugin, re-activated under a new generation.
    pub fn reactivated(&self, generation: u64) -> Self {
        Self {
            pre: self.pre.clone(),
            sha256: self.sha256.clone(),
            generation,
            source: self.source.clone(),
            config: self.config.clone(),
            policy: self.policy,
            loaded_at: Utc::now(),
        }
    }
}

/// The state of one slot.
#[derive(Default)]
pub(crate) struct SlotState {
    /// The version serving calls.
    pub active: ArcSwapOption<ActivePlugin>,
    /// The version active before the current one: the first fallback.
    pub previous: ArcSwapOption<ActivePlugin>,
    /// The version built into the binary: the last fallback, and what a removed file reverts to.
    pub default: ArcSwapOption<ActivePlugin>,
    /// Serialises loads and swaps of this slot so `previous` and generations stay consistent.
    pub swap_lock: tokio::sync::Mutex<()>,
    /// Last generation handed out.
    pub generation: AtomicU64,
    /// Calls made to this slot.
    pub calls: AtomicU64,
    /// Calls whose active version failed (whether or not a fallback then served them).
    pub errors: AtomicU64,
    /// Calls served by a fallback version.
    pub fallbacks: AtomicU64,
}

impl SlotState {
    /// The next generation number.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `plugin` active, keeping the replaced version as the first fallback.
    /// The caller holds `swap_lock`.
    pub fn activate(&self, plugin: Arc<ActivePlugin>) {
        if let Some(old) = self.active.swap(Some(plugin)) {
            self.previous.store(Some(old));
        }
    }
}

/// What `status()` reports about one slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// Hex sha256 of the active version, if any.
    pub sha256: Option<String>,
    /// Generation of the active version (0 when empty).
    pub generation: u64,
    /// Where the active version came from.
    pub source: Option<PluginSource>,
    /// The active version's failure policy.
    pub policy: Option<FailurePolicy>,
    /// The active version's config.
    pub config: Config,
    /// When the active version was swapped in.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Calls made to the slot since start.
    pub calls: u64,
    /// Calls whose active version failed.
    pub errors: u64,
    /// Calls a fallback version served.
    pub fallbacks: u64,
}

impl SlotStatus {
    pub(crate) fn of(slot: Slot, state: &SlotState) -> Self {
        let active = state.active.load_full();
        let a = active.as_deref();
        Self {
            slot,
            sha256: a.map(|p| p.sha256.clone()),
            generation: a.map_or(0, |p| p.generation),
            source: a.map(|p| p.source.clone()),
            policy: a.map(|p| p.policy),
            config: a.map(|p| p.config.clone()).unwrap_or_default(),
            loaded_at: a.map(|p| p.loaded_at),
            calls: state.calls.load(Ordering::Relaxed),
            errors: state.errors.load(Ordering::Relaxed),
            fallbacks: state.fallbacks.load(Ordering::Relaxed),
        }
    }
}

/// The outcome of a successful load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedVersion {
    /// The slot it was loaded into.
    pub slot: Slot,
    /// Hex sha256 of the component.
    pub sha256: String,
    /// Its generation in the slot.
    pub generation: u64,
    /// Where it came from.
    pub source: PluginSource,
    /// Its failure policy.
    pub policy: FailurePolicy,
}

impl LoadedVersion {
    pub(crate) fn of(slot: Slot, plugin: &ActivePlugin) -> Self {
        Self {
            slot,
            sha256: plugin.sha256.clone(),
            generation: plugin.generation,
            source: plugin.source.clone(),
            policy: plugin.policy,
        }
    }
}

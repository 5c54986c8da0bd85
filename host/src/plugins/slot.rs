//! The three rule slots and what each holds: the active plugin behind an atomic swap, the
//! previous good version and the embedded default (the fallback chain), and the call counters
//! `status()` reports. A swap is one pointer store; calls in flight keep the version they
//! started with.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use rule_types::Config;
use serde::{Deserialize, Serialize};

use super::bindings::{email::EmailRenderPre, tax::TaxRulesPre, validation::OrderValidationPre};
use super::store::HostState;

/// A place in order processing where a plugin decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Computes the tax of an order draft (`tax-rules` world).
    Tax,
    /// Accepts or refuses an order draft (`order-validation` world).
    Validation,
    /// Renders customer e-mails about an order (`email-render` world).
    Email,
}

impl Slot {
    /// Every slot, in a stable order.
    pub const ALL: [Slot; 3] = [Slot::Tax, Slot::Validation, Slot::Email];

    /// The lower-case name used in file names, URLs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Tax => "tax",
            Slot::Validation => "validation",
            Slot::Email => "email",
        }
    }

    /// The WIT world a plugin for this slot implements.
    pub fn world(self) -> &'static str {
        match self {
            Slot::Tax => "tax-rules",
            Slot::Validation => "order-validation",
            Slot::Email => "email-render",
        }
    }

    /// The exported interface, fully qualified.
    pub fn interface(self) -> &'static str {
        match self {
            Slot::Tax => "shop:rules/tax@0.1.0",
            Slot::Validation => "shop:rules/validation@0.1.0",
            Slot::Email => "shop:rules/email@0.1.0",
        }
    }

    /// The functions the interface must export.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Slot::Tax => &["calculate"],
            Slot::Validation => &["validate"],
            Slot::Email => &["render-confirmation", "render-cancellation"],
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown slot `{s}` (expected tax, validation or email)")
            })
    }
}

/// What a failed plugin call does; set per slot by the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The call fails and the request with it (a 503 for the client).
    #[default]
    FailClosed,
    /// The call is retried on the previous good version, else on the embedded default.
    Fallback,
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePolicy::FailClosed => "fail-closed",
            FailurePolicy::Fallback => "fallback",
        })
    }
}

/// Where a plugin version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PluginSource {
    /// Built into the `orderd` binary.
    Embedded,
    /// Read from a file (the watched plugins directory, or a path given by the operator).
    File {
        /// The file it was read from.
        path: PathBuf,
    },
    /// Uploaded through the admin API and stored under this id.
    Upload {
        /// The stored version's id.
        version_id: String,
    },
}

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

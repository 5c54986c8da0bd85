//! Operator settings of the plugin runtime: resource limits every call runs under, the
//! precompiled-artifact cache, and each slot's failure policy and config. Deserializable so the
//! service configuration can embed it; every field has a default.

use std::path::PathBuf;
use std::time::Duration;

use rule_types::Config;
use serde::{Deserialize, Serialize};

use super::contract::{FailurePolicy, Slot};

/// Limits and defaults the runtime applies to every plugin call and load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Largest linear memory a guest may grow to, in bytes. A guest that asks for more gets a
    /// failed `memory.grow` and the call fails with the `memory` kind. A slot may set its own.
    pub memory_cap_bytes: usize,
    /// Running-time (CPU) budget of one call in milliseconds, instantiation included. A guest
    /// that uses it up is interrupted and the call fails with the `timeout` kind. A call that
    /// has not returned after ten times this much wall-clock time (a guest blocked in a host
    /// call, or a starved machine) fails the same way. A slot may set its own.
    pub deadline_ms: u64,
    /// Largest JSON-serialized input (draft or stored order) a call accepts, in bytes; larger
    /// inputs are refused before any guest code runs.
    pub input_cap_bytes: usize,
    /// Fuel (roughly, WebAssembly instructions) per call. `None` turns fuel metering off; the
    /// deadline still applies. Metering costs some speed, so it is off by default.
    pub fuel: Option<u64>,
    /// Directory for precompiled components, keyed by content hash and engine settings, so a
    /// restart (or another process on this host) skips compilation. `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Highest tax rate, in basis points, a tax plugin may apply to a line (10000 = 100%).
    pub max_tax_rate_bps: u32,
    /// How many plugin calls may run at the same time; further calls wait for a free slot.
    /// Sizes the engine's instance pool.
    pub max_concurrent_calls: u32,
    /// Run every candidate on the built-in fixtures before it is swapped in. Turn off only for
    /// plugins whose config makes the fixtures meaningless.
    pub smoke_test: bool,
    /// Let the plugins-directory watcher follow a symbolic link named `<slot>.wasm` or
    /// `<slot>.toml` (to a regular file only). Off: such links are refused.
    pub watch_follow_symlinks: bool,
    /// Recent real inputs kept per slot for dry runs and replays (see `recorder`).
    pub recording: RecordingSettings,
    /// How a shadow candidate runs beside the active version (see `shadow`).
    pub shadow: ShadowSettings,
    /// Policy and config of the tax slot.
    pub tax: SlotSettings,
    /// Policy and config of the validation slot.
    pub validation: SlotSettings,
    /// Policy and config of the e-mail slot.
    pub email: SlotSettings,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            memory_cap_bytes: 32 << 20,
            deadline_ms: 50,
            input_cap_bytes: 64 << 10,
            fuel: None,
            cache_dir: None,
            max_tax_rate_bps: 10_000,
            max_concurrent_calls: 64,
            smoke_test: true,
            watch_follow_symlinks: false,
            recording: RecordingSettings::default(),
            shadow: ShadowSettings::default(),
            tax: SlotSettings::default(),
            validation: SlotSettings::default(),
            email: SlotSettings::default(),
        }
    }
}

impl RuntimeSettings {
    /// The per-call deadline as a [`Duration`].
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The memory cap of `slot`'s calls: the slot's own, else the runtime-wide one.
    pub fn memory_cap(&self, slot: Slot) -> usize {
        self.slot(slot)
            .memory_cap_bytes
            .unwrap_or(self.memory_cap_bytes)
    }

    /// The running-time budget of `slot`'s calls: the slot's own, else the runtime-wide one.
    pub fn slot_deadline(&self, slot: Slot) -> Duration {
        Duration::from_millis(self.slot(slot).deadline_ms.unwrap_or(self.deadline_ms))
    }

    /// The largest memory cap of any slot: what each slot of the instance pool reserves.
    pub fn largest_memory_cap(&self) -> usize {
        Slot::ALL
            .into_iter()
            .map(|slot| self.memory_cap(slot))
            .max()
            .unwrap_or(self.memory_cap_bytes)
    }

    /// The settings of one slot.
    pub fn slot(&self, slot: Slot) -> &SlotSettings {
        match slot {
            Slot::Tax => &self.tax,
            Slot::Validation => &self.validation,
            Slot::Email => &self.email,
        }
    }

    /// Mutable settings of one slot.
    pub fn slot_mut(&mut self, slot: Slot) -> &mut SlotSettings {
        match slot {
            Slot::Tax => &mut self.tax,
            Slot::Validation => &mut self.validation,
            Slot::Email => &mut self.email,
        }
    }
}

/// Operator settings of one slot; a plugin loaded without its own policy or config gets these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlotSettings {
    /// What a failed call does: fail the request, or retry on the previous good version.
    pub policy: FailurePolicy,
    /// Key/value settings passed to the plugin on every call.
    pub config: Config,
    /// Memory cap of this slot's calls in bytes, when it differs from the runtime-wide
    /// `memory_cap_bytes` (a plugin in an interpreted language needs tens of MiB).
    pub memory_cap_bytes: Option<usize>,
    /// Running-time budget of this slot's calls in milliseconds, when it differs from the
    /// runtime-wide `deadline_ms`.
    pub deadline_ms: Option<u64>,
}

/// What the per-slot ring of recent real inputs keeps. Only admins can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// Most calls kept per slot (the oldest are dropped first). `0` turns recording off.
    pub inputs_per_slot: usize,
    /// Most bytes (JSON size of input plus output) kept per slot.
    pub max_bytes_per_slot: usize,
    /// What happens to the customer's e-mail, name and address before an input is kept.
    pub personal_data: PersonalData,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            inputs_per_slot: 100,
            max_bytes_per_slot: 1 << 20,
            personal_data: PersonalData::Redact,
        }
    }
}

/// The treatment of personal data (customer e-mail, name, shipping address) in recorded calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonalData {
    /// Replaced by placeholders (`redacted@example.invalid`, `Redacted`); the postal code is
    /// removed; country and region, which rules key on, are kept. The same values are replaced
    /// in recorded e-mail output.
    #[default]
    Redact,
    /// Left out: e-mail and name empty, no shipping address.
    Drop,
    /// Kept as the call saw them.
    Keep,
}

/// Limits of shadow runs: a shadow never slows or queues live calls, it drops work instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowSettings {
    /// Most shadow calls running at once per slot; a live call that finds them all busy is not
    /// shadowed (and counted as dropped).
    pub max_in_flight: usize,
    /// Divergences and failures kept as examples (the most recent).
    pub examples: usize,
}

impl Default for ShadowSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 2,
            examples: 5,
        }
    }
}

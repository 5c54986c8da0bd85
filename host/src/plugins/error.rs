//! The errors of the plugin runtime: why a call failed ([`PluginCallError`], with the
//! [`FailureKind`] operators and the HTTP layer branch on) and why a candidate was refused
//! ([`LoadError`]).

use std::fmt;

use serde::Serialize;

use super::contract::Slot;

/// Why a plugin call produced no usable result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FailureKind {
    /// The guest trapped (panic, `unreachable`, out-of-bounds access, stack overflow).
    Trap,
    /// The guest was still running when the per-call deadline expired.
    Timeout,
    /// The guest ran out of its fuel budget.
    OutOfFuel,
    /// The guest asked for more memory than the per-call cap.
    Memory,
    /// The guest returned a result that fails the host's output checks.
    BadOutput,
    /// The input was larger than the input cap; no guest code ran.
    InputTooLarge,
    /// The guest returned its own error value.
    PluginError {
        /// The guest's stable error code ("bad-config", "unsupported-currency").
        code: String,
        /// The guest's explanation.
        message: String,
    },
    /// The host could not instantiate the plugin (for example, the instance pool is exhausted).
    Instantiation,
}

impl FailureKind {
    /// Stable kebab-case name, used in logs, metrics and problem `type`s.
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfFuel => "out-of-fuel",
            FailureKind::Memory => "memory",
            FailureKind::BadOutput => "bad-output",
            FailureKind::InputTooLarge => "input-too-large",
            FailureKind::PluginError { .. } => "plugin-error",
            FailureKind::Instantiation => "instantiation",
        }
    }

    /// Whether the plugin is to blame, so a fallback version may do better. An oversized
    /// input fails the same way on every version.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, FailureKind::InputTooLarge)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::PluginError { code, .. } => write!(f, "plugin-error {code}"),
            other => f.write_str(other.code()),
        }
    }
}

/// A plugin call that failed. The HTTP layer maps it to a 503 problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCallError {
    /// The active version (and, under the fallback policy, every fallback) failed.
    #[error("the {slot} plugin (version {version}) failed: {kind}: {message}")]
    Unavailable {
        /// The slot that was called.
        slot: Slot,
        /// Short sha256 prefix of the version that failed.
        version: String,
        /// What went wrong, for branching.
        kind: FailureKind,
        /// Human-readable detail (trap message, failed check).
        message: String,
    },
    /// No plugin has been loaded into the slot yet.
    #[error("no {slot} plugin is loaded")]
    NotLoaded {
        /// The empty slot.
        slot: Slot,
    },
}

impl PluginCallError {
    /// The failure kind, when a plugin ran.
    pub fn kind(&self) -> Option<&FailureKind> {
        match self {
            PluginCallError::Unavailable { kind, .. } => Some(kind),
            PluginCallError::NotLoaded { .. } => None,
        }
    }
}

/// Why a candidate plugin was refused. The active version keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component at all.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The bytes look like a component but do not compile (truncated, corrupt, unsupported).
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component does not export what the slot's world requires.
    #[error("the component does not export {missing} (the {slot} slot needs the {world} world)")]
    WrongWorld {
        /// The slot it was meant for.
        slot: Slot,
        /// The WIT world the slot requires.
        world: &'static str,
        /// The first missing export, as `package/interface@version#function`.
        missing: String,
    },
    /// The component's exports or imports have types the host does not provide.
    #[error("the component does not fit the {slot} slot: {message}")]
    Link {
        /// The slot it was meant for.
        slot: Slot,
        /// What does not match.
        message: String,
    },
    /// The component failed on the built-in fixtures.
    #[error("the component failed the {slot} smoke test: {message}")]
    SmokeTest {
        /// The slot it was meant for.
        slot: Slot,
        /// The call error on the fixture.
        message: String,
    },
    /// A file or setting around the component is wrong (unreadable file, bad `<slot>.toml`).
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

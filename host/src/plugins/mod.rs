//! The WebAssembly plugin runtime: the tax, validation and e-mail rules of orderd are
//! components implementing the `shop:rules` worlds in `wit/`.
//!
//! One [`PluginRuntime`] per process owns one wasmtime engine and three slots. Each slot
//! serves its active plugin from an atomic swap; every call gets a fresh store with a memory
//! cap, a CPU-time deadline and a WASI context that grants nothing, and its output is checked
//! before the host uses it. New versions come from bytes ([`PluginRuntime::load`]), from the watched
//! plugins directory ([`PluginRuntime::spawn_watcher`]) or from the built-in defaults, and are
//! compiled, checked against the slot's world and smoke-tested before they are swapped in.
//!
//! Modules: `engine` (engine, linker, epoch ticker), `bindings` (the only `bindgen!`),
//! `slot` (slots and versions), `store` + `stderr` (the per-call sandbox), `call` (one call), `call_window` (live calls per version over the last minutes),
//! `checks` (output checks), `loader` + `cache` (compiling candidates), `runtime` (the public
//! handle and failure policies), `watcher` (hot reload), `native` (the same rules compiled
//! natively, for comparison), `fixtures` (smoke-test inputs), `embedded` (built-in defaults),
//! `template` (the crate `orderd plugin new` writes), `recorder` (recent real calls per slot),
//! `dry_run` (a candidate on recorded calls and fixtures) and `shadow` (a candidate beside the
//! active version on live calls).

mod bindings;
mod cache;
mod call;
mod call_window;
mod checks;
mod contract;
mod dry_run;
mod embedded;
mod engine;
mod error;
pub mod fixtures;
mod loader;
pub mod native;
mod recorder;
mod runtime;
mod settings;
mod shadow;
mod slot;
mod stderr;
mod store;
pub mod template;
mod watcher;

pub use call::{CallStats, PluginInput, PluginOutput};
pub use call_window::{VersionWindow, WINDOW_MINUTES};
pub use checks::{
    MAX_CODE_LEN, MAX_HTML_BYTES, MAX_MESSAGE_BYTES, MAX_RATE_NAME_BYTES, MAX_SUBJECT_BYTES,
    MAX_TAX_LINES_PER_ITEM, MAX_TEXT_BYTES, MAX_VIOLATIONS,
};
pub use contract::{FailurePolicy, PluginSource, Slot};
pub use dry_run::{DryRunItem, DryRunReport, DryRunSummary, InputSource, RunResult};
pub use embedded::{PLUGIN_DIR, default_component};
pub use error::{FailureKind, LoadError, PluginCallError};
pub use loader::sha256_hex;
pub use recorder::{REDACTED_EMAIL, REDACTED_NAME, RecordedCall, Recording};
pub use runtime::{Candidate, CheckReport, PluginRuntime};
pub use settings::{
    PersonalData, RecordingSettings, RuntimeSettings, ShadowSettings, SlotSettings,
};
pub use shadow::{Divergence, ShadowFailure, ShadowStatus, ShadowUpload};
pub use slot::{LoadedVersion, SlotStatus};
pub use watcher::{MAX_COMPONENT_BYTES, MAX_SLOT_FILE_BYTES, SlotFile, WatcherHandle};

/// Converts a wasmtime error (wasmtime has its own error type) into an [`anyhow::Error`],
/// keeping the cause chain.
pub(crate) fn wt(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(error.into_boxed_dyn_error())
}

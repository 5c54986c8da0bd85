//! One plugin call: a fresh store, instantiation, the typed export call, failure
//! classification (trap, timeout, memory, fuel, the guest's own error), the output checks, the
//! guest's stderr drained to tracing, and the per-call metrics.

use std::io;
use std::time::Instant;

use rule_types::{OrderDraft, RenderedEmail, StoredOrder, TaxBreakdown, Violation};
use serde::{Deserialize, Serialize};
use wasmtime::{Engine, Store, Trap};

use super::bindings::wit;
use super::checks;
use super::contract::Slot;
use super::error::FailureKind;
use super::slot::{ActivePlugin, SlotPre};
use super::store::{HostState, StoreConfig, new_store};
use super::wt;

/// The input of one plugin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "function", content = "input", rename_all = "kebab-case")]
pub enum PluginInput {
    /// `tax.calculate`
    Calculate(OrderDraft),
    /// `validation.validate`
    Validate(OrderDraft),
    /// `email.render-confirmation`
    RenderConfirmation(StoredOrder),
    /// `email.render-cancellation`
    RenderCancellation(StoredOrder),
}

impl PluginInput {
    /// The slot that serves this function.
    pub fn slot(&self) -> Slot {
        match self {
            PluginInput::Calculate(_) => Slot::Tax,
            PluginInput::Validate(_) => Slot::Validation,
            PluginInput::RenderConfirmation(_) | PluginInput::RenderCancellation(_) => Slot::Email,
        }
    }

    /// Size of the input serialized as JSON: what the input cap limits.
    pub fn json_size(&self) -> usize {
        let mut counter = ByteCounter(0);
        let result = match self {
            PluginInput::Calculate(d) | PluginInput::Validate(d) => {
                serde_json::to_writer(&mut counter, d)
            }
            PluginInput::RenderConfirmation(o) | PluginInput::RenderCancellation(o) => {
                serde_json::to_writer(&mut counter, o)
            }
        };
        // Serializing these plain structs cannot fail; count a failure as "too large".
        result.map_or(usize::MAX, |()| counter.0)
    }
}

/// The output of one plugin call, already checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PluginOutput {
    /// From `tax.calculate`.
    Tax(TaxBreakdown),
    /// From `validation.validate`.
    Violations(Vec<Violation>),
    /// From either e-mail function.
    Email(RenderedEmail),
}

/// A failed call: its kind and the detail.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Detail for logs and the error message.
    pub message: String,
}

/// Measurements of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStats {
    /// Fuel the call consumed, when fuel metering is on.
    pub fuel_consumed: Option<u64>,
    /// Wall-clock time of the call: store, instantiation, the export and the output checks.
    pub duration: std::time::Duration,
}

/// The size of `value` serialized as JSON, counted without keeping the bytes.
pub(crate) fn json_size<T: Serialize>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value).map_or(usize::MAX, |()| counter.0)
}

/// Counts serialized bytes without keeping them.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The wall-clock limit of a call, as a multiple of its running-time budget.
const WALL_CLOCK_FACTOR: u32 = 10;

/// Call limits shared by every call of a runtime.
pub struct Limits {
    /// Per-call memory cap.
    pub memory_cap: usize,
    /// Per-call running-time budget.
    pub deadline: std::time::Duration,
    /// Per-call fuel, when metering is on.
    pub fuel: Option<u64>,
    /// Highest tax rate a line may carry.
    pub max_tax_rate_bps: u32,
}

/// Runs `input` on `plugin` in a fresh store and checks the output.
pub async fn invoke(
    engine: &Engine,
    limits: &Limits,
    slot: Slot,
    plugin: &ActivePlugin,
    input: &PluginInput,
) -> (Result<PluginOutput, Failure>, CallStats) {
    let started = Instant::now();
    let store_config = StoreConfig {
        memory_cap: limits.memory_cap,
        deadline: limits.deadline,
        fuel: limits.fuel,
    };
    let mut stats = CallStats::default();
    let result = match new_store(engine, &store_config) {
        Ok(mut store) => {
            // The running-time budget cannot fire while the guest waits in a host call, so the
            // whole call also has a generous wall-clock limit.
            let backstop = limits.deadline * WALL_CLOCK_FACTOR;
            let raw = match tokio::time::timeout(backstop, run(&mut store, plugin, input)).await {
                Ok(raw) => raw,
                Err(_) => Err((
                    wasmtime::format_err!("no result within {backstop:?} of wall-clock time"),
                    Stage::WallClock,
                )),
            };
            if let Some(fuel) = limits.fuel {
                stats.fuel_consumed = store.get_fuel().ok().map(|left| fuel.saturating_sub(left));
            }
            let result = finish(&store, raw, input, limits.max_tax_rate_bps);
            drain_stderr(&store, slot, plugin);
            result
        }
        Err(e) => Err(Failure {
            kind: FailureKind::Instantiation,
            message: format!("could not create a store: {:#}", wt(e)),
        }),
    };
    let version = plugin.version().to_owned();
    let outcome = match &result {
        Ok(_) => "ok",
        Err(f) => f.kind.code(),
    };
    metrics::counter!("plugin_calls_total", "slot" => slot.as_str(), "version" => version.clone(), "outcome" => outcome)
        .increment(1);
    stats.duration = started.elapsed();
    metrics::histogram!("plugin_call_duration_seconds", "slot" => slot.as_str(), "version" => version)
        .record(stats.duration.as_secs_f64());
    (result, stats)
}

/// Where a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Creating the instance (host-side limits, start functions).
    Instantiate,
    /// Running the export.
    Call,
    /// The wall-clock backstop expired.
    WallClock,
    /// The plugin's world does not serve the function (a host bug).
    Dispatch,
}

/// What the export call produced before any checks.
enum Raw {
    Tax(Result<wit::TaxBreakdown, wit::PluginError>),
    Violations(Result<Vec<wit::Violation>, wit::PluginError>),
    Email(Result<wit::RenderedEmail, wit::PluginError>),
}

/// Instantiates the plugin and calls the export `input` names.
async fn run(
    store: &mut Store<HostState>,
    plugin: &ActivePlugin,
    input: &PluginInput,
) -> Result<Raw, (wasmtime::Error, Stage)> {
    let config = &plugin.config;
    match (&plugin.pre, input) {
        (SlotPre::Tax(pre), PluginInput::Calculate(draft)) => {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| (e, Stage::Instantiate))?;
            let draft = wit::OrderDraft::from(draft);
            let out = instance
                .shop_rules_tax()
                .call_calculate(&mut *store, &draft, config)
                .await;
            out.map(Raw::Tax).map_err(|e| (e, Stage::Call))
        }
        (SlotPre::Validation(pre), PluginInput::Validate(draft)) => {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| (e, Stage::Instantiate))?;
            let draft = wit::OrderDraft::from(draft);
            let out = instance
                .shop_rules_validation()
                .call_validate(&mut *store, &draft, config)
                .await;
            out.map(Raw::Violations).map_err(|e| (e, Stage::Call))
        }
        (SlotPre::Email(pre), PluginInput::RenderConfirmation(order)) => {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| (e, Stage::Instantiate))?;
            let order = wit::StoredOrder::from(order);
            let email = instance.shop_rules_email();
            let out = email
                .call_render_confirmation(&mut *store, &order, config)
                .await;
            out.map(Raw::Email).map_err(|e| (e, Stage::Call))
        }
        (SlotPre::Email(pre), PluginInput::RenderCancellation(order)) => {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| (e, Stage::Instantiate))?;
            let order = wit::StoredOrder::from(order);
            let email = instance.shop_rules_email();
            let out = email
                .call_render_cancellation(&mut *store, &order, config)
                .await;
            out.map(Raw::Email).map_err(|e| (e, Stage::Call))
        }
        _ => Err((
            wasmtime::format_err!("{} is not served by this slot", input.slot()),
            Stage::Dispatch,
        )),
    }
}

/// Classifies a failure, converts the output and applies the output checks.
fn finish(
    store: &Store<HostState>,
    raw: Result<Raw, (wasmtime::Error, Stage)>,
    input: &PluginInput,
    max_tax_rate_bps: u32,
) -> Result<PluginOutput, Failure> {
    let raw = raw.map_err(|(e, stage)| classify(store, e, stage))?;
    let guest_error = |e: wit::PluginError| {
        let e = rule_types::PluginError::from(e);
        Failure {
            message: format!("{}: {}", e.code, e.message),
            kind: FailureKind::PluginError {
                code: e.code,
                message: e.message,
            },
        }
    };
    let bad = |message: String| Failure {
        kind: FailureKind::BadOutput,
        message,
    };
    match (raw, input) {
        (Raw::Tax(out), PluginInput::Calculate(draft)) => {
            let out = TaxBreakdown::from(out.map_err(guest_error)?);
            checks::check_tax(draft, &out, max_tax_rate_bps).map_err(bad)?;
            Ok(PluginOutput::Tax(out))
        }
        (Raw::Violations(out), PluginInput::Validate(draft)) => {
            let out: Vec<Violation> = out
                .map_err(guest_error)?
                .into_iter()
                .map(Violation::from)
                .collect();
            checks::check_violations(draft, &out).map_err(bad)?;
            Ok(PluginOutput::Violations(out))
        }
        (Raw::Email(out), _) => {
            let out = RenderedEmail::from(out.map_err(guest_error)?);
            checks::check_email(&out).map_err(bad)?;
            Ok(PluginOutput::Email(out))
        }
        _ => Err(bad("the output does not match the function called".into())),
    }
}

/// Decides what kind of failure `error` is, from the trap code and what the store saw.
fn classify(store: &Store<HostState>, error: wasmtime::Error, stage: Stage) -> Failure {
    let trap = error.downcast_ref::<Trap>().copied();
    let state = store.data();
    let kind = if state.memory_refused() {
        FailureKind::Memory
    } else {
        match trap {
            _ if stage == Stage::WallClock => FailureKind::Timeout,
            Some(Trap::Interrupt) => FailureKind::Timeout,
            Some(Trap::OutOfFuel) => FailureKind::OutOfFuel,
            Some(_) => FailureKind::Trap,
            None if matches!(stage, Stage::Instantiate | Stage::Dispatch) => {
                FailureKind::Instantiation
            }
            None => FailureKind::Trap,
        }
    };
    let mut message = match (&kind, trap) {
        (FailureKind::Timeout, Some(Trap::Interrupt)) if state.out_of_time() => {
            "the plugin used up its running time and was interrupted".to_owned()
        }
        (FailureKind::Memory, _) => "the plugin asked for more memory than its cap".to_owned(),
        (_, Some(trap)) => trap.to_string(),
        (_, None) => {
            let text = format!("{:#}", wt(error));
            text.lines().next().unwrap_or_default().to_owned()
        }
    };
    // A panicking guest prints its panic message to stderr just before it traps.
    let tail = state.stderr().tail();
    if !tail.is_empty() {
        message.push_str(&format!(" (guest stderr: {tail})"));
    }
    Failure { kind, message }
}

/// Logs what the guest wrote to stderr, one event per line.
fn drain_stderr(store: &Store<HostState>, slot: Slot, plugin: &ActivePlugin) {
    let (lines, dropped) = store.data().stderr().take_lines();
    for line in lines {
        tracing::info!(target: "orderd::plugins::guest", slot = %slot, version = %plugin.version(), "{line}");
    }
    if dropped > 0 {
        tracing::warn!(target: "orderd::plugins::guest", slot = %slot, version = %plugin.version(), dropped, "guest stderr truncated");
    }
}

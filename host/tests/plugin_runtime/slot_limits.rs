//! Per-slot memory caps and deadlines, each as a pair: the same guest under a slot limit it
//! obeys and under one it violates, with the runtime-wide limit set the other way so only the
//! slot's own setting can explain the outcome.

use std::time::Duration;

use orderd::plugins::{
    FailureKind, FailurePolicy, PluginCallError, PluginRuntime, RuntimeSettings,
};

use crate::helpers::{assert_single_rate, five_lines, load_tax, settings, thread_cpu_time};

fn kind<T: std::fmt::Debug>(result: Result<T, PluginCallError>) -> FailureKind {
    match result {
        Err(PluginCallError::Unavailable { kind, .. }) => kind,
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

/// A runtime with empty slots, no smoke test, and `tune` applied to the test settings.
fn runtime(tune: impl FnOnce(&mut RuntimeSettings)) -> PluginRuntime {
    let mut settings = RuntimeSettings {
        smoke_test: false,
        max_concurrent_calls: 2,
        ..settings()
    };
    tune(&mut settings);
    PluginRuntime::new(settings).unwrap()
}

#[tokio::test]
async fn a_tax_slot_deadline_above_a_1_ms_runtime_deadline_lets_a_5_ms_plugin_finish() {
    let runtime = runtime(|s| {
        s.deadline_ms = 1;
        s.tax.deadline_ms = Some(1_000);
    });
    load_tax(&runtime, "slow_ok", FailurePolicy::FailClosed).await;
    let order = five_lines();
    let out = runtime
        .calculate_tax(&order)
        .await
        .expect("inside the slot's deadline");
    assert_single_rate(&order, &out, "gst", 1800);
}

#[tokio::test]
async fn a_1_ms_tax_slot_deadline_stops_a_5_ms_plugin_under_a_long_runtime_deadline() {
    let runtime = runtime(|s| {
        s.deadline_ms = 1_000;
        s.tax.deadline_ms = Some(1);
    });
    load_tax(&runtime, "slow_ok", FailurePolicy::FailClosed).await;
    assert_eq!(
        kind(runtime.calculate_tax(&five_lines()).await),
        FailureKind::Timeout
    );
}

// Single-threaded, so the guest runs on this thread and its CPU clock measures the guest.
#[tokio::test(flavor = "current_thread")]
async fn an_infinite_loop_is_stopped_at_the_tax_slot_deadline_not_the_runtime_one() {
    let runtime = runtime(|s| {
        s.deadline_ms = 10_000;
        s.tax.deadline_ms = Some(30);
    });
    load_tax(&runtime, "spin_loop", FailurePolicy::FailClosed).await;
    let cpu = thread_cpu_time();
    let result = runtime.calculate_tax(&five_lines()).await;
    let cpu = thread_cpu_time() - cpu;
    assert_eq!(kind(result), FailureKind::Timeout);
    assert!(
        cpu >= Duration::from_millis(27),
        "stopped after {cpu:?} of CPU"
    );
    assert!(
        cpu < Duration::from_millis(30 + 25),
        "stopped only after {cpu:?} of CPU"
    );
}

#[tokio::test]
async fn a_guest_growing_to_1_gib_gets_its_memory_under_a_larger_tax_slot_cap() {
    let runtime = runtime(|s| {
        s.deadline_ms = 10_000;
        s.tax.memory_cap_bytes = Some(1536 << 20);
    });
    assert_eq!(
        runtime.settings().memory_cap_bytes,
        32 << 20,
        "the runtime-wide cap stays small"
    );
    load_tax(&runtime, "memory_hog", FailurePolicy::FailClosed).await;
    // The guest reports what it touched as its own error once the allocation succeeded.
    match kind(runtime.calculate_tax(&five_lines()).await) {
        FailureKind::PluginError { code, message } => assert_eq!(code, "memory-hog", "{message}"),
        other => panic!("expected the guest's own report, got {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_growing_to_1_gib_is_refused_under_a_small_tax_slot_cap_and_a_large_runtime_cap() {
    let runtime = runtime(|s| {
        s.deadline_ms = 10_000;
        s.memory_cap_bytes = 1536 << 20;
        s.tax.memory_cap_bytes = Some(32 << 20);
    });
    load_tax(&runtime, "memory_hog", FailurePolicy::FailClosed).await;
    assert_eq!(
        kind(runtime.calculate_tax(&five_lines()).await),
        FailureKind::Memory
    );
}

#[test]
fn per_slot_limits_are_read_from_the_settings_and_default_to_the_runtime_wide_ones() {
    use orderd::plugins::Slot;
    let settings: RuntimeSettings = serde_json::from_value(serde_json::json!({
        "deadline_ms": 50,
        "memory_cap_bytes": 33_554_432,
        "tax": {"deadline_ms": 200, "memory_cap_bytes": 134_217_728},
    }))
    .unwrap();
    assert_eq!(
        settings.slot_deadline(Slot::Tax),
        Duration::from_millis(200)
    );
    assert_eq!(settings.memory_cap(Slot::Tax), 128 << 20);
    assert_eq!(
        settings.slot_deadline(Slot::Email),
        Duration::from_millis(50)
    );
    assert_eq!(settings.memory_cap(Slot::Validation), 32 << 20);
    assert_eq!(settings.largest_memory_cap(), 128 << 20);
}

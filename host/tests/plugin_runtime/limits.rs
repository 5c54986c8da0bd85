//! Per-call limits, each as a pair: the limit obeyed, the limit violated.

use std::time::{Duration, Instant};

use orderd::plugins::{
    FailureKind, FailurePolicy, PluginCallError, PluginInput, PluginRuntime, RuntimeSettings, Slot,
};
use rule_types::OrderDraft;

use crate::helpers::{
    assert_single_rate, component, draft, five_lines, load_tax, settings, test_source,
    thread_cpu_time, unguarded_runtime,
};

fn kind(result: Result<impl std::fmt::Debug, PluginCallError>) -> FailureKind {
    match result {
        Err(PluginCallError::Unavailable { kind, .. }) => kind,
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

// Single-threaded, so the guest runs on this test's thread and that thread's CPU clock
// measures it. The deadline is a budget of CPU time (time the thread is descheduled on a
// busy machine is not charged), so the margin is asserted on CPU time; wall time only has to
// stay under the wall-clock backstop.
#[tokio::test(flavor = "current_thread")]
async fn an_infinite_loop_is_interrupted_at_the_deadline_while_other_slots_keep_serving() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "spin_loop", FailurePolicy::FailClosed).await;
    let order = five_lines();

    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    let looping = {
        let runtime = runtime.clone();
        let order = order.clone();
        tokio::spawn(async move { runtime.calculate_tax(&order).await })
    };
    // The loop yields at every epoch tick, so a call to another slot completes while the
    // loop is still running.
    tokio::task::yield_now().await;
    let violations = runtime
        .validate(&order)
        .await
        .expect("validation serves meanwhile");
    assert!(violations.is_empty(), "{violations:?}");
    assert!(
        !looping.is_finished(),
        "the validation call finished after the loop was stopped"
    );

    let result = looping.await.unwrap();
    let (cpu, wall) = (thread_cpu_time() - cpu_before, started.elapsed());
    assert_eq!(kind(result), FailureKind::Timeout);
    let deadline = runtime.settings().deadline();
    assert!(
        cpu >= deadline - Duration::from_millis(3),
        "stopped after {cpu:?} of CPU"
    );
    assert!(
        cpu < deadline + Duration::from_millis(25),
        "stopped only after {cpu:?} of CPU"
    );
    assert!(wall < deadline * 10, "stopped only after {wall:?}");

    // The engine and its instance pool are intact: the next call on the slot works.
    runtime.revert_to_default(Slot::Tax).await.unwrap();
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "gst",
        1800,
    );
}

#[tokio::test]
async fn a_slow_plugin_that_finishes_inside_the_deadline_succeeds() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "slow_ok", FailurePolicy::FailClosed).await;
    let order = five_lines();
    let started = Instant::now();
    let out = runtime
        .calculate_tax(&order)
        .await
        .expect("a slow but timely call succeeds");
    assert!(started.elapsed() < runtime.settings().deadline());
    assert_single_rate(&order, &out, "gst", 1800);
}

#[tokio::test]
async fn a_guest_growing_memory_to_1_gib_is_refused_and_the_host_goes_on() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "memory_hog", FailurePolicy::FailClosed).await;
    let order = five_lines();
    let err = runtime.calculate_tax(&order).await.unwrap_err();
    assert_eq!(err.kind(), Some(&FailureKind::Memory), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");

    runtime.revert_to_default(Slot::Tax).await.unwrap();
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "gst",
        1800,
    );
}

#[tokio::test]
async fn a_guest_growing_memory_to_1_gib_under_a_larger_cap_gets_its_memory() {
    let settings = RuntimeSettings {
        memory_cap_bytes: 1536 << 20,
        deadline_ms: 10_000,
        smoke_test: false,
        max_concurrent_calls: 2,
        ..settings()
    };
    let runtime = PluginRuntime::new(settings).unwrap();
    load_tax(&runtime, "memory_hog", FailurePolicy::FailClosed).await;
    // The guest reports what it touched as its own error once the allocation succeeded.
    match kind(runtime.calculate_tax(&five_lines()).await) {
        FailureKind::PluginError { code, message } => {
            assert_eq!(code, "memory-hog", "{message}");
        }
        other => panic!("expected the guest's own report, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panicking_guest_gives_a_clear_trap_error_and_the_next_call_works() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "panicker", FailurePolicy::FailClosed).await;
    let order = five_lines();
    for _ in 0..2 {
        let err = runtime.calculate_tax(&order).await.unwrap_err();
        let PluginCallError::Unavailable {
            slot,
            version,
            kind,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*slot, kind), (Slot::Tax, &FailureKind::Trap));
        assert_eq!(version.len(), 12, "{err}");
        assert!(
            message.contains("panicked"),
            "the panic message is reported: {message}"
        );
    }
    runtime.revert_to_default(Slot::Tax).await.unwrap();
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "gst",
        1800,
    );
}

/// A one-line draft whose JSON form is exactly `size` bytes.
fn draft_of_json_size(size: usize) -> OrderDraft {
    let mut d = draft(&[(1000, 1, "general")]);
    d.customer.name.clear();
    let base = serde_json::to_vec(&d).unwrap().len();
    d.customer.name = "x".repeat(size - base);
    assert_eq!(serde_json::to_vec(&d).unwrap().len(), size);
    d
}

#[tokio::test]
async fn an_input_at_the_cap_is_accepted_and_one_byte_more_is_refused_unrun() {
    let runtime = crate::helpers::defaults_runtime(settings()).await;
    let cap = runtime.settings().input_cap_bytes;

    let at_cap = draft_of_json_size(cap);
    assert_single_rate(
        &at_cap,
        &runtime.calculate_tax(&at_cap).await.unwrap(),
        "gst",
        1800,
    );

    let calls_before = runtime.slot_status(Slot::Tax).calls;
    let over = draft_of_json_size(cap + 1);
    let err = runtime.calculate_tax(&over).await.unwrap_err();
    assert_eq!(err.kind(), Some(&FailureKind::InputTooLarge), "{err}");
    assert!(err.to_string().contains(&format!("{}", cap + 1)), "{err}");
    assert_eq!(runtime.slot_status(Slot::Tax).calls, calls_before + 1);
}

#[tokio::test]
async fn a_call_within_its_fuel_succeeds_and_reports_the_fuel_used() {
    let settings = RuntimeSettings {
        fuel: Some(5_000_000),
        ..settings()
    };
    let runtime = crate::helpers::defaults_runtime(settings).await;
    let (out, stats) = runtime
        .call(PluginInput::Calculate(five_lines()))
        .await
        .unwrap();
    assert!(
        matches!(out, orderd::plugins::PluginOutput::Tax(_)),
        "{out:?}"
    );
    let used = stats.fuel_consumed.expect("fuel is metered");
    assert!(used > 0 && used < 5_000_000, "{used}");
}

#[tokio::test]
async fn a_call_that_exhausts_its_fuel_is_stopped() {
    let settings = RuntimeSettings {
        fuel: Some(5_000_000),
        smoke_test: false,
        ..settings()
    };
    let runtime = PluginRuntime::new(settings).unwrap();
    runtime
        .load(
            Slot::Tax,
            component("spin_loop"),
            Vec::new(),
            None,
            test_source("spin_loop"),
        )
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        kind(runtime.calculate_tax(&five_lines()).await),
        FailureKind::OutOfFuel
    );
    assert!(
        started.elapsed() < runtime.settings().deadline(),
        "fuel ran out before the deadline"
    );
}

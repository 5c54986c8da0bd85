//! Failure policies: fail-closed returns the failure; fallback retries on the previous good
//! version, else on the built-in default.

use orderd::plugins::{FailureKind, FailurePolicy, Slot};

use crate::helpers::{assert_single_rate, five_lines, load_tax, unguarded_runtime};

#[tokio::test]
async fn fail_closed_returns_the_failure_and_counts_it() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "flat_tax", FailurePolicy::FailClosed).await;
    load_tax(&runtime, "panicker", FailurePolicy::FailClosed).await;
    let before = runtime.slot_status(Slot::Tax);
    let err = runtime.calculate_tax(&five_lines()).await.unwrap_err();
    assert_eq!(err.kind(), Some(&FailureKind::Trap), "{err}");
    let after = runtime.slot_status(Slot::Tax);
    assert_eq!(
        (after.calls, after.errors, after.fallbacks),
        (before.calls + 1, before.errors + 1, before.fallbacks)
    );
}

#[tokio::test]
async fn fallback_serves_the_call_from_the_previous_good_version() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "flat_tax", FailurePolicy::FailClosed).await;
    load_tax(&runtime, "panicker", FailurePolicy::Fallback).await;
    let order = five_lines();
    let out = runtime
        .calculate_tax(&order)
        .await
        .expect("the previous version serves");
    assert_single_rate(&order, &out, "flat", 1000);
    let status = runtime.slot_status(Slot::Tax);
    assert_eq!((status.errors, status.fallbacks), (1, 1));
}

#[tokio::test]
async fn fallback_reaches_the_built_in_default_when_the_previous_version_fails_too() {
    let runtime = unguarded_runtime().await;
    // default gst → panicker (previous) → memory hog (active, fallback policy)
    load_tax(&runtime, "panicker", FailurePolicy::FailClosed).await;
    load_tax(&runtime, "memory_hog", FailurePolicy::Fallback).await;
    let order = five_lines();
    let out = runtime
        .calculate_tax(&order)
        .await
        .expect("the built-in default serves");
    assert_single_rate(&order, &out, "gst", 1800);
}

#[tokio::test]
async fn fallback_does_not_retry_an_input_that_is_too_large_for_any_version() {
    let runtime = unguarded_runtime().await;
    load_tax(&runtime, "flat_tax", FailurePolicy::Fallback).await;
    let mut order = five_lines();
    order.customer.name = "x".repeat(runtime.settings().input_cap_bytes);
    let err = runtime.calculate_tax(&order).await.unwrap_err();
    assert_eq!(err.kind(), Some(&FailureKind::InputTooLarge), "{err}");
    assert_eq!(runtime.slot_status(Slot::Tax).fallbacks, 0);
}

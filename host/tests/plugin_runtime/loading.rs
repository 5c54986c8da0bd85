//! Candidates are compiled, checked against the slot's world and smoke-tested before they are
//! swapped in; anything refused leaves the active version serving.

use orderd::plugins::{
    LoadError, PluginRuntime, PluginSource, Slot, default_component, sha256_hex,
};

use crate::helpers::{
    assert_single_rate, component, defaults_runtime, five_lines, settings, test_source,
};

/// Loads `bytes` into the tax slot and returns the refusal.
async fn refused(runtime: &PluginRuntime, bytes: Vec<u8>) -> LoadError {
    let before = runtime.slot_status(Slot::Tax);
    let err = runtime
        .load(Slot::Tax, bytes, Vec::new(), None, test_source("candidate"))
        .await
        .expect_err("the candidate is refused");
    let after = runtime.slot_status(Slot::Tax);
    assert_eq!(
        (after.sha256, after.generation),
        (before.sha256, before.generation),
        "nothing was swapped in"
    );
    // v1 still gives v1's result.
    let order = five_lines();
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "gst",
        1800,
    );
    err
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused_while_v1_serves() {
    let runtime = defaults_runtime(settings()).await;
    let err = refused(&runtime, b"this is not WebAssembly at all".to_vec()).await;
    assert!(matches!(err, LoadError::NotAComponent(_)), "{err:?}");
    assert!(
        err.to_string().contains("not a WebAssembly component"),
        "{err}"
    );

    // A core module (magic, version 1, no sections) is told apart from a component.
    let err = refused(&runtime, b"\0asm\x01\0\0\0".to_vec()).await;
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");
}

#[tokio::test]
async fn a_truncated_component_is_refused_while_v1_serves() {
    let runtime = defaults_runtime(settings()).await;
    let mut bytes = component("gst_tax");
    bytes.truncate(bytes.len() / 2);
    let err = refused(&runtime, bytes).await;
    assert!(matches!(err, LoadError::Compile(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the component does not compile"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_of_another_world_is_refused_naming_the_missing_export() {
    let runtime = defaults_runtime(settings()).await;
    let err = refused(&runtime, component("order_limits")).await;
    assert!(
        matches!(
            err,
            LoadError::WrongWorld {
                slot: Slot::Tax,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("does not export shop:rules/tax@0.1.0#calculate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_failing_the_smoke_test_is_refused_while_v1_serves() {
    let runtime = defaults_runtime(settings()).await;
    let err = refused(&runtime, component("bad_output")).await;
    assert!(
        matches!(
            err,
            LoadError::SmokeTest {
                slot: Slot::Tax,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("bad-output") && text.contains("negative"),
        "{text}"
    );
}

#[tokio::test]
async fn a_good_candidate_is_swapped_in_with_a_new_generation() {
    let runtime = defaults_runtime(settings()).await;
    let before = runtime.slot_status(Slot::Tax);
    assert_eq!(
        before.sha256.as_deref(),
        Some(sha256_hex(default_component(Slot::Tax)).as_str())
    );
    assert_eq!(before.source, Some(PluginSource::Embedded));

    let flat = component("flat_tax");
    let loaded = runtime
        .load(Slot::Tax, flat.clone(), Vec::new(), None, test_source("v2"))
        .await
        .unwrap();
    assert_eq!(loaded.sha256, sha256_hex(&flat));
    assert!(loaded.generation > before.generation);
    let after = runtime.slot_status(Slot::Tax);
    assert_eq!(after.sha256, Some(loaded.sha256));
    assert_eq!(after.source, Some(test_source("v2")));
    let order = five_lines();
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "flat",
        1000,
    );
}

#[tokio::test]
async fn check_reports_a_good_candidate_without_swapping_it_in() {
    let runtime = defaults_runtime(settings()).await;
    let before = runtime.slot_status(Slot::Tax);
    let flat = component("flat_tax");
    let report = runtime.check(Slot::Tax, &flat).await.unwrap();
    assert_eq!(report.size_bytes, flat.len());
    assert_eq!(report.sha256, sha256_hex(&flat));
    assert!(
        report.exports.iter().any(|e| e == "shop:rules/tax@0.1.0"),
        "{:?}",
        report.exports
    );
    assert!(report.smoke_tested);
    assert_eq!(runtime.slot_status(Slot::Tax).sha256, before.sha256);

    let err = runtime.check(Slot::Email, &flat).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("does not export shop:rules/email@0.1.0#render-confirmation"),
        "{err}"
    );
}

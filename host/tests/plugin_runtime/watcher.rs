//! Hot reload from the plugins directory: an atomic rename deploys, a removal reverts to the
//! built-in default, a broken file is never served.

use std::path::Path;
use std::time::Duration;

use orderd::plugins::{
    FailurePolicy, PluginRuntime, PluginSource, Slot, SlotStatus, default_component, sha256_hex,
};

use crate::helpers::{assert_single_rate, component, defaults_runtime, five_lines, settings};

/// Polls the tax slot's status until `done` holds, for up to five seconds.
async fn wait_for(
    runtime: &PluginRuntime,
    what: &str,
    done: impl Fn(&SlotStatus) -> bool,
) -> SlotStatus {
    for _ in 0..100 {
        let status = runtime.slot_status(Slot::Tax);
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting until {what}: {:?}",
        runtime.slot_status(Slot::Tax)
    );
}

/// Deploys like an operator: write a temporary file, then rename it into place.
fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn a_renamed_in_plugin_becomes_active_and_removing_it_reverts_to_the_default() {
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = runtime
        .spawn_watcher(dir.path().to_path_buf(), async move {
            let _ = stopped.await;
        })
        .unwrap();
    let order = five_lines();

    let flat = component("flat_tax");
    let flat_sha = sha256_hex(&flat);
    deploy(
        dir.path(),
        "tax.toml",
        b"policy = \"fallback\"\n[config]\nnote = \"deployed\"\n",
    );
    deploy(dir.path(), "tax.wasm", &flat);
    let status = wait_for(&runtime, "flat-tax is active", |s| {
        s.sha256.as_deref() == Some(&flat_sha)
    })
    .await;
    assert_eq!(
        status.source,
        Some(PluginSource::File {
            path: dir.path().join("tax.wasm")
        })
    );
    let status = wait_for(&runtime, "the slot file applies", |s| !s.config.is_empty()).await;
    assert_eq!(status.policy, Some(FailurePolicy::Fallback));
    assert_eq!(
        status.config,
        vec![("note".to_owned(), "deployed".to_owned())]
    );
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "flat",
        1000,
    );

    // A broken deploy is logged and never served.
    let generation = status.generation;
    deploy(dir.path(), "tax.wasm", b"\0asm garbage");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = runtime.slot_status(Slot::Tax);
    assert_eq!(
        (status.sha256.as_deref(), status.generation),
        (Some(flat_sha.as_str()), generation)
    );

    std::fs::remove_file(dir.path().join("tax.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("tax.toml")).unwrap();
    let gst_sha = sha256_hex(default_component(Slot::Tax));
    let status = wait_for(&runtime, "the default is back", |s| {
        s.sha256.as_deref() == Some(&gst_sha)
    })
    .await;
    assert_eq!(status.source, Some(PluginSource::Embedded));
    assert_single_rate(
        &order,
        &runtime.calculate_tax(&order).await.unwrap(),
        "gst",
        1800,
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), watcher.stopped())
        .await
        .expect("the watcher stops");
}

#[tokio::test]
async fn plugin_files_present_at_start_are_loaded_at_once() {
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    let flat = component("flat_tax");
    deploy(dir.path(), "tax.wasm", &flat);
    let _watcher = runtime
        .spawn_watcher(dir.path().to_path_buf(), std::future::pending())
        .unwrap();
    let flat_sha = sha256_hex(&flat);
    wait_for(&runtime, "flat-tax is active", |s| {
        s.sha256.as_deref() == Some(&flat_sha)
    })
    .await;
}

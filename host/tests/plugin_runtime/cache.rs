//! The precompiled-artifact cache: a second runtime loads what the first compiled, and files
//! this host did not write are ignored.

use std::fs;

use orderd::plugins::{PluginRuntime, RuntimeSettings, Slot, sha256_hex};

use crate::helpers::component;

fn runtime(dir: &std::path::Path) -> PluginRuntime {
    let settings = RuntimeSettings {
        cache_dir: Some(dir.to_path_buf()),
        max_concurrent_calls: 2,
        ..RuntimeSettings::default()
    };
    PluginRuntime::new(settings).unwrap()
}

#[tokio::test]
async fn a_component_compiled_once_is_loaded_precompiled_by_the_next_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let flat = component("flat_tax");
    let first = runtime(dir.path()).check(Slot::Tax, &flat).await.unwrap();
    assert!(!first.cached, "nothing was cached yet");
    let second = runtime(dir.path()).check(Slot::Tax, &flat).await.unwrap();
    assert!(second.cached, "the second runtime uses the artifact");
    assert!(second.smoke_tested, "a precompiled artifact still runs");
}

#[tokio::test]
async fn a_cached_artifact_this_host_did_not_seal_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let flat = component("flat_tax");
    runtime(dir.path()).check(Slot::Tax, &flat).await.unwrap();
    let sha = sha256_hex(&flat);
    let artifact = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&sha))
        .expect("an artifact was written");
    let mut bytes = fs::read(&artifact).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&artifact, bytes).unwrap();

    let report = runtime(dir.path()).check(Slot::Tax, &flat).await.unwrap();
    assert!(
        !report.cached,
        "a tampered artifact is compiled afresh instead"
    );
}

//! What the plugins-directory watcher agrees to read: regular files only, up to the upload
//! limit, read off the async workers. A symbolic link (`tax.wasm -> /dev/zero`), a FIFO or an
//! oversized file is refused and logged, the active version keeps serving, and the watcher
//! keeps handling the other slots.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use orderd::plugins::{
    FailurePolicy, MAX_COMPONENT_BYTES, PluginRuntime, PluginSource, RuntimeSettings, Slot,
    WatcherHandle, sha256_hex,
};

use crate::helpers::{component, defaults_runtime, settings};

/// Polls `slot`'s status until `done` holds, for up to five seconds.
async fn wait_for(
    runtime: &PluginRuntime,
    slot: Slot,
    what: &str,
    done: impl Fn(&orderd::plugins::SlotStatus) -> bool,
) {
    for _ in 0..100 {
        if done(&runtime.slot_status(slot)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting until {what}: {:?}",
        runtime.slot_status(slot)
    );
}

fn watch(runtime: &PluginRuntime, dir: &Path) -> WatcherHandle {
    runtime
        .spawn_watcher(dir.to_path_buf(), std::future::pending())
        .unwrap()
}

/// Configures the built-in e-mail plugin through `email.toml`: proof that the watcher is still
/// working after it met the file under test.
async fn watcher_still_works(runtime: &PluginRuntime, dir: &Path) {
    std::fs::write(dir.join(".email.toml.tmp"), "policy = \"fallback\"\n").unwrap();
    std::fs::rename(dir.join(".email.toml.tmp"), dir.join("email.toml")).unwrap();
    wait_for(runtime, Slot::Email, "email.toml applies", |s| {
        s.policy == Some(FailurePolicy::Fallback)
    })
    .await;
}

fn embedded(runtime: &PluginRuntime) -> bool {
    runtime.slot_status(Slot::Tax).source == Some(PluginSource::Embedded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_link_to_dev_zero_is_refused_and_the_watcher_goes_on() {
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("tax.wasm")).unwrap();
    let _watcher = watch(&runtime, dir.path());
    watcher_still_works(&runtime, dir.path()).await;
    assert!(embedded(&runtime), "{:?}", runtime.slot_status(Slot::Tax));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_link_is_refused_unless_configured_and_then_only_to_a_regular_file() {
    let flat = component("flat_tax");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("flat.wasm"), &flat).unwrap();

    // Not configured: a link to a perfectly good component is refused.
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("flat.wasm"),
        dir.path().join("tax.wasm"),
    )
    .unwrap();
    let _watcher = watch(&runtime, dir.path());
    watcher_still_works(&runtime, dir.path()).await;
    assert!(embedded(&runtime), "{:?}", runtime.slot_status(Slot::Tax));

    // Configured: the same link loads; a link to a device still does not.
    let following = defaults_runtime(RuntimeSettings {
        watch_follow_symlinks: true,
        ..settings()
    })
    .await;
    let _watcher = watch(&following, dir.path());
    let sha = sha256_hex(&flat);
    wait_for(
        &following,
        Slot::Tax,
        "the linked component is active",
        |s| s.sha256.as_deref() == Some(sha.as_str()),
    )
    .await;
    let device = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", device.path().join("tax.wasm")).unwrap();
    let runtime = defaults_runtime(RuntimeSettings {
        watch_follow_symlinks: true,
        ..settings()
    })
    .await;
    let _watcher = watch(&runtime, device.path());
    watcher_still_works(&runtime, device.path()).await;
    assert!(embedded(&runtime), "{:?}", runtime.slot_status(Slot::Tax));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = CString::new(dir.path().join("tax.wasm").as_os_str().as_bytes()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let _watcher = watch(&runtime, dir.path());
    watcher_still_works(&runtime, dir.path()).await;
    assert!(embedded(&runtime), "{:?}", runtime.slot_status(Slot::Tax));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_larger_than_the_upload_limit_is_refused() {
    let runtime = defaults_runtime(settings()).await;
    let dir = tempfile::tempdir().unwrap();
    // Sparse: a valid component's bytes, padded past the limit.
    let file = std::fs::File::create(dir.path().join(".tax.wasm.tmp")).unwrap();
    std::io::Write::write_all(&mut &file, &component("flat_tax")).unwrap();
    file.set_len(MAX_COMPONENT_BYTES as u64 + 1).unwrap();
    std::fs::rename(
        dir.path().join(".tax.wasm.tmp"),
        dir.path().join("tax.wasm"),
    )
    .unwrap();
    let _watcher = watch(&runtime, dir.path());
    watcher_still_works(&runtime, dir.path()).await;
    assert!(embedded(&runtime), "{:?}", runtime.slot_status(Slot::Tax));
}

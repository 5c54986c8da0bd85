//! The artifact cache refuses what another local user could have planted: a cache directory
//! or key that is not this user's own and private, and artifact files others may write. A
//! refused cache is logged and every plugin is compiled from its bytes, so nothing planted is
//! ever deserialized into native code.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use orderd::plugins::{PluginRuntime, RuntimeSettings, Slot, sha256_hex};

use crate::helpers::component;
use crate::support_skip::{Need, skip};

fn runtime(dir: &Path) -> PluginRuntime {
    let settings = RuntimeSettings {
        cache_dir: Some(dir.to_path_buf()),
        max_concurrent_calls: 2,
        ..RuntimeSettings::default()
    };
    PluginRuntime::new(settings).unwrap()
}

/// Checks the flat-tax component twice with fresh runtimes on `dir`; true if either used the
/// cache.
async fn cache_used(dir: &Path) -> bool {
    let flat = component("flat_tax");
    let first = runtime(dir).check(Slot::Tax, &flat).await.unwrap();
    let second = runtime(dir).check(Slot::Tax, &flat).await.unwrap();
    assert!(first.smoke_tested && second.smoke_tested);
    first.cached || second.cached
}

fn artifacts(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cwasm")
        })
        .count()
}

#[tokio::test]
async fn a_new_cache_directory_and_its_key_are_owner_only_and_the_key_is_not_among_the_artifacts() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data").join("plugin-cache");
    assert!(cache_used(&dir).await, "a private cache is used");
    assert_eq!(artifacts(&dir), 1);
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let key = base.path().join("data").join("plugin-cache.key");
    assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().unwrap(), "cwasm", "{}", path.display());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_cache_directory_others_may_write_is_refused_and_plugins_are_compiled() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("plugin-cache");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(!cache_used(&dir).await, "a world-writable cache was used");
    assert_eq!(
        artifacts(&dir),
        0,
        "nothing is written into a refused cache"
    );
}

#[tokio::test]
async fn a_planted_key_others_may_read_or_write_is_refused_and_plugins_are_compiled() {
    for mode in [0o644, 0o666, 0o640] {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("plugin-cache");
        fs::create_dir(&dir).unwrap();
        let key = base.path().join("plugin-cache.key");
        fs::write(&key, [7u8; 32]).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
        assert!(!cache_used(&dir).await, "a key of mode {mode:o} was used");
        assert_eq!(artifacts(&dir), 0);
    }
}

#[tokio::test]
async fn a_symbolic_link_as_the_key_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("plugin-cache");
    fs::create_dir(&dir).unwrap();
    let elsewhere = base.path().join("elsewhere");
    fs::write(&elsewhere, [7u8; 32]).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, base.path().join("plugin-cache.key")).unwrap();
    assert!(!cache_used(&dir).await, "a symlinked key was used");
}

#[tokio::test]
async fn an_artifact_others_may_write_is_ignored_and_compiled_afresh() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("plugin-cache");
    assert!(cache_used(&dir).await, "a private cache is used");
    let sha = sha256_hex(&component("flat_tax"));
    let artifact = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&sha))
        .expect("an artifact was written");
    fs::set_permissions(&artifact, fs::Permissions::from_mode(0o666)).unwrap();
    let report = runtime(&dir)
        .check(Slot::Tax, &component("flat_tax"))
        .await
        .unwrap();
    assert!(!report.cached, "a world-writable artifact was deserialized");
}

#[tokio::test]
async fn a_cache_directory_and_key_planted_by_another_user_are_refused() {
    const TEST: &str = "a_cache_directory_and_key_planted_by_another_user_are_refused";
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip(
            TEST,
            Need::Unavailable("planting files owned by another user needs root"),
        );
        return;
    }
    let nobody = 65534;
    // The directory belongs to another user (mode 0755, so not writable by others).
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("plugin-cache");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(nobody), Some(nobody)).unwrap();
    assert!(!cache_used(&dir).await, "another user's directory was used");
    // The key belongs to another user (mode 0600).
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("plugin-cache");
    fs::create_dir(&dir).unwrap();
    let key = base.path().join("plugin-cache.key");
    fs::write(&key, [7u8; 32]).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&key, Some(nobody), Some(nobody)).unwrap();
    assert!(!cache_used(&dir).await, "another user's key was used");
}

//! Plugin versions and the active pointer per slot.

use chrono::Duration;
use orderd::domain::Id;
use orderd::storage::PluginVersion;

use super::{Harness, now};

fn version(slot: &str, wasm: &[u8]) -> PluginVersion {
    PluginVersion {
        id: Id::new(),
        slot: slot.to_owned(),
        sha256: format!("{:064x}", wasm.len()),
        wasm: wasm.to_vec(),
        config: vec![
            ("rate".to_owned(), "18".to_owned()),
            ("region".to_owned(), "IN".to_owned()),
        ],
        policy: Some("fail-closed".to_owned()),
        created_at: now(),
        created_by: Some(Id::new()),
    }
}

pub async fn plugin_versions_are_stored_and_listed_newest_first_without_their_bytes(
    h: &dyn Harness,
) {
    let store = h.store();
    let old = version("tax", b"\0asm old");
    let mut new = version("tax", b"\0asm newer");
    new.policy = None;
    new.created_by = None;
    let other = version("email", b"\0asm mail");
    for v in [&old, &new, &other] {
        store.put_plugin_version(v).await.unwrap();
    }

    assert_eq!(
        store.plugin_version(new.id).await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(store.plugin_version(Id::new()).await.unwrap(), None);
    let listed = store.plugin_versions("tax").await.unwrap();
    let strip = |v: &PluginVersion| PluginVersion {
        wasm: Vec::new(),
        ..v.clone()
    };
    assert_eq!(listed, vec![strip(&new), strip(&old)]);
    assert!(
        store
            .plugin_versions("validation")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn every_change_of_the_active_plugin_bumps_its_generation(h: &dyn Harness) {
    let store = h.store();
    let v1 = version("tax", b"\0asm 1");
    store.put_plugin_version(&v1).await.unwrap();
    let t = now();
    assert!(store.active_plugins().await.unwrap().is_empty());

    let first = store
        .set_active_plugin("tax", Some(v1.id), t)
        .await
        .unwrap();
    let second = store
        .set_active_plugin("tax", None, t + Duration::seconds(1))
        .await
        .unwrap();
    let other = store
        .set_active_plugin("email", Some(v1.id), t)
        .await
        .unwrap();

    assert_eq!((first.version_id, second.version_id), (Some(v1.id), None));
    assert!(
        second.generation > first.generation,
        "{first:?} then {second:?}"
    );
    assert_eq!(second.updated_at, t + Duration::seconds(1));
    let mut active = store.active_plugins().await.unwrap();
    active.sort_by(|a, b| a.slot.cmp(&b.slot));
    assert_eq!(active, vec![other, second]);
}

/// A component with an interpreter inside (a Python plugin is about 18 MB) is larger than a
/// MongoDB document may be.
pub async fn a_20_mib_component_is_stored_and_read_back_whole(h: &dyn Harness) {
    let store = h.store();
    let wasm: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let big = version("tax", &wasm);
    let small = version("tax", b"\0asm small");
    store.put_plugin_version(&big).await.unwrap();
    store.put_plugin_version(&small).await.unwrap();
    let read = store.plugin_version(big.id).await.unwrap().unwrap();
    assert_eq!(read.wasm.len(), wasm.len());
    assert!(read.wasm == wasm, "the bytes come back in order");
    assert_eq!(read, big);
    assert_eq!(
        store.plugin_version(small.id).await.unwrap(),
        Some(small.clone())
    );
    let listed = store.plugin_versions("tax").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|v| v.wasm.is_empty()));
}

//! An upload or rollback cancelled half-way (the client disconnects, the request timeout
//! fires) never leaves this instance serving a version the store does not name as active: the
//! store is written first and the runtime follows it, and what the store holds is what every
//! instance's convergence loop applies.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orderd::domain::Id;
use orderd::plugins::{PluginRuntime, PluginSource, Slot};
use orderd::service::plugins::{Upload, rollback, upload};
use orderd::storage::sqlite::SqliteStore;
use orderd::storage::{ActivePlugin, PluginStore, PluginVersion, StoreResult};

use crate::helpers::{component, defaults_runtime, settings};

/// Which store call never returns (as if the request were cancelled while it runs).
#[derive(Clone, Copy, PartialEq)]
enum Hang {
    Nothing,
    PutVersion,
    SetActive,
}

/// A plugin store on SQLite whose chosen call hangs forever.
struct HangingStore {
    inner: SqliteStore,
    hang: std::sync::Mutex<Hang>,
    /// Signalled when the hanging call is reached.
    reached: tokio::sync::Notify,
}

impl HangingStore {
    fn new(hang: Hang) -> Self {
        Self {
            inner: SqliteStore::temporary().unwrap(),
            hang: std::sync::Mutex::new(hang),
            reached: tokio::sync::Notify::new(),
        }
    }

    async fn hang_if(&self, call: Hang) {
        if *self.hang.lock().unwrap() == call {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl PluginStore for HangingStore {
    async fn put_plugin_version(&self, version: &PluginVersion) -> StoreResult<()> {
        self.hang_if(Hang::PutVersion).await;
        self.inner.put_plugin_version(version).await
    }
    async fn plugin_version(&self, id: Id) -> StoreResult<Option<PluginVersion>> {
        self.inner.plugin_version(id).await
    }
    async fn plugin_versions(&self, slot: &str) -> StoreResult<Vec<PluginVersion>> {
        self.inner.plugin_versions(slot).await
    }
    async fn set_active_plugin(
        &self,
        slot: &str,
        version_id: Option<Id>,
        at: DateTime<Utc>,
    ) -> StoreResult<ActivePlugin> {
        self.hang_if(Hang::SetActive).await;
        self.inner.set_active_plugin(slot, version_id, at).await
    }
    async fn active_plugins(&self) -> StoreResult<Vec<ActivePlugin>> {
        self.inner.active_plugins().await
    }
}

fn tax_upload(name: &str) -> Upload {
    Upload {
        slot: Slot::Tax,
        wasm: component(name),
        config: Vec::new(),
        policy: None,
        uploaded_by: Id::new(),
    }
}

/// Fails unless the tax slot serves what the store names as active: the stored version, or
/// (no pointer, or a null one) the built-in default.
async fn assert_serves_the_stored_version(runtime: &PluginRuntime, store: &HangingStore) {
    let stored = store
        .inner
        .active_plugins()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.slot == "tax")
        .and_then(|a| a.version_id);
    let serving = runtime.slot_status(Slot::Tax).source;
    match stored {
        None => assert_eq!(
            serving,
            Some(PluginSource::Embedded),
            "the store names no upload, yet the slot serves {serving:?}"
        ),
        Some(id) => assert_eq!(
            serving,
            Some(PluginSource::Upload {
                version_id: id.to_hex()
            }),
            "the store names {id} active"
        ),
    }
}

/// Runs `work` until it hangs in the store, then drops it, as axum drops a cancelled handler.
async fn cancelled<F: std::future::Future>(store: &HangingStore, work: F) {
    tokio::select! {
        _ = work => panic!("the operation was meant to hang in the store"),
        () = store.reached.notified() => {}
        () = tokio::time::sleep(Duration::from_secs(60)) => panic!("the store call was never reached"),
    }
}

#[tokio::test]
async fn an_upload_cancelled_while_the_store_records_it_leaves_the_stored_version_serving() {
    for hang in [Hang::PutVersion, Hang::SetActive] {
        let runtime = defaults_runtime(settings()).await;
        let store = HangingStore::new(hang);
        // Hangs only after compiling and smoke-testing, which the timeout leaves time for.
        cancelled(&store, upload(&store, &runtime, tax_upload("flat_tax"))).await;
        assert_serves_the_stored_version(&runtime, &store).await;
    }
}

#[tokio::test]
async fn a_rollback_cancelled_while_the_store_records_it_leaves_the_stored_version_serving() {
    let runtime = defaults_runtime(settings()).await;
    let store = HangingStore::new(Hang::Nothing);
    upload(&store, &runtime, tax_upload("gst_tax"))
        .await
        .unwrap();
    upload(&store, &runtime, tax_upload("flat_tax"))
        .await
        .unwrap();
    assert_serves_the_stored_version(&runtime, &store).await;

    *store.hang.lock().unwrap() = Hang::SetActive;
    cancelled(&store, rollback(&store, &runtime, Slot::Tax)).await;
    assert_serves_the_stored_version(&runtime, &store).await;

    // A rollback to the built-in default, cancelled the same way.
    *store.hang.lock().unwrap() = Hang::Nothing;
    rollback(&store, &runtime, Slot::Tax).await.unwrap();
    assert_serves_the_stored_version(&runtime, &store).await;
    *store.hang.lock().unwrap() = Hang::SetActive;
    cancelled(&store, rollback(&store, &runtime, Slot::Tax)).await;
    assert_serves_the_stored_version(&runtime, &store).await;
}

#[tokio::test]
async fn a_refused_upload_writes_nothing_and_a_completed_one_is_stored_and_serving() {
    let runtime = defaults_runtime(settings()).await;
    let store = Arc::new(HangingStore::new(Hang::Nothing));
    assert!(
        upload(store.as_ref(), &runtime, tax_upload("panicker"))
            .await
            .is_err()
    );
    assert!(store.inner.plugin_versions("tax").await.unwrap().is_empty());
    let version = upload(store.as_ref(), &runtime, tax_upload("flat_tax"))
        .await
        .unwrap();
    assert_serves_the_stored_version(&runtime, &store).await;
    assert_eq!(
        runtime.slot_status(Slot::Tax).source,
        Some(PluginSource::Upload {
            version_id: version.id.to_hex()
        })
    );
}

//! Operating the rule slots through the store: upload a new plugin version (checked and
//! smoke-tested, recorded, then swapped in), list a slot's versions, roll back.
//!
//! The store is the source of truth every instance converges on (see `plugin_sync`): a change
//! is written to the store first and only then applied to this instance's runtime, so a request
//! cancelled between the two (a client that disconnects, the request timeout) leaves at worst
//! an instance still serving the previous version, which the convergence loop then moves to the
//! stored one — never an instance serving a version the store does not know. The others follow
//! within a poll interval.
//!
//! Rollback goes to the version uploaded before the active one, and from the oldest upload to
//! the built-in default. Activating an upload replaces whatever a slot runs, including a file
//! from the watched plugins directory, and rolling back past the oldest upload reverts to the
//! built-in default; a later change in the plugins directory takes over that instance's slot
//! until the store's pointer moves again.

use chrono::Utc;
use rule_types::Config;

use crate::domain::Id;
use crate::plugins::{FailurePolicy, LoadError, PluginRuntime, PluginSource, Slot, sha256_hex};
use crate::storage::{ActivePlugin, PluginStore, PluginVersion, StoreError};

/// A new version as an operator sent it.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The slot it is meant for.
    pub slot: Slot,
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// Settings passed to the plugin on every call; empty uses each instance's configured
    /// config of the slot (as `policy: None` does for the policy).
    pub config: Config,
    /// Failure policy while it is active; `None` keeps each instance's configured policy.
    pub policy: Option<FailurePolicy>,
    /// The admin who uploaded it.
    pub uploaded_by: Id,
}

/// Why an operation on a slot failed. Each variant's doc names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum PluginAdminError {
    /// 422: the runtime refused the component (not a component, wrong world, failed smoke
    /// test); nothing was stored and the active version still serves.
    #[error(transparent)]
    Refused(#[from] LoadError),
    /// 409: the slot already runs its built-in default; there is nothing to roll back.
    #[error("the {0} slot runs its built-in plugin; there is nothing to roll back")]
    NothingToRollBack(Slot),
    /// 500: the store failed.
    #[error(transparent)]
    Store(anyhow::Error),
}

fn store_failed(what: &'static str) -> impl FnOnce(StoreError) -> PluginAdminError {
    move |err| PluginAdminError::Store(anyhow::Error::new(err).context(what))
}

/// The wire name of a failure policy, as stored with a version.
pub fn policy_name(policy: FailurePolicy) -> &'static str {
    match policy {
        FailurePolicy::FailClosed => "fail-closed",
        FailurePolicy::Fallback => "fallback",
    }
}

/// Parses a failure policy name (`fail-closed` or `fallback`).
pub fn parse_policy(name: &str) -> Option<FailurePolicy> {
    match name {
        "fail-closed" => Some(FailurePolicy::FailClosed),
        "fallback" => Some(FailurePolicy::Fallback),
        _ => None,
    }
}

/// The config a version runs with here: its own, or this instance's configured config of the
/// slot when the version was uploaded without one.
fn effective_config(runtime: &PluginRuntime, slot: Slot, config: &Config) -> Config {
    if config.is_empty() {
        runtime.settings().slot(slot).config.clone()
    } else {
        config.clone()
    }
}

/// Checks and smoke-tests `upload`, records it in the store as the slot's active version, then
/// activates it on this instance. Returns the stored version (without its bytes).
pub async fn upload(
    store: &dyn PluginStore,
    runtime: &PluginRuntime,
    upload: Upload,
) -> Result<PluginVersion, PluginAdminError> {
    let Upload {
        slot,
        wasm,
        config,
        policy,
        uploaded_by,
    } = upload;
    let id = Id::new();
    let source = PluginSource::Upload {
        version_id: id.to_hex(),
    };
    // Compiled, checked and smoke-tested, not yet serving: a refusal changes nothing.
    let candidate = runtime
        .prepare_candidate(
            slot,
            wasm.clone(),
            effective_config(runtime, slot, &config),
            policy,
            source,
        )
        .await?;
    let mut version = PluginVersion {
        id,
        slot: slot.as_str().to_owned(),
        sha256: sha256_hex(&wasm),
        wasm,
        config,
        policy: policy.map(|p| policy_name(p).to_owned()),
        created_at: Utc::now(),
        created_by: Some(uploaded_by),
    };
    store
        .put_plugin_version(&version)
        .await
        .map_err(store_failed("Failed to record an uploaded plugin version"))?;
    store
        .set_active_plugin(slot.as_str(), Some(id), Utc::now())
        .await
        .map_err(store_failed(
            "Failed to activate an uploaded plugin version",
        ))?;
    runtime.activate(candidate).await;
    tracing::info!(slot = %slot, version = %id, sha256 = %version.sha256, "plugin version uploaded and activated");
    version.wasm = Vec::new();
    Ok(version)
}

/// The slot's versions, newest first (without bytes), and its active pointer, if ever set.
pub async fn versions(
    store: &dyn PluginStore,
    slot: Slot,
) -> Result<(Vec<PluginVersion>, Option<ActivePlugin>), PluginAdminError> {
    let versions = store
        .plugin_versions(slot.as_str())
        .await
        .map_err(store_failed("Failed to list plugin versions"))?;
    let active = active_pointer(store, slot).await?;
    Ok((versions, active))
}

/// Activates the version uploaded before the active one, or the built-in default when the
/// active one is the oldest. Returns the version now active (`None`: the built-in default).
pub async fn rollback(
    store: &dyn PluginStore,
    runtime: &PluginRuntime,
    slot: Slot,
) -> Result<Option<PluginVersion>, PluginAdminError> {
    let current = active_pointer(store, slot)
        .await?
        .and_then(|a| a.version_id)
        .ok_or(PluginAdminError::NothingToRollBack(slot))?;
    let versions = store
        .plugin_versions(slot.as_str())
        .await
        .map_err(store_failed("Failed to list plugin versions"))?;
    let target = versions.into_iter().skip_while(|v| v.id != current).nth(1);
    // The target must load here before the store points at it: a version this instance
    // refuses is not made every instance's active one.
    let candidate = match &target {
        Some(version) => Some(prepare_stored(store, runtime, slot, version.id).await?),
        None => None,
    };
    store
        .set_active_plugin(slot.as_str(), target.as_ref().map(|v| v.id), Utc::now())
        .await
        .map_err(store_failed("Failed to record a plugin rollback"))?;
    match candidate {
        Some(candidate) => {
            runtime.activate(candidate).await;
        }
        None => {
            apply(store, runtime, slot, None)
                .await
                .map_err(|err| match err {
                    ApplyError::Load(err) => PluginAdminError::Refused(err),
                    ApplyError::Store(err) => PluginAdminError::Store(err),
                })?;
        }
    }
    tracing::info!(slot = %slot, version = ?target.as_ref().map(|v| v.id), "plugin rolled back");
    Ok(target)
}

/// The stored version `id` of `slot`, compiled, checked and smoke-tested, not yet serving.
async fn prepare_stored(
    store: &dyn PluginStore,
    runtime: &PluginRuntime,
    slot: Slot,
    id: Id,
) -> Result<crate::plugins::Candidate, PluginAdminError> {
    let version = store
        .plugin_version(id)
        .await
        .map_err(store_failed("Failed to load a plugin version"))?
        .ok_or_else(|| {
            PluginAdminError::Store(anyhow::anyhow!(
                "the {slot} version {id} is not in the store"
            ))
        })?;
    let policy = version.policy.as_deref().and_then(parse_policy);
    let source = PluginSource::Upload {
        version_id: id.to_hex(),
    };
    let config = effective_config(runtime, slot, &version.config);
    Ok(runtime
        .prepare_candidate(slot, version.wasm, config, policy, source)
        .await?)
}

/// The store's active pointer of `slot`, if it was ever set.
pub async fn active_pointer(
    store: &dyn PluginStore,
    slot: Slot,
) -> Result<Option<ActivePlugin>, PluginAdminError> {
    let active = store
        .active_plugins()
        .await
        .map_err(store_failed("Failed to read the active plugin versions"))?;
    Ok(active.into_iter().find(|a| a.slot == slot.as_str()))
}

/// Why this instance could not switch a slot to a stored version.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The runtime refused the stored version's bytes.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed, or the active version's record is missing.
    #[error(transparent)]
    Store(anyhow::Error),
}

/// Makes this instance's runtime serve `target` in `slot` (`None`: the built-in default) unless
/// it already does. Returns whether anything was swapped.
pub async fn apply(
    store: &dyn PluginStore,
    runtime: &PluginRuntime,
    slot: Slot,
    target: Option<Id>,
) -> Result<bool, ApplyError> {
    let running = runtime.slot_status(slot).source;
    match target {
        None => {
            // Only an uploaded version is undone; the built-in default or a file from the
            // plugins directory is this instance's own choice.
            if matches!(running, Some(PluginSource::Upload { .. })) {
                runtime.revert_to_default(slot).await?;
                return Ok(true);
            }
            Ok(false)
        }
        Some(id) => {
            if matches!(&running, Some(PluginSource::Upload { version_id }) if *version_id == id.to_hex())
            {
                return Ok(false);
            }
            let version = store
                .plugin_version(id)
                .await
                .map_err(|e| {
                    ApplyError::Store(
                        anyhow::Error::new(e).context("Failed to load a plugin version"),
                    )
                })?
                .ok_or_else(|| {
                    ApplyError::Store(anyhow::anyhow!(
                        "the active {slot} version {id} is not in the store"
                    ))
                })?;
            let policy = version.policy.as_deref().and_then(parse_policy);
            let source = PluginSource::Upload {
                version_id: id.to_hex(),
            };
            let config = effective_config(runtime, slot, &version.config);
            runtime
                .load(slot, version.wasm, config, policy, source)
                .await?;
            Ok(true)
        }
    }
}

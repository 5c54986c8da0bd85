//! Retention of what the store would otherwise keep for ever: refresh-token families (and
//! their tokens) long expired, published outbox events, e-mail send records, and plugin
//! versions nobody can roll back to any more. [`RetentionStore::prune`] deletes, in one call,
//! exactly what is past its retention at a given instant; [`spawn_pruner`] runs it at start
//! and then every hour for either backend.
//!
//! What is never pruned, whatever its age: an outbox event that is not published (pending or
//! dead), and the event and e-mail send record of a `failed` order (a retry re-publishes that
//! event, and the send record keeps an e-mail already sent from going out twice); a slot's
//! active plugin version and its newest [`Retention::plugin_versions_kept`] versions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{PluginVersion, Store, StoreResult};
use crate::domain::Id;

/// How often the pruner runs (and once at start).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// How long each kind of record is kept once it stopped mattering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A refresh-token family (with every token issued in it) is deleted this long after it
    /// expired. Until then a reused token of it is still recognised.
    pub refresh_families: Duration,
    /// A published outbox event is deleted this long after it was published.
    pub published_events: Duration,
    /// An e-mail send record is deleted this long after the e-mail was sent (an unsent claim:
    /// this long after the claim ran out). Keep it at least as long as the queue may
    /// redeliver a message.
    pub email_sends: Duration,
    /// A plugin version is deleted this long after it was uploaded, unless it is active or
    /// among the newest `plugin_versions_kept` of its slot.
    pub plugin_versions: Duration,
    /// Newest versions of each slot kept whatever their age (rollback targets).
    pub plugin_versions_kept: u32,
}

impl Default for Retention {
    fn default() -> Self {
        use super::windows::*;
        Self {
            refresh_families: DEFAULT_REFRESH_FAMILY_RETENTION,
            published_events: DEFAULT_PUBLISHED_EVENT_RETENTION,
            email_sends: DEFAULT_EMAIL_SEND_RETENTION,
            plugin_versions: DEFAULT_PLUGIN_VERSION_RETENTION,
            plugin_versions_kept: DEFAULT_PLUGIN_VERSIONS_KEPT,
        }
    }
}

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub refresh_families: u64,
    pub refresh_tokens: u64,
    pub published_events: u64,
    pub email_sends: u64,
    pub plugin_versions: u64,
}

/// Deletes records past their retention.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes, as of `now`, every record past its retention (see the module docs for what is
    /// kept regardless) and says how many of each kind.
    async fn prune(&self, now: DateTime<Utc>, retention: &Retention) -> StoreResult<Pruned>;
}

/// `now - age`, or the earliest representable instant when `age` reaches before it (so
/// nothing is older and nothing is deleted).
pub fn cutoff(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The versions of one slot (newest first) to delete: older than `before`, not `active`, and
/// not among the newest `kept`.
pub fn versions_to_prune(
    newest_first: &[PluginVersion],
    active: Option<Id>,
    before: DateTime<Utc>,
    kept: u32,
) -> Vec<Id> {
    newest_first
        .iter()
        .skip(kept as usize)
        .filter(|v| v.created_at < before && Some(v.id) != active)
        .map(|v| v.id)
        .collect()
}

/// Runs [`RetentionStore::prune`] at start and every [`PRUNE_INTERVAL`] until `shutdown`. A
/// failed prune is logged and retried at the next interval.
pub fn spawn_pruner(
    store: Arc<dyn Store>,
    retention: Retention,
    shutdown: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            match store.prune(Utc::now(), &retention).await {
                Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                    refresh_families = pruned.refresh_families,
                    refresh_tokens = pruned.refresh_tokens,
                    published_events = pruned.published_events,
                    email_sends = pruned.email_sends,
                    plugin_versions = pruned.plugin_versions,
                    "deleted records past their retention"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "the retention prune failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(age_days: i64, now: DateTime<Utc>) -> PluginVersion {
        PluginVersion {
            id: Id::new(),
            slot: "tax".into(),
            sha256: String::new(),
            wasm: Vec::new(),
            config: Vec::new(),
            policy: None,
            created_at: now - chrono::Duration::days(age_days),
            created_by: None,
        }
    }

    #[test]
    fn old_versions_go_unless_active_or_among_the_newest_kept() {
        let now = Utc::now();
        let newest_first: Vec<_> = [1, 40, 50, 60, 70].map(|d| version(d, now)).into();
        let before = now - chrono::Duration::days(30);
        let active = Some(newest_first[4].id);
        let ids = |range: std::ops::Range<usize>| -> Vec<Id> {
            newest_first[range].iter().map(|v| v.id).collect()
        };
        assert_eq!(
            versions_to_prune(&newest_first, active, before, 2),
            ids(2..4)
        );
        assert_eq!(versions_to_prune(&newest_first, None, before, 0), ids(1..5));
        assert!(versions_to_prune(&newest_first, None, before, 5).is_empty());
    }

    #[test]
    fn a_retention_longer_than_time_itself_deletes_nothing() {
        let now = Utc::now();
        assert_eq!(cutoff(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            cutoff(now, Duration::from_secs(60)),
            now - chrono::Duration::seconds(60)
        );
    }
}

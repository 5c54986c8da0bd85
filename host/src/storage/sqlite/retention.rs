//! Retention on SQLite: one write transaction deletes every record past its retention (see
//! `storage::retention` for what is kept regardless). Schema version 3 adds the indexes these
//! deletes scan.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteStore;
use super::error::{SqlContext, micros};
use crate::storage::StoreResult;
use crate::storage::retention::{Pruned, Retention, RetentionStore, cutoff};

/// Event ids of failed orders: their event and send record are kept (a retry needs them).
const FAILED_ORDER_EVENTS: &str = "SELECT o.id FROM outbox o JOIN orders r ON r.id = o.order_id
                                   WHERE r.status = 'failed'";

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(&self, now: DateTime<Utc>, retention: &Retention) -> StoreResult<Pruned> {
        let families_before = micros(cutoff(now, retention.refresh_families));
        let events_before = micros(cutoff(now, retention.published_events));
        let sends_before = micros(cutoff(now, retention.email_sends));
        let versions_before = micros(cutoff(now, retention.plugin_versions));
        let kept = i64::from(retention.plugin_versions_kept);
        self.db
            .write(move |tx| {
                let count = |n: usize| n as u64;
                let refresh_tokens = tx
                    .execute(
                        "DELETE FROM refresh_tokens WHERE family_id IN
                            (SELECT id FROM refresh_families WHERE expires_at < ?1)",
                        params![families_before],
                    )
                    .ctx("Failed to delete the tokens of expired refresh families")?;
                let refresh_families = tx
                    .execute(
                        "DELETE FROM refresh_families WHERE expires_at < ?1",
                        params![families_before],
                    )
                    .ctx("Failed to delete expired refresh families")?;
                let email_sends = tx
                    .execute(
                        &format!(
                            "DELETE FROM email_sends
                              WHERE (sent_at < ?1 OR (sent_at IS NULL AND claimed_until < ?1))
                                AND event_id NOT IN ({FAILED_ORDER_EVENTS})"
                        ),
                        params![sends_before],
                    )
                    .ctx("Failed to delete old e-mail send records")?;
                let published_events = tx
                    .execute(
                        "DELETE FROM outbox
                          WHERE status = 'published' AND published_at < ?1
                            AND order_id NOT IN (SELECT id FROM orders WHERE status = 'failed')",
                        params![events_before],
                    )
                    .ctx("Failed to delete old published events")?;
                let plugin_versions = tx
                    .execute(
                        "DELETE FROM plugin_versions WHERE id IN (
                            SELECT id FROM (
                                SELECT id, created_at,
                                       ROW_NUMBER() OVER (PARTITION BY slot ORDER BY id DESC) AS newest
                                  FROM plugin_versions)
                             WHERE newest > ?2 AND created_at < ?1)
                           AND id NOT IN
                            (SELECT version_id FROM active_plugins WHERE version_id IS NOT NULL)",
                        params![versions_before, kept],
                    )
                    .ctx("Failed to delete old plugin versions")?;
                Ok(Pruned {
                    refresh_families: count(refresh_families),
                    refresh_tokens: count(refresh_tokens),
                    published_events: count(published_events),
                    email_sends: count(email_sends),
                    plugin_versions: count(plugin_versions),
                })
            })
            .await
    }
}

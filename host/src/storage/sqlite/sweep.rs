//! Expiry for the embedded store: idempotency records past their replay window and inbox
//! entries past their retention are deleted by a periodic sweep (MongoDB does the same with
//! TTL indexes). Expired rows are already ignored by every read; the sweep only keeps the file
//! from growing without bound.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::SqliteStore;
use super::error::{SqlContext, micros};
use crate::storage::StoreResult;
use crate::storage::windows::IDEMPOTENCY_WINDOW;

/// How often the sweep runs (and once at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Rows one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: usize,
    pub inbox: usize,
}

impl SqliteStore {
    /// Deletes idempotency records older than their 24 h replay window and inbox entries
    /// older than `inbox_retention`, as of `now`, in one write transaction.
    pub async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        inbox_retention: Duration,
    ) -> StoreResult<Swept> {
        let keys_before = micros(now - IDEMPOTENCY_WINDOW);
        // A retention too long to subtract keeps every entry.
        let inbox_before = chrono::Duration::from_std(inbox_retention)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .map_or(i64::MIN, micros);
        self.db
            .write(move |tx| {
                let idempotency_keys = tx
                    .execute(
                        "DELETE FROM idempotency_keys WHERE created_at < ?1",
                        params![keys_before],
                    )
                    .ctx("Failed to delete expired idempotency records")?;
                let inbox = tx
                    .execute(
                        "DELETE FROM inbox WHERE processed_at < ?1",
                        params![inbox_before],
                    )
                    .ctx("Failed to delete expired inbox entries")?;
                Ok(Swept {
                    idempotency_keys,
                    inbox,
                })
            })
            .await
    }

    /// Runs [`SqliteStore::sweep_expired`] at start and every [`SWEEP_INTERVAL`] until
    /// `shutdown`. A failed sweep is logged and retried at the next interval.
    pub fn spawn_sweeper(
        self,
        inbox_retention: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<anyhow::Result<()>> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                match self.sweep_expired(Utc::now(), inbox_retention).await {
                    Ok(swept) if swept != Swept::default() => tracing::info!(
                        idempotency_keys = swept.idempotency_keys,
                        inbox = swept.inbox,
                        "deleted expired rows"
                    ),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "the expiry sweep failed"),
                }
            }
        })
    }
}

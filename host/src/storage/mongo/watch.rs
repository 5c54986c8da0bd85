//! Change-stream wake-ups: on a replica set the relay wakes as soon as any instance writes an
//! outbox event, and the plugin sync as soon as any instance changes an active plugin, instead
//! of waiting for their next poll. Both keep polling as a fallback: a wake-up is only a hint.
//!
//! [`MongoStore::watch`] opens a change stream and resumes it from the token last stored in
//! the `change_stream_resume_tokens` collection (one per target, shared by the instances), so
//! changes made while this process was down wake it once it is back. Where change streams are
//! unavailable (a standalone server) it says so, and [`MongoStore::spawn_wakeups`] logs that
//! once and leaves the caller to its polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use mongodb::change_stream::event::ResumeToken;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::MongoStore;
use super::error::code;

/// What a change stream watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchTarget {
    /// New outbox events and events put back to pending: wakes the relay.
    Outbox,
    /// Any change of a slot's active plugin: wakes the plugin sync.
    ActivePlugins,
}

impl WatchTarget {
    /// The key of this target's resume token.
    pub fn name(&self) -> &'static str {
        match self {
            WatchTarget::Outbox => "outbox",
            WatchTarget::ActivePlugins => "active_plugins",
        }
    }

    /// Server-side filter: only the changes worth waking for.
    fn pipeline(&self) -> Vec<Document> {
        match self {
            WatchTarget::Outbox => vec![doc! { "$match": { "$or": [
                { "operationType": "insert" },
                { "updateDescription.updatedFields.status": "pending" },
            ] } }],
            WatchTarget::ActivePlugins => {
                vec![
                    doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace"] } } },
                ]
            }
        }
    }
}

/// Why no change stream could be opened.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// This deployment has no change streams (a standalone server): poll only.
    #[error("change streams unavailable: {0}")]
    Unavailable(String),
    /// Opening failed for a reason that may pass (network, failover): try again later.
    #[error("failed to open a change stream")]
    Failed(#[source] anyhow::Error),
}

/// Server codes meaning "this deployment does not do change streams".
const UNSUPPORTED: &[i32] = &[
    20,    // IllegalOperation
    115,   // CommandNotSupported
    40324, // unrecognised pipeline stage
    40573, // "$changeStream is only supported on replica sets"
];

/// Server codes meaning "cannot resume from this token": start afresh instead.
const CANNOT_RESUME: &[i32] = &[
    260, // InvalidResumeToken
    280, // ChangeStreamFatalError
    286, // ChangeStreamHistoryLost
];

/// Shortest time between two writes of the resume token (a token written a little late only
/// means a few repeated wake-ups after a restart).
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// An open change stream that yields one wake-up per relevant change.
pub struct Wakeups {
    /// The driver's stream, events left as raw documents (only their arrival matters); it
    /// resumes by itself after transient errors.
    stream: ChangeStream<Document>,
    /// Where resume tokens are kept.
    tokens: Collection<Document>,
    /// Which target this is, naming its token.
    target: WatchTarget,
    /// When the token was last written.
    saved_at: Option<Instant>,
}

impl Wakeups {
    /// Waits for the next change. An error means the stream is dead: open a new one. When the
    /// stream cannot be resumed (invalidated by a dropped or renamed collection, ended, or
    /// refused by the server with a "cannot resume" code), the stored token is dropped first,
    /// so the next stream starts from now instead of from a dead token.
    pub async fn next(&mut self) -> anyhow::Result<()> {
        match self.stream.next().await {
            Some(Ok(change)) => {
                if change.get_str("operationType") == Ok("invalidate") {
                    self.drop_token().await;
                    anyhow::bail!("The change stream was invalidated (its collection went away)");
                }
                if self.saved_at.is_none_or(|at| at.elapsed() >= SAVE_INTERVAL) {
                    self.save_token().await;
                }
                Ok(())
            }
            Some(Err(err)) => {
                if cannot_resume(&err) {
                    self.drop_token().await;
                }
                Err(anyhow::Error::new(err).context("The change stream failed"))
            }
            None => {
                self.drop_token().await;
                anyhow::bail!("The change stream ended")
            }
        }
    }

    /// Forgets the stored resume token (a failure is only logged: the next open then tries the
    /// dead token once more and starts afresh).
    async fn drop_token(&mut self) {
        drop_stored_token(&self.tokens, self.target).await;
        self.saved_at = None;
    }

    /// Stores the latest resume token so the next start resumes from here. A failure is only
    /// logged: it costs repeated wake-ups after a restart, nothing else.
    pub async fn save_token(&mut self) {
        let Some(token) = self.stream.resume_token() else {
            return;
        };
        let token = match mongodb::bson::to_bson(&token) {
            Ok(token) => token,
            Err(err) => {
                tracing::warn!(error = %err, "Failed to encode a change-stream resume token");
                return;
            }
        };
        let saved = self
            .tokens
            .update_one(
                doc! { "_id": self.target.name() },
                doc! { "$set": { "token": token, "savedAt": mongodb::bson::DateTime::now() } },
            )
            .upsert(true)
            .await;
        match saved {
            Ok(_) => self.saved_at = Some(Instant::now()),
            Err(err) => {
                tracing::warn!(error = %err, stream = self.target.name(), "Failed to store a change-stream resume token")
            }
        }
    }
}

/// Whether the server says a stream cannot be resumed from its token.
fn cannot_resume(err: &mongodb::error::Error) -> bool {
    code(err).is_some_and(|c| CANNOT_RESUME.contains(&c))
}

/// Deletes the stored resume token of `target`.
async fn drop_stored_token(tokens: &Collection<Document>, target: WatchTarget) {
    if let Err(err) = tokens.delete_one(doc! { "_id": target.name() }).await {
        tracing::warn!(error = %err, stream = target.name(), "Failed to drop a change-stream resume token");
    }
}

/// Reads a stored resume token back.
fn token_from(stored: Option<&Bson>) -> Option<ResumeToken> {
    stored.and_then(|b| mongodb::bson::from_bson(b.clone()).ok())
}

impl MongoStore {
    /// Opens a change stream on `target`, resuming after the stored token if there is one.
    pub async fn watch(&self, target: WatchTarget) -> Result<Wakeups, WatchError> {
        // MongoDB serves change streams on replica sets and sharded clusters only.
        if !self.topology.supports_change_streams() {
            return Err(WatchError::Unavailable(format!(
                "MongoDB is a {}",
                self.topology
            )));
        }
        let collection = match target {
            WatchTarget::Outbox => &self.c.outbox,
            WatchTarget::ActivePlugins => &self.c.active_plugins,
        };
        let stored = self
            .c
            .resume_tokens
            .find_one(doc! { "_id": target.name() })
            .await
            .context("Failed to read a change-stream resume token")
            .map_err(WatchError::Failed)?;
        let token = token_from(stored.as_ref().and_then(|d| d.get("token")));
        let resuming = token.is_some();
        let mut opened = collection
            .watch()
            .pipeline(target.pipeline())
            .resume_after(token)
            .await;
        if let Err(err) = &opened
            && resuming
            && cannot_resume(err)
        {
            tracing::warn!(stream = target.name(), error = %err, "cannot resume the change stream from its stored token; starting from now");
            drop_stored_token(&self.c.resume_tokens, target).await;
            opened = collection.watch().pipeline(target.pipeline()).await;
        }
        let stream = opened
            .map(|s| s.with_type::<Document>())
            .map_err(|err| match code(&err) {
                Some(c) if UNSUPPORTED.contains(&c) => WatchError::Unavailable(err.to_string()),
                _ => WatchError::Failed(
                    anyhow::Error::new(err).context("Failed to open a change stream"),
                ),
            })?;
        Ok(Wakeups {
            stream,
            tokens: self.c.resume_tokens.clone(),
            target,
            saved_at: None,
        })
    }

    /// A change stream over new outbox events (see [`MongoStore::watch`]).
    pub async fn watch_outbox(&self) -> Result<Wakeups, WatchError> {
        self.watch(WatchTarget::Outbox).await
    }

    /// A change stream over the active plugin pointers (see [`MongoStore::watch`]).
    pub async fn watch_active_plugins(&self) -> Result<Wakeups, WatchError> {
        self.watch(WatchTarget::ActivePlugins).await
    }

    /// Runs a task that calls `notify.notify_one()` on every change of `target` until
    /// `shutdown`, reopening the stream with capped backoff after failures; the backoff starts
    /// over only once a stream has delivered a change, so a stream that opens and dies at once
    /// is not reopened twice a second. Where change streams are unavailable it logs so once and
    /// ends: the caller's polling carries on alone.
    pub fn spawn_wakeups(
        &self,
        target: WatchTarget,
        notify: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            while !shutdown.is_cancelled() {
                let opened = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    opened = store.watch(target) => opened,
                };
                match opened {
                    Ok(mut wakeups) => {
                        tracing::info!(
                            stream = target.name(),
                            "waking on a MongoDB change stream (polling continues as a fallback)"
                        );
                        // Changes made while the stream was closed are not replayed without a
                        // token: let the caller look once.
                        notify.notify_one();
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => {
                                    wakeups.save_token().await;
                                    return;
                                }
                                next = wakeups.next() => match next {
                                    Ok(()) => {
                                        failures = 0;
                                        notify.notify_one();
                                    }
                                    Err(err) => {
                                        tracing::warn!(stream = target.name(), error = format!("{err:#}"), "change stream lost; reopening");
                                        break;
                                    }
                                },
                            }
                        }
                    }
                    Err(WatchError::Unavailable(reason)) => {
                        tracing::info!(stream = target.name(), %reason, "change streams unavailable; polling only");
                        return;
                    }
                    Err(WatchError::Failed(err)) => {
                        tracing::warn!(
                            stream = target.name(),
                            error = format!("{err:#}"),
                            "could not open a change stream; retrying"
                        );
                    }
                }
                failures = failures.saturating_add(1);
                let pause = crate::delivery::backoff::backoff(
                    failures,
                    Duration::from_millis(250),
                    Duration::from_secs(30),
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_resume_token_reads_back_as_the_token_it_was() {
        let stored = Bson::Document(doc! { "_data": "8263A1B2C3000000012B022C0100296E5A1004" });
        let token = token_from(Some(&stored)).expect("a resume token");
        assert_eq!(mongodb::bson::to_bson(&token).unwrap(), stored);
        assert!(token_from(None).is_none());
    }
}

//! The time windows and size caps both backends keep, in one place so they cannot drift: how
//! long an idempotency key stays taken, how much of a publish error an outbox event keeps, and
//! the default retention of every record the sweeper and pruner delete.

use std::time::Duration;

const DAY: u64 = 24 * 3600;

/// How long an idempotency key stays taken. An expired record still stored (the sweeper or TTL
/// index removes it lazily) is replaced by the next order with its key.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(DAY);

/// Longest publish error an outbox event keeps (characters); the rest is cut off.
pub const MAX_ERROR_CHARS: usize = 2000;

/// Default time a processed event id stays in the inbox.
pub const DEFAULT_INBOX_RETENTION: Duration = Duration::from_secs(7 * DAY);
/// Default time an expired refresh-token family is kept.
pub const DEFAULT_REFRESH_FAMILY_RETENTION: Duration = Duration::from_secs(7 * DAY);
/// Default time a published outbox event is kept.
pub const DEFAULT_PUBLISHED_EVENT_RETENTION: Duration = Duration::from_secs(7 * DAY);
/// Default time an e-mail send record is kept.
pub const DEFAULT_EMAIL_SEND_RETENTION: Duration = Duration::from_secs(30 * DAY);
/// Default time an inactive, not recent plugin version is kept.
pub const DEFAULT_PLUGIN_VERSION_RETENTION: Duration = Duration::from_secs(30 * DAY);
/// Default number of newest versions of each slot kept whatever their age.
pub const DEFAULT_PLUGIN_VERSIONS_KEPT: u32 = 10;

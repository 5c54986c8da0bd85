//! What each delivery role of this process is doing, for `/api/ready` and the logs.
//!
//! A [`RoleHealth`] belongs to one role (`relay`, `consumer`). The role's loop marks it after
//! every pass — [`RoleHealth::mark_good`] after a pass that worked (an idle relay pass counts,
//! as does a receive that returned nothing), [`RoleHealth::mark_failing`] after one that did
//! not — and its supervisor marks restarts and the final stop. Marking is a short uncontended
//! lock, cheap next to the I/O of a pass.
//!
//! [`DeliveryHealth`] holds one handle per role this process runs and the threshold after
//! which a role without a good pass makes the process not ready.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Name of the outbox relay role.
pub const RELAY: &str = "relay";
/// Name of the queue consumer role.
pub const CONSUMER: &str = "consumer";

/// Longest error text kept for a role; the cause chain of a network error can be long.
const MAX_ERROR_CHARS: usize = 500;

/// Where a role is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleState {
    /// Started and no pass has finished yet.
    Starting,
    /// The last pass worked.
    Ok,
    /// The role runs but its last pass failed; it retries by itself.
    Failing,
    /// The role ended with an error or a panic and waits to be started again.
    Restarting,
    /// Stopped on shutdown.
    Stopped,
}

impl RoleState {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleState::Starting => "starting",
            RoleState::Ok => "ok",
            RoleState::Failing => "failing",
            RoleState::Restarting => "restarting",
            RoleState::Stopped => "stopped",
        }
    }
}

/// The changing part of a role's health.
#[derive(Debug)]
struct Status {
    state: RoleState,
    /// Why the role is failing or restarting; cleared by a good pass.
    last_error: Option<String>,
    last_good: Option<Instant>,
}

/// The health of one role. Share it in an `Arc` between the role's loop, its supervisor and
/// the readiness route.
#[derive(Debug)]
pub struct RoleHealth {
    name: &'static str,
    /// When the handle was made: a role that never had a good pass is judged from here.
    created: Instant,
    status: Mutex<Status>,
    /// Good passes so far; the supervisor resets its backoff when a run made progress.
    good_passes: AtomicU64,
    /// Times the supervisor started the role again.
    restarts: AtomicU64,
    /// Panics of the role's handler tasks that were caught without stopping the role.
    handler_panics: AtomicU64,
}

/// A point-in-time copy of a role's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    pub name: &'static str,
    pub state: RoleState,
    pub last_error: Option<String>,
    /// Time since the last good pass; `None` before the first one.
    pub last_good_pass_ago: Option<Duration>,
    /// Time since the last good pass, or since the role was set up when it has had none.
    pub without_good_pass: Duration,
    pub restarts: u64,
    pub handler_panics: u64,
}

impl RoleHealth {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            created: Instant::now(),
            status: Mutex::new(Status {
                state: RoleState::Starting,
                last_error: None,
                last_good: None,
            }),
            good_passes: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        // A panic while holding this lock cannot leave the status half-written: every
        // update below is a plain assignment.
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A pass worked.
    pub fn mark_good(&self) {
        let mut status = self.status();
        status.state = RoleState::Ok;
        status.last_error = None;
        status.last_good = Some(Instant::now());
        self.good_passes.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass failed; the role retries by itself.
    pub fn mark_failing(&self, error: &anyhow::Error) {
        let mut status = self.status();
        status.state = RoleState::Failing;
        status.last_error = Some(error_text(error));
    }

    /// The role ended with `error`; its supervisor starts it again after a pause. The state
    /// stays `restarting` until a pass of the new run is marked.
    pub fn mark_restarting(&self, error: &anyhow::Error) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let mut status = self.status();
        status.state = RoleState::Restarting;
        status.last_error = Some(error_text(error));
    }

    /// The role stopped on shutdown.
    pub fn mark_stopped(&self) {
        self.status().state = RoleState::Stopped;
    }

    /// A handler task of the role panicked and the role carried on.
    pub fn count_handler_panic(&self) {
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Good passes so far.
    pub fn good_passes(&self) -> u64 {
        self.good_passes.load(Ordering::Relaxed)
    }

    pub fn report(&self) -> RoleReport {
        let now = Instant::now();
        let status = self.status();
        let last_good_pass_ago = status.last_good.map(|at| now.duration_since(at));
        RoleReport {
            name: self.name,
            state: status.state,
            last_error: status.last_error.clone(),
            last_good_pass_ago,
            without_good_pass: last_good_pass_ago
                .unwrap_or_else(|| now.duration_since(self.created)),
            restarts: self.restarts.load(Ordering::Relaxed),
            handler_panics: self.handler_panics.load(Ordering::Relaxed),
        }
    }
}

/// The error's outermost context (our own words, e.g. "Failed to open SQS queue …"), cut to
/// a readable length. The readiness route is public, so the cause chain — driver and SDK
/// texts, addresses — stays in the log, where the supervisor writes it in full.
fn error_text(error: &anyhow::Error) -> String {
    let text = error.to_string();
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The health of every delivery role this process runs.
#[derive(Debug)]
pub struct DeliveryHealth {
    roles: Vec<Arc<RoleHealth>>,
    /// A role without a good pass for longer than this makes the process not ready.
    stale_after: Duration,
    /// Messages in the queue (visible and in flight), as the consumer of this process last
    /// sampled them; `None` when no consumer runs here. The api role paces order intake on it.
    backlog: std::sync::atomic::AtomicI64,
    /// Messages in the dead-letter queue, as the consumer of this process last sampled them
    /// (about once a second); `-1` when not sampled here (the operator console shows it).
    dead_lettered: std::sync::atomic::AtomicI64,
}

impl DeliveryHealth {
    /// A registry with one handle per name in `roles`.
    pub fn new(roles: &[&'static str], stale_after: Duration) -> Self {
        Self {
            roles: roles
                .iter()
                .map(|name| Arc::new(RoleHealth::new(name)))
                .collect(),
            stale_after,
            backlog: std::sync::atomic::AtomicI64::new(-1),
            dead_lettered: std::sync::atomic::AtomicI64::new(-1),
        }
    }

    /// Records the queue's backlog as just sampled.
    pub fn set_backlog(&self, messages: u64) {
        let value = i64::try_from(messages).unwrap_or(i64::MAX);
        self.backlog.store(value, Ordering::Relaxed);
    }

    /// The last sampled queue backlog; `None` when no consumer of this process samples it.
    pub fn backlog(&self) -> Option<u64> {
        u64::try_from(self.backlog.load(Ordering::Relaxed)).ok()
    }

    /// Records the dead-letter queue's depth as just sampled.
    pub fn set_dead_lettered(&self, messages: u64) {
        let value = i64::try_from(messages).unwrap_or(i64::MAX);
        self.dead_lettered.store(value, Ordering::Relaxed);
    }

    /// The last sampled dead-letter queue depth; `None` when no consumer of this process
    /// samples it, or its queue has no dead-letter queue.
    pub fn dead_lettered(&self) -> Option<u64> {
        u64::try_from(self.dead_lettered.load(Ordering::Relaxed)).ok()
    }

    /// The handle of role `name`, if this process runs it.
    pub fn role(&self, name: &str) -> Option<Arc<RoleHealth>> {
        self.roles.iter().find(|r| r.name == name).cloned()
    }

    /// The threshold of [`DeliveryHealth::stale`].
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// Every role's report, in registration order.
    pub fn reports(&self) -> Vec<RoleReport> {
        self.roles.iter().map(|r| r.report()).collect()
    }

    /// Whether `report` shows a role without a good pass for longer than allowed. A stopped
    /// role is not stale: it was asked to stop.
    pub fn stale(&self, report: &RoleReport) -> bool {
        report.state != RoleState::Stopped && report.without_good_pass > self.stale_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_pass_clears_the_error_that_a_failed_pass_left() {
        let health = RoleHealth::new(RELAY);
        assert_eq!(health.report().state, RoleState::Starting);
        health.mark_failing(&anyhow::anyhow!("store down").context("Failed to claim"));
        let report = health.report();
        assert_eq!(report.state, RoleState::Failing);
        // Only our own outermost words: the cause (driver text, addresses) stays in the log.
        assert_eq!(report.last_error.as_deref(), Some("Failed to claim"));
        assert_eq!(report.last_good_pass_ago, None);
        health.mark_good();
        let report = health.report();
        assert_eq!(report.state, RoleState::Ok);
        assert_eq!(report.last_error, None);
        assert!(report.last_good_pass_ago.is_some());
        assert_eq!(health.good_passes(), 1);
    }

    #[test]
    fn restarts_are_counted_and_keep_their_error_until_a_pass_works() {
        let health = RoleHealth::new(CONSUMER);
        health.mark_restarting(&anyhow::anyhow!("queue unreachable"));
        health.mark_restarting(&anyhow::anyhow!("queue still unreachable"));
        let report = health.report();
        assert_eq!(report.state, RoleState::Restarting);
        assert_eq!(report.restarts, 2);
        assert_eq!(
            report.last_error.as_deref(),
            Some("queue still unreachable")
        );
        health.mark_good();
        assert_eq!(health.report().restarts, 2, "the count is a total");
    }

    #[test]
    fn a_long_error_is_cut() {
        let health = RoleHealth::new(RELAY);
        health.mark_failing(&anyhow::anyhow!("x".repeat(2 * MAX_ERROR_CHARS)));
        let text = health.report().last_error.unwrap();
        assert_eq!(text.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn a_role_is_stale_after_the_threshold_without_a_good_pass_unless_stopped() {
        let registry = DeliveryHealth::new(&[RELAY, CONSUMER], Duration::from_millis(30));
        let relay = registry.role(RELAY).unwrap();
        assert!(registry.role("api").is_none());
        assert!(!registry.stale(&relay.report()), "fresh roles get time");
        std::thread::sleep(Duration::from_millis(40));
        assert!(registry.stale(&relay.report()), "no good pass in 40 ms");
        relay.mark_good();
        assert!(!registry.stale(&relay.report()));
        let consumer = registry.role(CONSUMER).unwrap();
        assert!(registry.stale(&consumer.report()));
        consumer.mark_stopped();
        assert!(!registry.stale(&consumer.report()));
        let names: Vec<_> = registry.reports().iter().map(|r| r.name).collect();
        assert_eq!(names, [RELAY, CONSUMER]);
    }
}

//! The per-account throttle of failed logins: exponential delay, never a lock.
//!
//! The first `free` failed logins of an account cost nothing. Each further failure makes the
//! account wait before its next login is even looked at: `base`, then twice that, and so on up
//! to `cap`. A login tried during the wait is refused at once (429 with `Retry-After`, no
//! password hash spent) and is not counted, so an attacker gets one guess per wait however
//! many addresses they use, and a victim whose account is under attack waits at most `cap`
//! after the attacker's last try. A successful login clears the account's record; a record
//! idle for [`FORGET_AFTER`] is forgotten.
//!
//! Accounts are keyed by the e-mail as typed (lower-cased and trimmed), whether or not such
//! an account exists, so the throttle does not reveal which e-mails are registered. It lives
//! in the process's memory: with several API instances each keeps its own count.
//!
//! Hand-written rather than taken from a crate: the rate limiters at hand (governor) count
//! requests in a window, not consecutive failures with a doubling wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an account's record is kept after its last failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Accounts tracked at most; past it, records that cost nothing yet (within the free
/// failures) and stale ones are dropped first.
const MAX_ACCOUNTS: usize = 100_000;

/// One account's failures.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// Failed logins in a row.
    failures: u32,
    /// No login of the account is looked at before this.
    blocked_until: Instant,
    /// When the last failure happened.
    last_failure: Instant,
}

/// Failed logins per account, with the wait they impose.
#[derive(Debug)]
pub struct LoginThrottle {
    records: Mutex<HashMap<String, Record>>,
    /// Failures that cost nothing.
    free: u32,
    /// The first wait.
    base: Duration,
    /// The longest wait.
    cap: Duration,
}

impl LoginThrottle {
    pub fn new(free: u32, base: Duration, cap: Duration) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            free,
            base,
            cap: cap.max(base),
        }
    }

    fn key(account: &str) -> String {
        account.trim().to_lowercase()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock cannot leave a record half-written.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` when `account` must wait before a login is looked at.
    pub fn check(&self, account: &str, now: Instant) -> Result<(), Duration> {
        match self.records().get(&Self::key(account)) {
            Some(record) if record.blocked_until > now => Err(record.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed login of `account`; returns the wait it now imposes (zero while the
    /// failures are free).
    pub fn failed(&self, account: &str, now: Instant) -> Duration {
        let mut records = self.records();
        if records.len() >= MAX_ACCOUNTS {
            let free = self.free;
            records.retain(|_, r| {
                r.failures > free && now.saturating_duration_since(r.last_failure) < FORGET_AFTER
            });
        }
        let record = records.entry(Self::key(account)).or_insert(Record {
            failures: 0,
            blocked_until: now,
            last_failure: now,
        });
        if now.saturating_duration_since(record.last_failure) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        let wait = self.wait_after(record.failures);
        record.blocked_until = now + wait;
        wait
    }

    /// Clears `account`'s failures after a successful login.
    pub fn succeeded(&self, account: &str) {
        self.records().remove(&Self::key(account));
    }

    /// Forgets records idle for longer than [`FORGET_AFTER`]; run now and then.
    pub fn forget_idle(&self, now: Instant) {
        self.records()
            .retain(|_, r| now.saturating_duration_since(r.last_failure) < FORGET_AFTER);
    }

    /// The wait after `failures` failures in a row.
    fn wait_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free).filter(|n| *n > 0) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(3, Duration::from_secs(1), Duration::from_secs(8))
    }

    #[test]
    fn free_failures_cost_nothing_then_the_wait_doubles_up_to_the_cap() {
        let t = throttle();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            assert_eq!(t.check("Ada@Example.com ", now), Ok(()));
            let wait = t.failed("ada@example.com", now);
            waits.push(wait.as_secs());
            now += wait;
        }
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn a_blocked_account_is_refused_until_the_wait_is_over_and_a_success_clears_it() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..4 {
            t.failed("ada@example.com", now);
        }
        assert_eq!(t.check("ada@example.com", now), Err(Duration::from_secs(1)));
        assert_eq!(t.check("bob@example.com", now), Ok(()), "other accounts");
        assert_eq!(
            t.check("ada@example.com", now + Duration::from_secs(1)),
            Ok(())
        );
        t.succeeded("ada@example.com");
        assert_eq!(t.failed("ada@example.com", now), Duration::ZERO);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..6 {
            t.failed("ada@example.com", now);
        }
        let later = now + FORGET_AFTER;
        assert_eq!(t.failed("ada@example.com", later), Duration::ZERO);
        t.forget_idle(later + FORGET_AFTER);
        assert!(t.records().is_empty());
    }
}

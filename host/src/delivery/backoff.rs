//! The one backoff formula of the process: relay publish retries, relay and consumer pass
//! failures, supervised role restarts, message redelivery and change-stream reconnects all use
//! [`backoff`], so "how fast do we retry" has one answer.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with "equal jitter": the `attempt`-th delay (1-based) is
/// `min(cap, base × 2^(attempt-1))`, of which a random half is jitter, so callers that failed
/// together do not retry together.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let full = ceiling(attempt, base, cap);
    let half = full / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// The delay [`backoff`] jitters below: `min(cap, base × 2^(attempt-1))`, without jitter, for
/// callers that need a deterministic schedule (e.g. a message's visibility on its n-th receive).
pub fn ceiling(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << exp).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_within_its_jitter_band() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        for attempt in 1..=6u32 {
            let full = base * (1 << (attempt - 1));
            assert_eq!(ceiling(attempt, base, cap), full);
            for _ in 0..50 {
                let d = backoff(attempt, base, cap);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }

    #[test]
    fn backoff_never_exceeds_its_cap_even_after_many_attempts() {
        let cap = Duration::from_secs(5);
        for attempt in [10, 40, u32::MAX] {
            let d = backoff(attempt, Duration::from_millis(500), cap);
            assert!(d <= cap && d >= cap / 2, "{attempt}: {d:?}");
            assert_eq!(ceiling(attempt, Duration::from_millis(500), cap), cap);
        }
    }
}

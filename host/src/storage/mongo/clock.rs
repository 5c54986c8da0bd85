//! The server's clock for leases and claims. Each instance passes its own `now`; an instance
//! whose clock ran ahead by a lease would see another relay's lease as expired and publish
//! the same event, or send the same e-mail. So before a lease or claim is compared or set, the
//! caller's times are moved onto the server's clock by the difference between the server's
//! `hello.localTime` and this instance's clock, measured around that call.
//!
//! The difference is rounded to whole seconds: two instances with synchronised clocks then
//! keep exactly the times they pass (the call's own latency, well under a second, stays out of
//! it), and one whose clock is off by more than half a second compares on the server's clock
//! to within half a second, far inside any lease. The difference is measured again after
//! [`REMEASURE_AFTER`], so a claim costs no extra round trip most of the time. A `$$NOW` update
//! pipeline would take the
//! server's time per statement instead, but every comparison would then move by that
//! statement's latency, so a lease asked to end at a given instant would end a few
//! milliseconds off it.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::doc;

use super::MongoStore;
use super::error::MongoContext;
use crate::storage::{StoreError, StoreResult};

/// How long a measured difference is used before it is measured again.
pub(super) const REMEASURE_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// A measured difference and when it was measured.
#[derive(Debug, Clone, Copy)]
pub(super) struct Measured {
    skew: Duration,
    at: Instant,
}

/// How far the server's clock is ahead of this instance's, rounded to whole seconds, from the
/// server's time `server` read between the local times `sent` and `received`.
pub(super) fn rounded_skew(
    server: DateTime<Utc>,
    sent: DateTime<Utc>,
    received: DateTime<Utc>,
) -> Duration {
    let local = sent + (received - sent) / 2;
    let ms = (server - local).num_milliseconds();
    // Half away from zero, in whole seconds.
    let secs = (ms.abs() + 500) / 1000 * ms.signum();
    Duration::seconds(secs)
}

impl MongoStore {
    /// How far the server's clock is ahead of this instance's (see the module doc), measured
    /// at most [`REMEASURE_AFTER`] ago.
    pub(super) async fn clock_skew(&self) -> StoreResult<Duration> {
        let cached = *self.skew.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cached.filter(|m| m.at.elapsed() < REMEASURE_AFTER) {
            return Ok(m.skew);
        }
        let skew = self.measure_skew().await?;
        *self.skew.lock().unwrap_or_else(|p| p.into_inner()) = Some(Measured {
            skew,
            at: Instant::now(),
        });
        Ok(skew)
    }

    /// Asks the server for its time now.
    async fn measure_skew(&self) -> StoreResult<Duration> {
        let local = self.options.local_clock;
        let sent = local();
        let hello = self
            .database()
            .run_command(doc! { "hello": 1 })
            .await
            .ctx("Failed to read the server's clock")?;
        let received = local();
        let server = hello.get_datetime("localTime").map_err(|e| {
            StoreError::backend(anyhow::anyhow!("The hello reply has no localTime: {e}"))
        })?;
        Ok(rounded_skew(server.to_chrono(), sent, received))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn synchronised_clocks_give_no_skew_whatever_the_latency() {
        // Sent at 0, answered at 40 ms; the server read its clock at 25 ms.
        assert_eq!(rounded_skew(at(25), at(0), at(40)), Duration::zero());
        assert_eq!(rounded_skew(at(-300), at(0), at(40)), Duration::zero());
    }

    #[test]
    fn a_clock_off_by_seconds_is_corrected_to_the_nearest_second() {
        assert_eq!(
            rounded_skew(at(30_020), at(0), at(40)),
            Duration::seconds(30)
        );
        assert_eq!(
            rounded_skew(at(-45_400), at(0), at(40)),
            Duration::seconds(-45)
        );
        assert_eq!(rounded_skew(at(1_600), at(0), at(0)), Duration::seconds(2));
    }
}

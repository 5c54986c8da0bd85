//! The API's abuse limits (`[rate_limit]`), all in process memory so none costs a store round
//! trip:
//!
//! - per client address ([`per_client`], tower_governor keyed by [`ClientIp`]): login and
//!   register share one bucket, refresh and logout another;
//! - per account: failed logins wait longer and longer ([`LoginThrottle`]);
//! - per user: order writes (place and cancel) ([`Limits::check_order_write`], a governor
//!   keyed limiter); and the cap on open orders, which the store checks inside the order's
//!   own transaction ([`Limits::max_open_orders`]).
//!
//! Every refusal is a 429 `application/problem+json` with `Retry-After`. With several API
//! instances each keeps its own counts, so the effective limits are per instance.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

use super::client_ip::ClientIp;
use super::error::ApiError;
use super::state::AppState;
use crate::auth::LoginThrottle;
use serde::{Deserialize, Serialize};

use crate::configuration::Settings;
use crate::domain::Id;

/// Abuse limits (`[rate_limit]`). `enabled = false` turns every one of them off (load
/// tests only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Login and register, per client address: one request is replenished every this many
    /// milliseconds…
    pub replenish_ms: u64,
    /// …and a client may send this many in a burst.
    pub burst: u32,
    /// Refresh and logout, per client address: one request replenished every this many ms…
    pub session_replenish_ms: u64,
    /// …and this many in a burst.
    pub session_burst: u32,
    /// Failed logins of one account that cost nothing; each further one doubles the wait
    /// before the account's next login is looked at.
    pub free_failed_logins: u32,
    /// The first wait after the free failed logins, in milliseconds.
    pub failed_login_delay_ms: u64,
    /// The longest wait, in milliseconds: an attacker can never hold an account's logins off
    /// for longer than this after their last attempt.
    pub failed_login_delay_cap_ms: u64,
    /// Order writes (place and cancel) per user: one replenished every this many ms…
    pub order_replenish_ms: u64,
    /// …and this many in a burst.
    pub order_burst: u32,
    /// Orders one user may have `pending` or `processing` at once; 0 = no cap.
    pub max_open_orders: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            replenish_ms: 2_000,
            burst: 10,
            session_replenish_ms: 1_000,
            session_burst: 30,
            free_failed_logins: 5,
            failed_login_delay_ms: 1_000,
            failed_login_delay_cap_ms: 60_000,
            order_replenish_ms: 1_000,
            order_burst: 20,
            max_open_orders: 20,
        }
    }
}

/// How often idle keys are forgotten, so the limiters' memory stays bounded.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// The limits the handlers apply themselves (the per-client ones are layers).
#[derive(Debug)]
pub struct Limits {
    /// Where a request's client address comes from.
    pub client_ip: ClientIp,
    /// Failed logins per account; `None` when limits are off.
    pub logins: Option<LoginThrottle>,
    /// Order writes per user; `None` when limits are off.
    orders: Option<DefaultKeyedRateLimiter<Id>>,
    /// Orders a user may have pending or processing; `None` for no cap.
    pub max_open_orders: Option<u32>,
}

/// A quota of one request per `replenish_ms` with bursts of `burst`.
fn quota(replenish_ms: u64, burst: u32) -> Quota {
    let period = Duration::from_millis(replenish_ms.max(1));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limits {
    /// From the settings; a malformed trusted-proxy entry is an error.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let limits = &settings.rate_limit;
        let client_ip = ClientIp::from_settings(&settings.http)?;
        if !limits.enabled {
            return Ok(Self {
                client_ip,
                logins: None,
                orders: None,
                max_open_orders: None,
            });
        }
        Ok(Self {
            client_ip,
            logins: Some(LoginThrottle::new(
                limits.free_failed_logins,
                Duration::from_millis(limits.failed_login_delay_ms),
                Duration::from_millis(limits.failed_login_delay_cap_ms),
            )),
            orders: Some(RateLimiter::keyed(quota(
                limits.order_replenish_ms,
                limits.order_burst,
            ))),
            max_open_orders: (limits.max_open_orders > 0).then_some(limits.max_open_orders),
        })
    }

    /// 429 when `user` has used up their order writes for now.
    pub fn check_order_write(&self, user: Id) -> Result<(), ApiError> {
        let Some(limiter) = &self.orders else {
            return Ok(());
        };
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::info!(user_id = %user, "order write refused: per-user rate limit");
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + 1,
            }
        })
    }

    /// Forgets idle keys every minute until `self` is dropped.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limits) = weak.upgrade() else { break };
                if let Some(orders) = &limits.orders {
                    orders.retain_recent();
                }
                if let Some(logins) = &limits.logins {
                    logins.forget_idle(Instant::now());
                }
            }
        });
    }
}

/// `routes` behind a per-client-address limit of one request per `replenish_ms` with bursts
/// of `burst` (unless limits are off): over it → 429 with `Retry-After`.
pub fn per_client(
    routes: Router<AppState>,
    settings: &Settings,
    replenish_ms: u64,
    burst: u32,
    client_ip: &ClientIp,
) -> Router<AppState> {
    if !settings.rate_limit.enabled {
        return routes;
    }
    let Some(config) = GovernorConfigBuilder::default()
        .key_extractor(client_ip.clone())
        .period(Duration::from_millis(replenish_ms.max(1)))
        .burst_size(burst.max(1))
        .finish()
    else {
        tracing::error!("invalid rate-limit settings; these routes are not rate-limited");
        return routes;
    };
    let config = Arc::new(config);
    // Forget idle clients now and then, so the limiter's memory stays bounded. The task ends
    // when the router (the last strong reference) is dropped.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let weak = Arc::downgrade(&config);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(config) = weak.upgrade() else { break };
                config.limiter().retain_recent();
            }
        });
    }
    routes.route_layer(GovernorLayer::new(config).error_handler(|error| {
        match error {
            tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
                ApiError::TooManyRequests {
                    retry_after_secs: wait_time + 1,
                }
                .into_response()
            }
            other => {
                ApiError::internal(anyhow::anyhow!("rate limiter failed: {other}")).into_response()
            }
        }
    }))
}

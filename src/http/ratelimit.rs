//! Per-user and per-IP request limits (governor's GCRA, keyed). Node-local:
//! they protect each node; the waiting room is what limits a sale globally.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::Error;

pub struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    /// `per_sec` requests a second with a burst of twice that; 0 turns it off.
    pub fn new(per_sec: u32) -> Self {
        let inner = NonZeroU32::new(per_sec).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { inner }
    }

    pub fn check(&self, key: &K) -> Result<(), Error> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets keys that are back to a full bucket, so memory follows the
    /// number of recent callers, not of all callers ever.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// How often idle keys are dropped.
pub const FORGET_EVERY: Duration = Duration::from_secs(30);

/// The per-client-IP limit, as a middleware for the public routes.
pub async fn limit_by_ip(
    axum::extract::State(limiter): axum::extract::State<Arc<Limiter<IpAddr>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(ip) = super::client::client_ip(req.extensions())
        && let Err(e) = limiter.check(&ip)
    {
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_passes_then_the_caller_waits() {
        let l: Limiter<String> = Limiter::new(5);
        let key = "u".to_string();
        for _ in 0..10 {
            l.check(&key).unwrap();
        }
        match l.check(&key) {
            Err(Error::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        l.check(&"other".to_string()).unwrap();
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let l: Limiter<String> = Limiter::new(0);
        for _ in 0..10_000 {
            l.check(&"u".to_string()).unwrap();
        }
    }
}

//! The one wall clock. Every rule that depends on the time of day (hold and
//! order deadlines, admission expiry, the pre-queue opening) reads it here,
//! so tests can pause it instead of sleeping.
//!
//! `Clock::system()` is the real clock, corrected by the offset to Redis
//! `TIME` the node measures (`set_offset_ms`), so nodes with skewed clocks
//! agree on when a hold, an order or an admission ends.
//! `Clock::following_tokio(start)` reads tokio's clock from `start` on: under
//! `tokio::time::pause()` it stands still until the test advances it, and
//! timers and the wall clock move together.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Redis `TIME` minus this node's clock, in ms: one value per process, as
/// the skew belongs to the machine, not to a caller.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Records how far this node's clock is behind the shared one.
pub fn set_offset_ms(offset: i64) {
    OFFSET_MS.store(offset, Ordering::Relaxed);
}

pub fn offset_ms() -> i64 {
    OFFSET_MS.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy)]
pub struct Clock(Source);

#[derive(Debug, Clone, Copy)]
enum Source {
    System,
    Tokio { start_ms: i64, at: tokio::time::Instant },
}

impl Clock {
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that reads `start_ms` now and then follows tokio's clock.
    pub fn following_tokio(start_ms: i64) -> Self {
        Self(Source::Tokio {
            start_ms,
            at: tokio::time::Instant::now(),
        })
    }

    /// Milliseconds since the epoch: the precision Redis scripts use.
    pub fn now_ms(&self) -> i64 {
        match self.0 {
            Source::System => Utc::now().timestamp_millis() + offset_ms(),
            Source::Tokio { start_ms, at } => start_ms + at.elapsed().as_millis() as i64,
        }
    }

    /// Now, truncated to the millisecond.
    pub fn now(&self) -> DateTime<Utc> {
        from_ms(self.now_ms())
    }
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_when_tokio_time_does() {
        let clock = Clock::following_tokio(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now_ms(), 1_250);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(clock.now_ms(), 3_250);
        assert_eq!(clock.now().timestamp_millis(), 3_250);
    }
}

//! Times as the contract writes them.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC with milliseconds: `2026-11-25T20:40:13.120Z`. The
/// milliseconds matter: a countdown to `expiresAt` must not run out early.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn time_ms(ms: i64) -> String {
    time(crate::clock::from_ms(ms))
}

//! The one error type. Every failure a handler can meet becomes one of these,
//! and every one of these becomes the contract's error JSON:
//! `{"error": {"code", "message", ...extra}}`. Internal causes are logged,
//! never sent.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seat ids as an answer carries them, serialized once and shared: a
/// conflict's `available` may list a thousand seats, and a sale sends the
/// same list to every loser of a race until the show changes.
#[derive(Debug, Clone)]
pub struct SeatList(Arc<RawValue>);

impl SeatList {
    pub fn new(ids: &[String]) -> Self {
        let raw = serde_json::value::to_raw_value(ids).expect("a list of strings serializes");
        Self(Arc::from(raw))
    }

    /// The JSON array.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    AdmissionRequired(String),
    #[error("this waiting room asks for a proof of work: get a challenge and solve it")]
    ChallengeRequired,
    #[error("{0}")]
    ChallengeFailed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("some seats are not available")]
    SeatConflict {
        conflicts: Vec<String>,
        available: SeatList,
    },
    #[error("no row has that many adjacent free seats")]
    NotEnoughSeats { largest_block: usize },
    /// A waiting-list join for seats that can be bought now.
    #[error("seats are available now: hold them instead of waiting")]
    SeatsAvailable { free_seats: usize },
    #[error("the hold has expired")]
    HoldExpired,
    #[error("{0}")]
    HoldNotActive(String),
    #[error("the order has expired")]
    OrderExpired,
    #[error("{0}")]
    InvalidState(String),
    /// Over `MAX_SEATS_PER_USER_PER_SHOW`: an INVALID_STATE with the limit.
    #[error("at most {limit} seats of one show per shopper, across the hold and orders (MAX_SEATS_PER_USER_PER_SHOW)")]
    SeatLimit { limit: usize },
    #[error("the show has started: its seats are no longer on sale")]
    ShowStarted,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client took too long to send its request's body (rev 3).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// The show's seat state is missing from the lock engine (Redis lost it,
    /// or it was never built): rebuild it from the record. Retried inside;
    /// a client sees 503.
    #[error("the seat state of show {0} is missing")]
    StateMissing(String),
    /// A backing service (Redis, Postgres) did not answer; the detail is logged.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data; the detail is logged.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every code `Error::code` gives, as the OpenAPI document lists them.
pub const CODES: &[&str] = &[
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "ADMISSION_REQUIRED",
    "CHALLENGE_REQUIRED",
    "CHALLENGE_FAILED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "SEAT_CONFLICT",
    "NOT_ENOUGH_SEATS",
    "SEATS_AVAILABLE",
    "HOLD_EXPIRED",
    "HOLD_NOT_ACTIVE",
    "ORDER_EXPIRED",
    "INVALID_STATE",
    "SHOW_STARTED",
    "IDEMPOTENCY_MISMATCH",
    "PAYLOAD_TOO_LARGE",
    "REQUEST_TIMEOUT",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "INTERNAL",
];

impl Error {
    /// 429 with `Retry-After` in whole seconds (at least 1) for a wait in ms.
    pub fn rate_limited_ms(wait_ms: i64) -> Self {
        Self::RateLimited {
            retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::AdmissionRequired(_) => "ADMISSION_REQUIRED",
            Self::ChallengeRequired => "CHALLENGE_REQUIRED",
            Self::ChallengeFailed(_) => "CHALLENGE_FAILED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::SeatConflict { .. } => "SEAT_CONFLICT",
            Self::NotEnoughSeats { .. } => "NOT_ENOUGH_SEATS",
            Self::SeatsAvailable { .. } => "SEATS_AVAILABLE",
            Self::HoldExpired => "HOLD_EXPIRED",
            Self::HoldNotActive(_) => "HOLD_NOT_ACTIVE",
            Self::OrderExpired => "ORDER_EXPIRED",
            Self::InvalidState(_) | Self::SeatLimit { .. } => "INVALID_STATE",
            Self::ShowStarted => "SHOW_STARTED",
            Self::IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout(_) => "REQUEST_TIMEOUT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) | Self::StateMissing(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::AdmissionRequired(_) | Self::ChallengeRequired | Self::ChallengeFailed(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::SeatConflict { .. }
            | Self::NotEnoughSeats { .. }
            | Self::SeatsAvailable { .. }
            | Self::HoldExpired
            | Self::HoldNotActive(_)
            | Self::OrderExpired
            | Self::InvalidState(_)
            | Self::SeatLimit { .. }
            | Self::ShowStarted => StatusCode::CONFLICT,
            Self::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::StateMissing(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error object, as sent (also stored for idempotent replays).
    pub fn body(&self) -> Value {
        let message = match self {
            Self::Unavailable(_) | Self::StateMissing(_) => {
                "a backing service is unavailable; retry shortly".to_owned()
            }
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut err = Map::new();
        err.insert("code".into(), self.code().into());
        err.insert("message".into(), message.into());
        match self {
            Self::SeatConflict { conflicts, available } => {
                err.insert("conflicts".into(), json!(conflicts));
                err.insert(
                    "available".into(),
                    serde_json::from_str(available.json()).unwrap_or(Value::Null),
                );
            }
            Self::RateLimited { retry_after_secs } => {
                err.insert("retryAfterSeconds".into(), json!(retry_after_secs));
            }
            Self::SeatLimit { limit } => {
                err.insert("limit".into(), json!(limit));
            }
            Self::NotEnoughSeats { largest_block } => {
                err.insert("largestBlock".into(), json!(largest_block));
            }
            Self::SeatsAvailable { free_seats } => {
                err.insert("freeSeats".into(), json!(free_seats));
            }
            _ => {}
        }
        json!({ "error": err })
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "backing service unavailable"),
            _ => {}
        }
        if let Self::SeatConflict { conflicts, available } = &self {
            // The common answer of a sale: its seat list goes out as it was
            // serialized once, not rebuilt as a JSON tree per loser.
            let body = format!(
                r#"{{"error":{{"code":"SEAT_CONFLICT","message":{},"conflicts":{},"available":{}}}}}"#,
                json!(self.to_string()),
                json!(conflicts),
                available.json()
            );
            return (
                self.status(),
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response();
        }
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        res
    }
}

/// Redis answers that mean "not now" (loading a dump, a replica after a
/// failover, a cluster re-forming, out of memory): the request is 503 and
/// the service recovers by itself.
const REDIS_OUTAGE_CODES: &[&str] = &["LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "OOM"];

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if e.code() == Some("NOSTATE") {
            return Self::StateMissing(e.detail().unwrap_or_default().to_owned());
        }
        if e.code() == Some("LIMITED") {
            // A seat script refused the caller's budget: "LIMITED <ms>".
            let wait_ms = e.detail().and_then(|d| d.trim().parse().ok()).unwrap_or(1000);
            return Self::rate_limited_ms(wait_ms);
        }
        let outage = e.code().is_some_and(|c| REDIS_OUTAGE_CODES.contains(&c));
        if outage
            || e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_cluster_error()
        {
            Self::Unavailable(format!("redis: {e}"))
        } else {
            Self::Internal(format!("redis: {e}"))
        }
    }
}

/// Postgres SQLSTATE classes and codes that mean "not now": connection
/// exceptions (08), the server shutting down or starting (57P01..57P03),
/// too many connections (53300), serialization failures and deadlocks
/// (40001, 40P01). The request is 503; a retry may well succeed.
/// SQLSTATEs that mean "not now" rather than a bug: the connection, the
/// server shutting down, too many connections, serialization or deadlock,
/// and a statement cancelled by `statement_timeout` (57014) or
/// `lock_timeout` (55P03).
fn postgres_outage(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "57014" | "55P03"
        )
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let outage = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
            sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| postgres_outage(&c)),
            _ => false,
        };
        if outage {
            Self::Unavailable(format!("postgres: {e}"))
        } else {
            Self::Internal(format!("postgres: {e}"))
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_carry_their_seats_and_internals_stay_inside() {
        let body = Error::SeatConflict {
            conflicts: vec!["A1".into()],
            available: SeatList::new(&["A2".into()]),
        }
        .body();
        assert_eq!(body["error"]["code"], "SEAT_CONFLICT");
        assert_eq!(body["error"]["conflicts"], json!(["A1"]));
        assert_eq!(body["error"]["available"], json!(["A2"]));
        let body = Error::Internal("password=hunter2 at db:5432".into()).body();
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn outages_are_503_and_bugs_500() {
        for code in ["08006", "57P01", "57P03", "40001", "40P01", "53300"] {
            assert!(postgres_outage(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!postgres_outage(code), "{code}");
        }
        let reset = redis::RedisError::from(std::io::Error::other("connection reset"));
        assert_eq!(Error::from(reset).status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn every_code_is_listed_for_the_document() {
        let all = [
            Error::BadRequest(String::new()),
            Error::Unauthorized(String::new()),
            Error::Forbidden(String::new()),
            Error::AdmissionRequired(String::new()),
            Error::ChallengeRequired,
            Error::ChallengeFailed(String::new()),
            Error::NotFound(String::new()),
            Error::SeatConflict {
                conflicts: vec![],
                available: SeatList::new(&[]),
            },
            Error::NotEnoughSeats { largest_block: 0 },
            Error::SeatLimit { limit: 10 },
            Error::SeatsAvailable { free_seats: 1 },
            Error::HoldExpired,
            Error::HoldNotActive(String::new()),
            Error::OrderExpired,
            Error::InvalidState(String::new()),
            Error::ShowStarted,
            Error::IdempotencyMismatch,
            Error::MethodNotAllowed(String::new()),
            Error::PayloadTooLarge(String::new()),
            Error::RequestTimeout(String::new()),
            Error::RateLimited { retry_after_secs: 1 },
            Error::StateMissing(String::new()),
            Error::Unavailable(String::new()),
            Error::Internal(String::new()),
        ];
        for e in &all {
            assert!(CODES.contains(&e.code()), "{} is not in CODES", e.code());
        }
        let given: std::collections::HashSet<_> = all.iter().map(Error::code).collect();
        assert_eq!(given.len(), CODES.len(), "CODES lists a code no error gives");
    }

    #[tokio::test]
    async fn a_conflict_answers_the_same_json_as_its_body() {
        let e = Error::SeatConflict {
            conflicts: vec!["B\"2".into()],
            available: SeatList::new(&["A1".into(), "A3".into()]),
        };
        let expected = e.body();
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let sent: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(sent, expected);
    }

    #[test]
    fn rate_limited_answers_retry_after() {
        let res = Error::RateLimited { retry_after_secs: 2 }.into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }
}

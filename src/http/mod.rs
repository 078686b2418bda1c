//! The small HTTP toolkit every feature's routes use: extractors that turn
//! every rejection into the contract's error and parse ids at the edge
//! (`extract`), request limits (`ratelimit`), the contract's time format
//! (`time`) and the metrics layer. Routes themselves live with their
//! feature; `app` merges them.

pub mod client;
pub mod extract;
pub mod guard;
pub mod openapi;
pub mod ratelimit;
pub mod time;

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::metrics as m;

/// The longest an API request may take. The contract wants a request whose
/// dependency is down answered 503 within 2 seconds, never a hang: the pool
/// and the Redis client fail fast when they can see the outage, but a
/// query already sent to a Postgres or Redis that stopped answering (paused,
/// packets dropped) would wait for TCP to give up. Every step a request
/// takes is safe to cut short and retry (atomic scripts, transactions,
/// idempotent order creation), so the request is cut at the deadline.
pub const REQUEST_DEADLINE: Duration = Duration::from_millis(1900);

/// Whether reading a body stopped at its size limit (`http_body_util`'s
/// `LengthLimitError`, somewhere in the chain), not at a broken stream.
fn is_too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.to_string().contains("length limit exceeded") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// How long a client may take to send its request's body.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The request's body first, in the client's own time (up to
/// `BODY_DEADLINE`, then 408 `REQUEST_TIMEOUT`; larger than `max_body` is
/// 413), then the handler under the server's own deadline, counted from the
/// complete request: 503 `SERVICE_UNAVAILABLE` when a dependency makes it
/// miss that. A phone on a congested network is never told a dependency
/// failed, and a body still arriving at SIGTERM finishes in the drain.
pub async fn deadline(State(max_body): State<usize>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, max_body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_too_large(&e) => {
            return Error::PayloadTooLarge("request body too large".into()).into_response();
        }
        Ok(Err(_)) => return Error::BadRequest("the request's body could not be read".into()).into_response(),
        Err(_) => {
            return Error::RequestTimeout(format!(
                "the request's body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            ))
            .into_response();
        }
    };
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Error::Unavailable("a dependency did not answer in time; retry shortly".into()).into_response(),
    }
}

/// Counts and times every request by route (the matched pattern, never the
/// raw path, so ids do not explode the label set).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") {
                "unmatched".into()
            } else {
                "static".into()
            }
        });
    let started = Instant::now();
    let res = next.run(req).await;
    metrics::histogram!(m::HTTP_DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    metrics::counter!(m::HTTP_REQUESTS, "route" => route, "status" => res.status().as_u16().to_string()).increment(1);
    res
}

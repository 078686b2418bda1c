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

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics as m;

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

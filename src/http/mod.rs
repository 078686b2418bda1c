//! The HTTP surface: one router per feature, merged here, with the layers
//! every route shares (body limit, rate limits, metrics, JSON 404/405).

pub mod catalog;
pub mod extract;
pub mod holds;
pub mod live;
pub mod ops;
pub mod orders;
pub mod views;
pub mod waitroom;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::services::{ServeDir, ServeFile};

use crate::auth::Tokens;
use crate::booking::Booking;
use crate::config::Settings;
use crate::error::Error;
use crate::metrics as m;
use crate::ratelimit::RateLimits;

pub struct Inner {
    pub booking: Arc<Booking>,
    pub hub: Arc<crate::live::hub::SeatHub>,
    pub socket_times: crate::live::session::SocketTimes,
    /// Cancelled at shutdown: every socket closes with "reconnect".
    pub sessions: tokio_util::sync::CancellationToken,
    /// One permit per open WebSocket (`WS_MAX_CONNECTIONS`).
    pub ws_slots: Arc<tokio::sync::Semaphore>,
    pub tokens: Arc<Tokens>,
    pub rooms: Arc<crate::waitroom::service::Rooms>,
    pub rate_limits: RateLimits,
    pub metrics: PrometheusHandle,
    pub settings: Settings,
}

/// Shared by every handler; cloning is one `Arc` clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The whole application as a router (tests drive it with `oneshot` too).
pub fn app(state: AppState) -> Router {
    let public = Router::new()
        .merge(catalog::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_by_ip));
    let api = Router::new()
        .merge(public)
        .merge(holds::router())
        .merge(orders::router())
        // Not limited per IP: a socket is one long-lived connection, capped
        // per node by WS_MAX_CONNECTIONS instead.
        .merge(live::router())
        .merge(waitroom::router())
        .merge(ops::router(state.settings.dev_secret()));
    let dir = &state.settings.static_dir;
    let pages = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .not_found_service(ServeFile::new(dir.join("404.html")));
    Router::new()
        .merge(api)
        // Unknown API paths are JSON 404s; everything else may be a page.
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { Error::not_found("route") }),
        )
        .fallback_service(pages)
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed("method not allowed on this route".into()) })
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn(record_metrics))
        .with_state(state)
}

/// Per-client-IP limit for the public routes.
async fn limit_by_ip(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ip) = extract::client_ip(req.extensions()) {
        if let Err(e) = app.rate_limits.per_ip.check(&ip) {
            return e.into_response();
        }
    }
    next.run(req).await
}

async fn record_metrics(req: Request, next: Next) -> Response {
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

//! The whole application as one router: every feature's routes merged, with
//! the layers every route shares (body limit, per-IP limit on the public
//! routes, metrics, JSON 404/405), and the pages.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router, middleware};
use tower_http::services::{ServeDir, ServeFile};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::ops;
use super::state::AppState;
use crate::error::Error;
use crate::http::client::TrustedProxies;
use crate::http::openapi::{self, Document};
use crate::http::ratelimit::limit_by_ip;
use crate::{booking, catalog, live, waitroom};

/// The application as a router (tests drive it with `oneshot` too).
pub fn app(state: AppState) -> Router {
    let (api, doc) = api_router(&state).split_for_parts();
    let doc = Document(doc.to_json().expect("the OpenAPI document serializes").into());
    let dir = &state.settings.static_dir;
    let pages = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .not_found_service(ServeFile::new(dir.join("404.html")));
    Router::new()
        .merge(api.layer(middleware::from_fn_with_state(
            state.settings.max_body_bytes,
            crate::http::deadline,
        )))
        // Unknown API paths are JSON 404s; everything else may be a page.
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { Error::not_found("route") }),
        )
        .fallback_service(pages)
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed("method not allowed on this route".into()) })
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn(crate::http::record_metrics))
        // Outermost: the client address is known before any limit looks at it.
        .layer(middleware::from_fn_with_state(
            Arc::new(TrustedProxies(state.settings.trusted_proxies.clone())),
            crate::http::client::resolve,
        ))
        .with_state(state)
}

/// Every route, each with its part of the OpenAPI document.
fn api_router(state: &AppState) -> OpenApiRouter<AppState> {
    let public = OpenApiRouter::new()
        .merge(catalog::routes::router())
        .merge(live::routes::public_router())
        .route_layer(middleware::from_fn_with_state(state.per_ip.clone(), limit_by_ip));
    let mut api = OpenApiRouter::with_openapi(openapi::Frame::openapi())
        .merge(public)
        .merge(booking::hold_routes::router())
        .merge(booking::order_routes::router())
        .merge(booking::waitlist::routes::router())
        // Not limited per IP: a socket is one long-lived connection, capped
        // per node and per client address (`ws::Sockets`) instead.
        .merge(live::routes::router())
        .merge(waitroom::routes::router())
        .merge(ops::router(state.settings.dev_secret()));
    openapi::add_shared_answers(api.get_openapi_mut());
    openapi::add_links(api.get_openapi_mut());
    api
}

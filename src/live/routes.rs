//! The live seat stream's routes: the socket, and the REST seat map served
//! from the same feed.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::hub::SeatHub;
use super::session;
use super::views::SeatMapView;
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::{AuthState, HandshakeCaller, KnownShow};
use crate::http::openapi::ErrorBody;
use crate::http::ratelimit::Limiter;
use crate::ws::upgrade::{Handshake, Upgrade};
use crate::ws::{SocketKind, Sockets};

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<SeatHub>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    Sockets: FromRef<S>,
    AuthState: FromRef<S>,
    Arc<Limiter<IpAddr>>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(seats))
}

/// The seat map is public, like the catalog (the application limits it per IP).
pub fn public_router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<SeatHub>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(seat_map))
}

/// The live seat stream (protocol: docs/seat-stream.md).
#[utoipa::path(get, path = "/api/v1/shows/{show_id}/seats/ws", operation_id = "seatStream", tag = "catalog",
    params(Handshake, ("show_id" = String, Path, description = "A show's id"),
        ("access_token" = Option<String>, Query, description = "Optional: a signed-in viewer's token (or `Authorization: Bearer`); the handshake then counts against the user's rate limit too")),
    responses(
        (status = 101, description = "Upgraded: a `snapshot`, then batched `delta` messages (docs/seat-stream.md)"),
        (status = 400, description = "Not a WebSocket handshake", body = ErrorBody),
        (status = 401, description = "A token came with the handshake and is not valid", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 429, description = "Over the client address's handshake rate (`RATE_LIMIT_IP_PER_SEC`), the signed-in user's (`RATE_LIMIT_USER_PER_SEC`), or the address's open sockets (`WS_MAX_PER_IP`); see `Retry-After`", body = ErrorBody),
    ))]
async fn seats(
    _limits: HandshakeCaller,
    State(hub): State<Arc<SeatHub>>,
    State(sockets): State<Sockets>,
    KnownShow(show): KnownShow,
    ClientAddr(ip): ClientAddr,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    let ws = ws?;
    let permit = sockets.slot(SocketKind::Seats, ip)?;
    // Joined before the upgrade: a feed that cannot start is an HTTP 503,
    // not a socket that opens and dies.
    let viewer = hub.join(&show.id).await?;
    hub.await_seen(&viewer, &show.id).await;
    // Compressed where the client asks (rev 3): each batch is deflated once
    // per show and node, and the same bytes go to every such socket.
    Ok(ws.respond_raw(true, move |raw, deflate| async move {
        let _open = permit.opened("seats");
        let (reader, writer) = tokio::io::split(raw);
        let feed = viewer.feed().clone();
        let conn = feed.add(Box::new(writer), deflate);
        let stop = viewer.slot.stop.clone();
        let end = session::run(conn, reader, feed, sockets.times, sockets.shutdown.clone(), stop).await;
        tracing::debug!(?end, "seat socket ended");
        drop(viewer);
    }))
}

#[utoipa::path(get, path = "/api/v1/shows/{show_id}/seatmap", operation_id = "getSeatMap", tag = "catalog",
    params(
        ("show_id" = String, Path, description = "A show's id"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` this route gave: 304 while the map is unchanged"),
    ),
    responses(
        (status = 200, description = "Every seat's status as of one version", body = SeatMapView,
            headers(("ETag" = String, description = "One per version of one epoch"))),
        (status = 304, description = "Unchanged since the `ETag` given"),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn seat_map(State(hub): State<Arc<SeatHub>>, KnownShow(show): KnownShow, headers: HeaderMap) -> Result<Response> {
    let (etag, body) = hub.seat_map(&show).await?;
    let etag_header = HeaderValue::from_str(&etag).map_err(|_| Error::Internal("etag".into()))?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // If-None-Match compares weakly (RFC 9110 13.1.2): `W/"x"` matches `"x"`.
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag_header),
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response())
}

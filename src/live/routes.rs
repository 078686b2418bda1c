//! The live seat stream's routes: the socket, and the REST seat map served
//! from the same feed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::hub::SeatHub;
use super::session;
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::KnownShow;
use crate::metrics as m;
use crate::ws::upgrade::Upgrade;
use crate::ws::{SocketKind, Sockets};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<SeatHub>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    Sockets: FromRef<S>,
{
    Router::new().route("/api/v1/shows/{show_id}/seats/ws", get(seats))
}

/// The seat map is public, like the catalog (the application limits it per IP).
pub fn public_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<SeatHub>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
{
    Router::new().route("/api/v1/shows/{show_id}/seatmap", get(seat_map))
}

async fn seats(
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
    Ok(ws.respond_raw(move |raw| async move {
        let _permit = permit;
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").increment(1.0);
        let (reader, writer) = tokio::io::split(raw);
        let feed = viewer.feed().clone();
        let conn = feed.add(Box::new(writer));
        let stop = viewer.slot.stop.clone();
        let end = session::run(conn, reader, feed, sockets.times, sockets.shutdown.clone(), stop).await;
        tracing::debug!(?end, "seat socket ended");
        drop(viewer);
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").decrement(1.0);
    }))
}

async fn seat_map(State(hub): State<Arc<SeatHub>>, KnownShow(show): KnownShow, headers: HeaderMap) -> Result<Response> {
    let (etag, body) = hub.seat_map(&show).await?;
    let etag_header = HeaderValue::from_str(&etag).map_err(|_| Error::Internal("etag".into()))?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
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

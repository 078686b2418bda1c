//! `GET /api/v1/shows/{showId}/seats/ws`: the live seat stream.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt;

use super::hub::SeatHub;
use super::session;
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::extract::KnownShow;
use crate::metrics as m;
use crate::ws::upgrade::Upgrade;
use crate::ws::{Sockets, socket_config};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<SeatHub>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    Sockets: FromRef<S>,
{
    Router::new().route("/api/v1/shows/{show_id}/seats/ws", get(seats))
}

async fn seats(
    State(hub): State<Arc<SeatHub>>,
    State(sockets): State<Sockets>,
    KnownShow(show): KnownShow,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    let ws = ws?;
    let permit = sockets.slot()?;
    // Joined before the upgrade: a feed that cannot start is an HTTP 503,
    // not a socket that opens and dies.
    let joined = hub.join(&show.id).await?;
    Ok(ws.respond(socket_config(), move |socket| async move {
        let _permit = permit;
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").increment(1.0);
        let (sink, stream) = socket.split();
        let end = session::run(sink, stream, joined, sockets.times, sockets.shutdown.clone()).await;
        tracing::debug!(?end, "seat socket ended");
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").decrement(1.0);
    }))
}

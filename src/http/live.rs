//! `GET /api/v1/shows/{showId}/seats/ws`: the live seat stream.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::AppState;
use super::extract::Path;
use crate::error::{Error, Result};
use crate::live::session;
use crate::live::upgrade::Upgrade;
use crate::metrics as m;

/// Largest inbound message or frame: anything bigger closes the socket (1009).
pub const MAX_INBOUND_BYTES: usize = 64 * 1024;
/// tungstenite's read buffer per socket. Clients send almost nothing (pongs),
/// and the default of 128 KiB per socket is what makes idle sockets expensive.
pub const READ_BUFFER_BYTES: usize = 512;
/// Most bytes a socket may have queued in tungstenite before writes fail: a
/// few snapshots of the largest screen. Past it the socket is closed as slow.
pub const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/shows/{show_id}/seats/ws", get(seats))
}

/// The socket limits of every showgate WebSocket.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each frame at once: a write buffer per idle socket is memory
        // for nothing (see `live::session::FRAGMENT_BYTES`).
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_INBOUND_BYTES))
        .max_frame_size(Some(MAX_INBOUND_BYTES))
}

async fn seats(State(app): State<AppState>, Path(show): Path<String>, ws: Result<Upgrade, Error>) -> Result<Response> {
    app.booking.show(&show)?;
    let ws = ws?;
    let permit = app
        .ws_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::Unavailable("this node is at WS_MAX_CONNECTIONS".into()))?;
    // Joined before the upgrade: a feed that cannot start is an HTTP 503,
    // not a socket that opens and dies.
    let joined = app.hub.join(&show).await?;
    let (times, shutdown) = (app.socket_times, app.sessions.clone());
    Ok(ws.respond(socket_config(), move |socket| async move {
        let _permit = permit;
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").increment(1.0);
        let (sink, stream) = socket.split();
        let end = session::run(sink, stream, joined, times, shutdown).await;
        tracing::debug!(?end, "seat socket ended");
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "seats").decrement(1.0);
    }))
}

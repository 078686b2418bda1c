//! Waiting-room routes: ops' admin API, the shopper's join/poll/leave, and
//! the live position socket.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{Json as JsonResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use serde_json::{Value, json};

use super::rooms::Rooms;
use super::socket;
use crate::domain::catalog::Catalog;
use crate::domain::waitroom::RoomPatch;
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::{Admin, Auth, AuthState, Json, KnownShow, SocketAuth};
use crate::metrics as m;
use crate::ws::upgrade::Upgrade;
use crate::ws::{SocketKind, Sockets, socket_config};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Rooms>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    AuthState: FromRef<S>,
    Sockets: FromRef<S>,
{
    Router::new()
        .route(
            "/api/v1/admin/waitrooms/{show_id}",
            put(configure).get(inspect).delete(remove),
        )
        .route("/api/v1/waitrooms/{show_id}/join", post(join))
        .route("/api/v1/waitrooms/{show_id}/me", get(me).delete(leave))
        .route("/api/v1/waitrooms/{show_id}/ws", get(queue_socket))
}

async fn configure(
    State(rooms): State<Arc<Rooms>>,
    Admin(_): Admin,
    KnownShow(show): KnownShow,
    Json(patch): Json<RoomPatch>,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(rooms.put(&show, patch).await?))
}

async fn inspect(
    State(rooms): State<Arc<Rooms>>,
    Admin(_): Admin,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(rooms.admin_view(&show).await?))
}

async fn remove(
    State(rooms): State<Arc<Rooms>>,
    Admin(_): Admin,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Value>> {
    rooms.remove(&show).await?;
    Ok(JsonResponse(json!({"showId": show.id, "gated": false})))
}

async fn join(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(rooms.stand(&show, &user.id, true).await?))
}

async fn me(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(rooms.stand(&show, &user.id, false).await?))
}

async fn leave(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Value>> {
    if !rooms.leave(&show, &user.id).await? {
        return Err(Error::NotFound("you are not in this queue".into()));
    }
    Ok(JsonResponse(json!({"state": "LEFT"})))
}

async fn queue_socket(
    State(rooms): State<Arc<Rooms>>,
    State(sockets): State<Sockets>,
    SocketAuth(user): SocketAuth,
    KnownShow(show): KnownShow,
    ClientAddr(ip): ClientAddr,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    let ws = ws?;
    let permit = sockets.slot(SocketKind::Queue, ip)?;
    let (s, u) = (show.id.clone(), user.id.clone());
    let joiner = rooms.clone();
    let mut reg = rooms
        .hub
        .register(&show.id, &user.id, async || joiner.socket_join(&s, &u).await)
        .await?;
    Ok(ws.respond(socket_config(), move |ws| async move {
        let _permit = permit;
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "queue").increment(1.0);
        let (sink, stream) = ws.split();
        let end = socket::run(sink, stream, &mut reg, sockets.times, sockets.shutdown.clone()).await;
        tracing::debug!(?end, "queue socket ended");
        if !socket::admitted(&reg) {
            rooms.socket_left(&show.id, &reg.user).await;
        }
        drop(reg);
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "queue").decrement(1.0);
    }))
}

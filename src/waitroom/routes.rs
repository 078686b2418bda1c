//! Waiting-room routes: ops' admin API, the shopper's join/poll/leave, and
//! the live position socket.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{Json as JsonResponse, Response};
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::challenge::{ChallengeView, JoinProof};
use super::rooms::Rooms;
use super::socket;
use super::views::{Left, RoomView, StandingView, Ungated};
use crate::domain::catalog::Catalog;
use crate::domain::waitroom::RoomPatch;
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::{Admin, Auth, AuthState, Json, KnownShow, OptionalJson, SocketAuth};
use crate::http::openapi::ErrorBody;
use crate::ws::upgrade::{Handshake, Upgrade};
use crate::ws::{SocketKind, Sockets, socket_config};

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Rooms>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    AuthState: FromRef<S>,
    Sockets: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(configure, inspect, remove))
        .routes(routes!(join))
        .routes(routes!(challenge))
        .routes(routes!(me, leave))
        .routes(routes!(queue_socket))
}

#[utoipa::path(put, path = "/api/v1/admin/waitrooms/{show_id}", operation_id = "putWaitingRoom", tag = "admin", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    request_body(content = RoomPatch, description = "Fields left out keep their value (or default on creation); `admitRatePerSecond` is required on creation. Every node follows a change within one second"),
    responses(
        (status = 200, description = "The room as it is now", body = RoomView),
        (status = 400, description = "A value out of range, or no rate for a new room", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn configure(
    State(rooms): State<Arc<Rooms>>,
    Admin(_admin): Admin,
    KnownShow(show): KnownShow,
    Json(patch): Json<RoomPatch>,
) -> Result<JsonResponse<RoomView>> {
    Ok(JsonResponse(rooms.put(&show, patch).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/waitrooms/{show_id}", operation_id = "getWaitingRoom", tag = "admin", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The config, the lottery commitment and the live figures", body = RoomView),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such show, or it has no waiting room", body = ErrorBody),
    ))]
async fn inspect(
    State(rooms): State<Arc<Rooms>>,
    Admin(_admin): Admin,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<RoomView>> {
    Ok(JsonResponse(rooms.admin_view(&show).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/waitrooms/{show_id}", operation_id = "deleteWaitingRoom", tag = "admin", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The show is no longer gated", body = Ungated),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such show, or it has no waiting room", body = ErrorBody),
    ))]
async fn remove(
    State(rooms): State<Arc<Rooms>>,
    Admin(_admin): Admin,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Ungated>> {
    rooms.remove(&show).await?;
    Ok(JsonResponse(Ungated {
        show_id: show.id,
        gated: false,
    }))
}

#[utoipa::path(post, path = "/api/v1/waitrooms/{show_id}/join", operation_id = "joinQueue", tag = "waiting room", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    request_body(content = Option<JoinProof>, description = "Optional: the solved challenge, where the room has `challengeBits` and the caller is not in it yet"),
    responses(
        (status = 200, description = "The caller's standing; joining again keeps the same place", body = StandingView),
        (status = 403, description = "`CHALLENGE_REQUIRED` (no challenge) or `CHALLENGE_FAILED` (wrong, reused, expired, or another user's or show's)", body = ErrorBody),
        (status = 404, description = "No such show, or it has no waiting room", body = ErrorBody),
    ))]
async fn join(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
    OptionalJson(proof): OptionalJson<JoinProof>,
) -> Result<JsonResponse<StandingView>> {
    Ok(JsonResponse(rooms.stand(&show, &user.id, true, Some(&proof)).await?))
}

#[utoipa::path(get, path = "/api/v1/waitrooms/{show_id}/challenge", operation_id = "getChallenge", tag = "waiting room", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "A proof-of-work challenge for the caller on this show: single use, valid 5 minutes", body = ChallengeView),
        (status = 404, description = "No such show, or it has no waiting room", body = ErrorBody),
    ))]
async fn challenge(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<ChallengeView>> {
    Ok(JsonResponse(rooms.challenge(&show, &user.id).await?))
}

#[utoipa::path(get, path = "/api/v1/waitrooms/{show_id}/me", operation_id = "getStanding", tag = "waiting room", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The caller's standing (the polling fallback of the socket)", body = StandingView),
        (status = 404, description = "No such show or room, or the caller is not in it", body = ErrorBody),
    ))]
async fn me(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<StandingView>> {
    Ok(JsonResponse(rooms.stand(&show, &user.id, false, None).await?))
}

#[utoipa::path(delete, path = "/api/v1/waitrooms/{show_id}/me", operation_id = "leaveQueue", tag = "waiting room", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The caller's place, or admission, is gone", body = Left),
        (status = 404, description = "No such show or room, or the caller is not in it", body = ErrorBody),
    ))]
async fn leave(
    State(rooms): State<Arc<Rooms>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<Left>> {
    if !rooms.leave(&show, &user.id).await? {
        return Err(Error::NotFound("you are not in this queue".into()));
    }
    Ok(JsonResponse(Left { state: "LEFT" }))
}

/// The live position socket (protocol: docs/queue-socket.md).
#[utoipa::path(get, path = "/api/v1/waitrooms/{show_id}/ws", operation_id = "queueSocket", tag = "waiting room", security(("bearer" = [])),
    params(
        Handshake,
        ("show_id" = String, Path, description = "A show's id"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for browsers that cannot set headers on a WebSocket"),
    ),
    responses(
        (status = 101, description = "Upgraded: `position` messages, then `admitted` (docs/queue-socket.md)"),
        (status = 400, description = "Not a WebSocket handshake", body = ErrorBody),
        (status = 404, description = "No such show or room", body = ErrorBody),
    ))]
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
        let _open = permit.opened("queue");
        let (sink, stream) = ws.split();
        let end = socket::run(sink, stream, &mut reg, sockets.times, sockets.shutdown.clone()).await;
        tracing::debug!(?end, "queue socket ended");
        if !socket::admitted(&reg) {
            rooms.socket_left(&show.id, &reg.user).await;
        }
        drop(reg);
    }))
}

//! The waiting list for returned seats over HTTP: join, read, leave, the
//! live socket (protocol: docs/waitlist-socket.md), and ops' view of a
//! show's list.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json as JsonResponse, Response};
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::socket;
use super::views::{self, JoinRequest, WaitlistFigures, WaitlistView};
use crate::booking::Booking;
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::{Admin, Auth, AuthState, Json, KnownShow, SocketAuth};
use crate::http::openapi::ErrorBody;
use crate::ws::upgrade::{Handshake, Upgrade};
use crate::ws::{SocketKind, Sockets, socket_config};

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Booking>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    AuthState: FromRef<S>,
    Sockets: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(join))
        .routes(routes!(me, leave))
        .routes(routes!(waitlist_socket))
        .routes(routes!(figures))
}

#[utoipa::path(post, path = "/api/v1/shows/{show_id}/waitlist", operation_id = "joinWaitlist", tag = "waiting list", security(("bearer" = [])),
    params(
        ("show_id" = String, Path, description = "A show's id"),
        ("X-Admission-Token" = Option<String>, Header, description = "The admission token, on a show with a waiting room: the list needs the same admission as a hold"),
    ),
    request_body(content = JoinRequest),
    responses(
        (status = 201, description = "On the list: `WAITING` with a position", body = WaitlistView),
        (status = 200, description = "Already on the list (or holding an offer): where the caller stands, unchanged", body = WaitlistView),
        (status = 400, description = "`quantity` missing or out of range", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`: the show is gated and the request has no valid, active admission", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 409, description = "`SEATS_AVAILABLE`: that many seats can be held now (buy them instead); `SHOW_STARTED`; `INVALID_STATE`: on a gated show, the caller's offer already became an order", body = ErrorBody),
    ))]
async fn join(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
    headers: HeaderMap,
    Json(req): Json<JoinRequest>,
) -> Result<Response> {
    let admission = headers.get("x-admission-token").and_then(|v| v.to_str().ok());
    let joined = booking.wait_join(&user.id, &show.id, admission, req.quantity).await?;
    let status = if joined.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = views::standing(&show.id, &user.id, &joined.standing);
    Ok((status, JsonResponse(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/shows/{show_id}/waitlist/me", operation_id = "getWaitlistStanding", tag = "waiting list", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "`WAITING` with the position, `OFFERED` with the hold, or how the last offer ended", body = WaitlistView),
        (status = 404, description = "No such show, or the caller is not on its list", body = ErrorBody),
    ))]
async fn me(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<WaitlistView>> {
    let standing = booking.wait_standing(&user.id, &show.id).await?;
    Ok(JsonResponse(views::standing(&show.id, &user.id, &standing)))
}

#[utoipa::path(delete, path = "/api/v1/shows/{show_id}/waitlist/me", operation_id = "leaveWaitlist", tag = "waiting list", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "Off the list (`LEFT`); a live offer was given back and its seats went to the next waiter", body = WaitlistView),
        (status = 404, description = "No such show, or the caller is neither waiting nor holding an offer", body = ErrorBody),
    ))]
async fn leave(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<WaitlistView>> {
    let was = booking.wait_leave(&user.id, &show.id).await?;
    Ok(JsonResponse(views::left(&show.id, &user.id, &was)))
}

/// The live waiting-list socket (protocol: docs/waitlist-socket.md).
#[utoipa::path(get, path = "/api/v1/shows/{show_id}/waitlist/ws", operation_id = "waitlistSocket", tag = "waiting list", security(("bearer" = [])),
    params(
        Handshake,
        ("show_id" = String, Path, description = "A show's id"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for browsers that cannot set headers on a WebSocket"),
    ),
    responses(
        (status = 101, description = "Upgraded: `position` messages while waiting, `offer` when seats are held for the caller, `ended` when the offer is over (docs/waitlist-socket.md)"),
        (status = 400, description = "Not a WebSocket handshake", body = ErrorBody),
        (status = 404, description = "No such show, or the caller is not on its list", body = ErrorBody),
    ))]
async fn waitlist_socket(
    State(booking): State<Arc<Booking>>,
    State(sockets): State<Sockets>,
    SocketAuth(user): SocketAuth,
    KnownShow(show): KnownShow,
    ClientAddr(ip): ClientAddr,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    let ws = ws?;
    // Read before the upgrade: a caller not on the list is an HTTP 404,
    // not a socket that opens and closes.
    let first = booking.wait_standing(&user.id, &show.id).await?;
    let permit = sockets.slot(SocketKind::Queue, ip)?;
    Ok(ws.respond(socket_config(), move |ws| async move {
        let _open = permit.opened("waitlist");
        let (sink, stream) = ws.split();
        let (booking, show, user) = (&booking, &show.id, &user.id);
        let read = move || async move { booking.wait_standing(user, show).await };
        let end = socket::run(sink, stream, first, read, sockets.times, sockets.shutdown.clone()).await;
        tracing::debug!(?end, "waitlist socket ended");
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/waitlists/{show_id}", operation_id = "getWaitlistFigures", tag = "admin", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The show's waiting list: its length and what became of its offers", body = WaitlistFigures),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn figures(
    State(booking): State<Arc<Booking>>,
    Admin(_admin): Admin,
    KnownShow(show): KnownShow,
) -> Result<JsonResponse<WaitlistFigures>> {
    let s = booking.wait_stats(&show.id).await?;
    Ok(JsonResponse(views::figures(&show.id, &s)))
}

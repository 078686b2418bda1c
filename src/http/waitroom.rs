//! Waiting-room routes: ops' admin API, the shopper's join/poll/leave, and
//! the live position socket.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Json as JsonResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::extract::{Admin, Auth, Json, Path};
use super::{AppState, live, views};
use crate::domain::waitroom::RoomPatch;
use crate::error::{Error, Result};
use crate::live::close;
use crate::live::upgrade::Upgrade;
use crate::metrics as m;
use crate::waitroom::hub::SocketView;

/// Position messages per socket are at most this frequent.
const COALESCE: Duration = Duration::from_millis(250);
/// The room was removed: the show is open to all (terminal).
pub const ROOM_CLOSED: u16 = 4410;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/waitrooms/{show_id}",
            put(configure).get(inspect).delete(remove),
        )
        .route("/api/v1/waitrooms/{show_id}/join", post(join))
        .route("/api/v1/waitrooms/{show_id}/me", get(me).delete(leave))
        .route("/api/v1/waitrooms/{show_id}/ws", get(socket))
}

async fn configure(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(show): Path<String>,
    Json(patch): Json<RoomPatch>,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(app.rooms.put(&show, patch).await?))
}

async fn inspect(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(show): Path<String>,
) -> Result<JsonResponse<Value>> {
    app.booking.show(&show)?;
    Ok(JsonResponse(app.rooms.admin_view(&show).await?))
}

async fn remove(State(app): State<AppState>, Admin(_): Admin, Path(show): Path<String>) -> Result<JsonResponse<Value>> {
    app.rooms.remove(&show).await?;
    Ok(JsonResponse(json!({"showId": show, "gated": false})))
}

async fn join(State(app): State<AppState>, Auth(user): Auth, Path(show): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(app.rooms.stand(&show, &user.id, true).await?))
}

async fn me(State(app): State<AppState>, Auth(user): Auth, Path(show): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(app.rooms.stand(&show, &user.id, false).await?))
}

async fn leave(State(app): State<AppState>, Auth(user): Auth, Path(show): Path<String>) -> Result<JsonResponse<Value>> {
    let left = app.rooms.leave(&show, &user.id).await?;
    if !left {
        return Err(Error::NotFound("you are not in this queue".into()));
    }
    Ok(JsonResponse(json!({"state": "LEFT"})))
}

/// The `X-Admission-Token` of a hold request.
pub fn admission_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-admission-token").and_then(|v| v.to_str().ok())
}

fn message(view: &SocketView) -> Value {
    match view {
        SocketView::Queued {
            position,
            queue_length,
            eta_seconds,
        } => {
            json!({"type": "position", "position": position, "queueLength": queue_length, "etaSeconds": eta_seconds})
        }
        SocketView::PreQueued { entrants } => {
            json!({"type": "position", "position": Value::Null, "queueLength": entrants, "etaSeconds": Value::Null, "preQueue": true})
        }
        SocketView::Admitted { token, expires_ms } => {
            json!({"type": "admitted", "admissionToken": token, "expiresAt": views::time_ms(*expires_ms)})
        }
        SocketView::SoldOut { position, queue_length } => {
            json!({"type": "soldOut", "position": position, "queueLength": queue_length})
        }
        SocketView::Closed => json!({"type": "closed"}),
    }
}

async fn socket(
    State(app): State<AppState>,
    Auth(user): Auth,
    Path(show): Path<String>,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    app.booking.show(&show)?;
    let ws = ws?;
    let permit = app
        .ws_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::Unavailable("this node is at WS_MAX_CONNECTIONS".into()))?;
    let rooms = app.rooms.clone();
    let (s, u) = (show.clone(), user.id.clone());
    let mut reg = app
        .rooms
        .hub
        .register(&show, &user.id, async || rooms.socket_join(&s, &u).await)
        .await?;
    let (times, shutdown, rooms) = (app.socket_times, app.sessions.clone(), app.rooms.clone());
    Ok(ws.respond(live::socket_config(), move |socket| async move {
        let _permit = permit;
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "queue").increment(1.0);
        let (mut sink, mut stream) = socket.split();
        let mut ping = tokio::time::interval(times.ping_every);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let mut next_send = tokio::time::Instant::now();
        let mut pending = true;
        let close_with = |code: u16, reason: &'static str| {
            Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: Utf8Bytes::from_static(reason),
            }))
        };
        loop {
            // Send the latest view at most every COALESCE.
            if pending && tokio::time::Instant::now() >= next_send {
                pending = false;
                next_send = tokio::time::Instant::now() + COALESCE;
                let view = reg.view.borrow_and_update().clone();
                let text = message(&view).to_string();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                match view {
                    SocketView::Admitted { .. } => {
                        let _ = sink.send(close_with(1000, "admitted")).await;
                        break;
                    }
                    SocketView::Closed => {
                        let _ = sink.send(close_with(ROOM_CLOSED, "waiting room removed")).await;
                        break;
                    }
                    _ => {}
                }
            }
            let wait = if pending {
                next_send
            } else {
                tokio::time::Instant::now() + Duration::from_secs(3600)
            };
            tokio::select! {
                changed = reg.view.changed() => {
                    if changed.is_err() { break; }
                    pending = true;
                    // Admission (and the end of the room) is news that does not wait.
                    if !matches!(*reg.view.borrow(), SocketView::Queued { .. } | SocketView::PreQueued { .. }) {
                        next_send = tokio::time::Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(wait), if pending => {}
                incoming = stream.next() => match incoming {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                    Some(Err(WsError::Capacity(_))) => {
                        let _ = sink.send(close_with(close::MESSAGE_TOO_BIG, "message too big")).await;
                        break;
                    }
                    Some(Err(_)) => break,
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= times.dead_after {
                        let _ = sink.send(close_with(close::PEER_TIMEOUT, "no pong, reconnect")).await;
                        break;
                    }
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() { break; }
                }
                _ = shutdown.cancelled() => {
                    let _ = sink.send(close_with(close::SHUTTING_DOWN, "server restarting, reconnect")).await;
                    break;
                }
            }
        }
        let admitted = matches!(*reg.view.borrow(), SocketView::Admitted { .. });
        if !admitted {
            rooms.socket_left(&show, &reg.user).await;
        }
        drop(reg);
        metrics::gauge!(m::WS_CONNECTIONS, "kind" => "queue").decrement(1.0);
    }))
}

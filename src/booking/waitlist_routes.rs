//! The waiting list for returned seats over HTTP: join, read, leave, the
//! live socket (protocol: docs/waitlist-socket.md), and ops' view of a
//! show's list.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json as JsonResponse, Response};
use bytes::Bytes;
use futures::{Sink, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Booking;
use super::views::{self, WaitState, WaitlistView};
use crate::domain::catalog::Catalog;
use crate::domain::seats::{OfferEnd, WaitStanding};
use crate::error::{Error, Result};
use crate::http::client::ClientAddr;
use crate::http::extract::{Admin, Auth, AuthState, Json, KnownShow, SocketAuth};
use crate::http::openapi::ErrorBody;
use crate::http::time::time_ms;
use crate::ws::session::{End, Heartbeat, close_with, deliver, shutting_down};
use crate::ws::upgrade::{Handshake, Upgrade};
use crate::ws::{SocketKind, SocketTimes, Sockets, close, socket_config};

/// How often a socket reads its shopper's standing: every second near the
/// front of the line and once an offer is out, less often further back (a
/// read is one small script, and ten thousand waiters polling every second
/// would be ten thousand of them a second). An offer lasts
/// `WAITLIST_OFFER_SECONDS` (120 s by default), so even the longest wait
/// between reads costs a waiter far back a few seconds of it at most.
pub fn poll_every(standing: &WaitStanding) -> Duration {
    match standing {
        // One more second per hundred places ahead, up to ten.
        WaitStanding::Waiting { position, .. } => Duration::from_secs((1 + position / 100).min(10)),
        _ => Duration::from_secs(1),
    }
}

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
        .routes(routes!(socket))
        .routes(routes!(figures))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct JoinRequest {
    /// Seats wanted, 1 to `MAX_SEATS_PER_HOLD`; together when they can be.
    #[schema(minimum = 1)]
    quantity: u64,
}

#[utoipa::path(post, path = "/api/v1/shows/{show_id}/waitlist", operation_id = "joinWaitlist", tag = "waiting list", security(("bearer" = [])),
    params(("show_id" = String, Path, description = "A show's id")),
    request_body(content = JoinRequest),
    responses(
        (status = 201, description = "On the list: `WAITING` with a position", body = WaitlistView),
        (status = 200, description = "Already on the list (or holding an offer): where the caller stands, unchanged", body = WaitlistView),
        (status = 400, description = "`quantity` missing or out of range", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 409, description = "`SEATS_AVAILABLE`: that many seats can be held now (buy them instead); `SHOW_STARTED`", body = ErrorBody),
    ))]
async fn join(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    KnownShow(show): KnownShow,
    Json(req): Json<JoinRequest>,
) -> Result<Response> {
    let joined = booking.wait_join(&user.id, &show.id, req.quantity).await?;
    let status = if joined.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = views::waitlist(&show.id, &user.id, &joined.standing);
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
    Ok(JsonResponse(views::waitlist(&show.id, &user.id, &standing)))
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
    let mut view = views::waitlist(&show.id, &user.id, &was);
    view.state = WaitState::Left;
    (view.position, view.expires_at) = (None, None);
    Ok(JsonResponse(view))
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
async fn socket(
    State(booking): State<Arc<Booking>>,
    State(sockets): State<Sockets>,
    SocketAuth(user): SocketAuth,
    KnownShow(show): KnownShow,
    ClientAddr(ip): ClientAddr,
    ws: Result<Upgrade, Error>,
) -> Result<Response> {
    let ws = ws?;
    let first = booking.wait_standing(&user.id, &show.id).await?;
    let permit = sockets.slot(SocketKind::Queue, ip)?;
    Ok(ws.respond(socket_config(), move |ws| async move {
        let _open = permit.opened("waitlist");
        let (sink, stream) = ws.split();
        let read = {
            let (booking, show, user) = (booking.clone(), show.id.clone(), user.id.clone());
            move || {
                let (booking, show, user) = (booking.clone(), show.clone(), user.clone());
                async move { booking.wait_standing(&user, &show).await }
            }
        };
        let end = run(sink, stream, first, read, sockets.times, sockets.shutdown.clone()).await;
        tracing::debug!(?end, "waitlist socket ended");
    }))
}

/// What one standing says on the socket (docs/waitlist-socket.md).
fn message(standing: &WaitStanding) -> serde_json::Value {
    match standing {
        WaitStanding::Waiting { position, quantity } => json!({
            "type": "position", "state": "WAITING", "position": position, "quantity": quantity,
        }),
        WaitStanding::Offered {
            hold_id,
            seats,
            expires_ms,
        } => json!({
            "type": "offer", "state": "OFFERED", "holdId": hold_id, "seatIds": seats,
            "expiresAt": time_ms(*expires_ms),
        }),
        WaitStanding::Ended { hold_id, end, .. } => {
            let order = match end {
                OfferEnd::Accepted(order) => Some(order),
                _ => None,
            };
            json!({ "type": "ended", "state": views::end_state(end), "holdId": hold_id, "orderId": order })
        }
        WaitStanding::None => json!({ "type": "ended", "state": "LEFT" }),
    }
}

/// Runs one socket: the standing as it changes, read every `poll_every`,
/// until the shopper's offer is over (or they left the list), then closes.
async fn run<S, R, F, Fut>(
    mut sink: S,
    mut stream: R,
    first: WaitStanding,
    read: F,
    times: SocketTimes,
    shutdown: CancellationToken,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, WsError>> + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<WaitStanding>>,
{
    let mut heartbeat = Heartbeat::start(times);
    let mut next_read = tokio::time::Instant::now() + poll_every(&first);
    let mut last: Option<WaitStanding> = None;
    let mut next = Some(first);
    loop {
        if let Some(standing) = next.take()
            && last.as_ref() != Some(&standing)
        {
            let text = Bytes::from(message(&standing).to_string());
            if let Err(end) = deliver(&mut sink, &text, times).await {
                return end;
            }
            if matches!(standing, WaitStanding::Ended { .. } | WaitStanding::None) {
                return close_with(&mut sink, close::NORMAL, "the offer is over").await;
            }
            last = Some(standing);
        }
        let step = tokio::select! {
            _ = tokio::time::sleep_until(next_read) => {
                let read = read().await;
                let after = read.as_ref().ok().or(last.as_ref()).map_or(Duration::from_secs(1), poll_every);
                next_read = tokio::time::Instant::now() + after;
                match read {
                    Ok(s) => next = Some(s),
                    Err(Error::NotFound(_)) => next = Some(WaitStanding::None),
                    // A blip of the engine: try again at the next tick.
                    Err(e) => tracing::debug!(error = %e, "waitlist socket could not read its standing"),
                }
                Ok(())
            }
            incoming = stream.next() => heartbeat.heard(&mut sink, incoming).await,
            _ = heartbeat.due() => heartbeat.ping(&mut sink).await,
            _ = shutdown.cancelled() => return shutting_down(&mut sink).await,
        };
        if let Err(end) = step {
            return end;
        }
    }
}

/// Ops' view of a show's waiting list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WaitlistFigures {
    show_id: String,
    /// Shoppers waiting now.
    length: u64,
    /// Offers made, and what became of them (an offer not yet over is in none of the three).
    offers_made: u64,
    offers_taken: u64,
    offers_expired: u64,
    offers_declined: u64,
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
    Ok(JsonResponse(WaitlistFigures {
        show_id: show.id.clone(),
        length: s.length,
        offers_made: s.made,
        offers_taken: s.taken,
        offers_expired: s.expired,
        offers_declined: s.declined,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn text(m: Message) -> serde_json::Value {
        match m {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn waiters_far_back_are_read_less_often() {
        let waiting = |position| WaitStanding::Waiting { position, quantity: 2 };
        assert_eq!(poll_every(&waiting(1)), Duration::from_secs(1));
        assert_eq!(poll_every(&waiting(99)), Duration::from_secs(1));
        assert_eq!(poll_every(&waiting(250)), Duration::from_secs(3));
        assert_eq!(poll_every(&waiting(50_000)), Duration::from_secs(10));
        let offered = WaitStanding::Offered {
            hold_id: "h".into(),
            seats: vec![],
            expires_ms: 0,
        };
        assert_eq!(poll_every(&offered), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_far_back_reads_its_standing_every_few_seconds() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let read = move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Ok(WaitStanding::Waiting {
                    position: 500,
                    quantity: 2,
                })
            }
        };
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (_client, incoming) = futures::channel::mpsc::unbounded::<std::result::Result<Message, WsError>>();
        let first = WaitStanding::Waiting {
            position: 500,
            quantity: 2,
        };
        let times = SocketTimes::pinging_every(Duration::from_secs(60));
        let session = tokio::spawn(run(sink, incoming, first, read, times, CancellationToken::new()));
        assert_eq!(text(sent.next().await.unwrap())["position"], 500);
        tokio::time::sleep(Duration::from_millis(12_500)).await;
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "read at 6 s and 12 s, not every second"
        );
        session.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_socket_says_each_new_standing_once_and_closes_when_the_offer_is_over() {
        let offered = WaitStanding::Offered {
            hold_id: "s.h".into(),
            seats: vec!["A1".into()],
            expires_ms: 0,
        };
        // What each poll reads, in turn; the last repeats.
        let script = Arc::new(Mutex::new(vec![
            WaitStanding::Waiting {
                position: 2,
                quantity: 1,
            },
            WaitStanding::Waiting {
                position: 1,
                quantity: 1,
            },
            offered.clone(),
            offered.clone(),
            WaitStanding::Ended {
                hold_id: "s.h".into(),
                seats: vec!["A1".into()],
                end: crate::domain::seats::OfferEnd::Accepted("o1".into()),
            },
        ]));
        let read = move || {
            let script = script.clone();
            async move {
                let mut s = script.lock().unwrap();
                Ok(if s.len() > 1 { s.remove(0) } else { s[0].clone() })
            }
        };
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (_client, incoming) = futures::channel::mpsc::unbounded::<std::result::Result<Message, WsError>>();
        let first = WaitStanding::Waiting {
            position: 2,
            quantity: 1,
        };
        let times = SocketTimes::pinging_every(Duration::from_secs(60));
        let session = tokio::spawn(run(sink, incoming, first, read, times, CancellationToken::new()));
        let m = text(sent.next().await.unwrap());
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(2))
        );
        // The same position read again is not sent again.
        let m = text(sent.next().await.unwrap());
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(1))
        );
        let m = text(sent.next().await.unwrap());
        assert_eq!((m["type"].as_str(), m["holdId"].as_str()), (Some("offer"), Some("s.h")));
        let m = text(sent.next().await.unwrap());
        assert_eq!(
            (m["type"].as_str(), m["state"].as_str(), m["orderId"].as_str()),
            (Some("ended"), Some("ACCEPTED"), Some("o1"))
        );
        assert!(matches!(sent.next().await.unwrap(), Message::Close(_)));
        assert_eq!(session.await.unwrap(), End::Closed(close::NORMAL));
    }
}

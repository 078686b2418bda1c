//! One queue socket, written over `Sink`/`Stream` of tungstenite messages
//! so it runs the same on a real WebSocket and on channels in tests. It
//! sends the shopper's latest view, at most every `COALESCE` while they
//! wait; admission (and the end of the room) goes out at once, then the
//! socket closes.

use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::hub::{Registration, SocketView};
use super::views;
use crate::ws::session::{End, Heartbeat, close_with, deliver, shutting_down};
use crate::ws::{SocketTimes, close};

/// Position messages per socket are at most this frequent.
pub const COALESCE: Duration = Duration::from_millis(250);

/// Runs the socket until either side ends it, or the shopper is admitted.
pub async fn run<S, R>(
    mut sink: S,
    mut stream: R,
    reg: &mut Registration,
    times: SocketTimes,
    shutdown: CancellationToken,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut heartbeat = Heartbeat::start(times);
    let mut next_send = Instant::now();
    let mut pending = true;
    loop {
        if pending && Instant::now() >= next_send {
            pending = false;
            next_send = Instant::now() + COALESCE;
            let view = reg.view.borrow_and_update().clone();
            let text = Bytes::from(views::socket_message(&view).to_string());
            if let Err(end) = deliver(&mut sink, &text, times).await {
                return end;
            }
            match view {
                SocketView::Admitted { .. } => return close_with(&mut sink, close::NORMAL, "admitted").await,
                SocketView::Closed => return close_with(&mut sink, close::ROOM_CLOSED, "waiting room removed").await,
                SocketView::Left => return close_with(&mut sink, close::NORMAL, "left the queue").await,
                _ => {}
            }
        }
        let step = tokio::select! {
            changed = reg.view.changed() => {
                if changed.is_err() {
                    return End::Broken;
                }
                pending = true;
                // Admission (and the end of the room) is news that does not wait.
                if !matches!(*reg.view.borrow(), SocketView::Queued { .. } | SocketView::PreQueued { .. }) {
                    next_send = Instant::now();
                }
                Ok(())
            }
            _ = tokio::time::sleep_until(next_send), if pending => Ok(()),
            incoming = stream.next() => heartbeat.heard(&mut sink, incoming).await,
            _ = heartbeat.due() => heartbeat.ping(&mut sink).await,
            _ = shutdown.cancelled() => return shutting_down(&mut sink).await,
        };
        if let Err(end) = step {
            return end;
        }
    }
}

/// Whether the socket ended with its shopper admitted.
pub fn admitted(reg: &Registration) -> bool {
    matches!(*reg.view.borrow(), SocketView::Admitted { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message the server wrote, as text (small messages are one frame).
    fn text(m: Message) -> serde_json::Value {
        match m {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn close_code(m: Message) -> u16 {
        match m {
            Message::Close(Some(f)) => f.code.into(),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    fn prior() -> crate::domain::outlook::Model {
        crate::domain::outlook::Model::prior(0, 100, 1.0, 9)
    }

    #[tokio::test(start_paused = true)]
    async fn positions_are_coalesced_and_admission_closes_the_socket_at_once() {
        let (view_tx, view_rx) = tokio::sync::watch::channel(SocketView::Queued {
            position: 9,
            queue_length: 9,
            eta_seconds: None,
            outlook: prior().queued(8),
        });
        let mut reg = Registration::detached("u", view_rx);
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (_client, incoming) = futures::channel::mpsc::unbounded::<Result<Message, WsError>>();
        let times = SocketTimes::pinging_every(Duration::from_secs(20));
        let session = tokio::spawn(async move {
            let end = run(sink, incoming, &mut reg, times, CancellationToken::new()).await;
            (end, admitted(&reg))
        });
        assert_eq!(text(sent.next().await.unwrap())["position"], 9);
        // Three moves within one window: only the latest goes out, once.
        for p in [8, 7, 6] {
            view_tx
                .send(SocketView::Queued {
                    position: p,
                    queue_length: 9,
                    eta_seconds: None,
                    outlook: prior().queued(p - 1),
                })
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let m = text(sent.next().await.unwrap());
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(6))
        );
        view_tx
            .send(SocketView::Admitted {
                token: "t".into(),
                expires_ms: 0,
                outlook: prior().admitted(),
            })
            .unwrap();
        let m = text(sent.next().await.unwrap());
        assert_eq!(
            (m["type"].as_str(), m["admissionToken"].as_str()),
            (Some("admitted"), Some("t"))
        );
        assert_eq!(close_code(sent.next().await.unwrap()), close::NORMAL);
        let (end, was_admitted) = session.await.unwrap();
        assert_eq!((end, was_admitted), (End::Closed(close::NORMAL), true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_pinged_then_closed_and_shutdown_says_reconnect() {
        let (_view_tx, view_rx) = tokio::sync::watch::channel(SocketView::PreQueued {
            entrants: 3,
            outlook: prior().pre_queued(3),
        });
        let mut reg = Registration::detached("u", view_rx);
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (_client, incoming) = futures::channel::mpsc::unbounded::<Result<Message, WsError>>();
        let times = SocketTimes::pinging_every(Duration::from_secs(1));
        let session = tokio::spawn(async move { run(sink, incoming, &mut reg, times, CancellationToken::new()).await });
        assert_eq!(text(sent.next().await.unwrap())["preQueue"], true);
        let mut pings = 0;
        let code = loop {
            match sent.next().await.unwrap() {
                Message::Ping(_) => pings += 1,
                other => break close_code(other),
            }
        };
        assert_eq!((pings, code), (2, close::PEER_TIMEOUT));
        assert_eq!(session.await.unwrap(), End::Closed(close::PEER_TIMEOUT));

        let (_view_tx, view_rx) = tokio::sync::watch::channel(SocketView::PreQueued {
            entrants: 3,
            outlook: prior().pre_queued(3),
        });
        let mut reg = Registration::detached("u", view_rx);
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (_client, incoming) = futures::channel::mpsc::unbounded::<Result<Message, WsError>>();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let session = tokio::spawn(async move { run(sink, incoming, &mut reg, times, stop).await });
        sent.next().await.unwrap();
        shutdown.cancel();
        assert_eq!(close_code(sent.next().await.unwrap()), close::SHUTTING_DOWN);
        assert_eq!(session.await.unwrap(), End::Closed(close::SHUTTING_DOWN));
    }
}

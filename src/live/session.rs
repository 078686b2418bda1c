//! One seat-map socket. Written over `Sink`/`Stream` so it runs the same on
//! a real WebSocket and on channels in tests.
//!
//! The socket is sent the feed's snapshot, then every delta in version
//! order. Its queue is the feed's bounded broadcast channel: if the socket
//! falls behind it (a slow reader), it is sent a fresh snapshot and carries
//! on from there: never an unbounded buffer, never a gap.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::close;
use super::hub::{Frame, Joined};

/// Timing of a socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketTimes {
    /// How often the server pings.
    pub ping_every: Duration,
    /// A peer silent for this long (no pong, no message) is dead.
    pub dead_after: Duration,
    /// One write may take this long before the socket is closed as slow.
    pub send_timeout: Duration,
}

impl Default for SocketTimes {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(20),
            dead_after: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a session ended (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    ClientClosed,
    Closed(u16),
    Broken,
}

async fn send<S>(sink: &mut S, msg: Message, times: SocketTimes) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
{
    match timeout(times.send_timeout, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Broken),
        Err(_) => Err(End::Closed(close::SLOW_CONSUMER)),
    }
}

async fn close_with<S>(sink: &mut S, code: u16, reason: &'static str) -> End
where
    S: Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    End::Closed(code)
}

/// True when the read failed because the peer's message was over the limit.
fn too_big(err: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(
        err.into_inner().downcast::<WsError>().map(|e| *e),
        Ok(WsError::Capacity(_))
    )
}

/// Runs the socket until either side ends it.
pub async fn run<S, R>(
    mut sink: S,
    mut stream: R,
    joined: Joined,
    times: SocketTimes,
    shutdown: CancellationToken,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let Joined {
        viewer,
        mut rx,
        mut version,
        snapshot,
    } = joined;
    if let Err(end) = send(&mut sink, Message::Text(snapshot), times).await {
        return end;
    }
    let mut ping = tokio::time::interval(times.ping_every);
    ping.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let msg = match frame {
                    Ok(Frame::Delta { version: v, json }) => {
                        if v <= version {
                            continue;
                        }
                        if v != version + 1 {
                            // Cannot happen with one in-order feed; resync rather than gap.
                            let (v, json) = viewer.feed.snapshot().await;
                            version = v;
                            json
                        } else {
                            version = v;
                            json
                        }
                    }
                    Ok(Frame::Snapshot { version: v, json }) => {
                        version = v;
                        json
                    }
                    Err(RecvError::Lagged(_)) => {
                        let (v, json) = viewer.feed.snapshot().await;
                        version = v;
                        json
                    }
                    Err(RecvError::Closed) => return close_with(&mut sink, close::FEED_LOST, "feed lost, reconnect").await,
                };
                if let Err(end) = send(&mut sink, Message::Text(msg), times).await {
                    if end == End::Closed(close::SLOW_CONSUMER) {
                        return close_with(&mut sink, close::SLOW_CONSUMER, "too slow, reconnect").await;
                    }
                    return end;
                }
            }
            incoming = stream.next() => match incoming {
                None => return End::ClientClosed,
                Some(Ok(Message::Close(_))) => return End::ClientClosed,
                Some(Ok(_)) => last_heard = Instant::now(),
                Some(Err(e)) => {
                    if too_big(e) {
                        return close_with(&mut sink, close::MESSAGE_TOO_BIG, "message too big").await;
                    }
                    return End::Broken;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= times.dead_after {
                    return close_with(&mut sink, close::PEER_TIMEOUT, "no pong, reconnect").await;
                }
                if let Err(end) = send(&mut sink, Message::Ping(Default::default()), times).await {
                    return end;
                }
            }
            _ = shutdown.cancelled() => {
                return close_with(&mut sink, close::SHUTTING_DOWN, "server restarting, reconnect").await;
            }
        }
    }
}

//! One seat-map socket. Written over `Sink`/`Stream` of tungstenite messages
//! so it runs the same on a real WebSocket and on channels in tests.
//!
//! The socket is sent the feed's snapshot, then every delta in version
//! order. Its queue is the feed's bounded broadcast channel: if the socket
//! falls behind it (a slow reader), it is sent a fresh snapshot and carries
//! on from there: never an unbounded buffer, never a gap.

use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::close;
use super::hub::{Frame as FeedFrame, Joined};

/// Largest frame the server writes. Longer messages (a 1,200-seat snapshot
/// is ~40 KB) go out as fragments: tungstenite keeps its write buffer's
/// capacity for the socket's life, so the largest frame ever written is what
/// every idle socket costs.
pub const FRAGMENT_BYTES: usize = 1024;

/// Timing of a socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketTimes {
    /// How often the server pings.
    pub ping_every: Duration,
    /// A peer silent for this long (no pong, no message) is dead.
    pub dead_after: Duration,
    /// One message may take this long to write before the socket is closed as slow.
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

/// Writes one text message, fragmented when long. `json` is ASCII JSON, so
/// any byte boundary is a valid fragment boundary.
async fn send_text<S>(sink: &mut S, json: &Bytes) -> Result<(), S::Error>
where
    S: Sink<Message> + Unpin,
{
    if json.len() <= FRAGMENT_BYTES {
        let text = Utf8Bytes::try_from(json.clone()).unwrap_or_else(|_| Utf8Bytes::from_static("{}"));
        return sink.send(Message::Text(text)).await;
    }
    let mut start = 0;
    while start < json.len() {
        let end = (start + FRAGMENT_BYTES).min(json.len());
        let opcode = if start == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        sink.send(Message::Frame(Frame::message(
            json.slice(start..end),
            opcode,
            end == json.len(),
        )))
        .await?;
        start = end;
    }
    Ok(())
}

async fn deliver<S>(sink: &mut S, json: &Bytes, times: SocketTimes) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
{
    match timeout(times.send_timeout, send_text(sink, json)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Broken),
        Err(_) => Err(close_with(sink, close::SLOW_CONSUMER, "too slow, reconnect").await),
    }
}

async fn close_with<S>(sink: &mut S, code: u16, reason: &'static str) -> End
where
    S: Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    End::Closed(code)
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
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let Joined {
        viewer,
        mut rx,
        mut version,
        snapshot,
    } = joined;
    if let Err(end) = deliver(&mut sink, &snapshot, times).await {
        return end;
    }
    drop(snapshot);
    let mut ping = tokio::time::interval(times.ping_every);
    ping.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let json = match frame {
                    Ok(FeedFrame::Delta { version: v, json }) if v == version + 1 => {
                        version = v;
                        json
                    }
                    Ok(FeedFrame::Delta { version: v, .. }) if v <= version => continue,
                    Ok(FeedFrame::Snapshot { version: v, json }) => {
                        version = v;
                        json
                    }
                    // Behind its queue (or, which one in-order feed never
                    // produces, a gap): resync with a fresh snapshot.
                    Ok(FeedFrame::Delta { .. }) | Err(RecvError::Lagged(_)) => {
                        let (v, json) = viewer.feed.snapshot().await;
                        version = v;
                        json
                    }
                    Err(RecvError::Closed) => return close_with(&mut sink, close::FEED_LOST, "feed lost, reconnect").await,
                };
                if let Err(end) = deliver(&mut sink, &json, times).await {
                    return end;
                }
            }
            incoming = stream.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => return End::ClientClosed,
                Some(Ok(_)) => last_heard = Instant::now(),
                Some(Err(WsError::Capacity(_))) => {
                    return close_with(&mut sink, close::MESSAGE_TOO_BIG, "message too big").await;
                }
                Some(Err(_)) => return End::Broken,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= times.dead_after {
                    return close_with(&mut sink, close::PEER_TIMEOUT, "no pong, reconnect").await;
                }
                if timeout(times.send_timeout, sink.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    return End::Broken;
                }
            }
            _ = shutdown.cancelled() => {
                return close_with(&mut sink, close::SHUTTING_DOWN, "server restarting, reconnect").await;
            }
        }
    }
}

//! What every socket session shares, written over `Sink`/`Stream` of
//! tungstenite messages so sessions run the same on a real WebSocket and on
//! channels in tests: fragmented writes with a deadline, closing with a
//! code, and the heartbeat (server pings, a silent peer is closed).

use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, SinkExt};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{SocketTimes, close};

/// Largest frame the server writes. Longer messages (a 1,200-seat snapshot
/// is ~40 KB) go out as fragments: tungstenite keeps its write buffer's
/// capacity for the socket's life, so the largest frame ever written is what
/// every idle socket costs.
pub const FRAGMENT_BYTES: usize = 1024;
/// How long a close frame may take to write.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a session ended (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    ClientClosed,
    Closed(u16),
    Broken,
}

/// Writes one text message, fragmented when long. `json` is ASCII JSON, so
/// any byte boundary is a valid fragment boundary.
pub async fn send_text<S>(sink: &mut S, json: &Bytes) -> Result<(), S::Error>
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

/// Writes one message within the send timeout; a socket that cannot take it
/// in time is closed as slow.
pub async fn deliver<S>(sink: &mut S, json: &Bytes, times: SocketTimes) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
{
    match timeout(times.send_timeout, send_text(sink, json)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Broken),
        Err(_) => Err(close_with(sink, close::SLOW_CONSUMER, "too slow, reconnect").await),
    }
}

/// Sends a close frame (best effort, bounded) and answers how the session ended.
pub async fn close_with<S>(sink: &mut S, code: u16, reason: &'static str) -> End
where
    S: Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    End::Closed(code)
}

/// The server's closing words at shutdown.
pub async fn shutting_down<S>(sink: &mut S) -> End
where
    S: Sink<Message> + Unpin,
{
    close_with(sink, close::SHUTTING_DOWN, "server restarting, reconnect").await
}

/// The peer's side of the heartbeat: when it was last heard from.
pub struct Heartbeat {
    times: SocketTimes,
    last_heard: Instant,
    ticker: tokio::time::Interval,
}

impl Heartbeat {
    /// Starts counting now; the first ping goes out one period from now.
    pub fn start(times: SocketTimes) -> Self {
        let mut ticker = tokio::time::interval_at(Instant::now() + times.ping_every, times.ping_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            times,
            last_heard: Instant::now(),
            ticker,
        }
    }

    /// Resolves when it is time to ping.
    pub async fn due(&mut self) {
        self.ticker.tick().await;
    }

    /// Pings the peer, or closes it when it has been silent too long.
    pub async fn ping<S>(&mut self, sink: &mut S) -> Result<(), End>
    where
        S: Sink<Message> + Unpin,
    {
        if self.last_heard.elapsed() >= self.times.dead_after {
            return Err(close_with(sink, close::PEER_TIMEOUT, "no pong, reconnect").await);
        }
        match timeout(self.times.send_timeout, sink.send(Message::Ping(Bytes::new()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Broken),
        }
    }

    /// Takes what the peer sent: anything but a close keeps it alive. Clients
    /// send nothing we act on; an oversized message closes with 1009.
    pub async fn heard<S>(&mut self, sink: &mut S, incoming: Option<Result<Message, WsError>>) -> Result<(), End>
    where
        S: Sink<Message> + Unpin,
    {
        match incoming {
            None | Some(Ok(Message::Close(_))) => Err(End::ClientClosed),
            Some(Ok(_)) => {
                self.last_heard = Instant::now();
                Ok(())
            }
            Some(Err(WsError::Capacity(_))) => Err(close_with(sink, close::MESSAGE_TOO_BIG, "message too big").await),
            Some(Err(_)) => Err(End::Broken),
        }
    }
}

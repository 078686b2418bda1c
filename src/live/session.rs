//! One seat-map socket's task. The feed writes its batches straight into
//! the socket (`conn`); this task does the rest: the first snapshot, the
//! writes that could not go at once, catching up a socket that fell behind
//! (one merged delta from the feed's history, or a snapshot at most once a
//! second), the client's pings and close, the server's heartbeat and the
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::conn::{Conn, Sink};
use super::feed::Feed;
use crate::metrics as m;
use crate::ws::frame::{self, Inbound, Violation};
use crate::ws::session::End;
use crate::ws::{MAX_INBOUND_BYTES, SocketTimes, close};

/// A socket gets at most one snapshot in this long (a socket that keeps
/// falling behind catches up from the history, or waits).
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How long the closing frame may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes read per wake-up: clients send only pongs and the odd close.
const READ_CHUNK: usize = 256;

struct Session<'a> {
    conn: &'a Conn,
    feed: &'a Feed,
    times: SocketTimes,
    last_snapshot: Option<Instant>,
    inbound: frame::Reader,
    last_heard: Instant,
}

impl Session<'_> {
    /// Writes what is queued, then catches up, until nothing is left.
    async fn drain(&mut self) -> Result<(), End> {
        loop {
            if let Some((mut sink, frames)) = self.conn.take() {
                let written = timeout(self.times.send_timeout, async {
                    for f in &frames {
                        sink.write_all(f).await?;
                    }
                    sink.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => self.conn.put_back(sink),
                    Ok(Err(_)) => return Err(End::Broken),
                    Err(_) => {
                        let bye = frame::close(close::SLOW_CONSUMER, "too slow, reconnect");
                        let _ = timeout(CLOSE_TIMEOUT, sink.write_all(&bye)).await;
                        return Err(End::Closed(close::SLOW_CONSUMER));
                    }
                }
                continue;
            }
            let Some(at) = self.conn.behind() else { return Ok(()) };
            let (mut to, mut catch_up, mut snapshot) = self.feed.catch_up(at);
            if snapshot && let Some(last) = self.last_snapshot {
                let wait = SNAPSHOT_EVERY.saturating_sub(last.elapsed());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                    (to, catch_up, snapshot) = self.feed.catch_up(at);
                }
            }
            if snapshot {
                self.last_snapshot = Some(Instant::now());
                metrics::counter!(m::SEAT_STREAM_SNAPSHOTS).increment(1);
            }
            if !catch_up.is_empty() {
                self.conn.caught_up(to, catch_up.for_socket(self.conn.deflate));
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &str) -> End {
        self.conn.push(frame::close(code, reason));
        let _ = timeout(CLOSE_TIMEOUT, self.drain()).await;
        End::Closed(code)
    }

    /// The feed handed the socket back (it could not take a write at once).
    async fn woken(&mut self) -> Result<(), End> {
        if self.conn.is_closed() {
            return Err(End::Broken);
        }
        self.drain().await
    }

    /// Takes what the client sent: pings are answered, its close is
    /// answered and ends the session, a bad frame closes the socket.
    async fn heard(&mut self, bytes: &[u8]) -> Result<(), End> {
        let messages = match self.inbound.feed(bytes) {
            Ok(messages) => messages,
            Err(Violation::TooBig) => return Err(self.close(close::MESSAGE_TOO_BIG, "message too big").await),
            Err(Violation::Protocol) => return Err(self.close(close::PROTOCOL_ERROR, "protocol error").await),
        };
        self.last_heard = Instant::now();
        let mut closing = false;
        for m in messages {
            match m {
                Inbound::Ping(payload) => self.conn.push(frame::pong(&payload)),
                Inbound::Close => closing = true,
                Inbound::Alive => {}
            }
        }
        if closing {
            self.close(close::NORMAL, "").await;
            return Err(End::ClientClosed);
        }
        self.drain().await
    }

    /// The server's heartbeat: a ping, or the close of a silent peer.
    async fn ping(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() >= self.times.dead_after {
            return Err(self.close(close::PEER_TIMEOUT, "no pong, reconnect").await);
        }
        self.conn.push(frame::ping());
        self.drain().await
    }
}

/// Runs the socket until either side ends it. `feed_stop` is the feed's
/// end (the show was dropped): the socket is told to reconnect.
pub async fn run<R>(
    conn: Arc<Conn>,
    mut reader: R,
    feed: Arc<Feed>,
    times: SocketTimes,
    shutdown: CancellationToken,
    feed_stop: CancellationToken,
) -> End
where
    R: AsyncRead + Unpin,
{
    let mut s = Session {
        conn: &conn,
        feed: &feed,
        times,
        last_snapshot: Some(Instant::now()), // the first snapshot counts
        inbound: frame::Reader::new(MAX_INBOUND_BYTES, conn.deflate),
        last_heard: Instant::now(),
    };
    let end = serve(&mut s, &mut reader, &shutdown, &feed_stop).await;
    let sink = conn.take_sink();
    conn.close();
    if let (Some(sink), End::Closed(_)) = (sink, &end) {
        linger(sink, &mut reader).await;
    }
    end
}

/// The session's life: what wakes it, until something ends it.
async fn serve<R>(
    s: &mut Session<'_>,
    reader: &mut R,
    shutdown: &CancellationToken,
    feed_stop: &CancellationToken,
) -> End
where
    R: AsyncRead + Unpin,
{
    let conn = s.conn;
    let mut buf = [0u8; READ_CHUNK];
    let mut ping = tokio::time::interval_at(Instant::now() + s.times.ping_every, s.times.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let step = tokio::select! {
            _ = conn.wake.notified() => s.woken().await,
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => Err(End::ClientClosed),
                Ok(n) => s.heard(&buf[..n]).await,
            },
            _ = ping.tick() => s.ping().await,
            _ = shutdown.cancelled() => Err(s.close(close::SHUTTING_DOWN, "server restarting, reconnect").await),
            _ = feed_stop.cancelled() => Err(s.close(close::FEED_LOST, "feed lost, reconnect").await),
        };
        if let Err(end) = step {
            return end;
        }
    }
}

/// After the server closed: sends FIN after the close frame, then reads
/// what the client still sends (its close frame, the rest of an oversized
/// message) until it closes too, briefly. Closing with unread data would
/// send a reset, and clients report the close only once the connection
/// ends.
async fn linger<R>(mut sink: Sink, reader: &mut R)
where
    R: AsyncRead + Unpin,
{
    let mut buf = [0u8; READ_CHUNK];
    let _ = timeout(CLOSE_TIMEOUT, sink.shutdown()).await;
    let _ = timeout(CLOSE_TIMEOUT, async {
        while let Ok(n) = reader.read(&mut buf).await
            && n > 0
        {}
    })
    .await;
}

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

use super::conn::Conn;
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
                self.conn.caught_up(to, catch_up);
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &str) -> End {
        self.conn.push(frame::close(code, reason));
        let _ = timeout(CLOSE_TIMEOUT, self.drain()).await;
        End::Closed(code)
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
    };
    let mut inbound = frame::Reader::new(MAX_INBOUND_BYTES);
    let mut buf = [0u8; READ_CHUNK];
    let mut ping = tokio::time::interval_at(Instant::now() + times.ping_every, times.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let end = loop {
        tokio::select! {
            _ = conn.wake.notified() => {
                if conn.is_closed() {
                    break End::Broken;
                }
                if let Err(end) = s.drain().await {
                    break end;
                }
            }
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break End::ClientClosed,
                Ok(n) => match inbound.feed(&buf[..n]) {
                    Ok(messages) => {
                        last_heard = Instant::now();
                        let mut closing = false;
                        for m in messages {
                            match m {
                                Inbound::Ping(payload) => conn.push(frame::pong(&payload)),
                                Inbound::Close => closing = true,
                                Inbound::Alive => {}
                            }
                        }
                        if closing {
                            s.close(close::NORMAL, "").await;
                            break End::ClientClosed;
                        }
                        if let Err(end) = s.drain().await {
                            break end;
                        }
                    }
                    Err(Violation::TooBig) => break s.close(close::MESSAGE_TOO_BIG, "message too big").await,
                    Err(Violation::Protocol) => break s.close(close::PROTOCOL_ERROR, "protocol error").await,
                },
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= times.dead_after {
                    break s.close(close::PEER_TIMEOUT, "no pong, reconnect").await;
                }
                conn.push(frame::ping());
                if let Err(end) = s.drain().await {
                    break end;
                }
            }
            _ = shutdown.cancelled() => break s.close(close::SHUTTING_DOWN, "server restarting, reconnect").await,
            _ = feed_stop.cancelled() => break s.close(close::FEED_LOST, "feed lost, reconnect").await,
        }
    };
    let sink = conn.take_sink();
    conn.close();
    if let (Some(mut sink), End::Closed(_)) = (sink, &end) {
        // The server closed: send FIN after the close frame, then read what
        // the client still sends (its close frame, the rest of an oversized
        // message) until it closes too, briefly. Closing with unread data
        // would send a reset, and clients report the close only once the
        // connection ends.
        let _ = timeout(CLOSE_TIMEOUT, sink.shutdown()).await;
        let _ = timeout(CLOSE_TIMEOUT, async {
            while let Ok(n) = reader.read(&mut buf).await
                && n > 0
            {}
        })
        .await;
    }
    end
}

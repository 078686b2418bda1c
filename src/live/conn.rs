//! One seat-map socket's write side. The feed writes a batch's frame (the
//! same bytes for every socket) straight into each socket that can take it
//! at once: a non-blocking write, no task wake-up, no copy. Only a socket
//! that cannot (its kernel buffer is full, or it is behind) is handed to its
//! own task, which writes with backpressure and then catches up from the
//! feed's history in one merged delta.
//!
//! Cost per socket per batch, when the socket keeps up: one uncontended
//! lock and one `write` system call.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;

use crate::ws::frame::Shared;

/// Where a socket's bytes go.
pub type Sink = Box<dyn AsyncWrite + Send + Unpin>;

/// Where a socket stands in the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The feed's generation (a new one after every resync or new epoch).
    pub generation: u64,
    /// The version of the last frame queued for this socket.
    pub version: u64,
}

struct Out {
    /// `None` while the socket's own task is writing with it.
    sink: Option<Sink>,
    /// Frames not yet written (the first may be partly written already).
    pending: VecDeque<Bytes>,
    at: Position,
    /// A batch went by that this socket could not take: it must catch up.
    behind: bool,
}

/// What the feed did with a batch for this socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Written whole, at once.
    Written,
    /// Queued for the socket's task (part written, or the socket is busy).
    Queued,
    /// Already had it, or gone.
    Skipped,
}

pub struct Conn {
    /// The socket agreed `permessage-deflate`: it is written the feed's
    /// compressed frames.
    pub deflate: bool,
    out: Mutex<Out>,
    /// Wakes the socket's task: something to write or to catch up on.
    pub wake: Notify,
    closed: AtomicBool,
}

/// Writes as much of `bytes` as the sink takes now, without waiting.
fn write_now(sink: &mut Sink, bytes: &[u8]) -> io::Result<usize> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut done = 0;
    while done < bytes.len() {
        match Pin::new(&mut *sink).poll_write(&mut cx, &bytes[done..]) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => done += n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => break,
        }
    }
    Ok(done)
}

impl Conn {
    /// A socket at `at` whose first frame (its snapshot) is `first`;
    /// `deflate`: it takes compressed frames.
    pub fn new(sink: Sink, at: Position, first: Bytes, deflate: bool) -> Self {
        Self {
            deflate,
            out: Mutex::new(Out {
                sink: Some(sink),
                pending: VecDeque::from([first]),
                at,
                behind: false,
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the socket closed and lets go of its write half at once: the
    /// shard's list keeps this `Conn` until its next pass (on a quiet show,
    /// a long time), and the connection must not stay open, its descriptor
    /// held, that long.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(self.take_sink());
    }

    /// For the socket's task, at its end: the write half, to shut it down
    /// properly (`None` if the feed already let go of it).
    pub fn take_sink(&self) -> Option<Sink> {
        self.lock().sink.take()
    }

    /// The feed's offer of the frame covering `from..=to` in `generation`.
    pub fn offer(&self, generation: u64, from: u64, to: u64, frame: &Shared) -> Offered {
        if self.is_closed() {
            return Offered::Skipped;
        }
        let mut out = self.lock();
        if out.at.generation == generation && to <= out.at.version {
            return Offered::Skipped;
        }
        let next = out.at.generation == generation && from == out.at.version + 1;
        if !next || !out.pending.is_empty() || out.sink.is_none() {
            // Behind, or busy: one merged catch-up later beats a queue of frames.
            if !out.behind {
                out.behind = true;
                drop(out);
                self.wake.notify_one();
            }
            return Offered::Queued;
        }
        out.at.version = to;
        let Some(sink) = out.sink.as_mut() else {
            return Offered::Skipped;
        };
        let frame = frame.for_socket(self.deflate);
        match write_now(sink, &frame) {
            Ok(n) if n == frame.len() => Offered::Written,
            Ok(n) => {
                out.pending.push_back(frame.slice(n..));
                drop(out);
                self.wake.notify_one();
                Offered::Queued
            }
            Err(_) => {
                drop(out);
                self.close();
                self.wake.notify_one();
                Offered::Skipped
            }
        }
    }

    /// Queues a frame of the socket's own (a pong, a ping, a close).
    pub fn push(&self, frame: Bytes) {
        self.lock().pending.push_back(frame);
        self.wake.notify_one();
    }

    /// For the socket's task: the frames to write now and the sink to write
    /// them with, or `None` when there is nothing to write.
    pub fn take(&self) -> Option<(Sink, Vec<Bytes>)> {
        let mut out = self.lock();
        if out.pending.is_empty() {
            return None;
        }
        let sink = out.sink.take()?;
        Some((sink, out.pending.drain(..).collect()))
    }

    /// Gives the sink back after writing (dropped if the socket was closed
    /// meanwhile).
    pub fn put_back(&self, sink: Sink) {
        // Checked under the lock: `close` marks first, then takes the sink
        // under it, so a sink put back after that is dropped here instead.
        let mut out = self.lock();
        if !self.is_closed() {
            out.sink = Some(sink);
        }
    }

    /// Whether the socket must catch up, and from where (clears the flag).
    pub fn behind(&self) -> Option<Position> {
        let mut out = self.lock();
        std::mem::take(&mut out.behind).then_some(out.at)
    }

    /// Queues a catch-up frame that brings the socket to `at`.
    pub fn caught_up(&self, at: Position, frame: Bytes) {
        let mut out = self.lock();
        out.at = at;
        out.pending.push_back(frame);
    }

    pub fn position(&self) -> Position {
        self.lock().at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_socket_that_keeps_up_is_written_at_once_and_one_that_cannot_is_told_to_catch_up() {
        let (server, mut client) = tokio::io::duplex(64);
        let at = Position {
            generation: 1,
            version: 10,
        };
        let conn = Conn::new(Box::new(server), at, Bytes::from_static(b"snap"), false);
        // The snapshot is the task's to write.
        let (mut sink, frames) = conn.take().unwrap();
        for f in frames {
            tokio::io::AsyncWriteExt::write_all(&mut sink, &f).await.unwrap();
        }
        conn.put_back(sink);
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"snap");
        // Contiguous: written whole.
        assert_eq!(conn.offer(1, 11, 12, &Shared::text(b"d1")), Offered::Written);
        assert_eq!(conn.offer(1, 12, 12, &Shared::text(b"d1")), Offered::Skipped);
        // The pipe holds 64 bytes: a big frame goes in part, the rest is queued.
        let big = Shared::text(&[b'x'; 100]);
        assert_eq!(conn.offer(1, 13, 14, &big), Offered::Queued);
        // While it waits, the next batch is not queued behind it: catch up later.
        assert_eq!(conn.offer(1, 15, 15, &Shared::text(b"d3")), Offered::Queued);
        assert_eq!(
            conn.behind(),
            Some(Position {
                generation: 1,
                version: 14
            })
        );
        // A new generation is never contiguous.
        assert_eq!(conn.offer(2, 1, 1, &Shared::text(b"d4")), Offered::Queued);
        assert!(conn.behind().is_some());
    }
}

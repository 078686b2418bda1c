//! Connection deadlines, below HTTP: a connection that has not sent a
//! complete request header within `header` of being accepted is closed
//! (slowloris), and so is one with no byte read or written for `idle` (a
//! keep-alive connection nobody uses, a socket whose peer vanished).
//!
//! `axum::serve` runs hyper without a timer, so hyper's own header timeout
//! is off; this wrapper is the listener's IO instead. A deadline that
//! passes fails the pending read with `TimedOut`, which hyper (or a
//! WebSocket session) treats as the peer going away.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The two deadlines of every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnTimes {
    pub header: Duration,
    pub idle: Duration,
}

/// The end of a request header: an empty line (CRLF, or the bare LF that
/// parsers accept too).
const HEADER_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");
const HEADER_END_LF: u32 = u32::from_be_bytes(*b"\0\0\n\n");

/// An IO with the deadlines above.
pub struct Guarded<T> {
    inner: T,
    times: ConnTimes,
    accepted: Instant,
    /// The first request's header has ended (then only `idle` applies).
    header_done: bool,
    /// The last four bytes read, to find the header's end across reads.
    tail: u32,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> Guarded<T> {
    pub fn new(inner: T, times: ConnTimes) -> Self {
        let now = Instant::now();
        Self {
            inner,
            times,
            accepted: now,
            header_done: false,
            tail: 0,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(now + times.header)),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn deadline(&self) -> Instant {
        if self.header_done {
            self.last_active + self.times.idle
        } else {
            (self.accepted + self.times.header).min(self.last_active + self.times.idle)
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        self.last_active = Instant::now();
        if self.header_done {
            return;
        }
        for &b in bytes {
            self.tail = (self.tail << 8) | u32::from(b);
            if self.tail == HEADER_END || self.tail & 0xffff == HEADER_END_LF {
                self.header_done = true;
                return;
            }
        }
    }

    /// Pending until the deadline (which activity may have moved), then an error.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let due = self.deadline();
            if Instant::now() >= due {
                let why = if self.header_done {
                    "connection idle past its timeout"
                } else {
                    "no complete request header in time"
                };
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, why));
            }
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    this.saw(new);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_active = Instant::now();
        }
        // A peer that stops reading stalls writes: the deadline holds there too.
        if r.is_pending() {
            return self.poll_deadline(cx).map(Err);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_active = Instant::now();
        }
        if r.is_pending() {
            return self.poll_deadline(cx).map(Err);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if r.is_pending() {
            return self.poll_deadline(cx).map(Err);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections carry the deadlines.
pub struct GuardedListener {
    inner: TcpListener,
    times: ConnTimes,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, times: ConnTimes) -> Self {
        Self { inner, times }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept retries (with a pause) on errors such as EMFILE.
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (Guarded::new(io, self.times), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const TIMES: ConnTimes = ConnTimes {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_header_that_never_ends_is_cut_at_the_header_deadline() {
        let (mut client, server) = duplex(1024);
        let mut server = Guarded::new(server, TIMES);
        let started = Instant::now();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match server.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        });
        // A byte every 3 s: activity, but never the end of a header.
        for _ in 0..5 {
            if client.write_all(b"X").await.is_err() {
                break; // closed by the server
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(13),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_complete_header_only_silence_ends_the_connection() {
        let (mut client, server) = duplex(1024);
        let mut server = Guarded::new(server, TIMES);
        // The header's end split over two writes.
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r").await.unwrap();
        client.write_all(b"\n").await.unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 27 {
            got += server.read(&mut buf).await.unwrap();
        }
        // Past the header deadline, but talking: still open.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            server.write_all(b"ping").await.unwrap();
        }
        let quiet = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(quiet.elapsed(), Duration::from_secs(60));
    }
}

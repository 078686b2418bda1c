//! Connection deadlines, below HTTP: a request header must be complete
//! within `header` of its first byte (of the connection being accepted,
//! for the first one), so neither a new connection nor a keep-alive one can
//! dribble a header forever (slowloris); and a connection with no byte read
//! or written for `idle` is closed (a keep-alive connection nobody uses, a
//! socket whose peer vanished). After a `101 Switching Protocols` only
//! `idle` applies.
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

/// Where a connection is in its request cycle, as far as bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request header that began at this instant.
    Header(Instant),
    /// The header has ended: its body, the handler, the answer.
    Request,
    /// An answer is being written: the next byte read begins a header.
    Answered,
    /// Upgraded (a WebSocket): only `idle` applies.
    Upgraded,
}

/// An IO with the deadlines above.
pub struct Guarded<T> {
    inner: T,
    times: ConnTimes,
    phase: Phase,
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
            phase: Phase::Header(now),
            tail: 0,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(now + times.header)),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_active + self.times.idle;
        match self.phase {
            Phase::Header(began) => (began + self.times.header).min(idle),
            _ => idle,
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        self.last_active = now;
        match self.phase {
            Phase::Answered => {
                self.phase = Phase::Header(now);
                self.tail = 0;
            }
            Phase::Header(_) => {}
            Phase::Request | Phase::Upgraded => return,
        }
        for &b in bytes {
            self.tail = (self.tail << 8) | u32::from(b);
            if self.tail == HEADER_END || self.tail & 0xffff == HEADER_END_LF {
                // Bytes after the end in this read are the body's (or a
                // pipelined request's, which the answer's write re-arms).
                self.phase = Phase::Request;
                return;
            }
        }
    }

    /// The server wrote `first` (the start of a write): an answer, or the
    /// switch to another protocol.
    fn wrote(&mut self, first: &[u8]) {
        self.last_active = Instant::now();
        if first.starts_with(b"HTTP/1.1 101 ") {
            self.phase = Phase::Upgraded;
        } else if self.phase == Phase::Request {
            self.phase = Phase::Answered;
        }
    }

    /// Pending until the deadline (which activity may have moved), then an error.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let due = self.deadline();
            if Instant::now() >= due {
                let why = match self.phase {
                    Phase::Header(_) if Instant::now() < self.last_active + self.times.idle => {
                        "no complete request header in time"
                    }
                    _ => "connection idle past its timeout",
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
            self.wrote(buf);
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
            let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &b[..]).unwrap_or_default();
            self.wrote(first);
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

    /// Reads until the server side errs; answers the error.
    async fn read_until_error(mut server: Guarded<tokio::io::DuplexStream>) -> io::Error {
        let mut buf = [0u8; 64];
        loop {
            match server.read(&mut buf).await {
                Ok(0) => panic!("closed without an error"),
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_request_on_a_kept_alive_connection_has_its_own_header_deadline() {
        let (mut client, server) = duplex(1024);
        let mut server = Guarded::new(server, TIMES);
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 27 {
            got += server.read(&mut buf).await.unwrap();
        }
        server
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        // Kept alive and quiet for 40 s (under `idle`), then a second
        // request's header dribbled a byte every 3 s.
        tokio::time::sleep(Duration::from_secs(40)).await;
        let reader = tokio::spawn(read_until_error(server));
        let started = Instant::now();
        for _ in 0..8 {
            if client.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let err = reader.await.unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("header"), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(13),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_switching_protocols_frames_are_not_headers() {
        let (mut client, server) = duplex(1024);
        let mut server = Guarded::new(server, TIMES);
        client
            .write_all(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 40 {
            got += server.read(&mut buf).await.unwrap();
        }
        server
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .unwrap();
        // Frames (never a blank line) every 5 s for 30 s: open all along.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            client.write_all(&[0x81, 0x01, b'a']).await.unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(n, 3);
        }
    }
}

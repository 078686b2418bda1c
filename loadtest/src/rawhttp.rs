//! A lean HTTP/1.1 client for the closed-loop benchmarks, in the manner of
//! `wrk`: one keep-alive connection per worker, each request already bytes,
//! each answer's head parsed in place (`httparse`) and its body skipped.
//!
//! The load generator shares the machine's two cores with the server it
//! measures, so whatever it spends is taken from the server: reqwest (a
//! pool, a header map and a hyper task per request) took three quarters of a
//! core at 10,000 joins a second, this takes a fraction of that. The
//! ceilings it is compared with (`redis-benchmark`) are lean C clients too.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request, as it goes on the wire.
pub fn request(method: &str, host: &str, path: &str, token: &str, json_body: Option<&str>) -> Vec<u8> {
    let body = json_body.unwrap_or("");
    let mut out = Vec::with_capacity(160 + token.len() + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nauthorization: Bearer ");
    out.extend_from_slice(token.as_bytes());
    if json_body.is_some() {
        out.extend_from_slice(b"\r\ncontent-type: application/json");
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// A keep-alive connection that reconnects after an error or a close.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends `request` and reads its whole answer; answers the status.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<u16> {
        let answer = self.exchange(request).await;
        if answer.is_err() {
            self.stream = None;
        }
        answer
    }

    async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        stream.write_all(request).await?;
        loop {
            if let Some((status, len, close)) = head(&self.buf)? {
                while self.buf.len() < len {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf.drain(..len);
                if close {
                    self.stream = None;
                }
                return Ok(status);
            }
            read_more(stream, &mut self.buf).await?;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The status, the whole answer's length and whether the server closes,
/// once the head is complete.
fn head(buf: &[u8]) -> io::Result<Option<(u16, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let head_len = match res.parse(buf).map_err(|e| bad(&e.to_string()))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let mut body = None;
    let mut close = false;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    let body = body.ok_or_else(|| bad("an answer without content-length"))?;
    Ok(Some((res.code.unwrap_or(0), head_len + body, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_complete_only_with_its_whole_head() {
        let full = b"HTTP/1.1 409 Conflict\r\ncontent-length: 5\r\n\r\nabcde";
        assert_eq!(head(&full[..20]).unwrap(), None);
        assert_eq!(head(full).unwrap(), Some((409, full.len(), false)));
        let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(head(closing).unwrap(), Some((200, closing.len(), true)));
        assert!(head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn two_answers_in_a_row_on_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for answer in [
                &b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"[..],
                b"HTTP/1.1 409 Conflict\r\ncontent-length: 0\r\n\r\n",
            ] {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got.starts_with(b"POST /x HTTP/1.1\r\n"));
                // Split the answer across two writes.
                s.write_all(&answer[..10]).await.unwrap();
                s.write_all(&answer[10..]).await.unwrap();
            }
        });
        let mut c = Conn::new(addr);
        let req = request("POST", "h", "/x", "t", Some("{}"));
        assert_eq!(c.send(&req).await.unwrap(), 201);
        assert_eq!(c.send(&req).await.unwrap(), 409);
    }
}

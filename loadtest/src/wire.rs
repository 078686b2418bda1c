//! A seat-map viewer that counts what reaches it on the wire: a raw TCP
//! client that does the handshake itself (offering `permessage-deflate`
//! as browsers do, or not) and then counts every byte the server sends,
//! per second of the run. What a viewer's phone downloads, measured, not
//! estimated from message sizes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes received in each second since `started`.
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<Vec<u64>>>);

impl Counts {
    fn add(&self, second: usize, n: u64) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() <= second {
            v.resize(second + 1, 0);
        }
        v[second] += n;
    }

    /// The seconds `from..to`.
    pub fn seconds(&self, from: usize, to: usize) -> Vec<u64> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (from..to).map(|s| v.get(s).copied().unwrap_or(0)).collect()
    }
}

/// The most bytes a second over any `window` whole seconds in a row of
/// `per_second` (all of them if fewer).
pub fn busiest(per_second: &[u64], window: usize) -> f64 {
    if per_second.is_empty() || window == 0 {
        return 0.0;
    }
    let w = window.min(per_second.len());
    per_second
        .windows(w)
        .map(|s| s.iter().sum::<u64>() as f64 / w as f64)
        .fold(0.0, f64::max)
}

/// Opens the viewer and counts until the task is dropped; answers whether
/// the server agreed to compress, and the counts.
pub async fn watch(addr: SocketAddr, show: &str, deflate: bool, started: Instant) -> Result<(bool, Counts), String> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let offer = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /api/v1/shows/{show}/seats/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.map_err(|e| e.to_string())?);
        if head.len() > 4096 {
            return Err("no end to the handshake answer".into());
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 101") {
        return Err(format!("handshake refused: {head}"));
    }
    let agreed = head.contains("sec-websocket-extensions: permessage-deflate");
    let counts = Counts::default();
    let mine = counts.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(900), tcp.read(&mut buf)).await {
            if n == 0 {
                return;
            }
            mine.add(started.elapsed().as_secs() as usize, n as u64);
        }
    });
    Ok((agreed, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_is_the_best_run_of_whole_seconds() {
        assert_eq!(busiest(&[1, 2, 3, 10, 10, 1], 2), 10.0);
        assert_eq!(busiest(&[4, 6], 10), 5.0);
        assert_eq!(busiest(&[], 10), 0.0);
    }
}

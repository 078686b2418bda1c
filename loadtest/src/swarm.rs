//! A swarm of WebSocket clients on tokio-tungstenite (Goose has none). One
//! process holds at most ~19,900 sockets (the file limit); sockets take
//! their source address from 127.0.0.0/8 so a run is never short of ports.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Sockets per source address (well under the ephemeral port range, which
/// earlier runs' TIME_WAIT sockets also occupy).
const PER_SOURCE: usize = 4_000;
/// Handshakes in flight at once.
const CONNECT_CONCURRENCY: usize = 256;

/// The source address of socket `i` of this process: from 127.0.1.1 on,
/// PER_SOURCE sockets each, starting at an offset drawn from the process
/// id so that consecutive runs and parallel workers use other addresses.
pub fn source_addr(i: usize) -> SocketAddr {
    source_addr_from(i, (std::process::id() as usize % 10_000) * 64)
}

fn source_addr_from(i: usize, offset: usize) -> SocketAddr {
    let n = ((offset + i / PER_SOURCE) % 0x00ff_0000) as u32 + 1;
    SocketAddr::from((Ipv4Addr::from(0x7f00_0100 + n), 0))
}

/// Sockets opened by this process so far: spreads source addresses.
static SOCKET_BASE: AtomicU64 = AtomicU64::new(0);

/// Counters the sockets share.
#[derive(Default)]
pub struct Tally {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub messages: AtomicU64,
    /// Bytes of the text messages received.
    pub bytes: AtomicU64,
}

/// What each socket does with its messages: called with the socket's index,
/// the parsed JSON and the instant it arrived.
pub type OnMessage = Arc<dyn Fn(usize, &serde_json::Value, Instant) + Send + Sync>;

/// Like `OnMessage`, with the message's text unparsed (for clients that
/// read only a few fields of many messages).
pub type OnText = Arc<dyn Fn(usize, &str, Instant) + Send + Sync>;

/// How a socket hands its messages on.
#[derive(Clone)]
pub enum Handler {
    Json(OnMessage),
    Text(OnText),
}

/// Opens `count` sockets to `url` (the path after the host) and keeps them
/// open until `hold_for` passes. Answers once every socket has connected (or
/// failed); the sockets keep running in the background.
pub async fn open(
    server: SocketAddr,
    path: &str,
    count: usize,
    tally: Arc<Tally>,
    on_message: OnMessage,
    hold_for: Duration,
) {
    open_with(
        server,
        vec![path.to_owned(); count],
        tally,
        Handler::Json(on_message),
        hold_for,
    )
    .await
}

/// Like `open`, one socket per path (each with its own query, e.g. a token).
pub async fn open_paths(
    server: SocketAddr,
    paths: Vec<String>,
    tally: Arc<Tally>,
    on_message: OnMessage,
    hold_for: Duration,
) {
    open_with(server, paths, tally, Handler::Json(on_message), hold_for).await
}

/// Opens one socket per path, each handing its messages to `on_message`.
pub async fn open_with(
    server: SocketAddr,
    paths: Vec<String>,
    tally: Arc<Tally>,
    on_message: Handler,
    hold_for: Duration,
) {
    let count = paths.len();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(count.max(1));
    for (i, path) in paths.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.expect("semaphore open");
        let (tally, on_message, done) = (tally.clone(), on_message.clone(), done_tx.clone());
        let url = format!("ws://{server}{path}");
        let base = SOCKET_BASE.fetch_add(1, Ordering::Relaxed) as usize;
        tokio::spawn(async move {
            let mut ws = match connect(server, &url, base).await {
                Ok(ws) => {
                    tally.connected.fetch_add(1, Ordering::Relaxed);
                    ws
                }
                Err(e) => {
                    if tally.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("socket {i}: {e}");
                    }
                    drop(permit);
                    let _ = done.send(()).await;
                    return;
                }
            };
            drop(permit);
            let _ = done.send(()).await;
            let deadline = tokio::time::sleep(hold_for);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let at = Instant::now();
                            tally.messages.fetch_add(1, Ordering::Relaxed);
                            tally.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                            match &on_message {
                                Handler::Text(f) => f(i, &t, at),
                                Handler::Json(f) => {
                                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                                        f(i, &v, at);
                                    }
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            let _ = ws.close(None).await;
        });
    }
    drop(done_tx);
    for _ in 0..count {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
}

async fn connect(
    server: SocketAddr,
    url: &str,
    i: usize,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(source_addr(i))
        .map_err(|e| format!("bind {}: {e}", source_addr(i)))?;
    let stream = socket.connect(server).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    // The client's own buffers stay small: many sockets in one process.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Waits until `cond` holds or `limit` passes; answers whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_addresses_without_running_out_of_ports() {
        assert_eq!(source_addr_from(0, 0).ip(), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(source_addr_from(PER_SOURCE - 1, 0).ip(), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(source_addr_from(PER_SOURCE, 0).ip(), Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(source_addr_from(1_000_000, 0).ip(), Ipv4Addr::new(127, 0, 1, 251));
        assert_eq!(source_addr_from(0, 300).ip(), Ipv4Addr::new(127, 0, 2, 45));
        for i in [0, 5_000_000, 100_000_000] {
            assert!(source_addr_from(i, 639_936).ip().is_loopback());
        }
    }
}

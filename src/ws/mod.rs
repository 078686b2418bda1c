//! WebSockets, for every feature that has them: the handshake (`upgrade`),
//! the limits and timing every socket shares (`Sockets`, `socket_config`),
//! what every socket session shares (`session`: fragmented writes with a deadline, closing with a code, pings), close codes (`close`) and the per-show feed
//! registry both socket hubs use (`registry`). Nothing here knows what a
//! seat or a queue is.

pub mod close;
pub mod frame;
pub mod registry;
pub mod session;
pub mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Largest inbound message or frame: anything bigger closes the socket (1009).
pub const MAX_INBOUND_BYTES: usize = 64 * 1024;
/// tungstenite's read buffer per socket. Clients send almost nothing (pongs),
/// and the default of 128 KiB per socket is what makes idle sockets expensive.
pub const READ_BUFFER_BYTES: usize = 512;
/// Most bytes a socket may have queued in tungstenite before writes fail: a
/// few snapshots of the largest screen. Past it the socket is closed as slow.
pub const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// One message may take this long to write before the socket is closed as slow.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket limits of every showgate WebSocket.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each frame at once: a write buffer per idle socket is memory
        // for nothing (see `session::FRAGMENT_BYTES`).
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_INBOUND_BYTES))
        .max_frame_size(Some(MAX_INBOUND_BYTES))
}

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

impl SocketTimes {
    /// Pings every `ping_every`; a peer that misses three is dead.
    pub fn pinging_every(ping_every: Duration) -> Self {
        Self {
            ping_every,
            dead_after: ping_every * 3,
            send_timeout: SEND_TIMEOUT,
        }
    }
}

/// What every socket of a node shares: the budget of open sockets
/// (`WS_MAX_CONNECTIONS`), their timing, and the shutdown signal (upgraded
/// sockets are not tracked by axum's graceful shutdown).
#[derive(Clone)]
pub struct Sockets {
    slots: Arc<Semaphore>,
    pub times: SocketTimes,
    /// Cancelled at shutdown: every socket closes with "reconnect".
    pub shutdown: CancellationToken,
}

impl Sockets {
    pub fn new(max: usize, times: SocketTimes) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            times,
            shutdown: CancellationToken::new(),
        }
    }

    /// A slot for one more socket, or 503 when the node is full. The socket
    /// keeps the permit for its life.
    pub fn slot(&self) -> Result<OwnedSemaphorePermit> {
        if self.shutdown.is_cancelled() {
            return Err(Error::Unavailable(
                "this node is shutting down; connect to another".into(),
            ));
        }
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Unavailable("this node is at WS_MAX_CONNECTIONS".into()))
    }
}

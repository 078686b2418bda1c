//! WebSockets, for every feature that has them: the handshake (`upgrade`),
//! the limits and timing every socket shares (`Sockets`, `socket_config`),
//! what every socket session shares (`session`: fragmented writes with a deadline, closing with a code, pings), close codes (`close`) and the per-show feed
//! registry both socket hubs use (`registry`). Nothing here knows what a
//! seat or a queue is.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod registry;
pub mod session;
pub mod upgrade;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

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

/// The two kinds of socket, each with its own budget, so seat maps can
/// never take the places of shoppers waiting in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Seats,
    Queue,
}

/// How many sockets a node takes: in all, of each kind, and from one client
/// address (0: no per-address cap).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub total: usize,
    pub seats: usize,
    pub queue: usize,
    pub per_ip: usize,
}

/// What every socket of a node shares: the budgets of open sockets, their
/// timing, and the shutdown signal (upgraded sockets are not tracked by
/// axum's graceful shutdown).
#[derive(Clone)]
pub struct Sockets {
    total: Arc<Semaphore>,
    seats: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    per_ip: usize,
    by_ip: Arc<DashMap<IpAddr, usize>>,
    pub times: SocketTimes,
    /// Cancelled at shutdown: every socket closes with "reconnect".
    pub shutdown: CancellationToken,
}

/// One socket's place in the budgets, given back when it is dropped.
pub struct Slot {
    _total: OwnedSemaphorePermit,
    _kind: OwnedSemaphorePermit,
    ip: Option<(IpAddr, Arc<DashMap<IpAddr, usize>>)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, by_ip)) = self.ip.take() {
            by_ip.remove_if_mut(&ip, |_, n| {
                *n -= 1;
                *n == 0
            });
        }
    }
}

impl Slot {
    /// The socket is open: counted in `ws_connections{kind}` until the
    /// returned guard (which keeps the slot) is dropped, however the
    /// session ends.
    pub fn opened(self, kind: &'static str) -> OpenSocket {
        metrics::gauge!(crate::metrics::WS_CONNECTIONS, "kind" => kind).increment(1.0);
        OpenSocket { _slot: self, kind }
    }
}

/// An open socket's slot and its place in the gauge (see `Slot::opened`).
pub struct OpenSocket {
    _slot: Slot,
    kind: &'static str,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::WS_CONNECTIONS, "kind" => self.kind).decrement(1.0);
    }
}

/// How long a client over its socket cap is asked to wait.
const PER_IP_RETRY_SECS: u64 = 5;

impl Sockets {
    pub fn new(budgets: Budgets, times: SocketTimes) -> Self {
        Self {
            total: Arc::new(Semaphore::new(budgets.total)),
            seats: Arc::new(Semaphore::new(budgets.seats)),
            queue: Arc::new(Semaphore::new(budgets.queue)),
            per_ip: budgets.per_ip,
            by_ip: Arc::new(DashMap::new()),
            times,
            shutdown: CancellationToken::new(),
        }
    }

    /// A place for one more socket of `kind` from `ip`: 503 when the node
    /// (or that kind's budget) is full, 429 when the address holds its cap.
    /// The socket keeps the slot for its life.
    pub fn slot(&self, kind: SocketKind, ip: Option<IpAddr>) -> Result<Slot> {
        if self.shutdown.is_cancelled() {
            return Err(Error::Unavailable(
                "this node is shutting down; connect to another".into(),
            ));
        }
        let (budget, name) = match kind {
            SocketKind::Seats => (&self.seats, "WS_MAX_SEAT_SOCKETS"),
            SocketKind::Queue => (&self.queue, "WS_MAX_QUEUE_SOCKETS"),
        };
        let kind_permit = budget
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Unavailable(format!("this node is at {name}")))?;
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Unavailable("this node is at WS_MAX_CONNECTIONS".into()))?;
        let ip = match ip {
            Some(ip) if self.per_ip > 0 => {
                let mut held = self.by_ip.entry(ip).or_insert(0);
                if *held >= self.per_ip {
                    return Err(Error::RateLimited {
                        retry_after_secs: PER_IP_RETRY_SECS,
                    });
                }
                *held += 1;
                Some((ip, self.by_ip.clone()))
            }
            _ => None,
        };
        Ok(Slot {
            _total: total,
            _kind: kind_permit,
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockets(total: usize, seats: usize, queue: usize, per_ip: usize) -> Sockets {
        Sockets::new(
            Budgets {
                total,
                seats,
                queue,
                per_ip,
            },
            SocketTimes::pinging_every(Duration::from_secs(20)),
        )
    }

    fn code(r: Result<Slot>) -> &'static str {
        r.err().map(|e| e.code()).unwrap_or("OK")
    }

    #[test]
    fn a_full_seat_budget_leaves_the_queue_its_places() {
        let s = sockets(10, 2, 10, 0);
        let held: Vec<Slot> = (0..2).map(|_| s.slot(SocketKind::Seats, None).unwrap()).collect();
        assert_eq!(code(s.slot(SocketKind::Seats, None)), "SERVICE_UNAVAILABLE");
        assert_eq!(code(s.slot(SocketKind::Queue, None)), "OK");
        drop(held);
        assert_eq!(code(s.slot(SocketKind::Seats, None)), "OK");
    }

    #[test]
    fn the_node_total_caps_both_kinds() {
        let s = sockets(3, 3, 3, 0);
        let _a = s.slot(SocketKind::Seats, None).unwrap();
        let _b = s.slot(SocketKind::Queue, None).unwrap();
        let _c = s.slot(SocketKind::Queue, None).unwrap();
        assert_eq!(code(s.slot(SocketKind::Seats, None)), "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn one_address_holds_at_most_its_cap_and_gets_it_back() {
        let s = sockets(100, 100, 100, 2);
        let (a, b): (IpAddr, IpAddr) = ("198.51.100.1".parse().unwrap(), "198.51.100.2".parse().unwrap());
        let first = s.slot(SocketKind::Seats, Some(a)).unwrap();
        let _second = s.slot(SocketKind::Queue, Some(a)).unwrap();
        assert_eq!(code(s.slot(SocketKind::Seats, Some(a))), "RATE_LIMITED");
        assert_eq!(code(s.slot(SocketKind::Seats, Some(b))), "OK");
        drop(first);
        let _third = s.slot(SocketKind::Seats, Some(a)).unwrap();
        // A refused socket takes nothing from the budgets.
        assert_eq!(s.total.available_permits(), 100 - 2);
        assert!(!s.by_ip.contains_key(&b), "an address with no socket is forgotten");
    }
}

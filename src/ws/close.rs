//! WebSocket close codes. 4000–4499: terminal, do not reconnect.
//! 4500–4999: transient, reconnect with backoff (and expect a snapshot).

/// The peer sent a message over the size limit (RFC 6455 "message too big").
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The waiting room was removed: the show is open to all. Terminal.
pub const ROOM_CLOSED: u16 = 4410;
/// The server is shutting down or draining. Reconnect.
pub const SHUTTING_DOWN: u16 = 4500;
/// The socket could not take our writes in time. Reconnect.
pub const SLOW_CONSUMER: u16 = 4501;
/// No frame from the peer within the dead-peer timeout. Reconnect.
pub const PEER_TIMEOUT: u16 = 4502;
/// The node lost its feed of the show (e.g. Redis). Reconnect.
pub const FEED_LOST: u16 = 4503;

/// Whether a client should reconnect after this code.
pub fn should_reconnect(code: u16) -> bool {
    (4500..5000).contains(&code) || code == 1001 || code == 1006 || code == 1011 || code == 1012
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_say_what_to_do() {
        assert!(should_reconnect(SHUTTING_DOWN) && should_reconnect(SLOW_CONSUMER) && should_reconnect(FEED_LOST));
        assert!(!should_reconnect(ROOM_CLOSED) && !should_reconnect(MESSAGE_TOO_BIG) && !should_reconnect(1000));
    }
}

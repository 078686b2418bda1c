//! WebSocket close codes. 4000–4499: terminal, do not reconnect.
//! 4500–4999: transient, reconnect with backoff (and expect a snapshot).
//! The 1000s are RFC 6455's; named here so every socket closes with the
//! same words and the client's rule (`should_reconnect`) reads them.

/// The socket said all it had to say (admitted, left the queue, the offer
/// is over), or answers the client's own close (RFC 6455 "normal
/// closure"). Terminal: there is nothing more to hear.
pub const NORMAL: u16 = 1000;
/// The server is going away (RFC 6455 "going away"); we say
/// `SHUTTING_DOWN` instead, but proxies and browsers may report it.
/// Reconnect.
pub const GOING_AWAY: u16 = 1001;
/// The peer broke the framing rules (RFC 6455 "protocol error"): a client
/// that does is broken, and reconnecting would not mend it. Terminal.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The connection dropped without a close frame (RFC 6455; never sent,
/// only reported by clients): a network blip. Reconnect.
pub const ABNORMAL: u16 = 1006;
/// The peer sent a message over the size limit (RFC 6455 "message too big").
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// A server error (RFC 6455 "internal error"), e.g. from a proxy in front;
/// another try may reach a healthy node. Reconnect.
pub const INTERNAL_ERROR: u16 = 1011;
/// A server restarting (RFC 6455 "service restart"), e.g. from a proxy in
/// front. Reconnect.
pub const SERVICE_RESTART: u16 = 1012;
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
    (4500..5000).contains(&code) || matches!(code, GOING_AWAY | ABNORMAL | INTERNAL_ERROR | SERVICE_RESTART)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_say_what_to_do() {
        assert!(should_reconnect(SHUTTING_DOWN) && should_reconnect(SLOW_CONSUMER) && should_reconnect(FEED_LOST));
        assert!(!should_reconnect(ROOM_CLOSED) && !should_reconnect(MESSAGE_TOO_BIG) && !should_reconnect(NORMAL));
        assert!(should_reconnect(GOING_AWAY) && should_reconnect(ABNORMAL) && should_reconnect(INTERNAL_ERROR));
        assert!(should_reconnect(SERVICE_RESTART) && !should_reconnect(PROTOCOL_ERROR));
    }
}

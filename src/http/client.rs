//! The client's address: the TCP peer, or, when the peer is one of
//! `TRUSTED_PROXIES`, the right-most address in `X-Forwarded-For` that is
//! not a trusted proxy. Everything to the left of that is whatever the
//! client chose to send, so it is never believed. Per-IP rate limits and
//! socket caps key on this address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list; each proxy
        // appends the address it saw, so the walk goes right to left and
        // stops at the first hop not ours. What lies left of it is the
        // client's to write and is never read; a hop we cannot read ends
        // the walk at the last trusted one.
        let headers: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let mut client = peer;
        for value in headers.iter().rev() {
            for hop in value.rsplit(|b| *b == b',') {
                let Some(ip) = std::str::from_utf8(hop).ok().and_then(|h| parse_hop(h.trim())) else {
                    return client;
                };
                client = ip;
                if !self.trusts(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// An address as written in `X-Forwarded-For`: bare, or with a port
/// (`1.2.3.4:5678`, `[::1]:5678`).
fn parse_hop(h: &str) -> Option<IpAddr> {
    h.parse::<IpAddr>()
        .ok()
        .or_else(|| h.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// IPv4 seen through an IPv6 socket (`::ffff:1.2.3.4`) is that IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client address of a request, put in its extensions by `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Middleware: works out the client address once per request.
pub async fn resolve(
    axum::extract::State(trusted): axum::extract::State<Arc<TrustedProxies>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let ip = trusted.client(peer.ip(), req.headers());
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// The client address as an extractor (None without connect info, as in
/// tests that drive the router directly).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(&parts.extensions)))
    }
}

/// The client address the per-address limits count, where the server was
/// started with connect info. An IPv6 client counts as its /64: one
/// subscriber usually holds a whole /64, so counting each address apart
/// would let one client take the limits many times over.
pub fn client_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|ci| canonical(ci.0.ip())))
        .map(limit_key)
}

fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies(crate::config::parse_trusted_proxies(list).unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.9"), &headers(&["1.1.1.1"])),
            ip("203.0.113.9")
        );
        let some = trusted("10.0.0.0/8");
        assert_eq!(
            some.client(ip("203.0.113.9"), &headers(&["1.1.1.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t = trusted("10.0.0.0/8, 192.168.1.7");
        // The client spoofs a left part; the ingress appended what it saw.
        let h = headers(&["6.6.6.6, 198.51.100.4, 10.1.2.3"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.4"));
        // Split over two headers, with a port, through a second trusted hop.
        let h = headers(&["6.6.6.6", "198.51.100.4:5123, 192.168.1.7"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.4"));
        // Nothing but proxies: the left-most is as far as we can see.
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["10.9.9.9, 10.1.1.1"])),
            ip("10.9.9.9")
        );
        // Garbage the client wrote left of the hop our proxy appended is never read.
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["garbage, 198.51.100.4"])),
            ip("198.51.100.4")
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["x", "198.51.100.4, 10.1.1.1"])),
            ip("198.51.100.4")
        );
        // No header, or an unreadable hop next to us: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.1"), &headers(&[])), ip("10.0.0.1"));
        assert_eq!(
            t.client(ip("10.0.0.1"), &headers(&["1.1.1.1, garbage"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_through_ipv6_sockets_matches_ipv4_ranges() {
        let t = trusted("127.0.0.0/8");
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &headers(&["1.2.3.4"])), ip("1.2.3.4"));
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::9")), limit_key(ip("2001:db8:1:2::5")));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), limit_key(ip("2001:db8:1:2::1")));
        assert_eq!(limit_key(ip("203.0.113.7")), ip("203.0.113.7"));
    }
}

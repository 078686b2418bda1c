//! The WebSocket handshake, done here rather than by axum's `ws` extractor
//! so the socket is a tokio-tungstenite stream we configure and can write raw
//! frames to: large messages go out as fragments of `FRAGMENT_BYTES`, so a
//! socket's write buffer never grows past one fragment (tungstenite keeps
//! its buffer's capacity for the socket's life).

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::Error;

/// The upgraded connection, as a tokio-tungstenite stream.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The upgraded connection as plain bytes, for a session that frames its
/// own writes (`ws::frame`).
pub type RawSocket = TokioIo<hyper::upgrade::Upgraded>;

/// A request to become a WebSocket.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    /// The client offered `permessage-deflate` on terms we can take.
    deflate_offered: bool,
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 6455 4.2.1: the key is 16 bytes in base64, so 22 characters of the
/// alphabet and `==`.
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key[..22].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        && &key[22..] == b"=="
        // The last character carries 2 bits of the 16th byte and 4 zero bits.
        && b"AQgw".contains(&key[21])
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadRequest(format!("expected a WebSocket upgrade: {why}"));
        if parts.method != Method::GET {
            return Err(bad("the method must be GET"));
        }
        if !header_has(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(bad("Connection must include upgrade"));
        }
        if !header_has(&parts.headers, header::UPGRADE, "websocket") {
            return Err(bad("Upgrade must be websocket"));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v != "13")
        {
            return Err(bad("Sec-WebSocket-Version must be 13"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
        if !valid_key(key.as_bytes()) {
            return Err(bad("Sec-WebSocket-Key must be 16 bytes in base64"));
        }
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| bad("this connection cannot be upgraded"))?;
        let deflate_offered = super::deflate::offered(
            parts
                .headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        Ok(Self {
            key,
            on_upgrade,
            deflate_offered,
        })
    }
}

impl Upgrade {
    /// Answers 101 and runs `session` on the socket once the client has it.
    pub fn respond<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.respond_raw(false, move |raw, _| async move {
            let socket = WebSocketStream::from_raw_socket(raw, Role::Server, Some(config)).await;
            session(socket).await;
        })
    }

    /// Answers 101 and runs `session` on the upgraded bytes once the client
    /// has them. With `deflate`, a client that offered `permessage-deflate`
    /// is answered it (`ws::deflate::ACCEPTED`); `session` is told whether
    /// it was agreed.
    pub fn respond_raw<F, Fut>(self, deflate: bool, session: F) -> Response
    where
        F: FnOnce(RawSocket, bool) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let agreed = deflate && self.deflate_offered;
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => session(TokioIo::new(upgraded), agreed).await,
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let mut response = (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).unwrap_or(HeaderValue::from_static("")),
                ),
            ],
        )
            .into_response();
        if agreed {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(super::deflate::ACCEPTED),
            );
        }
        response
    }
}

/// The handshake headers a socket route requires (RFC 6455), for the
/// OpenAPI document: without them the route answers 400.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct Handshake {
    /// A list that includes `websocket` (any case).
    #[param(
        rename = "Upgrade",
        pattern = r"^([^,]*,)*[ \t]*[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt][ \t]*(,[^,]*)*$"
    )]
    upgrade: String,
    /// A list that includes `upgrade` (any case).
    #[param(
        rename = "Connection",
        pattern = r"^([^,]*,)*[ \t]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ \t]*(,[^,]*)*$"
    )]
    connection: String,
    /// 16 random bytes, base64.
    #[param(rename = "Sec-WebSocket-Key", pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$")]
    sec_websocket_key: String,
    /// `13`
    #[param(rename = "Sec-WebSocket-Version", pattern = "^13$")]
    sec_websocket_version: String,
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn a_key_is_sixteen_bytes_of_base64() {
        // RFC 6455's own example, and keys of other lengths or alphabets.
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"dGhlIHNhbXBsZSBub25jZR==",
            b"dGhlIHNhbXBsZSBub25j-Q==",
            b"dGhlIHNhbXBsZSBub25jZQ\0\0",
            b"dGhlIHNhbXBsZSBub25jZWFh",
        ] {
            assert!(!valid_key(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}

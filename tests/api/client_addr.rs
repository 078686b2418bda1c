//! The client address behind proxies, and the socket budgets that key on
//! it: `TRUSTED_PROXIES`, `WS_MAX_PER_IP`, `WS_MAX_SEAT_SOCKETS`,
//! `WS_MAX_QUEUE_SOCKETS`.

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{TestApp, assert_error, spawn_app_with};

async fn catalog_from(app: &TestApp, xff: Option<&str>) -> StatusCode {
    let mut req = app.http.get(app.url("/api/v1/movies"));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status()
}

/// The handshake's HTTP status, or 101 when the socket opened.
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn handshake(app: &TestApp, path: &str, xff: Option<&str>) -> (u16, Option<Socket>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}{path}", app.addr).into_client_request().unwrap();
    if let Some(x) = xff {
        req.headers_mut().insert("x-forwarded-for", x.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => (101, Some(ws)),
        Err(WsError::Http(res)) => (res.status().as_u16(), None),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_shopper_has_its_own_ip_limit() {
    // Every request comes from 127.0.0.1: the "ingress".
    let app = spawn_app_with(|s| {
        s.rate_limit_ip_per_sec = 1; // a burst of 2
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let a = "203.0.113.10";
    assert_eq!(catalog_from(&app, Some(a)).await, StatusCode::OK);
    assert_eq!(catalog_from(&app, Some(a)).await, StatusCode::OK);
    assert_eq!(catalog_from(&app, Some(a)).await, StatusCode::TOO_MANY_REQUESTS);
    // Another shopper behind the same ingress is not limited by the first.
    assert_eq!(catalog_from(&app, Some("203.0.113.11")).await, StatusCode::OK);
    // A spoofed left part does not make a new client: the ingress appended
    // the address it saw (a), and that is the one believed.
    assert_eq!(
        catalog_from(&app, Some(&format!("198.51.100.99, {a}"))).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_headers_are_ignored() {
    let app = spawn_app_with(|s| s.rate_limit_ip_per_sec = 1).await;
    assert_eq!(catalog_from(&app, Some("203.0.113.1")).await, StatusCode::OK);
    assert_eq!(catalog_from(&app, Some("203.0.113.2")).await, StatusCode::OK);
    // Each claims a new address; all are the TCP peer, whose burst is spent.
    let res = app
        .http
        .get(app.url("/api/v1/movies"))
        .header("x-forwarded-for", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_error(res, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn one_client_address_holds_at_most_ws_max_per_ip_sockets() {
    let app = spawn_app_with(|s| {
        s.ws_max_per_ip = 3;
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let show = app.a_show().await;
    let seats = format!("/api/v1/shows/{show}/seats/ws");
    let token = app.token("alice").await;
    let queue = format!("/api/v1/waitrooms/{show}/ws?access_token={token}");
    app.put_room(&show, json!({"admitRatePerSecond": 1, "paused": true}))
        .await;
    let me = Some("203.0.113.20");
    let mut open = Vec::new();
    for path in [&seats, &seats, &queue] {
        let (status, ws) = handshake(&app, path, me).await;
        assert_eq!(status, 101);
        open.push(ws);
    }
    // The cap counts both kinds together.
    assert_eq!(handshake(&app, &seats, me).await.0, 429);
    assert_eq!(handshake(&app, &queue, me).await.0, 429);
    // Another shopper behind the same proxy is not affected.
    assert_eq!(handshake(&app, &seats, Some("203.0.113.21")).await.0, 101);
    // A closed socket gives its place back.
    open.pop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, ws) = handshake(&app, &seats, me).await;
        if status == 101 {
            drop(ws);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place never came back: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn seat_maps_cannot_take_the_queue_sockets_places() {
    let app = spawn_app_with(|s| {
        s.ws_max_connections = 10;
        s.ws_max_seat_sockets = Some(2);
        s.ws_max_queue_sockets = Some(3);
    })
    .await;
    let show = app.a_show().await;
    let seats = format!("/api/v1/shows/{show}/seats/ws");
    app.put_room(&show, json!({"admitRatePerSecond": 1, "paused": true}))
        .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (status, ws) = handshake(&app, &seats, None).await;
        assert_eq!(status, 101);
        open.push(ws);
    }
    assert_eq!(handshake(&app, &seats, None).await.0, 503, "past WS_MAX_SEAT_SOCKETS");
    for i in 0..3 {
        let token = app.token_owned(format!("q{i}")).await;
        let (status, ws) = handshake(&app, &format!("/api/v1/waitrooms/{show}/ws?access_token={token}"), None).await;
        assert_eq!(status, 101, "queue socket {i}");
        open.push(ws);
    }
    let token = app.token("q9").await;
    assert_eq!(
        handshake(&app, &format!("/api/v1/waitrooms/{show}/ws?access_token={token}"), None)
            .await
            .0,
        503,
        "past WS_MAX_QUEUE_SOCKETS"
    );
}

#[tokio::test]
async fn slowloris_connections_are_closed_after_the_header_timeout_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_memory_app().await;
    let app_addr = app.addr;
    let opened = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    // Each trickles a header line every 2 s and never ends the header; each
    // reports when the server closed it.
    let watchers: Vec<_> = slow
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let mut line = 0;
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(0) | Err(_) => return Ok(opened.elapsed()),
                            Ok(_) => return Err(format!("connection {i} got an answer")),
                        },
                        _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                            line += 1;
                            if s.write_all(format!("X-Slow-{line}: 1\r\n").as_bytes()).await.is_err() {
                                return Ok(opened.elapsed());
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // And one that asks a whole request, keeps the connection alive, then
    // dribbles its second request's header: the same deadline, from the
    // second header's first byte.
    let kept = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(app_addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let began = std::time::Instant::now();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        let mut line = 0;
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return began.elapsed(),
                    Ok(_) => panic!("the dribbled request got an answer"),
                },
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                    line += 1;
                    if s.write_all(format!("X-Slow-{line}: 1\r\n").as_bytes()).await.is_err() {
                        return began.elapsed();
                    }
                }
            }
        }
    });
    // Meanwhile, normal requests are answered.
    for _ in 0..20 {
        let t = std::time::Instant::now();
        assert_eq!(app.get("/api/v1/movies", None).await.status(), StatusCode::OK);
        println!("a request during the slowloris: {:?}", t.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    for w in watchers {
        let closed = tokio::time::timeout(std::time::Duration::from_secs(30), w)
            .await
            .expect("a slowloris connection still open after 30 s")
            .unwrap()
            .unwrap();
        assert!(
            closed >= std::time::Duration::from_secs(10) && closed < std::time::Duration::from_secs(30),
            "closed after {closed:?}"
        );
    }
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), kept)
        .await
        .expect("the kept-alive slowloris still open after 30 s")
        .unwrap();
    assert!(
        closed >= std::time::Duration::from_secs(10) && closed < std::time::Duration::from_secs(13),
        "the second header was cut after {closed:?}"
    );
}

/// A seat-socket handshake counts against the request limits: the address's
/// rate (a loop of handshakes from one address, each sending a snapshot, is
/// refused), and the user's when it comes signed in, whatever the address.
#[tokio::test]
async fn seat_socket_handshakes_count_against_the_addresss_and_the_users_rate() {
    let app = spawn_app_with(|s| {
        s.rate_limit_ip_per_sec = 2; // a burst of 4
        s.rate_limit_user_per_sec = 1; // a burst of 2
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let show = app.a_show().await;
    let seats = format!("/api/v1/shows/{show}/seats/ws");
    let mallory = Some("203.0.113.30");
    let mut open = Vec::new();
    for _ in 0..4 {
        let (status, ws) = handshake(&app, &seats, mallory).await;
        assert_eq!(status, 101);
        open.push(ws);
    }
    assert_eq!(
        handshake(&app, &seats, mallory).await.0,
        429,
        "the address's burst is spent"
    );
    assert_eq!(
        handshake(&app, &seats, Some("203.0.113.31")).await.0,
        101,
        "another address is not"
    );
    // Signed in, the user's rate counts too, from any address.
    let token = app.token("alice").await;
    let signed = format!("{seats}?access_token={token}");
    assert_eq!(handshake(&app, &signed, Some("203.0.113.32")).await.0, 101);
    assert_eq!(handshake(&app, &signed, Some("203.0.113.33")).await.0, 101);
    assert_eq!(
        handshake(&app, &signed, Some("203.0.113.34")).await.0,
        429,
        "the user's burst is spent"
    );
    assert_eq!(
        handshake(&app, &format!("{seats}?access_token=forged"), Some("203.0.113.35"))
            .await
            .0,
        401
    );
}

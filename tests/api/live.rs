//! The live seat stream, with real WebSocket clients.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{Node, Ws, assert_error, common, next_json, spawn_app, spawn_app_with, ws_connect};

/// Seat statuses from a snapshot message or a seat map (both list `id` and `status`).
fn statuses(snapshot: &Value) -> HashMap<String, String> {
    snapshot["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn apply(state: &mut HashMap<String, String>, delta: &Value) {
    for c in delta["changes"].as_array().unwrap() {
        state.insert(
            c["seatId"].as_str().unwrap().to_owned(),
            c["status"].as_str().unwrap().to_owned(),
        );
    }
}

/// Reads deltas until `version`, checking each starts where the last ended.
async fn deltas_until(ws: &mut Ws, mut from: u64, version: u64) -> Vec<Value> {
    let mut got = Vec::new();
    while from < version {
        let msg = next_json(ws).await;
        assert_eq!(msg["type"], "delta", "{msg}");
        assert_eq!(
            msg["fromVersion"],
            from + 1,
            "contiguous: no version skipped, none twice"
        );
        from = msg["version"].as_u64().unwrap();
        assert!(from >= msg["fromVersion"].as_u64().unwrap());
        got.push(msg);
    }
    got
}

#[tokio::test]
async fn two_clients_see_the_same_contiguous_deltas_during_a_burst_of_holds() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let path = format!("/api/v1/shows/{show}/seats/ws");
    let (mut a, mut b) = (app.ws(&path).await, app.ws(&path).await);
    let (snap_a, snap_b) = (next_json(&mut a).await, next_json(&mut b).await);
    assert_eq!(snap_a["type"], "snapshot");
    assert_eq!(snap_a["showId"], show.as_str());
    assert_eq!(snap_a, snap_b);
    assert_eq!(snap_a["seats"].as_array().unwrap().len(), 1200);
    let v0 = snap_a["version"].as_u64().unwrap();

    // 60 shoppers at once, half of them then change their minds.
    let tokens: Vec<String> = join_all((0..60).map(|i| app.token_owned(format!("burst-{i}")))).await;
    join_all(tokens.iter().enumerate().map(|(i, t)| {
        let app = &app;
        let show = show.clone();
        async move {
            let seats = [format!("E{}", i % 40 + 1), format!("F{}", i % 40 + 1)];
            let res = app.hold(t, &show, &[seats[0].as_str(), seats[1].as_str()]).await;
            if res.status() == StatusCode::CREATED && i % 2 == 0 {
                let hold: Value = res.json().await.unwrap();
                app.delete(&format!("/api/v1/holds/{}", hold["holdId"].as_str().unwrap()), t)
                    .await;
            }
        }
    }))
    .await;
    let map = app.seat_map(&show).await;
    let final_version = map["version"].as_u64().unwrap();
    assert!(final_version > v0 + 30);

    let da = deltas_until(&mut a, v0, final_version).await;
    let db = deltas_until(&mut b, v0, final_version).await;
    assert_eq!(da, db, "both clients saw the same sequence");
    assert!(
        (da.len() as u64) < final_version - v0,
        "batched: {} frames for {} versions",
        da.len(),
        final_version - v0
    );
    let mut state = statuses(&snap_a);
    for d in &da {
        apply(&mut state, d);
    }
    let expected = statuses(&map);
    assert_eq!(state, expected, "snapshot plus deltas is the seat map");
}

#[tokio::test]
async fn a_client_on_node_b_sees_changes_made_through_node_a() {
    let database = common::fresh_database().await;
    let env = vec![
        ("REDIS_URL", common::redis_url()),
        ("REDIS_KEY_PREFIX", common::unique_prefix()),
        ("DATABASE_URL", database),
    ];
    let (a, b) = (Node::start(&env).await, Node::start(&env).await);
    let http = reqwest::Client::new();
    let token = a.token("alice").await;
    let token = token.as_str();
    // The last show of the week: still on sale whatever the hour.
    let shows = a.shows().await;
    let show = shows.last().unwrap().as_str();
    let mut on_b = ws_connect(b.addr, &format!("/api/v1/shows/{show}/seats/ws")).await;
    let snap = next_json(&mut on_b).await;
    let v0 = snap["version"].as_u64().unwrap();
    let epoch = snap["epoch"].clone();
    assert!(
        epoch.as_str().is_some_and(|e| !e.is_empty()),
        "snapshots carry the epoch"
    );

    let hold: Value = http
        .post(a.url("/api/v1/holds"))
        .bearer_auth(token)
        .json(&json!({"showId": show, "seatIds": ["C3", "C4"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delta = next_json(&mut on_b).await;
    assert_eq!(
        delta,
        json!({"type": "delta", "epoch": epoch, "fromVersion": v0 + 1, "version": v0 + 1, "changes": [
        {"seatId": "C3", "status": "HELD"}, {"seatId": "C4", "status": "HELD"}]})
    );
    let order: Value = http
        .post(a.url("/api/v1/orders"))
        .bearer_auth(token)
        .json(&json!({"holdId": hold["holdId"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(a.url(&format!(
        "/api/v1/orders/{}/confirm-payment",
        order["orderId"].as_str().unwrap()
    )))
    .bearer_auth(token)
    .json(&json!({"outcome": "SUCCESS"}))
    .send()
    .await
    .unwrap();
    let delta = next_json(&mut on_b).await;
    assert_eq!(delta["version"], v0 + 2);
    assert_eq!(
        delta["changes"],
        json!([{"seatId": "C3", "status": "BOOKED"}, {"seatId": "C4", "status": "BOOKED"}])
    );
}

#[tokio::test]
async fn expiry_shows_on_the_stream() {
    let app = spawn_app_with(|s| s.hold_ttl_seconds = 1).await;
    let show = app.a_show().await;
    let mut ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    let snap = next_json(&mut ws).await;
    let (v0, epoch) = (snap["version"].as_u64().unwrap(), snap["epoch"].clone());
    let alice = app.token("alice").await;
    assert_eq!(app.hold(&alice, &show, &["G5"]).await.status(), StatusCode::CREATED);
    let held = next_json(&mut ws).await;
    assert_eq!(held["changes"], json!([{"seatId": "G5", "status": "HELD"}]));
    let expired = next_json(&mut ws).await; // within the TTL plus one sweep
    assert_eq!(
        expired,
        json!({"type": "delta", "epoch": epoch, "fromVersion": v0 + 2, "version": v0 + 2,
               "changes": [{"seatId": "G5", "status": "AVAILABLE"}]})
    );
}

/// A client with a tiny socket buffer that stops reading while one shopper
/// moves a ten-seat hold 1,200 times (enough batches, whatever the pace,
/// to fill the buffers and then the history); then it reads. Answers the messages
/// after its first snapshot, checked: contiguous, and ending at the seat map.
async fn a_slow_reader(history_batches: u64) -> Vec<Value> {
    let app = spawn_app_with(|s| {
        s.ws_queue_frames = history_batches;
        s.tcp_send_buffer_bytes = 8192;
    })
    .await;
    let show = app.big_show().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let url = format!("ws://{}/api/v1/shows/{show}/seats/ws", app.addr);
    let (mut slow, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let first = next_json(&mut slow).await;
    assert_eq!(first["type"], "snapshot");
    let token = app.token("restless").await;
    for i in 0..1200 {
        let row = (b'B' + (i % 20) as u8) as char;
        let seats: Vec<String> = (3..13).map(|n| format!("{row}{n}")).collect();
        let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
        assert_eq!(app.hold(&token, &show, &seats).await.status(), StatusCode::CREATED);
    }
    let map = app.seat_map(&show).await;
    let final_version = map["version"].as_u64().unwrap();
    let mut version = first["version"].as_u64().unwrap();
    let mut state = statuses(&first);
    let mut seen = Vec::new();
    while version < final_version {
        let msg = next_json(&mut slow).await;
        match msg["type"].as_str().unwrap() {
            "snapshot" => {
                let v = msg["version"].as_u64().unwrap();
                assert!(v >= version, "a snapshot never goes back");
                version = v;
                state = statuses(&msg);
            }
            "delta" => {
                assert_eq!(msg["fromVersion"], version + 1, "no gap, ever");
                version = msg["version"].as_u64().unwrap();
                apply(&mut state, &msg);
            }
            other => panic!("unexpected {other}"),
        }
        seen.push(msg);
    }
    assert_eq!(state, statuses(&map), "it ends where the seat map is");
    seen
}

#[tokio::test]
async fn a_slow_socket_is_caught_up_from_the_history_without_a_snapshot() {
    let seen = a_slow_reader(256).await;
    assert!(
        seen.iter().all(|m| m["type"] == "delta"),
        "no snapshot: one merged delta caught it up"
    );
    let widest = seen
        .iter()
        .map(|m| m["version"].as_u64().unwrap() - m["fromVersion"].as_u64().unwrap() + 1)
        .max()
        .unwrap();
    assert!(widest > 1, "the catch-up merged several versions");
}

#[tokio::test]
async fn a_socket_further_behind_than_the_history_gets_one_snapshot_not_many() {
    let seen = a_slow_reader(2).await;
    let snapshots = seen.iter().filter(|m| m["type"] == "snapshot").count();
    assert_eq!(
        snapshots,
        1,
        "{:?}",
        seen.iter().map(|m| &m["type"]).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_handshake_refuses_unknown_shows_and_plain_requests() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/shows/no-such-show/seats/ws", None).await;
    assert_error(res, 404, "NOT_FOUND").await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/api/v1/shows/no-such-show/seats/ws", app.addr))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 404),
        other => panic!("expected an HTTP 404 at the handshake, got {other}"),
    }
    let show = app.a_show().await;
    assert_error(
        app.get(&format!("/api/v1/shows/{show}/seats/ws"), None).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn an_inbound_message_over_64_kib_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let mut ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    next_json(&mut ws).await;
    ws.send(Message::Text("x".repeat(1024).into())).await.unwrap();
    ws.send(Message::Text("x".repeat(64 * 1024 + 1).into())).await.unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Size);
    // The server then ends the connection at once (clients that wait for
    // the TCP close to report the socket closed are not left hanging), even
    // while another socket keeps the show's feed alive.
    let mut other = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    next_json(&mut other).await;
    let mut ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    next_json(&mut ws).await;
    ws.send(Message::Text("x".repeat(200 * 1024).into())).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => assert_eq!(frame.unwrap().code, CloseCode::Size),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept the connection open after closing it");
}

#[tokio::test]
async fn shutting_down_closes_sockets_with_the_reconnect_code() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let mut ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    next_json(&mut ws).await;
    let addr = app.addr;
    drop(app);
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), showgate::ws::close::SHUTTING_DOWN);
    let _ = addr;
}

#[tokio::test]
async fn on_a_redis_cluster_holds_and_bookings_reach_the_stream_over_sharded_pub_sub() {
    let app = spawn_app_with(|s| {
        s.redis_url = None;
        s.redis_cluster_nodes = common::redis_cluster_nodes();
    })
    .await;
    // Two shows, likely on different shards: each stream sees only its own.
    let (one, two) = (app.a_show().await, app.big_show().await);
    let mut ws_one = app.ws(&format!("/api/v1/shows/{one}/seats/ws")).await;
    let mut ws_two = app.ws(&format!("/api/v1/shows/{two}/seats/ws")).await;
    let s1 = next_json(&mut ws_one).await;
    let s2 = next_json(&mut ws_two).await;
    let (v1, e1) = (s1["version"].as_u64().unwrap(), s1["epoch"].clone());
    let (v2, e2) = (s2["version"].as_u64().unwrap(), s2["epoch"].clone());
    let alice = app.token("alice").await;
    let hold: Value = app.hold(&alice, &one, &["B2"]).await.json().await.unwrap();
    app.hold(&alice, &two, &["K9"]).await;
    let d1 = next_json(&mut ws_one).await;
    assert_eq!(
        d1,
        json!({"type": "delta", "epoch": e1, "fromVersion": v1 + 1, "version": v1 + 1,
               "changes": [{"seatId": "B2", "status": "HELD"}]})
    );
    let d2 = next_json(&mut ws_two).await;
    assert_eq!(
        d2,
        json!({"type": "delta", "epoch": e2, "fromVersion": v2 + 1, "version": v2 + 1,
               "changes": [{"seatId": "K9", "status": "HELD"}]})
    );
    let order: Value = app
        .order(&alice, hold["holdId"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let paid: Value = app
        .pay(&alice, order["orderId"].as_str().unwrap(), "SUCCESS")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "CONFIRMED");
    let d1 = next_json(&mut ws_one).await;
    assert_eq!(d1["changes"], json!([{"seatId": "B2", "status": "BOOKED"}]));
    assert_eq!(app.seat_status(&one, "B2").await, "BOOKED");
}

/// A raw client of a seat socket: the handshake written, nothing else.
async fn raw_seat_socket(app: &crate::helpers::TestApp, show: &str) -> tokio::net::TcpStream {
    raw_seat_socket_with(app, show, "").await
}

/// The same, with `headers` (each ending in CRLF) added to the handshake.
async fn raw_seat_socket_with(app: &crate::helpers::TestApp, show: &str, headers: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/shows/{show}/seats/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp
}

/// The 101 answer's head, read byte by byte (nothing after it).
async fn handshake_answer(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap()
}

/// The next frame from the server: its first byte (FIN, RSV, opcode) and payload.
async fn next_frame(tcp: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(Duration::from_secs(5), async {
        let first = tcp.read_u8().await.unwrap();
        let len = match tcp.read_u8().await.unwrap() & 0x7f {
            126 => tcp.read_u16().await.unwrap() as usize,
            127 => tcp.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut payload = vec![0; len];
        tcp.read_exact(&mut payload).await.unwrap();
        (first, payload)
    })
    .await
    .expect("a frame in time")
}

/// A compressed payload inflated by an implementation of its own (flate2's
/// reader), with the flush tail put back.
fn inflate(payload: &[u8]) -> Value {
    use std::io::Read;
    let mut framed = payload.to_vec();
    framed.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut json = Vec::new();
    let _ = flate2::read::DeflateDecoder::new(&framed[..]).read_to_end(&mut json);
    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)))
}

/// A client's masked frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [9, 8, 7, 6];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[tokio::test]
async fn a_client_offering_permessage_deflate_gets_the_same_json_compressed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let show = app.a_show().await;
    // As a browser offers it.
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let mut tcp = raw_seat_socket_with(&app, &show, offer).await;
    let head = handshake_answer(&mut tcp).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{head}"
    );
    // The snapshot: RSV1 set, and the JSON a plain socket gets.
    let (first, payload) = next_frame(&mut tcp).await;
    assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
    let snapshot = inflate(&payload);
    let mut plain = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    assert_eq!(next_json(&mut plain).await, snapshot);
    // A hold's delta, compressed alike.
    let user = app.token("deflate-fan").await;
    let seat = snapshot["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "AVAILABLE")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.hold(&user, &show, &[&seat]).await.status(), 201);
    let (first, payload) = next_frame(&mut tcp).await;
    assert_eq!(first & 0x40, 0x40);
    let delta = inflate(&payload);
    assert_eq!(delta["type"], "delta");
    assert_eq!(delta["changes"][0], json!({"seatId": seat, "status": "HELD"}));
    assert_eq!(next_json(&mut plain).await, delta, "the same message on a plain socket");
    // A small compressed message that inflates past 64 KiB closes the socket with 1009.
    let bomb = showgate::ws::deflate::compress(&vec![b' '; 100 * 1024]);
    assert!(bomb.len() < 1_000);
    tcp.write_all(&client_frame(0x80 | 0x40 | 0x1, &bomb)).await.unwrap();
    let frames = server_frames_after_head(&mut tcp).await;
    assert_eq!(close_code(&frames), Some(showgate::ws::close::MESSAGE_TOO_BIG));
}

#[tokio::test]
async fn an_offer_the_server_cannot_honour_gets_plain_frames() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    // A smaller server window than the one frames are deflated with.
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n";
    let mut tcp = raw_seat_socket_with(&app, &show, offer).await;
    let head = handshake_answer(&mut tcp).await.to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 101") && !head.contains("sec-websocket-extensions"),
        "{head}"
    );
    let (first, payload) = next_frame(&mut tcp).await;
    assert_eq!(first, 0x81, "FIN, text, no RSV1");
    let snapshot: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(snapshot["type"], "snapshot");
}

/// Everything the server sends until it ends the connection, as its
/// frames' opcodes and payloads (after the 101 answer).
async fn server_frames(tcp: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut bytes))
        .await
        .expect("closed in time")
        .unwrap();
    assert!(bytes.starts_with(b"HTTP/1.1 101"));
    let mut at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut frames = Vec::new();
    while at + 2 <= bytes.len() {
        let opcode = bytes[at] & 0x0f;
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            127 => panic!("no frame is that long"),
            n => (n as usize, 2),
        };
        frames.push((opcode, bytes[at + header..at + header + len].to_vec()));
        at += header + len;
    }
    frames
}

/// Like `server_frames`, once the 101 answer has been read already.
async fn server_frames_after_head(tcp: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(tcp).await;
        let close = frame.0 & 0x0f == 0x8;
        frames.push((frame.0 & 0x0f, frame.1));
        if close {
            return frames;
        }
    }
}

/// The code of the close frame among `frames`.
fn close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames
        .iter()
        .find(|(opcode, _)| *opcode == 0x8)
        .map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_closed_with_the_reconnect_code() {
    let app = spawn_app_with(|s| s.ws_ping_seconds = 1).await;
    let show = app.a_show().await;
    // A raw client that completes the handshake and then never answers:
    // no pongs, nothing read, so the server hears nothing at all.
    let mut tcp = raw_seat_socket(&app, &show).await;
    // Walk the server's frames: snapshot fragments, pings, then the close.
    let frames = server_frames(&mut tcp).await;
    let pings = frames.iter().filter(|(opcode, _)| *opcode == 0x9).count();
    assert!(pings >= 2, "the server pinged ({pings})");
    assert_eq!(close_code(&frames), Some(showgate::ws::close::PEER_TIMEOUT));
}

#[tokio::test]
async fn a_client_that_breaks_the_framing_rules_is_closed_with_a_protocol_error() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let show = app.a_show().await;
    let mut tcp = raw_seat_socket(&app, &show).await;
    // A text frame without a mask: clients must mask every frame (RFC 6455).
    tcp.write_all(&[0x81, 0x01, b'a']).await.unwrap();
    let frames = server_frames(&mut tcp).await;
    assert_eq!(close_code(&frames), Some(showgate::ws::close::PROTOCOL_ERROR));
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_normal_close() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let mut ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    next_json(&mut ws).await;
    ws.close(None).await.unwrap();
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected the server's close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(answer.unwrap().code), showgate::ws::close::NORMAL);
}

#[tokio::test]
async fn the_seat_map_has_an_etag_and_answers_304_until_a_seat_changes() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let path = app.url(&format!("/api/v1/shows/{show}/seatmap"));
    let first = app.http.get(&path).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert!(etag.contains(body["epoch"].as_str().unwrap()), "{etag}");
    let again = app.http.get(&path).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    // A hold changes the map: the same ETag is no longer current, and the
    // map shows the hold at once (this node's own write).
    let alice = app.token("alice").await;
    assert_eq!(app.hold(&alice, &show, &["C3"]).await.status(), StatusCode::CREATED);
    let after = app.http.get(&path).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    assert_ne!(after.headers()["etag"].to_str().unwrap(), etag);
    let map: Value = after.json().await.unwrap();
    assert_eq!(statuses(&map)["C3"], "HELD");
}

#[tokio::test]
async fn a_few_accounts_cycling_holds_cannot_push_viewers_into_lag() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let path = format!("/api/v1/shows/{show}/seats/ws");
    let mut viewers = Vec::new();
    for _ in 0..20 {
        let mut ws = app.ws(&path).await;
        let snap = next_json(&mut ws).await;
        viewers.push((ws, snap["version"].as_u64().unwrap()));
    }
    // Three accounts re-hold as fast as they can for two seconds.
    let started = std::time::Instant::now();
    let churn = (0..3).map(|a| {
        let app = &app;
        let show = show.clone();
        async move {
            let token = app.token_owned(format!("cycler-{a}")).await;
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(2) {
                let seat = format!("{}{}", (b'B' + a as u8) as char, n % 30 + 1);
                app.hold(&token, &show, &[seat.as_str()]).await;
                n += 1;
            }
            n
        }
    });
    let holds: u32 = join_all(churn).await.into_iter().sum();
    let churn_time = started.elapsed();
    let final_version = app.seat_map(&show).await["version"].as_u64().unwrap();
    let ended = std::time::Instant::now();
    let mut frames = Vec::new();
    for (ws, v0) in viewers.iter_mut() {
        let got = deltas_until(ws, *v0, final_version).await;
        frames.push(got.len());
    }
    let drained = ended.elapsed();
    let most = *frames.iter().max().unwrap();
    // One frame per 50 ms window at most (plus the window the churn ended in).
    let bound = (churn_time.as_millis() / 50 + 2) as usize;
    assert!(
        most <= bound,
        "{most} frames for {holds} holds in {churn_time:?} (bound {bound})"
    );
    assert!((holds as usize) > bound, "the churn outran the batching: {holds} holds");
    assert!(drained < Duration::from_secs(1), "viewers were behind by {drained:?}");
}

//! Graceful drain: a node sent SIGTERM under load turns not-ready at once,
//! tells every socket to reconnect (4500), finishes what it accepted, and
//! exits within SHUTDOWN_GRACE_SECONDS; the sockets then reconnect to
//! another node, queue sockets keeping their place and seat sockets their
//! version.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Node, Ws, common, next_json, ws_connect};

/// The close code a socket ends with (after any messages).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return Some(f.code.into()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_node_drained_under_load_loses_nothing_and_its_sockets_move_to_another() {
    let database = common::fresh_database().await;
    let env = vec![
        ("REDIS_URL", common::redis_url()),
        ("REDIS_KEY_PREFIX", common::unique_prefix()),
        ("DATABASE_URL", database),
        ("SHUTDOWN_GRACE_SECONDS", "5".to_string()),
    ];
    let mut a = Node::start(&env).await;
    let b = Node::start(&env).await;
    let http = reqwest::Client::new();
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let shows: Value = http
        .get(a.url("/api/v1/movies/dune-3/shows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = shows["shows"].as_array().unwrap();
    let gated = list.iter().rfind(|s| s["screenId"] == "inox-imax").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let open = list.iter().rfind(|s| s["screenId"] == "pvr-forum-1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = tokens.issue("ops", true, 3600).unwrap();
    let put = http
        .put(a.url(&format!("/api/v1/admin/waitrooms/{gated}")))
        .bearer_auth(&admin)
        .json(&json!({"admitRatePerSecond": 1, "paused": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    // 1,000 shoppers waiting on queue sockets and 1,000 seat maps, all on node A.
    let users: Vec<String> = (0..1000).map(|i| format!("drain-{i}")).collect();
    let queue = join_all(users.iter().map(|u| {
        let token = tokens.issue(u, false, 3600).unwrap();
        let (addr, gated) = (a.addr, gated.clone());
        async move {
            let mut ws = ws_connect(addr, &format!("/api/v1/waitrooms/{gated}/ws?access_token={token}")).await;
            let place = next_json(&mut ws).await["position"].as_u64().unwrap();
            (token, place, ws)
        }
    }))
    .await;
    let seats = join_all((0..1000).map(|_| {
        let (addr, open) = (a.addr, open.clone());
        async move {
            let mut ws = ws_connect(addr, &format!("/api/v1/shows/{open}/seats/ws")).await;
            let version = next_json(&mut ws).await["version"].as_u64().unwrap();
            (version, ws)
        }
    }))
    .await;

    // Requests in flight when the signal comes.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, broken) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load: Vec<_> = (0..30)
        .map(|i| {
            let token = tokens.issue(&format!("buyer-{i}"), false, 3600).unwrap();
            let (url, open, stop, answered, broken) = (
                a.url("/api/v1/holds"),
                open.clone(),
                stop.clone(),
                answered.clone(),
                broken.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let seat = format!("{}{}", (b'C' + (i % 8) as u8) as char, n % 12 + 2);
                    n += 1;
                    match http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"showId": open, "seatIds": [seat]}))
                        .send()
                        .await
                    {
                        Ok(res) => {
                            assert!([201, 409, 503].contains(&res.status().as_u16()), "{}", res.status());
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        // Refused once the node stopped accepting: expected.
                        Err(e) if e.is_connect() => break,
                        Err(_) => {
                            broken.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = answered.load(Ordering::Relaxed);
    let signalled = Instant::now();
    a.terminate();
    // What was in flight at the signal must finish; nothing new is sent (a
    // client seeing readiness go would move on to another node).
    stop.store(true, Ordering::Relaxed);

    // The signal reaches the process's handler a moment after `kill`
    // returns; readiness must drop within the notice, while it still accepts.
    let ready = loop {
        let ready = http.get(a.url("/readyz")).send().await.unwrap();
        if ready.status() == 503 {
            break ready;
        }
        assert!(
            signalled.elapsed() < showgate::app::DRAIN_NOTICE,
            "still ready {:?} after the signal",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["down"], json!(["draining"]));
    let refused = http
        .get(a.url(&format!("/api/v1/shows/{open}/seats/ws")))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await;
    if let Ok(res) = refused {
        assert_eq!(res.status(), 503, "no new socket on a draining node");
    }

    let mut queue = queue;
    let mut seats = seats;
    let codes = join_all(
        queue
            .iter_mut()
            .map(|(_, _, ws)| close_code(ws))
            .chain(seats.iter_mut().map(|(_, ws)| close_code(ws))),
    )
    .await;
    let told = signalled.elapsed();
    assert!(
        codes.iter().all(|c| *c == Some(showgate::ws::close::SHUTTING_DOWN)),
        "every socket was told to reconnect"
    );
    assert!(
        a.exited_within(Duration::from_secs(6)).await,
        "exited within the grace period"
    );
    let exited = signalled.elapsed();
    join_all(load).await;
    assert_eq!(broken.load(Ordering::Relaxed), 0, "no request it accepted was cut off");
    assert!(
        answered.load(Ordering::Relaxed) > before,
        "requests were in flight and answered"
    );
    println!("drain: 2,000 sockets told in {told:?}; exited {exited:?} after SIGTERM");

    // The sockets move to node B: same places in the queue, the same or a later seat map.
    let places: HashMap<String, u64> = queue.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let again = join_all(places.iter().map(|(token, place)| {
        let (addr, gated) = (b.addr, gated.clone());
        async move {
            let mut ws = ws_connect(addr, &format!("/api/v1/waitrooms/{gated}/ws?access_token={token}")).await;
            (next_json(&mut ws).await["position"].as_u64().unwrap(), *place)
        }
    }))
    .await;
    assert!(
        again.iter().all(|(now, before)| now == before),
        "every shopper kept their place"
    );
    let lowest = seats.iter().map(|(v, _)| *v).min().unwrap();
    let mut ws = ws_connect(b.addr, &format!("/api/v1/shows/{open}/seats/ws")).await;
    assert!(next_json(&mut ws).await["version"].as_u64().unwrap() >= lowest);
}

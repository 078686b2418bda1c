//! Faults that make no noise, with real processes: a Redis connection that
//! stops answering without closing (a proxy that silences every open
//! connection and lets new ones through, as a host gone behind a VIP does):
//! the subscription is pinged and replaced, the command connection is
//! replaced after a timeout its `PING` confirms, and the sockets are caught
//! up without a reload.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::common;
use crate::helpers::{Node, Proxy, next_json, ws_connect};

/// Two nodes on one Redis: one behind a proxy that can silence its
/// connections, one straight to it.
async fn behind_a_proxy() -> (Proxy, Node, Node) {
    let proxy = Proxy::to("127.0.0.1:6379").await;
    let prefix = common::unique_prefix();
    let behind = Node::start(&[
        ("REDIS_URL", format!("redis://{}", proxy.addr)),
        ("REDIS_KEY_PREFIX", prefix.clone()),
    ])
    .await;
    let direct = Node::start(&[("REDIS_URL", common::redis_url()), ("REDIS_KEY_PREFIX", prefix)]).await;
    (proxy, behind, direct)
}

#[tokio::test]
async fn a_silent_subscription_is_replaced_and_the_seat_map_catches_up() {
    let (proxy, behind, direct) = behind_a_proxy().await;
    let all = direct.shows().await;
    let show = &all[all.len() - 1];
    let mut ws = ws_connect(behind.addr, &format!("/api/v1/shows/{show}/seats/ws")).await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    let ready: Value = behind.read_json("/readyz").await;
    assert_eq!(ready["checks"]["redisPubsub"], "ok", "{ready}");

    // Every connection the node has to Redis goes silent; new ones pass.
    proxy.blackhole();
    let silenced = Instant::now();
    let alice = direct.token("alice").await;
    let res = reqwest::Client::new()
        .post(direct.url("/api/v1/holds"))
        .bearer_auth(&alice)
        .json(&json!({"showId": show, "seatIds": ["C5"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // The socket on the silenced node is caught up, without a reload.
    until_shown(&mut ws, "C5", "HELD", Duration::from_secs(15)).await;
    let took = silenced.elapsed();
    println!(
        "a silenced subscription: the seat map caught up {} ms after",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(10), "the contract's 10 s: {took:?}");
    // Its command connection was replaced too: holds through it work.
    let bob = behind.token("bob").await;
    let res = reqwest::Client::new()
        .post(behind.url("/api/v1/holds"))
        .bearer_auth(&bob)
        .json(&json!({"showId": show, "seatIds": ["C6"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let ready: Value = behind.read_json("/readyz").await;
    assert_eq!(ready["checks"]["redisPubsub"], "ok", "replaced: {ready}");
    let metrics = reqwest::get(behind.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lost = metrics
        .lines()
        .find(|l| l.starts_with("redis_pubsub_lost_total"))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok());
    assert!(lost.is_some_and(|n| n >= 1.0), "{metrics}");
}

/// Sends a hold's headers and the first half of its body, waits `pause`,
/// then the rest unless `finish` is false; answers the response's status
/// line and body.
async fn slow_hold(app: &crate::helpers::TestApp, pause: Duration, finish: bool) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let token = app.token("slowpoke").await;
    let show = app.a_show().await;
    let body = json!({"showId": show, "seatIds": ["D4"]}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/holds HTTP/1.1\r\nHost: showgate\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(pause).await;
    if finish {
        tcp.write_all(rest.as_bytes()).await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer within 15 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// The request deadline is the server's wait on its dependencies, counted
/// from a complete request: a phone that takes 2.6 s to send a small body
/// still gets its hold, not a 503 blaming a dependency.
#[tokio::test]
async fn a_slow_body_is_the_clients_time_not_a_dependency_failure() {
    let app = crate::helpers::spawn_app().await;
    let (status, body) = slow_hold(&app, Duration::from_millis(2_600), true).await;
    assert!(status.contains(" 201 "), "{status}: {body}");
}

/// A body that never completes is 408 `REQUEST_TIMEOUT` after 10 s.
#[tokio::test]
async fn a_body_that_never_arrives_is_408_after_ten_seconds() {
    let app = crate::helpers::spawn_app().await;
    let started = Instant::now();
    let (status, body) = slow_hold(&app, Duration::from_secs(12), false).await;
    assert!(status.contains(" 408 "), "{status}: {body}");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(10), "{took:?}");
    let body: Value = serde_json::from_str(body.trim()).unwrap_or_else(|_| {
        // A chunked body: the JSON is between the chunk sizes.
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        serde_json::from_str(&body[start..=end]).unwrap()
    });
    assert_eq!(body["error"]["code"], "REQUEST_TIMEOUT");
}

/// A POST's JSON body through a node.
async fn post(node: &Node, path: &str, token: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(node.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A failover to a replica that missed a sale, seen by no live node: the
/// node that sold the seat is gone, the one that comes up next never saw
/// the show. No version tells; Redis's replication identity does, and the
/// show is rebuilt from Postgres: the sold seat is BOOKED again.
#[tokio::test]
async fn a_failover_nobody_saw_is_found_by_the_replication_identity() {
    use crate::helpers::common::own_redis::OwnRedis;
    let primary = OwnRedis::start();
    let replica = OwnRedis::start();
    replica.replicate(&primary);
    let proxy = Proxy::to(primary.addr()).await;
    let env = vec![
        ("REDIS_URL", format!("redis://{}", proxy.addr)),
        ("DATABASE_URL", common::fresh_database().await),
    ];
    let seller = Node::start(&env).await;
    // The seat state is checked under the primary's identity, and the
    // replica has that (then stops following: it lags from here on).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica
        .command("EXISTS sg:ops:redis-identity")
        .is_some_and(|r| r.starts_with(":1"))
    {
        assert!(Instant::now() < deadline, "the identity never reached the replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(replica.command("REPLICAOF NO ONE").unwrap().starts_with("+OK"));
    let all = seller.shows().await;
    let show = &all[all.len() - 1];
    let ada = seller.token("ada").await;
    let (status, hold) = post(
        &seller,
        "/api/v1/holds",
        &ada,
        json!({"showId": show, "seatIds": ["F6"]}),
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    let (status, order) = post(&seller, "/api/v1/orders", &ada, json!({"holdId": hold["holdId"]})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["orderId"].as_str().unwrap();
    let pay = json!({"paymentReference": "pay-ada", "outcome": "SUCCESS"});
    let (status, paid) = post(&seller, &format!("/api/v1/orders/{id}/confirm-payment"), &ada, pay).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("CONFIRMED")), "{paid}");
    drop(seller);
    // The failover: the replica, which never saw the sale, is the master now.
    proxy.cut();
    proxy.retarget(replica.addr());
    proxy.restore();
    let started = Instant::now();
    let fresh = Node::start(&env).await;
    loop {
        let map = fresh.read_json(&format!("/api/v1/shows/{show}/seatmap")).await;
        let status = map["seats"]
            .as_array()
            .and_then(|seats| seats.iter().find(|s| s["id"] == "F6"))
            .map(|s| s["status"].clone());
        if status == Some(json!("BOOKED")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sold seat reads {status:?} {:?} after the failover",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "a failover nobody saw: the sold seat BOOKED again {} ms after the new node started",
        started.elapsed().as_millis()
    );
}

/// A queue socket on a node whose Redis connections went silent is still
/// told it was admitted (on another node's tick), without a reload.
#[tokio::test]
async fn a_queue_socket_behind_a_silent_connection_is_still_admitted() {
    let (proxy, behind, direct) = behind_a_proxy().await;
    let all = direct.shows().await;
    let show = &all[all.len() - 1];
    direct
        .put_room(show, json!({"admitRatePerSecond": 5, "paused": true}))
        .await;
    // Both nodes know the room before the socket opens.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let kim = behind.token("kim").await;
    let mut ws = ws_connect(behind.addr, &format!("/api/v1/waitrooms/{show}/ws?access_token={kim}")).await;
    assert_eq!(next_json(&mut ws).await["position"], 1);

    proxy.blackhole();
    let silenced = Instant::now();
    direct.put_room(show, json!({"paused": false})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("admitted within 15 s of the silence")
            .expect("the socket stays open")
            .expect("a readable frame");
        let Message::Text(text) = frame else { continue };
        let msg: Value = serde_json::from_str(&text).unwrap();
        if msg["type"] == "admitted" {
            break;
        }
    }
    println!(
        "a silenced queue socket: admitted {} ms after the silence",
        silenced.elapsed().as_millis()
    );
}

/// A node that is drained hands its sweeper's and admission leases back as
/// it stops: the next node takes over at its next pass, not the leases'
/// TTL later (a rolling restart does not pause expiry or admission).
#[tokio::test]
async fn a_drained_node_hands_its_leases_back() {
    let prefix = common::unique_prefix();
    let env = vec![("REDIS_URL", common::redis_url()), ("REDIS_KEY_PREFIX", prefix.clone())];
    let mut first = Node::start(&env).await;
    let keys = showgate::redis::keys::Keys::new(prefix);
    let sweeper = keys.ops("seat-sweeper");
    let all = first.shows().await;
    let show = &all[all.len() - 1];
    first.put_room(show, json!({"admitRatePerSecond": 5})).await;
    let room_lease = keys.room(show).lease;
    let mut conn = redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let get = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut conn)
                .await
                .unwrap()
        }
    };
    // Both leases are the first node's before the second starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (sweeping, leading) = loop {
        if let (Some(s), Some(l)) = (get(sweeper.clone()).await, get(room_lease.clone()).await) {
            break (s, l);
        }
        assert!(Instant::now() < deadline, "the first node never took its leases");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _second = Node::start(&env).await;
    first.terminate();
    assert!(first.exited_within(Duration::from_secs(25)).await);
    assert_ne!(
        get(sweeper.clone()).await,
        Some(sweeping),
        "the sweeper's lease was handed back"
    );
    assert_ne!(
        get(room_lease.clone()).await,
        Some(leading),
        "the admission lease was handed back"
    );
    let _: () = redis::cmd("PING").query_async(&mut conn).await.unwrap();
}

/// A delta below the version a feed applied, long after it read the show,
/// means Redis went back and counts again (a failover to a replica that
/// lagged): the show is rebuilt from the record, and its sockets get the
/// new state, not a map frozen until the count passes the old one.
#[tokio::test]
async fn a_delta_from_before_is_taken_for_a_rollback_and_the_show_rebuilt() {
    let prefix = common::unique_prefix();
    let node = Node::start(&[("REDIS_URL", common::redis_url()), ("REDIS_KEY_PREFIX", prefix.clone())]).await;
    let all = node.shows().await;
    let show = &all[all.len() - 1];
    let mut ws = ws_connect(node.addr, &format!("/api/v1/shows/{show}/seats/ws")).await;
    let snap = next_json(&mut ws).await;
    let epoch = snap["epoch"].as_str().unwrap().to_owned();
    let t = node.token("alice").await;
    let (status, _) = post(&node, "/api/v1/holds", &t, json!({"showId": show, "seatIds": ["B7"]})).await;
    assert_eq!(status, 201);
    assert_eq!(next_json(&mut ws).await["type"], "delta");
    // Long after the feed read the show, a delta from before arrives.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let channel = showgate::redis::keys::Keys::new(prefix).show(show).channel;
    let stale = json!({"showId": show, "epoch": epoch, "version": 1, "changes": []}).to_string();
    let mut conn = redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(stale)
        .query_async(&mut conn)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a snapshot of the rebuilt show within 5 s")
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let msg: Value = serde_json::from_str(&text).unwrap();
        if msg["type"] == "snapshot" && msg["epoch"] != json!(epoch) {
            let held = msg["seats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == "B7" && s["status"] == "HELD");
            assert!(held, "the rebuild keeps what Redis has: {msg}");
            break;
        }
    }
    let metrics = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("seat_state_rebuilds_total{reason=\"went_back\"}")),
        "{metrics}"
    );
}

/// The seat socket's next frame that shows `seat` as `status`, within `limit`.
async fn until_shown(ws: &mut crate::helpers::Ws, seat: &str, status: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{seat} {status} on the socket within {limit:?}"))
            .expect("the socket stays open")
            .expect("a readable frame");
        let Message::Text(text) = frame else { continue };
        let msg: Value = serde_json::from_str(&text).unwrap();
        let list = match msg["type"].as_str() {
            Some("snapshot") => &msg["seats"],
            Some("delta") => &msg["changes"],
            _ => continue,
        };
        let shown = list
            .as_array()
            .unwrap()
            .iter()
            .any(|s| (s["id"] == seat || s["seatId"] == seat) && s["status"] == status);
        if shown {
            return started.elapsed();
        }
    }
}

#[tokio::test]
async fn on_a_cluster_a_master_gone_silent_is_noticed_and_the_seat_map_goes_on_live() {
    use crate::helpers::common::own_cluster::OwnCluster;
    let cluster = OwnCluster::start();
    let prefix = common::unique_prefix();
    let node = Node::start(&[
        ("REDIS_CLUSTER_NODES", cluster.seeds()),
        ("REDIS_KEY_PREFIX", prefix.clone()),
    ])
    .await;
    let all = node.shows().await;
    let show = &all[all.len() - 1];
    let mut ws = ws_connect(node.addr, &format!("/api/v1/shows/{show}/seats/ws")).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    // The show's master stops without closing anything (SIGSTOP): its
    // sharded subscription will never deliver again.
    let victim = cluster.master_of(&format!("{prefix}{{show:{show}}}:seats"));
    cluster.nodes[victim].pause();
    let stopped = Instant::now();
    let lost = || async {
        let metrics = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .find(|l| l.starts_with("redis_pubsub_lost_total"))
            .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    while lost().await < 1.0 {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the silent master noticed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "cluster: a silent master noticed {} ms after it stopped",
        stopped.elapsed().as_millis()
    );
    // Its replica takes over; holds go through again.
    let alice = node.token("alice").await;
    for (n, seat) in ["C5", "C6"].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = post(
                &node,
                "/api/v1/holds",
                &alice,
                json!({"showId": show, "seatIds": [seat]}),
            )
            .await;
            if status == 201 {
                break;
            }
            assert!(status == 503 && Instant::now() < deadline, "{status} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The first may come by a probe's re-read; the second must come
        // live: the subscription was made again on the new master.
        let limit = if n == 0 {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(2)
        };
        let took = until_shown(&mut ws, seat, "HELD", limit).await;
        println!("cluster: {seat} held, on the socket {} ms later", took.as_millis());
    }
    cluster.nodes[victim].resume();
}

//! The abuse budget across nodes: what one account can make the shared
//! Redis do does not grow with the number of pods, and the work a node does
//! on another's behalf (expiring its holds) still happens when only the
//! changed shows are looked at. Real nodes on one Redis.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Node, common};

#[tokio::test]
async fn one_accounts_holds_are_limited_once_across_nodes_not_once_per_node() {
    let env = vec![
        ("REDIS_URL", common::redis_url()),
        ("REDIS_KEY_PREFIX", common::unique_prefix()),
        // 5 a second, a burst of 10: per node (the first line) and per
        // user and show across nodes (the script).
        ("RATE_LIMIT_USER_PER_SEC", "5".to_string()),
    ];
    let nodes = [Node::start(&env).await, Node::start(&env).await];
    let http = reqwest::Client::new();
    let mallory = nodes[0].token("mallory").await;
    let all = nodes[0].shows().await;
    let show = &all[all.len() - 2];
    let mut held = 0;
    let mut limited = Vec::new();
    // Ten holds on each node: each node's own limit lets all ten through.
    for i in 0..20 {
        let res = http
            .post(nodes[i % 2].url("/api/v1/holds"))
            .bearer_auth(&mallory)
            .json(&json!({"showId": show, "seatIds": [format!("{}{}", (b'A' + i as u8 / 5) as char, i % 5 + 1)]}))
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::CREATED => held += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let retry = res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "RATE_LIMITED");
                limited.push(retry);
            }
            other => panic!("hold {i}: {other}"),
        }
    }
    // One burst of ten for both nodes together (a call or two more if the
    // requests took a fifth of a second each).
    assert!((10..=12).contains(&held), "{held} holds passed");
    assert_eq!(held + limited.len(), 20);
    assert!(
        limited.iter().all(|r| *r >= 1),
        "Retry-After in whole seconds: {limited:?}"
    );
    // Honest shoppers are not refused with mallory.
    let alice = nodes[1].token("alice").await;
    let res = http
        .post(nodes[1].url("/api/v1/holds"))
        .bearer_auth(&alice)
        .json(&json!({"showId": show, "seatIds": ["E1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn holds_made_on_any_node_are_expired_by_the_one_sweeper() {
    let prefix = common::unique_prefix();
    let env = vec![
        ("REDIS_URL", common::redis_url()),
        ("REDIS_KEY_PREFIX", prefix.clone()),
        ("HOLD_TTL_SECONDS", "1".to_string()),
        ("SWEEP_INTERVAL_MS", "100".to_string()),
    ];
    let nodes = [Node::start(&env).await, Node::start(&env).await];
    let http = reqwest::Client::new();
    let all = nodes[0].shows().await;
    let shows = &all[all.len() - 2..];
    // One hold through each node, on a show of its own: whichever node
    // sweeps, one of them was made on the other.
    for (i, node) in nodes.iter().enumerate() {
        let t = node.token(&format!("shopper-{i}")).await;
        let res = http
            .post(node.url("/api/v1/holds"))
            .bearer_auth(&t)
            .json(&json!({"showId": shows[i], "seatIds": ["C3"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // Nobody reads the shows: only the sweeper can free the seats.
    let keys = showgate::redis::keys::Keys::new(prefix);
    let mut conn = redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let seats_left = |show: &str| {
        let key = keys.show(show).seats;
        let mut conn = conn.clone();
        async move { redis::cmd("HLEN").arg(key).query_async::<u64>(&mut conn).await.unwrap() }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = seats_left(&shows[0]).await + seats_left(&shows[1]).await;
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} seats still held 4 s after expiry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _: () = redis::cmd("PING").query_async(&mut conn).await.unwrap();
}

//! A Redis Cluster master killed in the middle of a sale, with three
//! gateway processes in front: after the replica takes over, the service
//! goes on without a restart, no seat is sold twice (Postgres is the judge)
//! and every confirmed order's seats are BOOKED on every node's seat map.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::Node;
use crate::helpers::common::{self, own_cluster::OwnCluster};

/// One shopper's whole purchase through one node, retrying 503s: answers
/// the confirmed order's id and seats, or None if a seat was taken.
async fn buy(
    http: &reqwest::Client,
    node: &Node,
    token: &str,
    show: &str,
    seats: &[String],
) -> Option<(String, Vec<String>)> {
    let post = |path: String, body: Value| {
        let req = http.post(node.url(&path)).bearer_auth(token).json(&body);
        async move { req.send().await.ok() }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let step = |what: &'static str| {
        assert!(Instant::now() < deadline, "{what} never got through the failover");
    };
    let hold = loop {
        step("hold");
        let Some(res) = post("/api/v1/holds".into(), json!({"showId": show, "seatIds": seats})).await else {
            continue;
        };
        match res.status().as_u16() {
            201 => break res.json::<Value>().await.unwrap(),
            409 => return None,
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("hold answered {other}: {:?}", res.text().await),
        }
    };
    let hold_id = hold["holdId"].as_str().unwrap().to_owned();
    let order = loop {
        step("order");
        let Some(res) = post("/api/v1/orders".into(), json!({"holdId": hold_id})).await else {
            continue;
        };
        match res.status().as_u16() {
            200 | 201 => break res.json::<Value>().await.unwrap(),
            409 => return None, // the hold was lost with Redis: pick again
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("order answered {other}: {:?}", res.text().await),
        }
    };
    let order_id = order["orderId"].as_str().unwrap().to_owned();
    loop {
        step("payment");
        let Some(res) = post(format!("/api/v1/orders/{order_id}/confirm-payment"), json!({})).await else {
            continue;
        };
        match res.status().as_u16() {
            200 => {
                let paid: Value = res.json().await.unwrap();
                return (paid["status"] == "CONFIRMED").then(|| (order_id, seats.to_vec()));
            }
            409 => return None,
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("payment answered {other}: {:?}", res.text().await),
        }
    }
}

#[tokio::test]
async fn a_master_killed_mid_sale_loses_no_sale_and_sells_no_seat_twice() {
    let mut cluster = OwnCluster::start();
    let database = common::fresh_database().await;
    let env = vec![
        ("REDIS_CLUSTER_NODES", cluster.seeds()),
        ("REDIS_KEY_PREFIX", common::unique_prefix()),
        ("DATABASE_URL", database.clone()),
        ("SWEEP_INTERVAL_MS", "100".to_string()),
    ];
    let nodes = vec![
        Node::start(&env).await,
        Node::start(&env).await,
        Node::start(&env).await,
    ];
    let http = reqwest::Client::new();
    let shows = nodes[0].read_json("/api/v1/movies/dune-3/shows").await;
    // The last flash-sale show of the week: on sale whatever the hour.
    let show = shows["shows"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["screenId"] == "inox-imax")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = env[1].1.clone();
    let victim = cluster.master_of(&format!("{prefix}{{show:{show}}}:seats"));

    // 90 shoppers over three nodes; a third of the way in, the show's master dies.
    let tokens: Vec<String> = (0..90)
        .map(|i| {
            showgate::auth::Tokens::new(showgate::config::DEV_JWT_SECRET)
                .issue(&format!("buyer{i}"), false, 3600)
                .unwrap()
        })
        .collect();
    let purchases = tokens.iter().enumerate().map(|(i, token)| {
        let (http, node, show) = (&http, &nodes[i % 3], &show);
        let seats = vec![format!("K{}", i % 45 + 1), format!("L{}", i % 45 + 1)];
        async move {
            tokio::time::sleep(Duration::from_millis(40 * i as u64)).await;
            buy(http, node, token, show, &seats).await
        }
    });
    let kill = async {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        cluster.nodes[victim].kill();
        Instant::now()
    };
    let (bought, killed_at) = tokio::join!(futures::future::join_all(purchases), kill);
    let confirmed: Vec<(String, Vec<String>)> = bought.into_iter().flatten().collect();
    println!(
        "failover: {} purchases confirmed; the last finished {:?} after the kill",
        confirmed.len(),
        killed_at.elapsed()
    );
    assert!(confirmed.len() >= 30, "the sale went on: {}", confirmed.len());

    // Postgres is the judge: each seat sold once, to the order the shopper was told.
    let db = sqlx::PgPool::connect(&database).await.unwrap();
    let rows: Vec<(String, uuid::Uuid)> =
        sqlx::query_as("SELECT seat_id, order_id FROM booked_seats WHERE show_id = $1")
            .bind(&show)
            .fetch_all(&db)
            .await
            .unwrap();
    let mut seen = std::collections::HashMap::new();
    for (seat, order) in &rows {
        assert!(seen.insert(seat.clone(), *order).is_none(), "{seat} sold twice");
    }
    for (order, seats) in &confirmed {
        for seat in seats {
            assert_eq!(seen.get(seat).map(|o| o.to_string()), Some(order.clone()), "{seat}");
        }
    }
    // Every node's seat map shows every sold seat BOOKED (within a few seconds
    // of the replica taking over, whatever it had lost).
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        loop {
            let map: Value = match http
                .get(node.url(&format!("/api/v1/shows/{show}/seatmap")))
                .send()
                .await
            {
                Ok(res) if res.status() == 200 => res.json().await.unwrap(),
                _ => Value::Null,
            };
            let booked = |seat: &str| {
                map["seats"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x["id"] == seat && x["status"] == "BOOKED"))
            };
            if seen.keys().all(|s| booked(s)) {
                break;
            }
            assert!(Instant::now() < deadline, "a node's seat map misses a sold seat");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

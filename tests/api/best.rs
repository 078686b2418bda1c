//! Best available through the API: the server picks adjacent seats in one
//! step, so shoppers racing for the best block never conflict and never
//! share a seat; on the memory engine, Redis and a Redis Cluster.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, common, spawn_app, spawn_app_with, spawn_memory_app};

impl TestApp {
    async fn hold_best(&self, token: &str, show: &str, quantity: u64) -> reqwest::Response {
        self.post(
            "/api/v1/holds",
            Some(token),
            json!({"showId": show, "quantity": quantity}),
        )
        .await
    }
}

/// 60 shoppers ask for 2 seats each at once: 60 holds of two adjacent seats
/// in one row, no seat twice, no conflict, and the seat map agrees.
async fn sixty_shoppers_race_for_pairs(app: TestApp) {
    let show = app.big_show().await;
    let mut tokens = Vec::new();
    for i in 0..60 {
        tokens.push(app.token_owned(format!("pair-{i}")).await);
    }
    let answers = futures::future::join_all(tokens.iter().map(|t| app.hold_best(t, &show, 2))).await;
    let mut seen = HashSet::new();
    for res in answers {
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "no conflict between best-available picks"
        );
        let hold: Value = res.json().await.unwrap();
        let seats: Vec<String> = serde_json::from_value(hold["seatIds"].clone()).unwrap();
        assert_eq!(seats.len(), 2);
        let (a, b) = (
            showgate::domain::SeatId::parse(&seats[0]).unwrap(),
            showgate::domain::SeatId::parse(&seats[1]).unwrap(),
        );
        assert!(a.row == b.row && b.number == a.number + 1, "adjacent: {seats:?}");
        for s in seats {
            assert!(seen.insert(s.clone()), "{s} picked twice");
        }
    }
    assert_eq!(seen.len(), 120);
    let map = app.seat_map(&show).await;
    let held: HashSet<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "HELD")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held, seen, "the seat map shows exactly the picked seats held");
}

#[tokio::test]
async fn sixty_shoppers_race_for_pairs_on_redis() {
    sixty_shoppers_race_for_pairs(spawn_app().await).await;
}

#[tokio::test]
async fn sixty_shoppers_race_for_pairs_in_memory() {
    sixty_shoppers_race_for_pairs(spawn_memory_app().await).await;
}

#[tokio::test]
async fn sixty_shoppers_race_for_pairs_on_a_redis_cluster() {
    let app = spawn_app_with(|s| {
        s.redis_url = None;
        s.redis_cluster_nodes = common::redis_cluster_nodes();
    })
    .await;
    sixty_shoppers_race_for_pairs(app).await;
}

#[tokio::test]
async fn best_available_input_is_checked_and_a_full_row_set_says_how_big_a_block_is_left() {
    let app = spawn_app_with(|s| s.max_seats_per_hold = 200).await;
    let show = app.big_show().await;
    let alice = app.token("alice").await;
    let both = json!({"showId": show, "seatIds": ["A1"], "quantity": 1});
    assert_error(app.post("/api/v1/holds", Some(&alice), both).await, 400, "BAD_REQUEST").await;
    let neither = json!({"showId": show});
    assert_error(
        app.post("/api/v1/holds", Some(&alice), neither).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_error(app.hold_best(&alice, &show, 0).await, 400, "BAD_REQUEST").await;
    assert_error(app.hold_best(&alice, &show, 201).await, 400, "BAD_REQUEST").await;
    // More than any row holds: 409 with the largest block left, nothing held.
    let body = assert_error(app.hold_best(&alice, &show, 150).await, 409, "NOT_ENOUGH_SEATS").await;
    let largest = body["error"]["largestBlock"].as_u64().unwrap();
    assert!((10..150).contains(&largest), "{largest}");
    assert_eq!(app.seat_map(&show).await["version"], 0, "nothing was held");
    // The block asked for fits exactly: taken whole, from one row.
    let res = app.hold_best(&alice, &show, largest).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hold: Value = res.json().await.unwrap();
    assert_eq!(hold["seatIds"].as_array().unwrap().len() as u64, largest);
}

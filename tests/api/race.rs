//! Concurrency, where this product lives or dies: many real HTTP clients at
//! once, exact outcomes afterwards.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::future::join_all;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_memory_app};

const CLIENTS: usize = 200;

fn contested() -> Vec<String> {
    (1..=10).map(|n| format!("C{n}")).collect()
}

/// Each of 200 users, on its own connection, tries to hold 1 to 3 of the
/// same 10 seats at once. Answers (user, seats asked, status, body).
async fn stampede(app: &TestApp, show: &str) -> Vec<(String, Vec<String>, StatusCode, Value)> {
    let seats = contested();
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        tokens.push(app.token(&format!("racer-{i}")).await);
    }
    let tasks = tokens.into_iter().enumerate().map(|(i, token)| {
        let mut rng = StdRng::seed_from_u64(i as u64);
        let n = rng.random_range(1..=3);
        let wanted: Vec<String> = seats.choose_multiple(&mut rng, n).cloned().collect();
        let url = app.url("/api/v1/holds");
        let body = json!({"showId": show, "seatIds": wanted});
        async move {
            // A client of its own: its own connection, as 200 shoppers would.
            let client = reqwest::Client::new();
            let res = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = res.status();
            (format!("racer-{i}"), wanted, status, res.json::<Value>().await.unwrap())
        }
    });
    join_all(tasks).await
}

/// Checks that every contested seat is held by at most one winner, that the
/// seat map agrees, and that every loser was refused for a real reason.
async fn check_holds(
    app: &TestApp,
    show: &str,
    results: &[(String, Vec<String>, StatusCode, Value)],
) -> HashMap<String, String> {
    let mut owner: HashMap<String, String> = HashMap::new();
    for (user, wanted, status, body) in results {
        match *status {
            StatusCode::CREATED => {
                assert_eq!(body["seatIds"], json!(wanted));
                for seat in wanted {
                    let prev = owner.insert(seat.clone(), user.clone());
                    assert!(prev.is_none(), "{seat} held by {prev:?} and {user}");
                }
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "SEAT_CONFLICT");
                let conflicts: Vec<String> = serde_json::from_value(body["error"]["conflicts"].clone()).unwrap();
                assert!(
                    !conflicts.is_empty() && conflicts.iter().all(|c| wanted.contains(c)),
                    "{body}"
                );
            }
            other => panic!("{user}: unexpected {other}: {body}"),
        }
    }
    let map = app.seat_map(show).await;
    for seat in contested() {
        let status = map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == seat.as_str())
            .unwrap()["status"]
            .clone();
        let expected = if owner.contains_key(&seat) { "HELD" } else { "AVAILABLE" };
        assert_eq!(status, expected, "{seat} on the seat map");
    }
    // Every loser lost to a seat some winner really holds.
    for (_, _, status, body) in results {
        if *status == StatusCode::CONFLICT {
            for c in body["error"]["conflicts"].as_array().unwrap() {
                assert!(
                    owner.contains_key(c.as_str().unwrap()),
                    "conflict on {c} which nobody holds"
                );
            }
        }
    }
    assert!(!owner.is_empty());
    owner
}

#[tokio::test]
async fn two_hundred_clients_fight_for_ten_seats_and_every_seat_ends_with_exactly_one_buyer() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let results = stampede(&app, &show).await;
    let owner = check_holds(&app, &show, &results).await;

    // Every winner orders and pays at once; even-numbered winners' payments fail.
    let winners: Vec<_> = results.iter().filter(|r| r.2 == StatusCode::CREATED).collect();
    let paid = join_all(winners.iter().enumerate().map(|(n, (user, wanted, _, hold))| {
        let app = &app;
        async move {
            let token = app.token(user).await;
            let order: Value = app
                .order(&token, hold["holdId"].as_str().unwrap())
                .await
                .json()
                .await
                .unwrap();
            let outcome = if n % 2 == 0 { "FAILURE" } else { "SUCCESS" };
            let paid: Value = app
                .pay(&token, order["orderId"].as_str().unwrap(), outcome)
                .await
                .json()
                .await
                .unwrap();
            (user.clone(), wanted.clone(), paid)
        }
    }))
    .await;

    let mut booked_by: HashMap<String, Uuid> = HashMap::new();
    for (_, wanted, paid) in &paid {
        let status = paid["status"].as_str().unwrap();
        assert!(status == "CONFIRMED" || status == "FAILED", "{paid}");
        if status == "CONFIRMED" {
            for seat in wanted {
                booked_by.insert(seat.clone(), paid["orderId"].as_str().unwrap().parse().unwrap());
            }
        }
    }
    let map = app.seat_map(&show).await;
    for seat in contested() {
        let status = map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == seat.as_str())
            .unwrap()["status"]
            .clone();
        let expected = if booked_by.contains_key(&seat) {
            "BOOKED"
        } else {
            "AVAILABLE"
        };
        assert_eq!(status, expected, "{seat}: owner {:?}", owner.get(&seat));
    }
    // Postgres agrees: one row per booked seat, owned by the confirmed order.
    let rows: Vec<(String, Uuid)> = sqlx::query_as("SELECT seat_id, order_id FROM booked_seats WHERE show_id = $1")
        .bind(&show)
        .fetch_all(app.db.as_ref().unwrap())
        .await
        .unwrap();
    let in_db: HashMap<String, Uuid> = rows.into_iter().collect();
    assert_eq!(in_db, booked_by);
    let confirmed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'CONFIRMED'")
        .fetch_one(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        confirmed as usize,
        paid.iter().filter(|p| p.2["status"] == "CONFIRMED").count()
    );
}

#[tokio::test]
async fn the_memory_engine_holds_the_same_line_under_a_stampede() {
    let app = spawn_memory_app().await;
    let show = app.big_show().await;
    let results = stampede(&app, &show).await;
    check_holds(&app, &show, &results).await;
}

#[tokio::test]
async fn one_user_racing_themselves_ends_with_exactly_one_active_hold() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let token = app.token("impatient").await;
    let results = join_all((1..=40).map(|n| {
        let app = &app;
        let token = token.clone();
        let show = show.clone();
        async move {
            let seats = [format!("D{n}")];
            let res = app.hold(&token, &show, &[seats[0].as_str()]).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()
        }
    }))
    .await;
    let mut active = Vec::new();
    for hold in &results {
        let got: Value = app
            .get_json(
                &format!("/api/v1/holds/{}", hold["holdId"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        match got["status"].as_str().unwrap() {
            "HELD" => active.push(got["seatIds"][0].as_str().unwrap().to_owned()),
            "RELEASED" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(active.len(), 1, "exactly one hold survives: {active:?}");
    let map = app.seat_map(&show).await;
    let held: BTreeSet<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "HELD")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held, BTreeSet::from([active[0].clone()]));
}

#[tokio::test]
async fn concurrent_orders_for_one_hold_make_one_order() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let token = app.token("double-clicker").await;
    let hold: Value = app.hold(&token, &show, &["E1", "E2"]).await.json().await.unwrap();
    let hold_id = hold["holdId"].as_str().unwrap();
    let answers = join_all((0..20).map(|_| async {
        let res = app.order(&token, hold_id).await;
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    }))
    .await;
    let ids: HashSet<&str> = answers.iter().map(|(_, b)| b["orderId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK)
    );
    assert!(answers.iter().any(|(s, _)| *s == StatusCode::CREATED));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

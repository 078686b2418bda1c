//! Seats per shopper: one account holds at most MAX_SEATS_PER_USER_PER_SHOW
//! seats of a show across its active hold and its standing orders, so one
//! admission cannot lock a hall by holding, ordering and holding again.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app_with, spawn_memory_app_with};

/// The first `n` seats the map shows available.
async fn free_seats(app: &TestApp, show: &str, n: usize) -> Vec<String> {
    let map = app.seat_map(show).await;
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "AVAILABLE")
        .take(n)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn hold_and_order(app: &TestApp, token: &str, show: &str, seats: &[String]) -> Value {
    let list: Vec<&str> = seats.iter().map(String::as_str).collect();
    app.pending_order(token, show, &list).await.order
}

async fn a_shopper_is_capped_across_hold_and_orders(app: TestApp) {
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let seats = free_seats(&app, &show, 12).await;
    // Six ordered (waiting for payment), then four more: ten in all, the cap.
    let first = hold_and_order(&app, &alice, &show, &seats[..6]).await;
    let second = hold_and_order(&app, &alice, &show, &seats[6..10]).await;
    // An eleventh seat is refused, by id or as best available, with the limit.
    let by_id = app.hold(&alice, &show, &[seats[10].as_str()]).await;
    let body = assert_error(by_id, 409, "INVALID_STATE").await;
    assert_eq!(body["error"]["limit"], 10, "{body}");
    let best = app
        .post("/api/v1/holds", Some(&alice), json!({"showId": show, "quantity": 1}))
        .await;
    assert_error(best, 409, "INVALID_STATE").await;
    // Nothing was held by the refusals.
    assert_eq!(app.seat_status(&show, &seats[10]).await, "AVAILABLE");
    // Another shopper is not affected.
    let bob = app.token("bob").await;
    assert_eq!(
        app.hold(&bob, &show, &[seats[10].as_str()]).await.status(),
        StatusCode::CREATED
    );
    // A cancelled order gives its seats back to the cap, a paid one does not.
    let paid = app.pay(&alice, second["orderId"].as_str().unwrap(), "SUCCESS").await;
    assert_eq!(paid.status(), StatusCode::OK);
    let cancel = app
        .post(
            &format!("/api/v1/orders/{}/cancel", first["orderId"].as_str().unwrap()),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK, "{:?}", cancel.text().await);
    let six: Vec<&str> = seats[..6].iter().map(String::as_str).collect();
    assert_eq!(app.hold(&alice, &show, &six).await.status(), StatusCode::CREATED);
    let seven: Vec<&str> = seats[..6].iter().chain([&seats[11]]).map(String::as_str).collect();
    assert_error(app.hold(&alice, &show, &seven).await, 409, "INVALID_STATE").await;
}

fn cap_of_ten(s: &mut showgate::config::Settings) {
    s.max_seats_per_hold = 10;
    s.max_seats_per_user_per_show = Some(10);
}

#[tokio::test]
async fn a_shopper_is_capped_on_redis_and_postgres() {
    a_shopper_is_capped_across_hold_and_orders(spawn_app_with(cap_of_ten).await).await;
}

#[tokio::test]
async fn a_shopper_is_capped_in_process() {
    a_shopper_is_capped_across_hold_and_orders(spawn_memory_app_with(cap_of_ten).await).await;
}

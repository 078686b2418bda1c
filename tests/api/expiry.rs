//! Time: holds and orders expire at their deadline, by the sweepers and on
//! read, with short TTLs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};
use showgate::redis::keys::Keys;

use crate::helpers::{assert_error, common, spawn_app_with};

async fn sleep_past(rfc3339: &str, extra_ms: u64) {
    let at: DateTime<Utc> = rfc3339.parse().unwrap();
    let wait = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(extra_ms);
    tokio::time::sleep(wait).await;
}

#[tokio::test]
async fn a_hold_is_expired_the_moment_its_ttl_passes_and_its_seats_return() {
    let app = spawn_app_with(|s| {
        s.hold_ttl_seconds = 1;
        s.sweep_interval_ms = 60_000; // no sweeper help: expiry on read alone
    })
    .await;
    let show = app.a_show().await;
    let (alice, bob) = (app.token("alice").await, app.token("bob").await);
    let hold: Value = app.hold(&alice, &show, &["D4", "D5"]).await.json().await.unwrap();
    let created: DateTime<Utc> = hold["createdAt"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = hold["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_milliseconds(), 1000);
    let path = format!("/api/v1/holds/{}", hold["holdId"].as_str().unwrap());
    sleep_past(hold["expiresAt"].as_str().unwrap(), 5).await;
    let got: Value = app.get(&path, Some(&alice)).await.json().await.unwrap();
    assert_eq!(got["status"], "EXPIRED");
    assert_eq!(app.seat_status(&show, "D4").await, "AVAILABLE");
    assert_error(
        app.order(&alice, hold["holdId"].as_str().unwrap()).await,
        409,
        "HOLD_EXPIRED",
    )
    .await;
    assert_error(app.delete(&path, &alice).await, 409, "HOLD_NOT_ACTIVE").await;
    assert_eq!(app.hold(&bob, &show, &["D5"]).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_sweeper_frees_expired_seats_in_redis_without_any_reader() {
    let app = spawn_app_with(|s| s.hold_ttl_seconds = 1).await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let hold: Value = app.hold(&alice, &show, &["D6"]).await.json().await.unwrap();
    let keys = Keys::new(app.settings.redis_key_prefix.clone()).show(&show);
    let mut redis = redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let owner: Option<String> = redis.hget(&keys.seats, "D6").await.unwrap();
    assert!(owner.is_some());
    sleep_past(hold["expiresAt"].as_str().unwrap(), 400).await;
    let owner: Option<String> = redis.hget(&keys.seats, "D6").await.unwrap();
    assert_eq!(owner, None, "the sweeper released the seat");
    let version: i64 = redis.get(&keys.version).await.unwrap();
    assert_eq!(version, 2, "and announced it as one delta");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let expired = metrics.lines().find(|l| l.starts_with("holds_expired_total")).unwrap();
    assert!(
        expired.split_whitespace().last().unwrap().parse::<f64>().unwrap() >= 1.0,
        "{expired}"
    );
}

#[tokio::test]
async fn an_orders_seats_stay_held_past_the_hold_ttl_until_payment() {
    let app = spawn_app_with(|s| s.hold_ttl_seconds = 1).await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let pending = app.pending_order(&alice, &show, &["D7"]).await;
    sleep_past(pending.hold["expiresAt"].as_str().unwrap(), 300).await;
    assert_eq!(app.seat_status(&show, "D7").await, "HELD");
    let got: Value = app
        .get_json(&format!("/api/v1/holds/{}", pending.hold_id()), Some(&alice))
        .await;
    assert_eq!(got["status"], "HELD", "a hold that became an order stays HELD");
    let paid: Value = app.pay(&alice, pending.id(), "SUCCESS").await.json().await.unwrap();
    assert_eq!(paid["status"], "CONFIRMED");
    assert_eq!(app.seat_status(&show, "D7").await, "BOOKED");
}

#[tokio::test]
async fn an_unpaid_order_expires_by_the_sweeper_and_refuses_payment() {
    let app = spawn_app_with(|s| s.order_ttl_seconds = 1).await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let pending = app.pending_order(&alice, &show, &["D8", "D9"]).await;
    let id = pending.id();
    sleep_past(pending.order["expiresAt"].as_str().unwrap(), 500).await;
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(status, "EXPIRED", "expired by the sweeper, before anyone read it");
    assert_eq!(app.seat_status(&show, "D8").await, "AVAILABLE");
    assert_error(app.pay(&alice, id, "SUCCESS").await, 409, "ORDER_EXPIRED").await;
    let res = app
        .post(&format!("/api/v1/orders/{id}/cancel"), Some(&alice), json!({}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CANCELLED");
}

#[tokio::test]
async fn paying_after_expiry_expires_the_order_even_before_the_sweeper() {
    let app = spawn_app_with(|s| {
        s.order_ttl_seconds = 1;
        s.sweep_interval_ms = 60_000;
    })
    .await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let pending = app.pending_order(&alice, &show, &["E9"]).await;
    let id = pending.id();
    sleep_past(pending.order["expiresAt"].as_str().unwrap(), 5).await;
    assert_error(app.pay(&alice, id, "SUCCESS").await, 409, "ORDER_EXPIRED").await;
    let got: Value = app.get_json(&format!("/api/v1/orders/{id}"), Some(&alice)).await;
    assert_eq!(got["status"], "EXPIRED");
    assert_eq!(app.seat_status(&show, "E9").await, "AVAILABLE");
}

//! The shopper's whole journey and the rules along it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_memory_app};

async fn journey(app: &TestApp) {
    // Browse.
    let movies: Value = app.get("/api/v1/movies", None).await.json().await.unwrap();
    let movie = &movies["movies"][0];
    let movie_id = movie["id"].as_str().unwrap();
    let got: Value = app.get_json(&format!("/api/v1/movies/{movie_id}"), None).await;
    assert_eq!(&got, movie);
    let avail: Value = app
        .get_json(&format!("/api/v1/movies/{movie_id}/availability"), None)
        .await;
    let dates = avail["dates"].as_array().unwrap();
    assert_eq!(dates.len(), 8, "today and the next 7 days");
    let date = dates[1].as_str().unwrap();
    let shows: Value = app
        .get_json(&format!("/api/v1/movies/{movie_id}/shows?date={date}"), None)
        .await;
    let show = shows["shows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["screenId"] != "inox-imax")
        .expect("a show on a small screen")
        .clone();
    assert!(show["startTime"].as_str().unwrap().starts_with(date));
    let show_id = show["id"].as_str().unwrap();
    let got: Value = app.get_json(&format!("/api/v1/shows/{show_id}"), None).await;
    assert_eq!(got["price"], show["price"]);
    let map = app.seat_map(show_id).await;
    assert_eq!(map["version"], 0);
    let seats = map["seats"].as_array().unwrap();
    assert!(seats.len() >= 100);
    assert!(seats.iter().any(|s| s["status"] == "UNAVAILABLE"));
    let free: Vec<&str> = seats
        .iter()
        .filter(|s| s["status"] == "AVAILABLE")
        .take(2)
        .map(|s| s["id"].as_str().unwrap())
        .collect();

    // Hold.
    let alice = app.token("alice").await;
    let res = app.hold(&alice, show_id, &free).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hold: Value = res.json().await.unwrap();
    assert_eq!(hold["status"], "HELD");
    assert_eq!(hold["userId"], "alice");
    assert_eq!(hold["seatIds"], json!(free));
    let hold_id = hold["holdId"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    assert_eq!(map["version"], 1);
    assert_eq!(app.seat_status(show_id, free[0]).await, "HELD");
    let got: Value = app.get_json(&format!("/api/v1/holds/{hold_id}"), Some(&alice)).await;
    assert_eq!(got["expiresAt"], hold["expiresAt"]);

    // Order.
    let res = app.order(&alice, hold_id).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "PAYMENT_PENDING");
    assert_eq!(order["ticketCode"], Value::Null);
    let price: f64 = show["price"].as_str().unwrap().parse().unwrap();
    assert_eq!(order["amount"], format!("{:.2}", price * 2.0));
    assert_eq!(order["currency"], "INR");
    let order_id = order["orderId"].as_str().unwrap();
    let again = app.order(&alice, hold_id).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the same hold answers the existing order"
    );
    assert_eq!(again.json::<Value>().await.unwrap()["orderId"], order["orderId"]);
    let got: Value = app.get_json(&format!("/api/v1/holds/{hold_id}"), Some(&alice)).await;
    assert_eq!(
        (got["status"].as_str(), got["orderId"].as_str()),
        (Some("HELD"), Some(order_id))
    );

    // Pay.
    let res = app.pay(&alice, order_id, "SUCCESS").await;
    assert_eq!(res.status(), StatusCode::OK);
    let paid: Value = res.json().await.unwrap();
    assert_eq!(paid["status"], "CONFIRMED");
    let ticket = paid["ticketCode"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("SG-"));
    let repeat: Value = app.pay(&alice, order_id, "SUCCESS").await.json().await.unwrap();
    assert_eq!(
        repeat["ticketCode"],
        ticket.as_str(),
        "repeating a confirmation answers the same result"
    );
    for seat in &free {
        assert_eq!(app.seat_status(show_id, seat).await, "BOOKED");
    }
    let history: Value = app.get("/api/v1/orders", Some(&alice)).await.json().await.unwrap();
    assert_eq!(history["orders"][0]["orderId"], order_id);
    assert_eq!(history["nextCursor"], Value::Null);

    // Another shopper cannot take a booked seat.
    let bob = app.token("bob").await;
    let body = assert_error(app.hold(&bob, show_id, &[free[0]]).await, 409, "SEAT_CONFLICT").await;
    assert_eq!(body["error"]["conflicts"], json!([free[0]]));
}

#[tokio::test]
async fn the_whole_journey_on_redis_and_postgres_ends_with_the_seats_booked_in_the_database() {
    let app = spawn_app().await;
    journey(&app).await;
    let booked: Vec<(String, String)> =
        sqlx::query_as("SELECT b.seat_id, o.status FROM booked_seats b JOIN orders o ON o.id = b.order_id")
            .fetch_all(app.db.as_ref().unwrap())
            .await
            .unwrap();
    assert_eq!(booked.len(), 2);
    assert!(booked.iter().all(|(_, status)| status == "CONFIRMED"));
    let outbox: Vec<String> = sqlx::query_scalar("SELECT topic FROM outbox ORDER BY id")
        .fetch_all(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(outbox, vec!["order.created", "booking.confirmed"]);
    // The relay moves them to the Redis Stream, once.
    let stream = showgate::redis::keys::Keys::new(app.settings.redis_key_prefix.clone()).event_stream();
    let mut redis = redis::Client::open(crate::helpers::common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut topics = Vec::new();
    for _ in 0..50 {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut redis)
            .await
            .unwrap();
        topics = entries
            .iter()
            .filter_map(|(_, fields)| fields.chunks(2).find(|kv| kv[0] == "topic").map(|kv| kv[1].clone()))
            .collect::<Vec<_>>();
        if topics.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(topics, vec!["order.created", "booking.confirmed"]);
    // The relay marks them relayed after the stream has them: wait for that
    // commit (the stream can be read in between).
    let mut pending = -1i64;
    for _ in 0..50 {
        pending = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
            .fetch_one(app.db.as_ref().unwrap())
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "every outbox row marked relayed");
    let len: usize = redis::cmd("XLEN").arg(&stream).query_async(&mut redis).await.unwrap();
    assert_eq!(len, 2, "each event relayed once");
}

#[tokio::test]
async fn the_whole_journey_on_the_memory_engine() {
    journey(&spawn_memory_app().await).await;
}

#[tokio::test]
async fn a_new_hold_replaces_the_users_previous_hold() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let first: Value = app.hold(&alice, &show, &["C1", "C2"]).await.json().await.unwrap();
    let res = app.hold(&alice, &show, &["C2", "C3"]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.seat_status(&show, "C1").await, "AVAILABLE");
    assert_eq!(app.seat_status(&show, "C3").await, "HELD");
    let old: Value = app
        .get_json(
            &format!("/api/v1/holds/{}", first["holdId"].as_str().unwrap()),
            Some(&alice),
        )
        .await;
    assert_eq!(old["status"], "RELEASED");
}

#[tokio::test]
async fn a_failed_hold_leaves_the_previous_one_in_place() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let (alice, bob) = (app.token("alice").await, app.token("bob").await);
    let first: Value = app.hold(&alice, &show, &["C1"]).await.json().await.unwrap();
    app.hold(&bob, &show, &["D1"]).await;
    let body = assert_error(app.hold(&alice, &show, &["D1", "D2"]).await, 409, "SEAT_CONFLICT").await;
    assert_eq!(body["error"]["conflicts"], json!(["D1"]));
    let available = body["error"]["available"].as_array().unwrap();
    assert!(available.contains(&json!("D2")) && !available.contains(&json!("C1")) && !available.contains(&json!("A1")));
    // Exactly the map's available seats (read from the node's replica, not
    // from the script: the conflict cost Redis only the seats asked for).
    let map = app.seat_map(&show).await;
    let on_map: Vec<&Value> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "AVAILABLE")
        .map(|s| &s["id"])
        .collect();
    assert_eq!(available.iter().collect::<Vec<_>>(), on_map);
    let held: Value = app
        .get_json(
            &format!("/api/v1/holds/{}", first["holdId"].as_str().unwrap()),
            Some(&alice),
        )
        .await;
    assert_eq!(held["status"], "HELD");
    assert_eq!(app.seat_status(&show, "D2").await, "AVAILABLE");
}

#[tokio::test]
async fn releasing_a_hold_frees_its_seats_once() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let hold: Value = app.hold(&alice, &show, &["E1"]).await.json().await.unwrap();
    let path = format!("/api/v1/holds/{}", hold["holdId"].as_str().unwrap());
    let res = app.delete(&path, &alice).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "RELEASED");
    assert_eq!(app.seat_status(&show, "E1").await, "AVAILABLE");
    assert_error(app.delete(&path, &alice).await, 409, "HOLD_NOT_ACTIVE").await;
}

#[tokio::test]
async fn an_ordered_hold_is_not_the_active_hold_and_cannot_be_released() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let pending = app.pending_order(&alice, &show, &["F1"]).await;
    let hold_id = pending.hold_id();
    assert_error(
        app.delete(&format!("/api/v1/holds/{hold_id}"), &alice).await,
        409,
        "HOLD_NOT_ACTIVE",
    )
    .await;
    // A new hold on the same show leaves the order's seats alone.
    assert_eq!(app.hold(&alice, &show, &["F2"]).await.status(), StatusCode::CREATED);
    assert_eq!(app.seat_status(&show, "F1").await, "HELD");
    assert_eq!(app.seat_status(&show, "F2").await, "HELD");
}

#[tokio::test]
async fn a_failed_payment_frees_the_seats_and_is_repeated_as_failed() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let order = app.pending_order(&alice, &show, &["G1", "G2"]).await;
    let id = order.id();
    let failed: Value = app.pay(&alice, id, "FAILURE").await.json().await.unwrap();
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(app.seat_status(&show, "G1").await, "AVAILABLE");
    let again: Value = app.pay(&alice, id, "SUCCESS").await.json().await.unwrap();
    assert_eq!(again["status"], "FAILED");
    assert_eq!(app.seat_status(&show, "G2").await, "AVAILABLE");
}

#[tokio::test]
async fn cancelling_a_confirmed_order_returns_its_seats_and_refuses_payment_after() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let order = app.pending_order(&alice, &show, &["H1"]).await;
    let id = order.id();
    app.pay(&alice, id, "SUCCESS").await;
    let res = app
        .post(&format!("/api/v1/orders/{id}/cancel"), Some(&alice), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CANCELLED");
    assert_eq!(app.seat_status(&show, "H1").await, "AVAILABLE");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM booked_seats")
        .fetch_one(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert_error(app.pay(&alice, id, "SUCCESS").await, 409, "INVALID_STATE").await;
    // Someone else can buy the seat now.
    let bob = app.token("bob").await;
    assert_eq!(app.hold(&bob, &show, &["H1"]).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn admins_cancel_any_order_and_others_see_none_of_it() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let (alice, bob, ops) = (
        app.token("alice").await,
        app.token("bob").await,
        app.token_as("ops", true).await,
    );
    let hold: Value = app.hold(&alice, &show, &["J1"]).await.json().await.unwrap();
    let hold_id = hold["holdId"].as_str().unwrap();
    assert_error(
        app.get(&format!("/api/v1/holds/{hold_id}"), Some(&bob)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete(&format!("/api/v1/holds/{hold_id}"), &bob).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.order(&bob, hold_id).await, 404, "NOT_FOUND").await;
    let order: Value = app.order(&alice, hold_id).await.json().await.unwrap();
    let id = order["orderId"].as_str().unwrap();
    assert_error(
        app.get(&format!("/api/v1/orders/{id}"), Some(&bob)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.pay(&bob, id, "SUCCESS").await, 404, "NOT_FOUND").await;
    assert_error(
        app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&bob), json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let res = app
        .post(&format!("/api/v1/orders/{id}/cancel"), Some(&ops), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.seat_status(&show, "J1").await, "AVAILABLE");
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response_and_refuse_another_body() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let h1: Value = app.hold(&alice, &show, &["B7"]).await.json().await.unwrap();
    let send = |hold: String, key: &'static str| {
        let app = &app;
        let alice = alice.clone();
        async move {
            app.http
                .post(app.url("/api/v1/orders"))
                .bearer_auth(alice)
                .header("Idempotency-Key", key)
                .json(&json!({"holdId": hold}))
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(h1["holdId"].as_str().unwrap().into(), "key-1").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let replay = send(h1["holdId"].as_str().unwrap().into(), "key-1").await;
    assert_eq!(
        replay.status(),
        StatusCode::CREATED,
        "the first response, status included"
    );
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_error(send("other-hold".into(), "key-1").await, 422, "IDEMPOTENCY_MISMATCH").await;
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(app.db.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(orders, 1);
}

#[tokio::test]
async fn order_history_pages_newest_first_with_a_cursor() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let mut ids = Vec::new();
    for seat in ["B8", "B9", "B10"] {
        let order = app.pending_order(&alice, &show, &[seat]).await;
        ids.push(order.id().to_owned());
    }
    let page: Value = app
        .get("/api/v1/orders?limit=2", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let page: Value = app
        .get_json(&format!("/api/v1/orders?limit=2&cursor={cursor}"), Some(&alice))
        .await;
    let got: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[0].as_str()]);
    assert_eq!(page["nextCursor"], Value::Null);
    let bob = app.token("bob").await;
    let none: Value = app.get("/api/v1/orders", Some(&bob)).await.json().await.unwrap();
    assert_eq!(none["orders"], json!([]));
}

//! Every bad input of the contract answers its 4xx in the error shape, and
//! nothing is written.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_mistyped_and_incomplete_hold_bodies_are_400() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let raw = |body: &'static str, content_type: &'static str| {
        let app = &app;
        let alice = alice.clone();
        async move {
            app.http
                .post(app.url("/api/v1/holds"))
                .bearer_auth(alice)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(raw("{not json", "application/json").await, 400, "BAD_REQUEST").await;
    assert_error(raw(r#"{"showId": "x"}"#, "text/plain").await, 400, "BAD_REQUEST").await;
    assert_error(raw("", "application/json").await, 400, "BAD_REQUEST").await;
    for body in [
        json!({"showId": show}),
        json!({"seatIds": ["A2"]}),
        json!({"showId": 42, "seatIds": ["A2"]}),
        json!({"showId": show, "seatIds": "A2"}),
        json!({"showId": show, "seatIds": [2]}),
        json!([1, 2]),
    ] {
        assert_error(app.post("/api/v1/holds", Some(&alice), body).await, 400, "BAD_REQUEST").await;
    }
    assert_eq!(app.seat_map(&show).await["version"], 0, "nothing was written");
}

#[tokio::test]
async fn seat_lists_that_break_the_rules_are_400_and_lock_nothing() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    let eleven: Vec<String> = (1..=11).map(|n| format!("B{n}")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    for seats in [
        vec![],
        vec!["B1", "B1"],
        eleven,
        vec!["Z99"],
        vec!["B1", "b2"],
        vec!["B1", "B15"],
    ] {
        let body = assert_error(app.hold(&alice, &show, &seats).await, 400, "BAD_REQUEST").await;
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.seat_map(&show).await["version"], 0);
    assert_eq!(app.seat_status(&show, "B1").await, "AVAILABLE");
}

#[tokio::test]
async fn the_seat_limit_follows_max_seats_per_hold() {
    let app = spawn_app_with(|s| s.max_seats_per_hold = 2).await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    assert_error(app.hold(&alice, &show, &["B1", "B2", "B3"]).await, 400, "BAD_REQUEST").await;
    assert_eq!(
        app.hold(&alice, &show, &["B1", "B2"]).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_permanently_unavailable_seat_is_a_conflict() {
    let app = spawn_app().await;
    let show = app.a_show().await; // pvr-forum-1: A1, A14 and J7 are unavailable
    let alice = app.token("alice").await;
    let bob = app.token("bob").await;
    app.hold(&bob, &show, &["A3"]).await;
    let body = assert_error(app.hold(&alice, &show, &["A1", "A2", "A3"]).await, 409, "SEAT_CONFLICT").await;
    assert_eq!(body["error"]["conflicts"], json!(["A1", "A3"]));
    let available = body["error"]["available"].as_array().unwrap();
    assert!(available.contains(&json!("A2")));
    assert!(!available.contains(&json!("A1")) && !available.contains(&json!("A3")));
    assert_eq!(app.seat_status(&show, "A2").await, "AVAILABLE");
}

#[tokio::test]
async fn unknown_things_are_404() {
    let app = spawn_app().await;
    let alice = app.token("alice").await;
    assert_error(app.get("/api/v1/movies/no-such-movie", None).await, 404, "NOT_FOUND").await;
    assert_error(
        app.get("/api/v1/movies/no-such-movie/availability", None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get("/api/v1/movies/no-such-movie/shows?date=2026-11-25", None)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.get("/api/v1/shows/no-such-show", None).await, 404, "NOT_FOUND").await;
    assert_error(
        app.get("/api/v1/shows/no-such-show/seatmap", None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(app.hold(&alice, "no-such-show", &["A1"]).await, 404, "NOT_FOUND").await;
    for hold in ["nope", "show.00000000000000000000000000000000", "a.b.c"] {
        assert_error(
            app.get(&format!("/api/v1/holds/{hold}"), Some(&alice)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_error(app.order(&alice, hold).await, 404, "NOT_FOUND").await;
    }
    for order in ["nope", "00000000-0000-0000-0000-000000000000"] {
        assert_error(
            app.get(&format!("/api/v1/orders/{order}"), Some(&alice)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_error(app.pay(&alice, order, "SUCCESS").await, 404, "NOT_FOUND").await;
    }
    assert_error(app.get("/api/v1/no/such/route", None).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn bad_dates_limits_cursors_and_outcomes_are_400() {
    let app = spawn_app().await;
    let alice = app.token("alice").await;
    for date in ["2026-13-01", "tomorrow", "2026-11-25T00:00:00Z", ""] {
        let res = app.get(&format!("/api/v1/movies/dune-3/shows?date={date}"), None).await;
        assert_error(res, 400, "BAD_REQUEST").await;
    }
    for q in ["limit=0", "limit=101", "limit=abc", "cursor=garbage", "cursor=1.nope"] {
        assert_error(
            app.get(&format!("/api/v1/orders?{q}"), Some(&alice)).await,
            400,
            "BAD_REQUEST",
        )
        .await;
    }
    let show = app.a_show().await;
    let order = app.pending_order(&alice, &show, &["C5"]).await;
    let id = order.id();
    let path = format!("/api/v1/orders/{id}/confirm-payment");
    assert_error(
        app.post(&path, Some(&alice), json!({"outcome": "MAYBE"})).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_error(
        app.post(&path, Some(&alice), json!({"outcome": 1})).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let still: Value = app.get_json(&format!("/api/v1/orders/{id}"), Some(&alice)).await;
    assert_eq!(still["status"], "PAYMENT_PENDING");
    // An empty body is a successful payment by default.
    let res = app.http.post(app.url(&path)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CONFIRMED");
    assert_error(app.order(&alice, "").await, 404, "NOT_FOUND").await;
    let bad_key = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "has space")
        .json(&json!({"holdId": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(bad_key, 400, "BAD_REQUEST").await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let alice = app.token("alice").await;
    let huge = json!({"showId": "x".repeat(100_000), "seatIds": ["A1"]});
    assert_error(
        app.post("/api/v1/holds", Some(&alice), huge).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
}

#[tokio::test]
async fn other_methods_get_json_errors_too() {
    let app = spawn_app().await;
    let res = app.http.put(app.url("/api/v1/movies")).send().await.unwrap();
    assert_error(res, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limit_user_per_sec = 2;
        s.rate_limit_ip_per_sec = 3;
    })
    .await;
    let alice = app.token("alice").await;
    let mut limited = None;
    for _ in 0..10 {
        let res = app.get("/api/v1/orders", Some(&alice)).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("a burst of 10 against 2/s with burst 4 is limited");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_error(res, 429, "RATE_LIMITED").await;
    // Another user is not affected by alice's limit.
    let bob = app.token("bob").await;
    assert_eq!(app.get("/api/v1/orders", Some(&bob)).await.status(), StatusCode::OK);
    // Public routes are limited per IP.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(app.get("/api/v1/movies", None).await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test]
async fn holds_on_a_show_that_has_started_are_show_started() {
    // A catalog of the demo's shows where one began ten minutes ago.
    let mut data = showgate::domain::catalog::demo(chrono::Utc::now().date_naive());
    let started = data.shows[0].id.clone();
    data.shows[0].start_time = chrono::Utc::now() - chrono::TimeDelta::minutes(10);
    let soon = data.shows[1].id.clone();
    data.shows[1].start_time = chrono::Utc::now() + chrono::TimeDelta::minutes(10);
    let file = std::env::temp_dir().join(format!("sg-started-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, serde_json::to_vec(&data).unwrap()).unwrap();
    let mut settings = crate::helpers::test_settings();
    settings.redis_url = None;
    settings.catalog = Some(file.clone());
    let app = crate::helpers::start(settings).await;
    let alice = app.token("alice").await;
    let seat = app.available_seat(&started).await;
    let body = assert_error(app.hold(&alice, &started, &[&seat]).await, 409, "SHOW_STARTED").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("started"));
    // Nothing was held: the seat is still on the map as it was.
    assert_eq!(app.seat_status(&started, &seat).await, "AVAILABLE");
    // A show starting in ten minutes still sells.
    let seat = app.available_seat(&soon).await;
    assert_eq!(app.hold(&alice, &soon, &[&seat]).await.status(), 201);
    let _ = std::fs::remove_file(file);
}

/// A hold id that names nothing (an unknown show, a UUID we never mint, one
/// minted too long ago to have a record) is 404 before Redis or Postgres is
/// asked: with Redis gone those still answer 404 at once, while a hold id
/// that could be real needs Redis (503).
#[tokio::test]
async fn made_up_hold_ids_cost_redis_nothing() {
    let mut redis = crate::helpers::common::own_redis::OwnRedis::start();
    let url = redis.url();
    let app = crate::helpers::spawn_app_with(|s| s.redis_url = Some(url)).await;
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    redis.kill();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let v7_at = |secs_ago: u64| {
        let t = now - std::time::Duration::from_secs(secs_ago);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, t.as_secs(), t.subsec_nanos());
        uuid::Uuid::new_v7(ts).simple().to_string()
    };
    let made_up = [
        format!("no-such-show.{}", v7_at(0)),
        format!("{show}.{}", uuid::Uuid::new_v4().simple()),
        format!("{show}.{}", v7_at(3 * 24 * 3600)),
        format!("{show}.{}", v7_at(0).replace(|c: char| c.is_ascii_hexdigit(), "z")),
    ];
    for id in &made_up {
        let started = std::time::Instant::now();
        let get = app.get(&format!("/api/v1/holds/{id}"), Some(&alice)).await;
        assert_eq!(get.status(), StatusCode::NOT_FOUND, "GET {id}");
        let del = app.delete(&format!("/api/v1/holds/{id}"), &alice).await;
        assert_eq!(del.status(), StatusCode::NOT_FOUND, "DELETE {id}");
        let order = app.order(&alice, id).await;
        assert_eq!(order.status(), StatusCode::NOT_FOUND, "POST /orders {id}");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{id}: {:?}",
            started.elapsed()
        );
    }
    // A hold id that could be real is asked of Redis, which is gone.
    let real = app
        .get(&format!("/api/v1/holds/{show}.{}", v7_at(5)), Some(&alice))
        .await;
    assert_eq!(real.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A hold naming an UNAVAILABLE seat is answered from this node's replica
/// of the show, like a conflict's `available`: it costs the shared Redis
/// nothing, so it still answers (409, the same conflicts) with Redis gone.
#[tokio::test]
async fn an_unavailable_seat_is_answered_from_the_replica() {
    let mut redis = crate::helpers::common::own_redis::OwnRedis::start();
    let url = redis.url();
    let app = crate::helpers::spawn_app_with(|s| s.redis_url = Some(url)).await;
    let show = app.a_show().await; // pvr-forum-1: A1 is unavailable
    let (alice, bob) = (app.token("alice").await, app.token("bob").await);
    assert_eq!(app.hold(&bob, &show, &["A3"]).await.status(), StatusCode::CREATED);
    assert_eq!(app.seat_status(&show, "A3").await, "HELD", "the node follows the show");
    redis.kill();
    let body = assert_error(app.hold(&alice, &show, &["A1", "A2", "A3"]).await, 409, "SEAT_CONFLICT").await;
    assert_eq!(body["error"]["conflicts"], json!(["A1", "A3"]));
    let available = body["error"]["available"].as_array().unwrap();
    assert!(available.contains(&json!("A2")) && !available.contains(&json!("A3")));
}

//! The waiting room through the API: joining, admission, tokens on holds,
//! abandonment, the lottery, sold out, and the position socket.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, assert_error, next_json, spawn_app, spawn_app_with};

impl TestApp {
    pub async fn put_room(&self, show: &str, body: Value) -> Value {
        let ops = self.token_as("ops", true).await;
        let res = self
            .http
            .put(self.url(&format!("/api/v1/admin/waitrooms/{show}")))
            .bearer_auth(ops)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn room(&self, show: &str) -> Value {
        let ops = self.token_as("ops", true).await;
        self.get(&format!("/api/v1/admin/waitrooms/{show}"), Some(&ops))
            .await
            .json()
            .await
            .unwrap()
    }

    pub async fn join(&self, token: &str, show: &str) -> Value {
        let res = self
            .post(&format!("/api/v1/waitrooms/{show}/join"), Some(token), json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn me(&self, token: &str, show: &str) -> reqwest::Response {
        self.get(&format!("/api/v1/waitrooms/{show}/me"), Some(token)).await
    }

    /// Polls until `cond` holds on the admin view (10 s at most).
    pub async fn wait_room(&self, show: &str, cond: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            let room = self.room(show).await;
            if cond(&room) {
                return room;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("room never reached the condition: {}", self.room(show).await)
    }
}

#[tokio::test]
async fn joining_is_idempotent_and_positions_follow_arrival() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 1, "paused": true}))
        .await;
    let (a, b) = (app.token("alice").await, app.token("bob").await);
    let first = app.join(&a, &show).await;
    assert_eq!(first["state"], "QUEUED");
    assert_eq!(first["position"], 1);
    assert_eq!(app.join(&b, &show).await["position"], 2);
    let again = app.join(&a, &show).await;
    assert_eq!(
        (again["position"].as_u64(), again["queueLength"].as_u64()),
        (Some(1), Some(2)),
        "joining again keeps the place"
    );
    let polled: Value = app.me(&b, &show).await.json().await.unwrap();
    assert_eq!(polled["position"], 2);
    assert_eq!(app.room(&show).await["joinedTotal"], 2);
    // Leaving moves everyone behind up.
    assert_eq!(
        app.http
            .delete(app.url(&format!("/api/v1/waitrooms/{show}/me")))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.me(&b, &show).await.json::<Value>().await.unwrap()["position"], 1);
    assert_error(app.me(&a, &show).await, 404, "NOT_FOUND").await;
    // A show without a room.
    let other = app.a_show().await;
    assert_error(
        app.post(&format!("/api/v1/waitrooms/{other}/join"), Some(&a), json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_admin_api_needs_an_admin_and_checks_its_input() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let path = format!("/api/v1/admin/waitrooms/{show}");
    let user = app.token("alice").await;
    let ops = app.token_as("ops", true).await;
    let put = |token: Option<String>, body: Value| {
        let mut req = app.http.put(app.url(&path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_error(
        put(None, json!({"admitRatePerSecond": 5})).await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_error(
        put(Some(user.clone()), json!({"admitRatePerSecond": 5})).await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    for bad in [
        json!({}),
        json!({"admitRatePerSecond": 0}),
        json!({"admitRatePerSecond": "fast"}),
        json!({"admitRatePerSecond": 5, "burst": 0}),
        json!({"admitRatePerSecond": 5, "preQueue": "LIFO"}),
        json!({"admitRatePerSecond": 5, "nope": 1}),
    ] {
        assert_error(put(Some(ops.clone()), bad).await.unwrap(), 400, "BAD_REQUEST").await;
    }
    let res = app
        .http
        .put(app.url("/api/v1/admin/waitrooms/no-such-show"))
        .bearer_auth(&ops)
        .json(&json!({"admitRatePerSecond": 5}))
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "NOT_FOUND").await;
    let created = app
        .put_room(&show, json!({"admitRatePerSecond": 5, "burst": 7, "maxActive": 100}))
        .await;
    assert_eq!(
        (
            created["admitRatePerSecond"].as_f64(),
            created["burst"].as_u64(),
            created["paused"].as_bool()
        ),
        (Some(5.0), Some(7), Some(false))
    );
    let tuned = app.put_room(&show, json!({"paused": true})).await;
    assert_eq!(
        (
            tuned["admitRatePerSecond"].as_f64(),
            tuned["burst"].as_u64(),
            tuned["paused"].as_bool()
        ),
        (Some(5.0), Some(7), Some(true))
    );
    for field in [
        "queueLength",
        "active",
        "joinedTotal",
        "admittedTotal",
        "abandonedTotal",
        "observedAdmitRate",
        "lotterySeedHash",
    ] {
        assert!(tuned.get(field).is_some(), "{field} missing");
    }
    assert_eq!(
        app.get(&format!("/api/v1/shows/{show}"), None)
            .await
            .json::<Value>()
            .await
            .unwrap()["waitingRoom"],
        true
    );
    // Removing it ungates the show.
    assert_eq!(
        app.http
            .delete(app.url(&path))
            .bearer_auth(&ops)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.hold(&user, &show, &["B1"]).await.status(), StatusCode::CREATED);
    assert_error(
        app.http.delete(app.url(&path)).bearer_auth(&ops).send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn holds_on_a_gated_show_need_this_users_admission_for_this_show() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let other = app.a_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 100})).await;
    let alice = app.token("alice").await;
    app.join(&alice, &show).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let admitted = loop {
        let me: Value = app.me(&alice, &show).await.json().await.unwrap();
        if me["state"] == "ADMITTED" {
            break me;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not admitted within 10 s at 100/s: {me}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let token = admitted["admissionToken"].as_str().unwrap().to_owned();
    assert!(admitted["admissionExpiresAt"].as_str().is_some());
    let hold = |user: String, admission: Option<String>, seat: &'static str| {
        let mut req = app
            .http
            .post(app.url("/api/v1/holds"))
            .bearer_auth(user)
            .json(&json!({"showId": show, "seatIds": [seat]}));
        if let Some(a) = admission {
            req = req.header("X-Admission-Token", a);
        }
        req.send()
    };
    let bob = app.token("bob").await;
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let now = chrono::Utc::now().timestamp_millis();
    let refused = [
        (alice.clone(), None),
        (alice.clone(), Some("not-a-token".to_owned())),
        (
            alice.clone(),
            Some(Tokens::new("forged").admission("alice", &show, now + 60_000).unwrap()),
        ),
        (
            alice.clone(),
            Some(tokens.admission("alice", &show, now - 5_000).unwrap()),
        ),
        (
            alice.clone(),
            Some(tokens.admission("alice", &other, now + 60_000).unwrap()),
        ),
        (bob.clone(), Some(token.clone())),
        (alice.clone(), Some(alice.clone())),
    ];
    for (user, admission) in refused {
        assert_error(hold(user, admission, "D1").await.unwrap(), 403, "ADMISSION_REQUIRED").await;
    }
    assert_eq!(app.seat_status(&show, "D1").await, "AVAILABLE");
    assert_eq!(
        hold(alice.clone(), Some(token), "D1").await.unwrap().status(),
        StatusCode::CREATED
    );
    // Shows without a room need no token.
    assert_eq!(app.hold(&bob, &other, &["B1"]).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_admitted_shopper_who_leaves_gives_up_the_token() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 100, "maxActive": 1}))
        .await;
    let (alice, bob) = (app.token("alice").await, app.token("bob").await);
    app.join(&alice, &show).await;
    app.join(&bob, &show).await;
    let room = app.wait_room(&show, |r| r["admittedTotal"] == 1).await;
    assert_eq!(room["active"], 1);
    let me: Value = app.me(&alice, &show).await.json().await.unwrap();
    assert_eq!(me["state"], "ADMITTED", "{me}");
    let admission = me["admissionToken"].as_str().unwrap().to_owned();
    let res = app
        .http
        .delete(app.url(&format!("/api/v1/waitrooms/{show}/me")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let hold = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&alice)
        .header("X-Admission-Token", &admission)
        .json(&json!({"showId": show, "seatIds": ["E7"]}))
        .send()
        .await
        .unwrap();
    assert_error(hold, 403, "ADMISSION_REQUIRED").await;
    // Her place went to the next in line.
    app.wait_room(&show, |r| r["admittedTotal"] == 2).await;
    assert_eq!(
        app.me(&bob, &show).await.json::<Value>().await.unwrap()["state"],
        "ADMITTED"
    );
}

#[tokio::test]
async fn max_active_is_never_exceeded_and_a_confirmed_order_frees_a_place() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 1000, "burst": 100, "maxActive": 5}))
        .await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        let t = app.token(&format!("fan-{i}")).await;
        app.join(&t, &show).await;
        tokens.push(t);
    }
    let room = app.wait_room(&show, |r| r["admittedTotal"] == 5).await;
    assert_eq!(room["active"], 5);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let room = app.room(&show).await;
        assert!(
            room["active"].as_u64().unwrap() <= 5 && room["admittedTotal"] == 5,
            "{room}"
        );
    }
    // The first fan buys: their admission is used up and the next one is let in.
    let me: Value = app.me(&tokens[0], &show).await.json().await.unwrap();
    let admission = me["admissionToken"].as_str().unwrap();
    let hold: Value = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&tokens[0])
        .header("X-Admission-Token", admission)
        .json(&json!({"showId": show, "seatIds": ["E5"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order: Value = app
        .order(&tokens[0], hold["holdId"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    app.pay(&tokens[0], order["orderId"].as_str().unwrap(), "SUCCESS").await;
    // The used-up admission buys nothing more, though its token has not expired.
    let again = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&tokens[0])
        .header("X-Admission-Token", admission)
        .json(&json!({"showId": show, "seatIds": ["E6"]}))
        .send()
        .await
        .unwrap();
    assert_error(again, 403, "ADMISSION_REQUIRED").await;
    assert_eq!(app.seat_status(&show, "E6").await, "AVAILABLE");
    let room = app.wait_room(&show, |r| r["admittedTotal"] == 6).await;
    assert_eq!(room["active"], 5);
    assert_eq!(
        app.me(&tokens[5], &show).await.json::<Value>().await.unwrap()["state"],
        "ADMITTED"
    );
    assert_eq!(
        app.me(&tokens[6], &show).await.json::<Value>().await.unwrap()["position"],
        1
    );
}

#[tokio::test]
async fn a_shopper_who_stops_polling_is_dropped_and_a_socket_that_comes_back_in_time_keeps_its_place() {
    let app = spawn_app_with(|s| s.abandon_after_seconds = 2).await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 1, "paused": true}))
        .await;
    let (gone, stays, sock) = (
        app.token("gone").await,
        app.token("stays").await,
        app.token("sock").await,
    );
    app.join(&gone, &show).await;
    app.join(&stays, &show).await;
    // "sock" waits on a socket, drops it, and is back a second later.
    let path = format!("/api/v1/waitrooms/{show}/ws?access_token={sock}");
    let mut ws = app.ws(&path).await;
    let mut first = next_json(&mut ws).await;
    assert_eq!(first["outlook"]["aheadOfYou"], 2);
    first.as_object_mut().unwrap().remove("outlook");
    assert_eq!(
        first,
        json!({"type": "position", "position": 3, "queueLength": 3, "etaSeconds": Value::Null})
    );
    drop(ws);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.me(&stays, &show).await; // polling keeps "stays"
    }
    let mut ws = app.ws(&path).await;
    let back = next_json(&mut ws).await;
    // "gone" was dropped after 2 s of silence; "sock" disconnected for 4 s is gone too,
    // so it re-joined at the back, behind "stays".
    assert_eq!(
        app.me(&stays, &show).await.json::<Value>().await.unwrap()["position"],
        1
    );
    assert_error(app.me(&gone, &show).await, 404, "NOT_FOUND").await;
    assert_eq!(back["position"], 2);
    assert!(app.room(&show).await["abandonedTotal"].as_u64().unwrap() >= 2);
    // Now a short blink: back within a second keeps the place.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut ws = app.ws(&path).await;
    assert_eq!(
        next_json(&mut ws).await["position"],
        2,
        "reconnecting in time keeps the place"
    );
}

#[tokio::test]
async fn a_leaver_with_an_open_socket_is_never_told_admitted() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 50, "burst": 5, "paused": true}))
        .await;
    let (leaver, next) = (app.token("leaver").await, app.token("next").await);
    let mut gone = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={leaver}"))
        .await;
    assert_eq!(next_json(&mut gone).await["position"], 1);
    let mut stays = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={next}"))
        .await;
    assert_eq!(next_json(&mut stays).await["position"], 2);
    // The leaver leaves from another tab, the socket still open.
    let res = app
        .http
        .delete(app.url(&format!("/api/v1/waitrooms/{show}/me")))
        .bearer_auth(&leaver)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(next_json(&mut stays).await["position"], 1, "moved up");
    app.put_room(&show, json!({"paused": false})).await;
    let admitted = next_json(&mut stays).await;
    assert_eq!(admitted["type"], "admitted", "{admitted}");
    // The leaver's socket heard nothing but the end: never an admission.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), gone.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], "admitted", "the leaver was admitted: {v}");
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("the leaver's socket was neither closed nor quiet"),
        }
    }
    let room = app.room(&show).await;
    assert_eq!(room["admittedTotal"], 1, "{room}");
    assert_error(app.me(&leaver, &show).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn the_socket_follows_the_queue_to_admission() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(&show, json!({"admitRatePerSecond": 1, "burst": 1, "paused": true}))
        .await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        let t = app.token(&format!("w{i}")).await;
        app.join(&t, &show).await;
        tokens.push(t);
    }
    let mut ws = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={}", tokens[2]))
        .await;
    assert_eq!(next_json(&mut ws).await["position"], 3);
    app.put_room(&show, json!({"paused": false, "admitRatePerSecond": 5}))
        .await;
    let mut seen = vec![3];
    let admitted = loop {
        let msg = next_json(&mut ws).await;
        match msg["type"].as_str().unwrap() {
            "position" => seen.push(msg["position"].as_u64().unwrap()),
            "admitted" => break msg,
            other => panic!("unexpected {other}"),
        }
    };
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "positions only fall: {seen:?}");
    let token = admitted["admissionToken"].as_str().unwrap();
    Tokens::new(DEV_JWT_SECRET).check_admission(token, "w2", &show).unwrap();
    let hold = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&tokens[2])
        .header("X-Admission-Token", token)
        .json(&json!({"showId": show, "seatIds": ["F9"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(hold.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_random_pre_queue_opens_in_verifiable_lottery_order() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let opens = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let room = app
        .put_room(
            &show,
            json!({"admitRatePerSecond": 1, "paused": true, "preQueue": "RANDOM", "opensAt": opens}),
        )
        .await;
    assert_eq!(
        room["lotterySeed"],
        Value::Null,
        "the seed stays secret before the opening"
    );
    let hash = room["lotterySeedHash"].as_str().unwrap().to_owned();
    let mut early = Vec::new();
    for i in 0..12 {
        let user = format!("early-{i}");
        let t = app.token(&user).await;
        let joined = app.join(&t, &show).await;
        assert_eq!(
            (joined["state"].as_str(), joined["position"].clone()),
            (Some("QUEUED"), Value::Null)
        );
        early.push((user, t));
    }
    tokio::time::sleep_until(tokio::time::Instant::now() + (opens - chrono::Utc::now()).to_std().unwrap_or_default())
        .await;
    let room = app
        .wait_room(&show, |r| r["lotterySeed"].is_string() && r["preQueueLength"] == 0)
        .await;
    let seed = room["lotterySeed"].as_str().unwrap();
    assert_eq!(
        showgate::domain::waitroom::seed_hash(seed),
        hash,
        "the revealed seed matches the published hash"
    );
    let late = app.token("late").await;
    assert_eq!(
        app.join(&late, &show).await["position"],
        13,
        "arrivals after the opening queue behind the lottery"
    );
    let mut by_position = Vec::new();
    for (user, t) in &early {
        let me: Value = app.me(t, &show).await.json().await.unwrap();
        by_position.push((me["position"].as_u64().unwrap(), user.clone()));
    }
    by_position.sort();
    let order: Vec<String> = by_position.into_iter().map(|(_, u)| u).collect();
    let expected = showgate::domain::waitroom::lottery_order(seed, early.iter().map(|(u, _)| u.clone()).collect());
    assert_eq!(order, expected);
}

#[tokio::test]
async fn when_every_seat_is_booked_the_queue_is_told_sold_out() {
    let app = spawn_app().await;
    let show = app.a_show().await; // 140 seats, 3 never sold
    // Ten seats a buyer: a shopper's seats of a show are capped.
    app.sell_out_but_in(&show, &[], 10).await;
    app.put_room(&show, json!({"admitRatePerSecond": 10})).await;
    let fan = app.token("fan").await;
    app.join(&fan, &show).await;
    let mut ws = app.ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={fan}")).await;
    let mut got = next_json(&mut ws).await;
    if got["type"] == "position" {
        got = next_json(&mut ws).await;
    }
    assert_eq!(got["type"], "soldOut");
    assert_eq!(got["outlook"]["band"], "SOLD_OUT");
    // Told once: the admission ticks that follow change nothing it shows.
    let again = tokio::time::timeout(Duration::from_millis(1500), next_json(&mut ws)).await;
    assert!(again.is_err(), "told again: {again:?}");
    let me: Value = app.me(&fan, &show).await.json().await.unwrap();
    assert_eq!(me["state"], "SOLD_OUT");
    assert_eq!(
        (me["outlook"]["band"].as_str(), me["outlook"]["chance"].as_f64()),
        (Some("SOLD_OUT"), Some(0.0))
    );
    assert_eq!(app.room(&show).await["admittedTotal"], 0, "admission stopped");
}

/// The last seats sell while shoppers wait on their sockets: each is told
/// `soldOut` once, not again with every tick or re-read that follows.
#[tokio::test]
async fn a_show_selling_out_under_open_sockets_tells_each_once() {
    let app = spawn_app().await;
    let show = app.a_show().await; // 137 sellable seats
    let seats = app.available_seats(&show).await;
    let last: Vec<&str> = seats[seats.len() - 4..].iter().map(String::as_str).collect();
    app.sell_out_but_in(&show, &last, 10).await;
    app.put_room(&show, json!({"admitRatePerSecond": 10, "burst": 1, "maxActive": 1}))
        .await;
    let first = app.token("first").await;
    app.join(&first, &show).await;
    let mut sockets = Vec::new();
    for i in 0..3 {
        let fan = app.token(&format!("fan-{i}")).await;
        app.join(&fan, &show).await;
        sockets.push(app.ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={fan}")).await);
    }
    app.wait_room(&show, |r| r["admittedTotal"] == 1).await;
    let me: Value = app.me(&first, &show).await.json().await.unwrap();
    let admission = me["admissionToken"].as_str().unwrap();
    let hold: Value = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&first)
        .header("X-Admission-Token", admission)
        .json(&json!({"showId": show, "seatIds": last}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order: Value = app
        .order(&first, hold["holdId"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    app.pay(&first, order["orderId"].as_str().unwrap(), "SUCCESS").await;
    for ws in &mut sockets {
        let mut told = 0;
        while let Ok(msg) = tokio::time::timeout(Duration::from_millis(2500), next_json(ws)).await {
            if msg["type"] == "soldOut" {
                told += 1;
                assert_eq!(msg["outlook"]["band"], "SOLD_OUT");
            }
        }
        assert_eq!(told, 1, "told sold out once");
    }
}

/// A seed revealed once (a room without an opening shows it) is never the
/// seed of a later opening: that would tell everyone the lottery's order.
#[tokio::test]
async fn a_new_opening_draws_a_new_lottery_seed() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let open = app.put_room(&show, json!({"admitRatePerSecond": 5})).await;
    let revealed = open["lotterySeed"]
        .as_str()
        .expect("no opening: the seed is shown")
        .to_owned();
    let opens_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = app
        .put_room(&show, json!({"opensAt": opens_at, "preQueue": "RANDOM"}))
        .await;
    assert_eq!(later["lotterySeed"], Value::Null, "hidden until the opening: {later}");
    let hash = later["lotterySeedHash"].as_str().unwrap();
    assert_ne!(hash, showgate::domain::waitroom::seed_hash(&revealed), "a fresh seed");
    // Tuning the room without moving its opening keeps the committed seed.
    let tuned = app.put_room(&show, json!({"admitRatePerSecond": 7})).await;
    assert_eq!(tuned["lotterySeedHash"].as_str(), Some(hash));
}

//! The waiting list end to end, over HTTP and real WebSockets: a sold-out
//! show, shoppers join, a hold expires and its seats go to the first
//! waiter, an unclaimed offer moves to the next, who buys; nobody watching
//! the seat map ever sees the returned seats AVAILABLE.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, Ws, assert_error, next_json, spawn_app_with, spawn_memory_app_with};

impl TestApp {
    pub(crate) async fn wait_join(&self, token: &str, show: &str, quantity: u64) -> reqwest::Response {
        self.post(
            &format!("/api/v1/shows/{show}/waitlist"),
            Some(token),
            json!({"quantity": quantity}),
        )
        .await
    }

    pub(crate) async fn wait_me(&self, token: &str, show: &str) -> reqwest::Response {
        self.get(&format!("/api/v1/shows/{show}/waitlist/me"), Some(token))
            .await
    }

    /// Holds every seat on sale but `keep` for filler shoppers, and turns
    /// those holds into paid orders: the show is sold out for good but for
    /// `keep`.
    pub(crate) async fn sell_out_but(&self, show: &str, keep: &[&str]) {
        self.sell_out_but_in(show, keep, 100).await
    }

    /// Books every available seat but `keep`, `per_buyer` seats a buyer
    /// (at most the app's MAX_SEATS_PER_USER_PER_SHOW).
    pub(crate) async fn sell_out_but_in(&self, show: &str, keep: &[&str], per_buyer: usize) {
        let mut free = self.available_seats(show).await;
        free.retain(|s| !keep.contains(&s.as_str()));
        for (i, chunk) in free.chunks(per_buyer).enumerate() {
            let t = self.token_owned(format!("filler-{i}")).await;
            let seats: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let order = self.pending_order(&t, show, &seats).await;
            let paid = self.pay(&t, order.id(), "SUCCESS").await;
            assert_eq!(paid.status(), StatusCode::OK);
        }
    }
}

/// Reads the seat socket for `dur`, applying each delta to `state` and
/// failing if any of `watched` ever shows AVAILABLE.
async fn watch(ws: &mut Ws, state: &mut HashMap<String, String>, watched: &[&str], dur: Duration) {
    let until = tokio::time::Instant::now() + dur;
    while let Ok(msg) = tokio::time::timeout_at(until, next_json(ws)).await {
        let seats = match msg["type"].as_str() {
            Some("delta") => msg["changes"].as_array().unwrap().clone(),
            Some("snapshot") => msg["seats"].as_array().unwrap().clone(),
            _ => continue,
        };
        for c in seats {
            let id = c["seatId"].as_str().or(c["id"].as_str()).unwrap().to_owned();
            let status = c["status"].as_str().unwrap().to_owned();
            assert!(
                !(watched.contains(&id.as_str()) && status == "AVAILABLE"),
                "{id} was shown AVAILABLE: {msg}"
            );
            state.insert(id, status);
        }
    }
}

/// The next message of a waiting-list socket (pings skipped), within 10 s.
async fn next_wait(ws: &mut Ws) -> Value {
    tokio::time::timeout(Duration::from_secs(10), next_json(ws))
        .await
        .expect("a waiting-list message")
}

async fn the_story(app: TestApp) {
    let show = app.a_show().await;
    let (carol, dave, erin) = (
        app.token("carol").await,
        app.token("dave").await,
        app.token("erin").await,
    );
    // While seats are on sale, nobody waits.
    let body = assert_error(app.wait_join(&carol, &show, 2).await, 409, "SEATS_AVAILABLE").await;
    assert!(body["error"]["freeSeats"].as_u64().unwrap() > 100);

    // Sold out, but for D4-D5, which a returner holds (for 4 s).
    app.sell_out_but(&show, &["D4", "D5"]).await;
    let returner = app.token("returner").await;
    assert_eq!(
        app.hold(&returner, &show, &["D4", "D5"]).await.status(),
        StatusCode::CREATED
    );
    let mut seats_ws = app.ws(&format!("/api/v1/shows/{show}/seats/ws")).await;
    let mut map = HashMap::new();
    watch(&mut seats_ws, &mut map, &["D4", "D5"], Duration::from_millis(300)).await;
    assert!(map.values().all(|s| s != "AVAILABLE"), "sold out");

    let res = app.wait_join(&carol, &show, 2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (v["state"].as_str(), v["position"].as_u64(), v["quantity"].as_u64()),
        (Some("WAITING"), Some(1), Some(2))
    );
    let v: Value = app.wait_join(&dave, &show, 2).await.json().await.unwrap();
    assert_eq!(v["position"], 2);
    let res = app.wait_join(&carol, &show, 2).await;
    assert_eq!(res.status(), StatusCode::OK, "joining again: the same place");
    assert_eq!(res.json::<Value>().await.unwrap()["position"], 1);
    assert_error(app.wait_me(&erin, &show).await, 404, "NOT_FOUND").await;

    let mut carol_ws = app
        .ws(&format!("/api/v1/shows/{show}/waitlist/ws?access_token={carol}"))
        .await;
    let m = next_wait(&mut carol_ws).await;
    assert_eq!(
        (m["type"].as_str(), m["position"].as_u64()),
        (Some("position"), Some(1))
    );

    // The returner's hold expires: the pair is carol's, never on sale.
    let offer = next_wait(&mut carol_ws).await;
    assert_eq!(offer["type"], "offer", "{offer}");
    assert_eq!(offer["seatIds"], json!(["D4", "D5"]));
    let carol_hold = offer["holdId"].as_str().unwrap().to_owned();
    let hold: Value = app
        .get(&format!("/api/v1/holds/{carol_hold}"), Some(&carol))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (hold["status"].as_str(), hold["userId"].as_str()),
        (Some("HELD"), Some("carol"))
    );
    assert_eq!(hold["expiresAt"], offer["expiresAt"]);
    let me: Value = app.wait_me(&dave, &show).await.json().await.unwrap();
    assert_eq!(
        (me["state"].as_str(), me["position"].as_u64()),
        (Some("WAITING"), Some(1))
    );

    // Carol lets it run out (3 s): it moves on to dave.
    let ended = next_wait(&mut carol_ws).await;
    assert_eq!(
        (ended["type"].as_str(), ended["state"].as_str()),
        (Some("ended"), Some("EXPIRED"))
    );
    let me: Value = app.wait_me(&dave, &show).await.json().await.unwrap();
    assert_eq!(me["state"], "OFFERED", "{me}");
    assert_eq!(me["seatIds"], json!(["D4", "D5"]));
    let dave_hold = me["holdId"].as_str().unwrap();
    assert_error(app.order(&carol, &carol_hold).await, 409, "HOLD_EXPIRED").await;

    // Dave buys: an ordinary hold, order and payment.
    let order: Value = app.order(&dave, dave_hold).await.json().await.unwrap();
    assert_eq!(order["seatIds"], json!(["D4", "D5"]));
    let paid: Value = app
        .pay(&dave, order["orderId"].as_str().unwrap(), "SUCCESS")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "CONFIRMED");
    let me: Value = app.wait_me(&dave, &show).await.json().await.unwrap();
    assert_eq!(
        (me["state"].as_str(), &me["orderId"]),
        (Some("ACCEPTED"), &order["orderId"])
    );
    // Every change the seat socket carried meanwhile: never AVAILABLE.
    watch(&mut seats_ws, &mut map, &["D4", "D5"], Duration::from_millis(500)).await;
    assert_eq!((map["D4"].as_str(), map["D5"].as_str()), ("BOOKED", "BOOKED"));
    assert_eq!(app.seat_status(&show, "D4").await, "BOOKED");

    let ops = app.token_as("ops", true).await;
    let figures: Value = app
        .get(&format!("/api/v1/admin/waitlists/{show}"), Some(&ops))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        figures,
        json!({"showId": show, "length": 0, "offersMade": 2, "offersTaken": 1, "offersExpired": 1, "offersDeclined": 0})
    );
    assert_error(
        app.get(&format!("/api/v1/admin/waitlists/{show}"), Some(&carol)).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // The same figures on /metrics, refreshed from the engine every few
    // seconds (the dashboard's waiting-list row).
    let expected = [
        format!("waitlist_length{{show=\"{show}\"}} 0"),
        format!("waitlist_offers_total{{show=\"{show}\",outcome=\"made\"}} 2"),
        format!("waitlist_offers_total{{show=\"{show}\",outcome=\"taken\"}} 1"),
        format!("waitlist_offers_total{{show=\"{show}\",outcome=\"expired\"}} 1"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = app.get("/metrics", None).await.text().await.unwrap();
        let missing: Vec<&String> = expected.iter().filter(|l| !text.lines().any(|t| t == *l)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing:?} not on /metrics:\n{}",
            text.lines()
                .filter(|l| l.starts_with("waitlist"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn short_times(s: &mut showgate::config::Settings) {
    s.hold_ttl_seconds = 4;
    s.waitlist_offer_seconds = 3;
    s.max_seats_per_hold = 100;
}

#[tokio::test]
async fn returned_seats_go_to_the_list_in_order_on_redis_and_postgres() {
    the_story(spawn_app_with(short_times).await).await;
}

#[tokio::test]
async fn returned_seats_go_to_the_list_in_order_in_process() {
    the_story(spawn_memory_app_with(short_times).await).await;
}

#[tokio::test]
async fn bad_requests_are_refused_in_the_contracts_shape() {
    let app = spawn_app_with(|_| {}).await;
    let show = app.a_show().await;
    let carol = app.token("carol").await;
    let path = format!("/api/v1/shows/{show}/waitlist");
    for body in [
        json!({}),
        json!({"quantity": 0}),
        json!({"quantity": 11}),
        json!({"quantity": "2"}),
        json!({"quantity": -1}),
    ] {
        assert_error(app.post(&path, Some(&carol), body).await, 400, "BAD_REQUEST").await;
    }
    assert_error(app.post(&path, None, json!({"quantity": 1})).await, 401, "UNAUTHORIZED").await;
    assert_error(app.wait_join(&carol, "no-such-show", 1).await, 404, "NOT_FOUND").await;
    assert_error(app.delete(&format!("{path}/me"), &carol).await, 404, "NOT_FOUND").await;
    let res = app.get(&format!("{path}/ws?access_token={carol}"), None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not a handshake");
}

#[tokio::test]
async fn on_a_gated_show_an_offer_counts_as_an_admission() {
    let app = spawn_app_with(|s| s.max_seats_per_hold = 100).await;
    let show = app.a_show().await;
    app.sell_out_but(&show, &["D4", "D5"]).await;
    // The show gets a waiting room: holds, and joins of the list, need an admission.
    app.put_room(&show, json!({"admitRatePerSecond": 100, "burst": 10, "paused": true}))
        .await;
    let (returner, carol, erin) = (
        app.token("returner").await,
        app.token("carol").await,
        app.token("erin").await,
    );
    app.join(&returner, &show).await;
    app.join(&carol, &show).await;
    app.put_room(&show, json!({"paused": false})).await;
    let returner_pass = admitted(&app, &returner, &show).await;
    let carol_pass = admitted(&app, &carol, &show).await;
    let hold: Value = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&returner)
        .header("X-Admission-Token", returner_pass)
        .json(&json!({"showId": show, "seatIds": ["D4", "D5"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let joined = app
        .http
        .post(app.url(&format!("/api/v1/shows/{show}/waitlist")))
        .bearer_auth(&carol)
        .header("X-Admission-Token", carol_pass)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::CREATED);
    // The returner gives the pair back: carol is offered one seat; the
    // other is on sale (nobody else waits).
    app.delete(
        &format!("/api/v1/holds/{}", hold["holdId"].as_str().unwrap()),
        &returner,
    )
    .await;
    let me: Value = app.wait_me(&carol, &show).await.json().await.unwrap();
    assert_eq!(me["state"], "OFFERED", "{me}");
    let offered = me["seatIds"][0].as_str().unwrap().to_owned();
    let other = if offered == "D4" { "D5" } else { "D4" };
    // Without an admission token erin may not hold; carol, with her offer and
    // no token, may (here: swap her offered seat for the other one).
    assert_error(app.hold(&erin, &show, &[other]).await, 403, "ADMISSION_REQUIRED").await;
    let res = app.hold(&carol, &show, &[other]).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    // Her offer was replaced by that hold (one hold per user): the offered
    // seat is given back.
    let me: Value = app.wait_me(&carol, &show).await.json().await.unwrap();
    assert_eq!(me["state"], "RELEASED", "{me}");
    assert_eq!(app.seat_status(&show, &offered).await, "AVAILABLE");
}

/// Many shoppers at once: 40 join a sold-out show concurrently, then 10
/// holders of two seats each give them back concurrently. Places are
/// exactly 1..40; the first 10 waiters (by place) get the 20 seats, two
/// each, no seat twice; everyone else still waits, moved up; the seat map
/// agrees.
async fn a_crowd(app: TestApp) {
    let show = app.a_show().await;
    let free = app.available_seats(&show).await;
    let (returned, rest) = free.split_at(20);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    app.sell_out_but(&show, &returned.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert!(!rest.is_empty());
    let holders: Vec<String> = futures::future::join_all((0..10).map(|i| app.token_owned(format!("holder-{i}")))).await;
    let mut holds = Vec::new();
    for (i, t) in holders.iter().enumerate() {
        let pair = [returned[2 * i].as_str(), returned[2 * i + 1].as_str()];
        let hold: Value = app.hold(t, &show, &pair).await.json().await.unwrap();
        holds.push(hold["holdId"].as_str().unwrap().to_owned());
    }
    let waiters: Vec<String> = futures::future::join_all((0..40).map(|i| app.token_owned(format!("waiter-{i}")))).await;
    let joined: Vec<Value> = futures::future::join_all(waiters.iter().map(|t| {
        let (app, show) = (&app, &show);
        async move {
            let res = app.wait_join(t, show, 2).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()
        }
    }))
    .await;
    let mut places: Vec<u64> = joined.iter().map(|v| v["position"].as_u64().unwrap()).collect();
    places.sort();
    assert_eq!(places, (1..=40).collect::<Vec<u64>>(), "every place once");
    let place_of: HashMap<String, u64> = joined
        .iter()
        .map(|v| {
            (
                v["userId"].as_str().unwrap().to_owned(),
                v["position"].as_u64().unwrap(),
            )
        })
        .collect();

    futures::future::join_all(holders.iter().zip(&holds).map(|(t, h)| {
        let app = &app;
        async move {
            let res = app.delete(&format!("/api/v1/holds/{h}"), t).await;
            assert_eq!(res.status(), StatusCode::OK);
        }
    }))
    .await;

    let standings: Vec<(String, Value)> = futures::future::join_all(waiters.iter().enumerate().map(|(i, t)| {
        let (app, show) = (&app, &show);
        async move {
            let v: Value = app.wait_me(t, show).await.json().await.unwrap();
            (format!("waiter-{i}"), v)
        }
    }))
    .await;
    let mut offered_seats = Vec::new();
    for (user, v) in &standings {
        let place = place_of[user];
        if place <= 10 {
            assert_eq!(v["state"], "OFFERED", "{user} at place {place}: {v}");
            let seats = v["seatIds"].as_array().unwrap();
            assert_eq!(seats.len(), 2);
            offered_seats.extend(seats.iter().map(|s| s.as_str().unwrap().to_owned()));
        } else {
            assert_eq!(
                (v["state"].as_str(), v["position"].as_u64()),
                (Some("WAITING"), Some(place - 10)),
                "{user}"
            );
        }
    }
    offered_seats.sort();
    let mut expected: Vec<String> = returned.to_vec();
    expected.sort();
    assert_eq!(offered_seats, expected, "the 20 returned seats, each offered once");
    let map = app.seat_map(&show).await;
    assert!(
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "AVAILABLE"),
        "nothing went on sale while waiters could be served"
    );
}

#[tokio::test]
async fn a_crowd_joins_and_returns_at_once_on_redis_and_postgres() {
    a_crowd(spawn_app_with(|s| s.max_seats_per_hold = 100).await).await;
}

#[tokio::test]
async fn a_crowd_joins_and_returns_at_once_in_process() {
    a_crowd(spawn_memory_app_with(|s| s.max_seats_per_hold = 100).await).await;
}

/// Redis loses everything (FLUSHALL) while shoppers wait: the list is gone
/// with it (it lives in Redis), the sold seats come back from Postgres, the
/// returner's hold (Redis only) does not, so its seats are on sale: a waiter
/// asking again is told to buy them, and can. Never a 5xx.
#[tokio::test]
async fn redis_flushed_the_list_is_lost_and_the_seats_it_waited_for_are_on_sale() {
    let redis = crate::helpers::common::own_redis::OwnRedis::start();
    let app = spawn_app_with(|s| {
        s.redis_url = Some(redis.url());
        s.max_seats_per_hold = 100;
    })
    .await;
    let show = app.a_show().await;
    app.sell_out_but(&show, &["D4", "D5"]).await;
    let returner = app.token("returner").await;
    assert_eq!(
        app.hold(&returner, &show, &["D4", "D5"]).await.status(),
        StatusCode::CREATED
    );
    let carol = app.token("carol").await;
    assert_eq!(app.wait_join(&carol, &show, 2).await.status(), StatusCode::CREATED);

    assert!(redis.command("FLUSHALL").unwrap().starts_with("+OK"));
    assert_error(app.wait_me(&carol, &show).await, 404, "NOT_FOUND").await;
    // Her join again rebuilds the show from the record first: the booked
    // seats are back, the hold is not, so the pair is for sale.
    let body = assert_error(app.wait_join(&carol, &show, 2).await, 409, "SEATS_AVAILABLE").await;
    assert_eq!(body["error"]["freeSeats"], 2);
    assert_eq!(app.seat_status(&show, "A2").await, "BOOKED");
    assert_eq!(
        app.hold(&carol, &show, &["D4", "D5"]).await.status(),
        StatusCode::CREATED
    );
}

/// Waits until the room says the shopper is admitted; answers the
/// admission token.
async fn admitted(app: &TestApp, token: &str, show: &str) -> String {
    for _ in 0..200 {
        let me: Value = app.me(token, show).await.json().await.unwrap();
        if me["state"] == "ADMITTED" {
            return me["admissionToken"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not admitted within 10 s: {}", app.room(show).await)
}

/// The list on a gated show is no side door: joining needs the room's
/// admission (the page sends it), the offer then stands in for it, and a
/// shopper whose offer became an order does not come round again.
async fn a_gated_show_lets_only_admitted_shoppers_on_its_list(app: TestApp) {
    let show = app.a_show().await;
    let seat = app.available_seat(&show).await;
    app.sell_out_but(&show, &[&seat]).await;
    app.put_room(&show, json!({"admitRatePerSecond": 100, "burst": 10, "paused": true}))
        .await;
    let (keeper, alice, bot) = (
        app.token("keeper").await,
        app.token("alice").await,
        app.token("bot").await,
    );
    app.join(&keeper, &show).await;
    app.join(&alice, &show).await;
    app.put_room(&show, json!({"paused": false})).await;
    let keeper_pass = admitted(&app, &keeper, &show).await;
    let alice_pass = admitted(&app, &alice, &show).await;
    let held = app
        .http
        .post(app.url("/api/v1/holds"))
        .bearer_auth(&keeper)
        .header("X-Admission-Token", &keeper_pass)
        .json(&json!({"showId": show, "seatIds": [seat]}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::CREATED);

    let join = |token: String, pass: Option<String>| {
        let mut req = app
            .http
            .post(app.url(&format!("/api/v1/shows/{show}/waitlist")))
            .bearer_auth(token)
            .json(&json!({"quantity": 1}));
        if let Some(p) = pass {
            req = req.header("X-Admission-Token", p);
        }
        req.send()
    };
    // A bot that never queued, or that borrows alice's pass, stays off the list.
    assert_error(join(bot.clone(), None).await.unwrap(), 403, "ADMISSION_REQUIRED").await;
    assert_error(
        join(bot.clone(), Some(alice_pass.clone())).await.unwrap(),
        403,
        "ADMISSION_REQUIRED",
    )
    .await;
    assert_eq!(app.wait_me(&bot, &show).await.status(), StatusCode::NOT_FOUND);
    let joined = join(alice.clone(), Some(alice_pass.clone())).await.unwrap();
    assert_eq!(joined.status(), StatusCode::CREATED);

    // The keeper's hold runs out: its seat is offered to alice, who buys it.
    let offer = loop {
        let me: Value = app.wait_me(&alice, &show).await.json().await.unwrap();
        if me["state"] == "OFFERED" {
            break me;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(offer["seatIds"], json!([seat]));
    let order = app.order(&alice, offer["holdId"].as_str().unwrap()).await;
    assert_eq!(order.status(), StatusCode::CREATED);
    // The list served her once: with her pass still valid, she may not join again.
    let again = join(alice.clone(), Some(alice_pass)).await.unwrap();
    let body = assert_error(again, 409, "INVALID_STATE").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("order"), "{body}");
}

#[tokio::test]
async fn a_gated_list_needs_an_admission_on_redis_and_postgres() {
    a_gated_show_lets_only_admitted_shoppers_on_its_list(spawn_app_with(short_times).await).await;
}

#[tokio::test]
async fn a_gated_list_needs_an_admission_in_process() {
    a_gated_show_lets_only_admitted_shoppers_on_its_list(spawn_memory_app_with(short_times).await).await;
}

/// An unclaimed offer that runs out while another shopper keeps asking for
/// its seats by id goes to the next waiter, not to the one asking: the
/// request that finds the seats free serves the list before it takes any.
async fn a_lapsed_offer_reaches_the_next_waiter_past_a_shopper_asking_for_it(app: TestApp) {
    let show = app.a_show().await;
    let seat = app.available_seat(&show).await;
    app.sell_out_but(&show, &[&seat]).await;
    let (keeper, first, second, rival) = (
        app.token("keeper").await,
        app.token("first").await,
        app.token("second").await,
        app.token("rival").await,
    );
    let held: Value = app.hold(&keeper, &show, &[&seat]).await.json().await.unwrap();
    assert_eq!(app.wait_join(&first, &show, 1).await.status(), StatusCode::CREATED);
    assert_eq!(app.wait_join(&second, &show, 1).await.status(), StatusCode::CREATED);
    app.delete(&format!("/api/v1/holds/{}", held["holdId"].as_str().unwrap()), &keeper)
        .await;
    let me: Value = app.wait_me(&first, &show).await.json().await.unwrap();
    assert_eq!(
        (me["state"].as_str(), me["seatIds"][0].as_str()),
        (Some("OFFERED"), Some(seat.as_str()))
    );
    // The first waiter lets it run out (3 s) while the rival asks for the
    // seat every 20 ms, through the expiry and after it.
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut rival_got = Vec::new();
    let mut offered_at = None;
    while tokio::time::Instant::now() < until {
        let res = app.hold(&rival, &show, &[&seat]).await;
        if res.status() == StatusCode::CREATED {
            rival_got.push(res.text().await.unwrap());
        }
        let me: Value = app.wait_me(&second, &show).await.json().await.unwrap();
        if me["state"] == "OFFERED" {
            offered_at = Some(tokio::time::Instant::now());
            assert_eq!(me["seatIds"], json!([seat]));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rival_got.is_empty(),
        "the rival took the lapsed offer's seat: {rival_got:?}"
    );
    assert!(
        offered_at.is_some(),
        "the next waiter was not offered the seat within 3 s of the lapse"
    );
}

#[tokio::test]
async fn a_lapsed_offer_reaches_the_next_waiter_in_process() {
    a_lapsed_offer_reaches_the_next_waiter_past_a_shopper_asking_for_it(spawn_memory_app_with(short_times).await).await;
}

#[tokio::test]
async fn a_lapsed_offer_reaches_the_next_waiter_on_redis_and_postgres() {
    a_lapsed_offer_reaches_the_next_waiter_past_a_shopper_asking_for_it(spawn_app_with(short_times).await).await;
}

//! The honest queue through the API: every standing carries the shopper's
//! outlook, the queue socket hears it change as the sale goes on, and the
//! admin view shows the sale's funnel.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, next_json, spawn_app, spawn_memory_app};

const BANDS: [&str; 4] = ["LIKELY", "POSSIBLE", "UNLIKELY", "SOLD_OUT"];

/// The contract's shape of `outlook`, checked field by field.
fn outlook_of(standing: &Value) -> &Value {
    let o = &standing["outlook"];
    let keys: Vec<&str> = o.as_object().expect("an outlook").keys().map(String::as_str).collect();
    for key in ["chance", "band", "seatsLeft", "aheadOfYou", "soldOutAt", "basis"] {
        assert!(keys.contains(&key), "outlook lacks {key}: {o}");
    }
    let chance = o["chance"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&chance), "{o}");
    assert!(BANDS.contains(&o["band"].as_str().unwrap()), "{o}");
    assert!(["prior", "observed"].contains(&o["basis"].as_str().unwrap()), "{o}");
    assert!(o["seatsLeft"].as_i64().unwrap() >= 0);
    assert!(o["soldOutAt"].is_null() || o["soldOutAt"].is_string());
    o
}

impl TestApp {
    /// A hold of these seats with the shopper's admission: its id.
    async fn admitted_hold(&self, token: &str, admission: &str, show: &str, seats: &[&str]) -> String {
        let res = self
            .http
            .post(self.url("/api/v1/holds"))
            .bearer_auth(token)
            .header("X-Admission-Token", admission)
            .json(&json!({"showId": show, "seatIds": seats}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["holdId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn buy(&self, token: &str, admission: &str, show: &str, seats: &[&str]) {
        let hold = self.admitted_hold(token, admission, show, seats).await;
        let order: Value = self.order(token, &hold).await.json().await.unwrap();
        let paid = self.pay(token, order["orderId"].as_str().unwrap(), "SUCCESS").await;
        assert_eq!(paid.status(), StatusCode::OK);
    }
}

async fn every_standing_carries_the_outlook_and_the_admin_view_the_funnel(app: TestApp) {
    let show = app.a_show().await; // 137 sellable seats
    app.put_room(&show, json!({"admitRatePerSecond": 1, "burst": 1, "paused": true}))
        .await;
    let mut tokens = Vec::new();
    let mut chances = Vec::new();
    for i in 0..150 {
        let t = app.token(&format!("fan-{i}")).await;
        let joined = app.join(&t, &show).await;
        let o = outlook_of(&joined);
        assert_eq!(o["aheadOfYou"], i, "{joined}");
        assert_eq!(o["seatsLeft"], 137);
        assert_eq!(o["basis"], "prior", "no sale data yet");
        chances.push(o["chance"].as_f64().unwrap());
        tokens.push(t);
    }
    assert!(
        chances.windows(2).all(|w| w[1] <= w[0]),
        "the chance falls down the queue"
    );
    // 137 seats at the prior's ~1.9 a shopper: the head is safe, the tail is not.
    let me: Value = app.me(&tokens[0], &show).await.json().await.unwrap();
    assert_eq!(outlook_of(&me)["band"], "LIKELY");
    let me: Value = app.me(&tokens[149], &show).await.json().await.unwrap();
    assert_eq!(outlook_of(&me)["band"], "UNLIKELY", "{me}");
    // The socket's position message carries it too.
    let mut ws = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={}", tokens[9]))
        .await;
    let msg = next_json(&mut ws).await;
    assert_eq!(
        (msg["type"].as_str(), msg["position"].as_u64()),
        (Some("position"), Some(10))
    );
    assert_eq!(outlook_of(&msg)["aheadOfYou"], 9);

    // The first shopper is admitted, holds two seats, orders and pays.
    app.put_room(&show, json!({"paused": false, "admitRatePerSecond": 1, "burst": 1}))
        .await;
    app.wait_room(&show, |r| r["admittedTotal"] == 1).await;
    app.put_room(&show, json!({"paused": true})).await;
    let me: Value = app.me(&tokens[0], &show).await.json().await.unwrap();
    assert_eq!(me["state"], "ADMITTED");
    let o = outlook_of(&me);
    assert_eq!((o["chance"].as_f64(), o["band"].as_str()), (Some(1.0), Some("LIKELY")));
    let admission = me["admissionToken"].as_str().unwrap().to_owned();
    app.buy(&tokens[0], &admission, &show, &["E5", "E6"]).await;
    let room = app
        .wait_room(&show, |r| r["funnel"]["paid"] == 1 && r["seatsLeft"] == 135)
        .await;
    assert_eq!(
        room["funnel"],
        json!({"queued": 150, "admitted": 1, "held": 1, "ordered": 1, "paid": 1, "abandoned": 0}),
        "{room}"
    );
    let bands = &room["outlookBands"];
    let total: f64 = BANDS.iter().map(|b| bands[*b].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-6, "{bands}");
    assert!(bands["LIKELY"].as_f64().unwrap() > 0.0 && bands["UNLIKELY"].as_f64().unwrap() > 0.0);
    assert!(["prior", "observed"].contains(&room["outlookBasis"].as_str().unwrap()));
    // A queued shopper leaving is counted as abandoned.
    let left = app
        .http
        .delete(app.url(&format!("/api/v1/waitrooms/{show}/me")))
        .bearer_auth(&tokens[149])
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::OK);
    app.wait_room(&show, |r| r["funnel"]["abandoned"] == 1).await;
}

#[tokio::test]
async fn every_standing_carries_the_outlook_and_the_admin_view_the_funnel_on_redis() {
    every_standing_carries_the_outlook_and_the_admin_view_the_funnel(spawn_app().await).await
}

#[tokio::test]
async fn every_standing_carries_the_outlook_and_the_admin_view_the_funnel_in_memory() {
    every_standing_carries_the_outlook_and_the_admin_view_the_funnel(spawn_memory_app().await).await
}

/// Seats sell while a shopper waits at the same place: the socket tells
/// them their chance fell (a new band), though their position never moved.
#[tokio::test]
async fn a_queued_socket_hears_its_chance_fall_as_seats_sell_without_moving() {
    let app = spawn_app().await;
    let show = app.a_show().await; // 137 sellable seats
    app.put_room(
        &show,
        json!({"admitRatePerSecond": 1000, "burst": 1000, "maxActive": 30, "paused": true}),
    )
    .await;
    let mut tokens = Vec::new();
    for i in 0..45 {
        let t = app.token(&format!("fan-{i}")).await;
        app.join(&t, &show).await;
        tokens.push(t);
    }
    app.put_room(&show, json!({"paused": false})).await;
    app.wait_room(&show, |r| r["admittedTotal"] == 30).await;
    app.put_room(&show, json!({"paused": true})).await;
    let last = &tokens[44];
    let mut ws = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={last}"))
        .await;
    let first = next_json(&mut ws).await;
    assert_eq!(first["position"], 15);
    let before = outlook_of(&first)["chance"].as_f64().unwrap();
    assert!(before >= 0.7, "15th of 45 for 137 seats: {first}");
    // The thirty admitted buy four seats each: 120 of 137 gone.
    let seats = app.available_seats(&show).await;
    for (t, four) in tokens.iter().zip(seats.chunks(4)).take(30) {
        let me: Value = app.me(t, &show).await.json().await.unwrap();
        let admission = me["admissionToken"].as_str().unwrap().to_owned();
        let four: Vec<&str> = four.iter().map(String::as_str).collect();
        app.buy(t, &admission, &show, &four).await;
    }
    let told = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let msg = next_json(&mut ws).await;
            if msg["type"] == "position" && outlook_of(&msg)["band"] == "UNLIKELY" {
                break msg;
            }
        }
    })
    .await
    .expect("the socket was told its chance fell");
    assert_eq!(told["position"], 15, "the place never moved: {told}");
    let o = outlook_of(&told);
    assert!(o["seatsLeft"].as_i64().unwrap() < 137, "{o}");
    assert!(o["chance"].as_f64().unwrap() < before);
    // Once every buyer has paid, polling says the same with the sale's own data.
    let mut polled = Value::Null;
    for _ in 0..50 {
        polled = app.me(last, &show).await.json().await.unwrap();
        if polled["outlook"]["seatsLeft"] == 17 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = outlook_of(&polled);
    assert_eq!(
        (o["seatsLeft"].as_i64(), o["band"].as_str()),
        (Some(17), Some("UNLIKELY")),
        "{polled}"
    );
    assert_eq!(o["basis"], "observed", "thirty buyers of four: the sale's own data");
}

//! The waiting room's proof of work (`challengeBits`): a new joiner needs a
//! solved challenge of their own for the show, once; a shopper in the room
//! joins again without one; the socket never makes a place around it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use showgate::domain::pow;

use crate::helpers::{TestApp, assert_error, spawn_app};

/// What the queue page's worker does.
fn solve(challenge: &str, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| pow::solves(challenge, n, bits))
        .unwrap()
}

impl TestApp {
    async fn challenge(&self, token: &str, show: &str) -> Value {
        let res = self
            .get(&format!("/api/v1/waitrooms/{show}/challenge"), Some(token))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn join_with(&self, token: &str, show: &str, body: Value) -> reqwest::Response {
        self.post(&format!("/api/v1/waitrooms/{show}/join"), Some(token), body)
            .await
    }
}

#[tokio::test]
async fn a_new_joiner_pays_once_with_their_own_fresh_challenge() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    let other_show = app.a_show().await;
    let room = app
        .put_room(
            &show,
            json!({"admitRatePerSecond": 1, "paused": true, "challengeBits": 10}),
        )
        .await;
    assert_eq!(room["challengeBits"], 10);
    app.put_room(
        &other_show,
        json!({"admitRatePerSecond": 1, "paused": true, "challengeBits": 10}),
    )
    .await;
    let (alice, bob) = (app.token("alice").await, app.token("bob").await);

    assert_error(app.join_with(&alice, &show, json!({})).await, 403, "CHALLENGE_REQUIRED").await;
    let c = app.challenge(&alice, &show).await;
    assert_eq!(c["bits"], 10);
    let challenge = c["challenge"].as_str().unwrap().to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(c["expiresAt"].as_str().unwrap()).unwrap();
    let left = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((290..=300).contains(&left), "five minutes: {left}");

    let nonce = solve(&challenge, 10);
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !pow::solves(&challenge, n, 10))
        .unwrap();
    let body = |nonce: &str| json!({"challenge": challenge, "nonce": nonce});
    assert_error(
        app.join_with(&alice, &show, body(&wrong)).await,
        403,
        "CHALLENGE_FAILED",
    )
    .await;
    assert_error(app.join_with(&bob, &show, body(&nonce)).await, 403, "CHALLENGE_FAILED").await;
    assert_error(
        app.join_with(&alice, &other_show, body(&nonce)).await,
        403,
        "CHALLENGE_FAILED",
    )
    .await;
    let joined = app.join_with(&alice, &show, body(&nonce)).await;
    assert_eq!(joined.status(), 200);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(
        (joined["state"].as_str(), joined["position"].as_u64()),
        (Some("QUEUED"), Some(1))
    );
    // In the room: joining again needs nothing and keeps the place.
    assert_eq!(app.join(&alice, &show).await["position"], 1);

    // Spent: after leaving, the same solved challenge does not open the door again.
    assert_eq!(
        app.delete(&format!("/api/v1/waitrooms/{show}/me"), &alice)
            .await
            .status(),
        200
    );
    assert_error(
        app.join_with(&alice, &show, body(&nonce)).await,
        403,
        "CHALLENGE_FAILED",
    )
    .await;

    // Expired: a challenge signed with the server's key, five minutes old.
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let old = tokens
        .challenge("alice", &show, 10, chrono::Utc::now().timestamp_millis() - 1_000)
        .unwrap();
    let old_body = json!({"challenge": old, "nonce": solve(&old, 10)});
    assert_error(app.join_with(&alice, &show, old_body).await, 403, "CHALLENGE_FAILED").await;

    // Ops raise the bits: a challenge issued at fewer no longer counts.
    let cheap = app.challenge(&bob, &show).await["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let cheap_nonce = solve(&cheap, 10);
    app.put_room(&show, json!({"challengeBits": 12})).await;
    let cheap_body = json!({"challenge": cheap, "nonce": cheap_nonce});
    assert_error(app.join_with(&bob, &show, cheap_body).await, 403, "CHALLENGE_FAILED").await;
    let fresh = app.challenge(&bob, &show).await;
    assert_eq!(fresh["bits"], 12);
    let fresh = fresh["challenge"].as_str().unwrap().to_owned();
    // A whole-number nonce counts as its digits.
    let n: u64 = solve(&fresh, 12).parse().unwrap();
    let res = app
        .join_with(&bob, &show, json!({"challenge": fresh, "nonce": n}))
        .await;
    assert_eq!(res.status(), 200);

    // The socket follows a place won by `join`; it never makes one.
    let carol = app.token("carol").await;
    let err = tokio_tungstenite::connect_async(format!(
        "ws://{}/api/v1/waitrooms/{show}/ws?access_token={carol}",
        app.addr
    ))
    .await
    .expect_err("no place, no socket");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 403),
        other => panic!("{other:?}"),
    }
    let mut ws = app.ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={bob}")).await;
    let first = crate::helpers::next_json(&mut ws).await;
    assert_eq!(
        (first["type"].as_str(), first["position"].as_u64()),
        (Some("position"), Some(1))
    );

    let ops = app.token_as("ops", true).await;
    let res = app
        .http
        .put(app.url(&format!("/api/v1/admin/waitrooms/{show}")))
        .bearer_auth(ops)
        .json(&json!({"challengeBits": 27}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "BAD_REQUEST").await;
}

#[tokio::test]
async fn two_joins_racing_with_one_challenge_let_one_through() {
    let app = spawn_app().await;
    let show = app.big_show().await;
    app.put_room(
        &show,
        json!({"admitRatePerSecond": 1, "paused": true, "challengeBits": 8}),
    )
    .await;
    let alice = app.token("alice").await;
    let c = app.challenge(&alice, &show).await["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"challenge": c, "nonce": solve(&c, 8)});
    let tries = (0..20).map(|_| app.join_with(&alice, &show, body.clone()));
    let answers = futures::future::join_all(tries).await;
    let ok = answers.iter().filter(|r| r.status() == 200).count();
    let failed = answers.iter().filter(|r| r.status() == 403).count();
    // The first spend wins; every other try either found her in the room
    // (200, the same place) or found the challenge spent (403).
    assert!(ok >= 1 && ok + failed == 20, "{ok} + {failed}");
    let room = app.room(&show).await;
    assert_eq!(room["joinedTotal"], 1, "one place, however the tries interleaved");
}

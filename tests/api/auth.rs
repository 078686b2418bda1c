//! Bearer tokens: what is refused, and the development route.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::json;
use showgate::config::DEV_JWT_SECRET;

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

fn sign(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
    encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn authenticated_routes_refuse_missing_and_bad_tokens() {
    let app = spawn_app().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let bad = [
        sign(Algorithm::HS256, "another-secret", json!({"sub": "alice", "exp": exp})),
        sign(
            Algorithm::HS256,
            DEV_JWT_SECRET,
            json!({"sub": "alice", "exp": exp - 7200}),
        ),
        sign(Algorithm::HS256, DEV_JWT_SECRET, json!({"exp": exp})),
        sign(Algorithm::HS256, DEV_JWT_SECRET, json!({"sub": "alice"})),
        sign(Algorithm::HS256, DEV_JWT_SECRET, json!({"sub": 42, "exp": exp})),
        sign(Algorithm::HS384, DEV_JWT_SECRET, json!({"sub": "alice", "exp": exp})),
        // alg "none", unsigned.
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.".to_owned(),
        "not-a-jwt".to_owned(),
    ];
    for token in &bad {
        assert_error(app.get("/api/v1/orders", Some(token)).await, 401, "UNAUTHORIZED").await;
        assert_error(app.hold(token, "x", &["A1"]).await, 401, "UNAUTHORIZED").await;
    }
    assert_error(app.get("/api/v1/orders", None).await, 401, "UNAUTHORIZED").await;
    let res = app
        .http
        .get(app.url("/api/v1/orders"))
        .header("authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHORIZED").await;
    let good = sign(Algorithm::HS256, DEV_JWT_SECRET, json!({"sub": "alice", "exp": exp}));
    assert_eq!(app.get("/api/v1/orders", Some(&good)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_a_real_secret_the_dev_route_does_not_exist_and_only_its_tokens_pass() {
    let app = spawn_app_with(|s| s.jwt_secret = Some("a-real-secret-for-this-test-only".into())).await;
    let res = app.post("/api/v1/dev/token", None, json!({"userId": "alice"})).await;
    assert_error(res, 404, "NOT_FOUND").await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let dev = sign(Algorithm::HS256, DEV_JWT_SECRET, json!({"sub": "alice", "exp": exp}));
    assert_error(app.get("/api/v1/orders", Some(&dev)).await, 401, "UNAUTHORIZED").await;
    let real = sign(
        Algorithm::HS256,
        "a-real-secret-for-this-test-only",
        json!({"sub": "alice", "exp": exp}),
    );
    assert_eq!(app.get("/api/v1/orders", Some(&real)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_dev_route_checks_its_input() {
    let app = spawn_app().await;
    assert_error(
        app.post("/api/v1/dev/token", None, json!({"userId": ""})).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_error(
        app.post("/api/v1/dev/token", None, json!({"admin": true})).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_error(
        app.post("/api/v1/dev/token", None, json!({"userId": 7})).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn only_user_tokens_pass_as_bearer_tokens() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    // An admission token (ours, valid, for this very show) is not a login.
    let admission = sign(
        Algorithm::HS256,
        DEV_JWT_SECRET,
        json!({"sub": "alice", "show": show, "exp": exp, "typ": "admission"}),
    );
    let other = sign(
        Algorithm::HS256,
        DEV_JWT_SECRET,
        json!({"sub": "alice", "exp": exp, "typ": "refresh"}),
    );
    for token in [&admission, &other] {
        assert_error(app.get("/api/v1/orders", Some(token)).await, 401, "UNAUTHORIZED").await;
        assert_error(app.hold(token, &show, &["A1"]).await, 401, "UNAUTHORIZED").await;
    }
    // `typ: "user"` is a user token like one without `typ`.
    let user = sign(
        Algorithm::HS256,
        DEV_JWT_SECRET,
        json!({"sub": "alice", "exp": exp, "typ": "user"}),
    );
    assert_eq!(app.get("/api/v1/orders", Some(&user)).await.status(), StatusCode::OK);
    let seat = app.available_seat(&show).await;
    let res = app.hold(&user, &show, &[&seat]).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn access_token_in_the_query_counts_only_on_websocket_routes() {
    let app = spawn_app().await;
    let show = app.a_show().await;
    let token = app.token("alice").await;
    let res = app
        .http
        .get(app.url(&format!("/api/v1/orders?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHORIZED").await;
    let res = app
        .http
        .post(app.url(&format!("/api/v1/waitrooms/{show}/join?access_token={token}")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHORIZED").await;
    // The queue socket takes it (a browser cannot set headers on a WebSocket).
    app.put_room(&show, json!({"admitRatePerSecond": 1, "paused": true}))
        .await;
    let mut ws = app
        .ws(&format!("/api/v1/waitrooms/{show}/ws?access_token={token}"))
        .await;
    let first = crate::helpers::next_json(&mut ws).await;
    assert_eq!(first["type"], "position", "{first}");
    assert_eq!(first["position"], 1);
}

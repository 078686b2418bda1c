//! Health, readiness, metrics and the development token route.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json as JsonResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::AppState;
use crate::auth::valid_user_id;
use crate::error::{Error, Result};
use crate::http::extract::Json;

/// How long a readiness probe waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// Lifetime of development tokens.
const DEV_TOKEN_TTL_SECONDS: i64 = 24 * 3600;

pub fn router(dev_tokens: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/healthz", get(|| async { JsonResponse(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics));
    if dev_tokens {
        r.route("/api/v1/dev/token", post(dev_token))
    } else {
        r
    }
}

async fn ready(State(app): State<AppState>) -> Response {
    let health = &app.health;
    if health.draining.load(std::sync::atomic::Ordering::Acquire) {
        let body = json!({"error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": "not ready: this node is shutting down",
            "down": ["draining"],
        }});
        return (StatusCode::SERVICE_UNAVAILABLE, JsonResponse(body)).into_response();
    }
    let redis = if health.locks.name() == "redis" {
        Some(
            tokio::time::timeout(READY_TIMEOUT, health.locks.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    } else {
        None
    };
    let postgres = if health.records.name() == "postgres" {
        Some(
            tokio::time::timeout(READY_TIMEOUT, health.records.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    } else {
        None
    };
    let rooms = Some(health.rooms.loaded());
    let down: Vec<&str> = [("redis", redis), ("postgres", postgres), ("waitrooms", rooms)]
        .into_iter()
        .filter(|(_, ok)| *ok == Some(false))
        .map(|(name, _)| name)
        .collect();
    let state = |ok: Option<bool>| match ok {
        None => "not configured",
        Some(true) => "ok",
        Some(false) => "down",
    };
    if down.is_empty() {
        JsonResponse(json!({"status": "ready", "checks": {
            "redis": state(redis), "postgres": state(postgres), "waitrooms": state(rooms),
        }}))
        .into_response()
    } else {
        let body = json!({"error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": format!("not ready: {} down", down.join(" and ")),
            "down": down,
        }});
        (StatusCode::SERVICE_UNAVAILABLE, JsonResponse(body)).into_response()
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevTokenRequest {
    user_id: String,
    #[serde(default)]
    admin: bool,
}

async fn dev_token(State(app): State<AppState>, Json(req): Json<DevTokenRequest>) -> Result<JsonResponse<Value>> {
    if !valid_user_id(&req.user_id) {
        return Err(Error::BadRequest(
            "userId must be 1 to 128 characters without control characters".into(),
        ));
    }
    let token = app.auth.tokens.issue(&req.user_id, req.admin, DEV_TOKEN_TTL_SECONDS)?;
    Ok(JsonResponse(json!({ "token": token })))
}

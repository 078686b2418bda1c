//! Health, readiness, metrics and the development token route.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json as JsonResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use crate::auth::valid_user_id;
use crate::error::{Error, Result};
use crate::http::extract::Json;
use crate::http::openapi::{self, ErrorBody};

/// How long a readiness probe waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// Lifetime of development tokens.
const DEV_TOKEN_TTL_SECONDS: i64 = 24 * 3600;

pub fn router(dev_tokens: bool) -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi::serve));
    if dev_tokens { r.routes(routes!(dev_token)) } else { r }
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = Health)))]
async fn health() -> JsonResponse<Health> {
    JsonResponse(Health { status: "ok" })
}

/// Each dependency: `ok`, `down`, or `not configured`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Checks {
    redis: &'static str,
    /// The node's Redis subscription connection: `ok`, `reconnecting` (a
    /// lost or silent one is being replaced) or `not configured`.
    redis_pubsub: &'static str,
    postgres: &'static str,
    waitrooms: &'static str,
}

#[derive(Serialize, ToSchema)]
struct Ready {
    /// Always `ready`.
    status: &'static str,
    checks: Checks,
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "Redis and Postgres (where configured) answer and the rooms are loaded", body = Ready),
        (status = 503, description = "Something is down (named in `down`), or the node is draining", body = ErrorBody),
    ))]
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
    // Named on its own only while Redis answers: when it does not, "redis"
    // says it all.
    let pubsub = health
        .redis
        .as_ref()
        .map(|r| r.subscriptions.status() == "ok" || redis == Some(false));
    let down: Vec<&str> = [
        ("redis", redis),
        ("redis-pubsub", pubsub),
        ("postgres", postgres),
        ("waitrooms", rooms),
    ]
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
        JsonResponse(Ready {
            status: "ready",
            checks: Checks {
                redis: state(redis),
                redis_pubsub: match &health.redis {
                    None => "not configured",
                    Some(r) => r.subscriptions.status(),
                },
                postgres: state(postgres),
                waitrooms: state(rooms),
            },
        })
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

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text (names in docs/operations.md)", content_type = "text/plain", body = String)))]
async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DevTokenRequest {
    /// 1 to 128 characters, no control characters.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    user_id: String,
    #[serde(default)]
    admin: bool,
}

#[derive(Serialize, ToSchema)]
struct DevToken {
    /// A bearer token for 24 hours.
    token: String,
}

/// Only while the server runs with its development secret (no `JWT_SECRET`).
#[utoipa::path(post, path = "/api/v1/dev/token", operation_id = "devToken", tag = "operations",
    request_body = DevTokenRequest,
    responses((status = 200, description = "A token signed with the development secret", body = DevToken)))]
async fn dev_token(State(app): State<AppState>, Json(req): Json<DevTokenRequest>) -> Result<JsonResponse<DevToken>> {
    if !valid_user_id(&req.user_id) {
        return Err(Error::BadRequest(
            "userId must be 1 to 128 characters without control characters".into(),
        ));
    }
    let token = app.auth.tokens.issue(&req.user_id, req.admin, DEV_TOKEN_TTL_SECONDS)?;
    Ok(JsonResponse(DevToken { token }))
}

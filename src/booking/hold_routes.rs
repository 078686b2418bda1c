//! Seat holds (create, read, release) and the seat map.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json as JsonResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::{Booking, views};
use crate::domain::catalog::Catalog;
use crate::error::Result;
use crate::http::extract::{Auth, AuthState, HoldPath, Json};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Booking>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    AuthState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/holds", post(create))
        .route("/api/v1/holds/{hold_id}", get(read).delete(release))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HoldRequest {
    show_id: String,
    seat_ids: Vec<String>,
}

/// The `X-Admission-Token` of a hold request (gated shows).
fn admission_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-admission-token").and_then(|v| v.to_str().ok())
}

async fn create(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    headers: HeaderMap,
    Json(req): Json<HoldRequest>,
) -> Result<(StatusCode, JsonResponse<Value>)> {
    let hold = booking
        .hold(&user.id, &req.show_id, admission_token(&headers), req.seat_ids)
        .await?;
    Ok((StatusCode::CREATED, JsonResponse(views::hold(&hold))))
}

async fn read(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    HoldPath(id): HoldPath,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::hold(&booking.get_hold(&user.id, &id).await?)))
}

async fn release(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    HoldPath(id): HoldPath,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::hold(&booking.release(&user.id, &id).await?)))
}

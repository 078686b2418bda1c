//! Seat holds: create, read, release.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Json as JsonResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::extract::{Auth, Json, Path};
use super::{AppState, views};
use crate::error::Result;

pub fn router() -> Router<AppState> {
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

async fn create(
    State(app): State<AppState>,
    Auth(user): Auth,
    headers: axum::http::HeaderMap,
    Json(req): Json<HoldRequest>,
) -> Result<(StatusCode, JsonResponse<Value>)> {
    app.booking.show(&req.show_id)?;
    app.rooms
        .check_admission(&req.show_id, &user.id, super::waitroom::admission_token(&headers))?;
    let hold = app.booking.hold(&user.id, &req.show_id, req.seat_ids).await?;
    Ok((StatusCode::CREATED, JsonResponse(views::hold(&hold))))
}

async fn read(State(app): State<AppState>, Auth(user): Auth, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::hold(&app.booking.get_hold(&user.id, &id).await?)))
}

async fn release(State(app): State<AppState>, Auth(user): Auth, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::hold(&app.booking.release(&user.id, &id).await?)))
}

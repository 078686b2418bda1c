//! Seat holds (create, read, release) and the seat map.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json as JsonResponse;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::HoldView;
use super::{Booking, HoldAsk, views};
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::extract::{Auth, AuthState, HoldPath, Json};
use crate::http::openapi::ErrorBody;

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Booking>: FromRef<S>,
    Arc<Catalog>: FromRef<S>,
    AuthState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read, release))
}

/// Seats to hold, all or none: these (`seatIds`), or the best block of
/// `quantity` adjacent seats the server picks. One of the two, not both.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HoldRequest {
    show_id: String,
    /// 1 to `MAX_SEATS_PER_HOLD` (default 10) distinct seats of the show's map.
    #[schema(min_items = 1)]
    seat_ids: Option<Vec<String>>,
    /// Best available: this many adjacent seats in one row, picked by the
    /// server (the ranking is in docs/api.md), 1 to `MAX_SEATS_PER_HOLD`.
    #[schema(minimum = 1)]
    quantity: Option<u64>,
}

impl HoldRequest {
    fn ask(self) -> Result<HoldAsk> {
        match (self.seat_ids, self.quantity) {
            (Some(seats), None) => Ok(HoldAsk::Seats(seats)),
            (None, Some(q)) => Ok(HoldAsk::Best(usize::try_from(q).unwrap_or(usize::MAX))),
            (Some(_), Some(_)) => Err(Error::BadRequest("give seatIds or quantity, not both".into())),
            (None, None) => Err(Error::BadRequest(
                "give seatIds (the seats) or quantity (best available)".into(),
            )),
        }
    }
}

/// The `X-Admission-Token` of a hold request (gated shows).
fn admission_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-admission-token").and_then(|v| v.to_str().ok())
}

#[utoipa::path(post, path = "/api/v1/holds", operation_id = "createHold", tag = "holds", security(("bearer" = [])),
    params(("X-Admission-Token" = Option<String>, Header, description = "The admission token, on a show with a waiting room")),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "Every seat is held for `HOLD_TTL_SECONDS` (with `quantity`: the seats the server picked); the caller's previous hold on the show is released", body = HoldView),
        (status = 400, description = "No seats, duplicates, too many, seats not on the map, a bad quantity, or both seatIds and quantity", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`: the show is gated and the request has no valid admission token", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 409, description = "`SEAT_CONFLICT` (with `conflicts` and `available`), `NOT_ENOUGH_SEATS` (with `largestBlock`) or `SHOW_STARTED`", body = ErrorBody),
    ))]
async fn create(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    headers: HeaderMap,
    Json(req): Json<HoldRequest>,
) -> Result<(StatusCode, JsonResponse<HoldView>)> {
    let show = req.show_id.clone();
    let hold = booking
        .hold(&user.id, &show, admission_token(&headers), req.ask()?)
        .await?;
    Ok((StatusCode::CREATED, JsonResponse(views::hold(&hold))))
}

#[utoipa::path(get, path = "/api/v1/holds/{hold_id}", operation_id = "getHold", tag = "holds", security(("bearer" = [])),
    params(("hold_id" = String, Path, description = "A hold's id")),
    responses(
        (status = 200, description = "The hold; `EXPIRED` the moment `expiresAt` passes", body = HoldView),
        (status = 404, description = "No such hold of the caller's", body = ErrorBody),
        (status = 409, description = "`HOLD_NOT_ACTIVE`: the hold was lost with Redis's data (made before the show's seats were restored)", body = ErrorBody),
    ))]
async fn read(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    HoldPath(id): HoldPath,
) -> Result<JsonResponse<HoldView>> {
    Ok(JsonResponse(views::hold(&booking.get_hold(&user.id, &id).await?)))
}

#[utoipa::path(delete, path = "/api/v1/holds/{hold_id}", operation_id = "releaseHold", tag = "holds", security(("bearer" = [])),
    params(("hold_id" = String, Path, description = "A hold's id")),
    responses(
        (status = 200, description = "Released: its seats are available again", body = HoldView),
        (status = 404, description = "No such hold of the caller's", body = ErrorBody),
        (status = 409, description = "`HOLD_NOT_ACTIVE`: expired, released, already an order, or lost with Redis's data", body = ErrorBody),
    ))]
async fn release(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    HoldPath(id): HoldPath,
) -> Result<JsonResponse<HoldView>> {
    Ok(JsonResponse(views::hold(&booking.release(&user.id, &id).await?)))
}

//! Orders: create from a hold (idempotent), mock payment, cancel, history.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json as JsonResponse;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::store::Cursor;
use super::views::{OrderPage, OrderView};
use super::{Booking, idempotency, views};
use crate::domain::HoldId;
use crate::error::{Error, Result};
use crate::http::extract::{Auth, AuthState, Json, OptionalJson, OrderPath, Query};
use crate::http::openapi::ErrorBody;

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;
/// Longest `paymentReference` accepted.
pub const MAX_PAYMENT_REFERENCE_LEN: usize = 200;

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Booking>: FromRef<S>,
    AuthState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read))
        .routes(routes!(confirm))
        .routes(routes!(cancel))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateOrder {
    hold_id: String,
}

#[utoipa::path(post, path = "/api/v1/orders", operation_id = "createOrder", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]+$",
        description = "1 to 255 visible ASCII characters: repeating a request with the same key answers the first response")),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "The order, `PAYMENT_PENDING`; its seats stay held until it ends", body = OrderView),
        (status = 200, description = "The hold already became this order", body = OrderView),
        (status = 404, description = "No such hold of the caller's", body = ErrorBody),
        (status = 409, description = "`HOLD_EXPIRED` or `HOLD_NOT_ACTIVE`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_MISMATCH`: the key was used with another body", body = ErrorBody),
    ))]
async fn create(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    headers: HeaderMap,
    Json(req): Json<CreateOrder>,
) -> Result<(StatusCode, JsonResponse<Value>)> {
    let key = idempotency::key(&headers)?;
    let hash = idempotency::request_hash("POST /api/v1/orders", &req.hold_id);
    let attempt = async {
        let hold = HoldId::parse(&req.hold_id).ok_or_else(|| Error::not_found("hold"))?;
        let (order, created) = booking.create_order(&user.id, &hold).await?;
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, serde_json::to_value(views::order(&order))?))
    };
    let (status, body) = idempotency::once(booking.records().as_ref(), &user.id, key, hash, attempt).await?;
    Ok((status, JsonResponse(body)))
}

#[utoipa::path(get, path = "/api/v1/orders/{order_id}", operation_id = "getOrder", tag = "orders", security(("bearer" = [])),
    params(("order_id" = String, Path, description = "An order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order of the caller's", body = ErrorBody),
    ))]
async fn read(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
) -> Result<JsonResponse<OrderView>> {
    Ok(JsonResponse(views::order(
        &booking.order(&user.id, user.admin, id).await?,
    )))
}

/// The mock payment's result.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Outcome {
    #[default]
    Success,
    Failure,
}

/// A mock payment (the body may be left out: `SUCCESS`).
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ConfirmPayment {
    /// The payment provider's reference, kept on the order.
    #[schema(max_length = 200)]
    payment_reference: Option<String>,
    #[serde(default)]
    outcome: Outcome,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/confirm-payment", operation_id = "confirmPayment", tag = "orders", security(("bearer" = [])),
    params(("order_id" = String, Path, description = "An order's id")),
    request_body(content = Option<ConfirmPayment>, description = "Optional; `outcome` defaults to `SUCCESS`"),
    responses(
        (status = 200, description = "`CONFIRMED` with a `ticketCode`, or `FAILED`; repeating answers the same", body = OrderView),
        (status = 404, description = "No such order of the caller's", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `INVALID_STATE`, or `SEAT_CONFLICT` when Postgres shows a seat as another order's", body = ErrorBody),
    ))]
async fn confirm(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
    OptionalJson(req): OptionalJson<ConfirmPayment>,
) -> Result<JsonResponse<OrderView>> {
    if req
        .payment_reference
        .as_ref()
        .is_some_and(|r| r.len() > MAX_PAYMENT_REFERENCE_LEN)
    {
        return Err(Error::BadRequest(format!(
            "paymentReference is longer than {MAX_PAYMENT_REFERENCE_LEN} characters"
        )));
    }
    let success = req.outcome == Outcome::Success;
    let order = booking
        .confirm_payment(&user.id, id, success, req.payment_reference.as_deref())
        .await?;
    Ok(JsonResponse(views::order(&order)))
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", operation_id = "cancelOrder", tag = "orders", security(("bearer" = [])),
    params(("order_id" = String, Path, description = "An order's id")),
    responses(
        (status = 200, description = "`CANCELLED`; its seats are available again. Admins may cancel any order", body = OrderView),
        (status = 404, description = "No such order of the caller's", body = ErrorBody),
        (status = 409, description = "`INVALID_STATE`: already cancelled", body = ErrorBody),
    ))]
async fn cancel(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
) -> Result<JsonResponse<OrderView>> {
    Ok(JsonResponse(views::order(
        &booking.cancel(&user.id, user.admin, id).await?,
    )))
}

#[utoipa::path(get, path = "/api/v1/orders", operation_id = "listOrders", tag = "orders", security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,18}\.[0-9a-fA-F]{32}$", description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The caller's orders, newest first", body = OrderPage),
        (status = 400, description = "A bad `limit` or a cursor this server did not give out", body = ErrorBody),
    ))]
async fn list(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonResponse<OrderPage>> {
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| Error::BadRequest(format!("limit must be a whole number from 1 to {MAX_PAGE}")))?,
    };
    let cursor = q.get("cursor").map(|c| parse_cursor(c)).transpose()?;
    let mut orders = booking.orders_of(&user.id, limit + 1, cursor).await?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders
            .last()
            .map(|o| format!("{}.{}", o.created_at.timestamp_micros(), o.id.simple()))
    } else {
        None
    };
    Ok(JsonResponse(OrderPage {
        orders: orders.iter().map(views::order).collect(),
        next_cursor: next,
    }))
}

/// Cursors are `<created_at µs>.<order id>`: the last order of a page.
fn parse_cursor(c: &str) -> Result<Cursor> {
    let bad = || Error::BadRequest("cursor is not one this server gave out".into());
    let (micros, id) = c.split_once('.').ok_or_else(bad)?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok(Cursor {
        created_at,
        id: Uuid::parse_str(id).map_err(|_| bad())?,
    })
}

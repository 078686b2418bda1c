//! Orders: create from a hold (idempotent), mock payment, cancel, history.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json as JsonResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::store::Cursor;
use super::{Booking, idempotency, views};
use crate::domain::HoldId;
use crate::error::{Error, Result};
use crate::http::extract::{Auth, AuthState, Json, OptionalJson, OrderPath, Query};

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;
/// Longest `paymentReference` accepted.
pub const MAX_PAYMENT_REFERENCE_LEN: usize = 200;

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Booking>: FromRef<S>,
    AuthState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/orders", post(create).get(list))
        .route("/api/v1/orders/{order_id}", get(read))
        .route("/api/v1/orders/{order_id}/confirm-payment", post(confirm))
        .route("/api/v1/orders/{order_id}/cancel", post(cancel))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOrder {
    hold_id: String,
}

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
        Ok((status, views::order(&order)))
    };
    let (status, body) = idempotency::once(booking.records().as_ref(), &user.id, key, hash, attempt).await?;
    Ok((status, JsonResponse(body)))
}

async fn read(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::order(
        &booking.order(&user.id, user.admin, id).await?,
    )))
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Outcome {
    #[default]
    Success,
    Failure,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfirmPayment {
    payment_reference: Option<String>,
    #[serde(default)]
    outcome: Outcome,
}

async fn confirm(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
    OptionalJson(req): OptionalJson<ConfirmPayment>,
) -> Result<JsonResponse<Value>> {
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

async fn cancel(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    OrderPath(id): OrderPath,
) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::order(
        &booking.cancel(&user.id, user.admin, id).await?,
    )))
}

async fn list(
    State(booking): State<Arc<Booking>>,
    Auth(user): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonResponse<Value>> {
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
    let orders: Vec<Value> = orders.iter().map(views::order).collect();
    Ok(JsonResponse(json!({ "orders": orders, "nextCursor": next })))
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

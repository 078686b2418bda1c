//! Orders: create from a hold (idempotent), mock payment, cancel, history.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json as JsonResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::extract::{Auth, Json, OptionalJson, Path, Query};
use super::{AppState, views};
use crate::error::{Error, Result};
use crate::records::{Cursor, StoredResponse};

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

pub fn router() -> Router<AppState> {
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

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Error::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

async fn create(
    State(app): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    Json(req): Json<CreateOrder>,
) -> Result<(StatusCode, JsonResponse<Value>)> {
    let key = idempotency_key(&headers)?;
    let hash = hex(&Sha256::digest(format!("POST /api/v1/orders\n{}", req.hold_id)));
    let records = &app.booking.records;
    if let Some(key) = &key {
        if let Some(stored) = records.idempotent_response(&user.id, key).await? {
            return replay(stored, &hash);
        }
    }
    let (status, body) = match app.booking.create_order(&user.id, &req.hold_id).await {
        Ok((order, created)) => (
            if created { StatusCode::CREATED } else { StatusCode::OK },
            views::order(&order),
        ),
        // A failure of ours is not an answer to remember: the retry may succeed.
        Err(e) if e.status().is_server_error() => return Err(e),
        Err(e) if key.is_none() => return Err(e),
        Err(e) => (e.status(), e.body()),
    };
    match key {
        Some(key) => {
            let first = StoredResponse {
                request_hash: hash.clone(),
                status: status.as_u16(),
                body,
            };
            replay(records.store_idempotent_response(&user.id, &key, &first).await?, &hash)
        }
        None => Ok((status, JsonResponse(body))),
    }
}

/// The first response to a key, or 422 when the key came with another request.
fn replay(stored: StoredResponse, hash: &str) -> Result<(StatusCode, JsonResponse<Value>)> {
    if stored.request_hash != hash {
        return Err(Error::IdempotencyMismatch);
    }
    let status = StatusCode::from_u16(stored.status).map_err(|_| Error::Internal("stored status".into()))?;
    Ok((status, JsonResponse(stored.body)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn read(State(app): State<AppState>, Auth(user): Auth, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::order(
        &app.booking.order(&user.id, user.admin, &id).await?,
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
    State(app): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<ConfirmPayment>,
) -> Result<JsonResponse<Value>> {
    if req.payment_reference.as_ref().is_some_and(|r| r.len() > 200) {
        return Err(Error::BadRequest(
            "paymentReference is longer than 200 characters".into(),
        ));
    }
    let success = req.outcome == Outcome::Success;
    let order = app
        .booking
        .confirm_payment(&user.id, &id, success, req.payment_reference.as_deref())
        .await?;
    Ok(JsonResponse(views::order(&order)))
}

async fn cancel(State(app): State<AppState>, Auth(user): Auth, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    Ok(JsonResponse(views::order(
        &app.booking.cancel(&user.id, user.admin, &id).await?,
    )))
}

async fn list(
    State(app): State<AppState>,
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
    let mut orders = app.booking.orders_of(&user.id, limit + 1, cursor).await?;
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

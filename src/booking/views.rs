//! Booking's JSON shapes: holds and orders (the seat map is `live`'s).

use serde::Serialize;
use utoipa::ToSchema;

use super::Hold;
use super::store::Order;
use crate::domain::money;
use crate::domain::order::OrderStatus;
use crate::domain::seats::HoldStatus;
use crate::http::time::{time, time_ms};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldView {
    pub hold_id: String,
    pub show_id: String,
    pub user_id: String,
    pub seat_ids: Vec<String>,
    /// `HELD` while it holds its seats (and after it became an order).
    pub status: HoldStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The order this hold became, if any.
    pub order_id: Option<String>,
}

pub fn hold(h: &Hold) -> HoldView {
    HoldView {
        hold_id: h.id.as_str().to_owned(),
        show_id: h.id.show().as_str().to_owned(),
        user_id: h.record.user.clone(),
        seat_ids: h.record.seats.clone(),
        status: h.status,
        created_at: time_ms(h.record.created_ms),
        expires_at: time_ms(h.record.expires_ms),
        order_id: h.record.order_id.clone(),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    #[schema(format = Uuid)]
    pub order_id: String,
    pub user_id: String,
    pub show_id: String,
    pub hold_id: String,
    pub seat_ids: Vec<String>,
    /// The show's price times the seats, a decimal string with two places.
    #[schema(example = "1000.00")]
    pub amount: String,
    pub currency: String,
    pub status: OrderStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When a `PAYMENT_PENDING` order expires.
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Set once `CONFIRMED`.
    pub ticket_code: Option<String>,
    pub payment_reference: Option<String>,
    pub failure_reason: Option<String>,
}

pub fn order(o: &Order) -> OrderView {
    OrderView {
        order_id: o.id.to_string(),
        user_id: o.user_id.clone(),
        show_id: o.show_id.clone(),
        hold_id: o.hold_id.clone(),
        seat_ids: o.seat_ids.clone(),
        amount: money::format_minor(o.amount_minor),
        currency: o.currency.clone(),
        status: o.status,
        created_at: time(o.created_at),
        expires_at: time(o.expires_at),
        updated_at: time(o.updated_at),
        ticket_code: o.ticket_code.clone(),
        payment_reference: o.payment_reference.clone(),
        failure_reason: o.failure_reason.clone(),
    }
}

/// A page of the caller's orders, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}
